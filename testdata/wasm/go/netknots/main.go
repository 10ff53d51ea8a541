//go:build wasip1

// Command netknots is a knot module that makes outbound HTTP requests
// through the host's pirn.http capability (package pdkhttp), for the
// host's capability tests. Every knot of a module that imports pirn.http
// must be granted http.
//
// Build (make wasm does this):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -ldflags="-w -buildid=" -o netknots.wasm .
package main

import (
	pdk "github.com/pirn-wasm/pirn/pdk/go"
	"github.com/pirn-wasm/pirn/pdk/go/pdkhttp"
)

type fetchIn struct {
	URL    string `pirn:"url"`
	Method string `pirn:"method,optional"`
	Body   string `pirn:"body,optional"`
}

func init() {
	pdk.Register("fetch", "Requests url and returns {status, body, type}; a refused or failed request errs.", func(in fetchIn) (map[string]any, error) {
		req := pdkhttp.Request{Method: in.Method, URL: in.URL}
		if in.Body != "" {
			req.Body = []byte(in.Body)
		}
		resp, err := pdkhttp.Do(req)
		if err != nil {
			return nil, &pdk.Error{Type: "HTTPError", Message: err.Error()}
		}
		return map[string]any{"status": resp.Status, "body": string(resp.Body), "type": resp.Headers["content-type"]}, nil
	})
}

func main() {}
