// Package pdkhttp gives Go knots outbound HTTP through the host's
// pirn.http capability. Importing it makes the module import pirn.http, so
// every knot of the module must be granted http in the pipeline
// (grants: {http: [{host: ..., methods: [...]}]}); keep knots that need the
// network in a module of their own.
package pdkhttp

import (
	"errors"
	"fmt"

	"github.com/pirn-wasm/pirn/abi"
)

// Request is an outbound HTTP request. Method defaults to GET.
type Request struct {
	Method  string
	URL     string
	Headers map[string]string
	Body    []byte
}

// Response is the answer to an Request. Header names are lower
// case; repeated headers are joined with ", ".
type Response struct {
	Status  int
	Headers map[string]string
	Body    []byte
}

// httpSink performs a request document and returns the response document;
// set on wasip1.
var httpSink func(req []byte) []byte

// ErrNoHTTP is returned by Do outside a knot module.
var ErrNoHTTP = errors.New("pdkhttp: HTTP is available only inside a knot module")

// Do performs an outbound request through the host. A request to
// a host or with a method the knot is not granted returns an error naming
// what was refused, as does a network failure; an HTTP error status is a
// response, not an error.
func Do(req Request) (*Response, error) {
	if httpSink == nil {
		return nil, ErrNoHTTP
	}
	doc := map[string]any{"method": req.Method, "url": req.URL}
	if len(req.Headers) > 0 {
		doc["headers"] = req.Headers
	}
	if req.Body != nil {
		doc["body"] = req.Body
	}
	b, err := abi.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("pdkhttp: request: %w", err)
	}
	var resp struct {
		Status  int               `cbor:"status"`
		Headers map[string]string `cbor:"headers"`
		Body    []byte            `cbor:"body"`
		Error   string            `cbor:"error"`
	}
	if err := abi.Unmarshal(httpSink(b), &resp); err != nil {
		return nil, fmt.Errorf("pdkhttp: response: %w", err)
	}
	if resp.Error != "" {
		return nil, errors.New(resp.Error)
	}
	return &Response{Status: resp.Status, Headers: resp.Headers, Body: resp.Body}, nil
}
