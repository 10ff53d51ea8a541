package oci

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path"

	"github.com/pirn-wasm/pirn/bundle"
)

// maxOther bounds a response that is neither a manifest nor a blob: the
// API's root, a token, an error.
const maxOther = 1 << 20

// guard is the transport beneath go-containerregistry's: it refuses plain
// HTTP where it is not allowed and bounds every response body, whatever
// the library would read, so a registry cannot make pirn hold more than a
// bundle may have.
type guard struct {
	next     http.RoundTripper
	insecure bool
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.insecure && !loopback(req.URL.Hostname()) {
		return nil, fmt.Errorf("plain HTTP to %s refused: allow it with --insecure-registry (Options.Insecure)", req.URL.Host)
	}
	resp, err := g.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if req.Method == http.MethodHead {
		return resp, nil
	}
	// What was asked for decides the bound, through any redirect (a blob
	// is often served from another host).
	first := req
	for first.Response != nil && first.Response.Request != nil {
		first = first.Response.Request
	}
	what, limit := "a response", int64(maxOther)
	switch path.Base(path.Dir(first.URL.Path)) {
	case "manifests":
		what, limit = "a manifest", bundle.MaxManifest
	case "blobs":
		what, limit = "a blob", bundle.MaxBlob
	}
	big := &tooLargeError{host: req.URL.Host, what: what, limit: limit}
	if resp.ContentLength > limit {
		resp.Body.Close()
		return nil, big
	}
	resp.Body = &capped{rc: resp.Body, left: limit, err: big}
	return resp, nil
}

// loopback reports whether host is on the loopback interface.
func loopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

type tooLargeError struct {
	host, what string
	limit      int64
}

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("%s sent more than %d bytes for %s", e.host, e.limit, e.what)
}

// capped reads at most left bytes of rc, and fails on the next.
type capped struct {
	rc   io.ReadCloser
	left int64
	err  error
}

func (c *capped) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One byte more, read into a scratch buffer, tells a body that
		// ends here from one that goes on.
		var one [1]byte
		n, err := c.rc.Read(one[:])
		if n > 0 {
			return 0, c.err
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *capped) Close() error { return c.rc.Close() }
