package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero/api"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/model"
)

// Outbound HTTP is a capability: a knot granted it may call pirn.http,
// which performs one request on the host, within the knot's timeout, to a
// granted host with a granted method.
//
//	pirn.http(req_ptr, req_len) -> resp_len
//	pirn.http_response(ptr)
//
// The request is a CBOR map {"method": text, "url": text, "headers"?:
// {name: text}, "body"?: bytes}; the response, which http_response copies
// to ptr, is {"status": int, "headers": {name: text}, "body": bytes}, or
// {"error": text} when the request was refused or failed.

// ErrCapability is the err type of an invocation that used a capability
// its knot was not granted.
const ErrCapability = "CapabilityDenied"

// httpClient is the client for granted requests; its transport is the
// default one (proxies from the environment, HTTP/2).
var httpClient = &http.Client{Transport: http.DefaultTransport}

func hostHTTP(ctx context.Context, m api.Module, stack []uint64) {
	inst := current(ctx)
	if inst == nil {
		abort(nil, ErrABI, "http called outside an invocation")
	}
	if len(inst.p.grants.HTTP) == 0 {
		abort(inst, ErrCapability, "the knot called %s.http but was not granted http", abi.ImportModule)
	}
	ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	if int64(n) > int64(inst.lim.MaxInput) {
		abort(inst, ErrLimit, "http request of %d bytes exceeds the limit MaxInput=%d", n, inst.lim.MaxInput)
	}
	b, ok := m.Memory().Read(ptr, n)
	if !ok {
		abort(inst, ErrABI, "http(ptr=%d, len=%d) lies outside memory of %d bytes", ptr, n, m.Memory().Size())
	}
	resp := inst.doHTTP(ctx, b)
	inst.httpResp = resp
	stack[0] = uint64(len(resp))
}

func hostHTTPResponse(ctx context.Context, m api.Module, stack []uint64) {
	inst := current(ctx)
	if inst == nil {
		abort(nil, ErrABI, "http_response called outside an invocation")
	}
	ptr := api.DecodeU32(stack[0])
	if !m.Memory().Write(ptr, inst.httpResp) {
		abort(inst, ErrABI, "http_response(ptr=%d): %d bytes do not fit in memory of %d bytes", ptr, len(inst.httpResp), m.Memory().Size())
	}
	inst.httpResp = nil
}

// doHTTP performs a request document and returns the response document.
func (inst *instance) doHTTP(ctx context.Context, doc []byte) []byte {
	failed := func(format string, args ...any) []byte {
		msg := fmt.Sprintf(format, args...)
		inst.log(ctx, slog.LevelWarn, "http request refused or failed: "+msg, slog.String(AttrStream, "http"))
		b, _ := cas.Encode(map[string]any{"error": msg})
		return b
	}
	v, err := cas.Decode(doc)
	req, ok := v.(map[string]any)
	if err != nil || !ok {
		return failed("malformed request: want a CBOR map with method and url")
	}
	method, _ := req["method"].(string)
	raw, _ := req["url"].(string)
	method = strings.ToUpper(method)
	if method == "" {
		method = "GET"
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return failed("url %q: want an absolute http or https URL", raw)
	}
	if err := allowHTTP(inst.p.grants, method, u); err != nil {
		return failed("%v", err)
	}
	var body io.Reader
	if bb, ok := req["body"].([]byte); ok {
		body = bytes.NewReader(bb)
	} else if s, ok := req["body"].(string); ok {
		body = strings.NewReader(s)
	}
	// The transport's goroutines may use the request's context after the
	// invocation returns, when the instance's context is being reused.
	hr, err := http.NewRequestWithContext(inst.cctx.detach(), method, u.String(), body)
	if err != nil {
		return failed("%v", err)
	}
	if hs, ok := req["headers"].(map[string]any); ok {
		for k, v := range hs {
			if s, ok := v.(string); ok {
				hr.Header.Set(k, s)
			}
		}
	}
	client := *httpClient
	client.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return allowHTTP(inst.p.grants, r.Method, r.URL)
	}
	resp, err := client.Do(hr)
	if err != nil {
		return failed("%s %s: %v", method, u.Redacted(), err)
	}
	defer resp.Body.Close()
	limit := int64(inst.lim.MaxOutput)
	rb, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return failed("%s %s: reading the response: %v", method, u.Redacted(), err)
	}
	if int64(len(rb)) > limit {
		return failed("%s %s: the response body exceeds the limit MaxOutput=%d", method, u.Redacted(), limit)
	}
	headers := map[string]any{}
	for k, vs := range resp.Header {
		headers[strings.ToLower(k)] = strings.Join(vs, ", ")
	}
	inst.log(ctx, slog.LevelDebug, fmt.Sprintf("http %s %s: %d, %d bytes", method, u.Redacted(), resp.StatusCode, len(rb)), slog.String(AttrStream, "http"))
	out, err := cas.Encode(map[string]any{"status": int64(resp.StatusCode), "headers": headers, "body": rb})
	if err != nil {
		return failed("%v", err)
	}
	return out
}

// allowHTTP checks a request against the http grants.
func allowHTTP(g model.Grants, method string, u *url.URL) error {
	host := u.Hostname()
	for _, h := range g.HTTP {
		if !hostMatches(h.Host, host, u.Port()) {
			continue
		}
		if slices.Contains(h.AllowedMethods(), method) {
			return nil
		}
		return fmt.Errorf("%s %s: method %s is not granted for host %s (granted: %s)", method, u.Redacted(), method, h.Host, strings.Join(h.AllowedMethods(), ", "))
	}
	granted := make([]string, len(g.HTTP))
	for i, h := range g.HTTP {
		granted[i] = h.Host
	}
	return fmt.Errorf("%s %s: host %s is not granted (granted: %s)", method, u.Redacted(), host, strings.Join(granted, ", "))
}

// hostMatches matches a grant's host pattern against a request's host and
// port.
func hostMatches(pattern, host, port string) bool {
	pHost, pPort, err := net.SplitHostPort(pattern)
	if err != nil {
		pHost, pPort = pattern, ""
	}
	if pPort != "" && pPort != port {
		return false
	}
	pHost, host = strings.ToLower(pHost), strings.ToLower(host)
	if suffix, ok := strings.CutPrefix(pHost, "*."); ok {
		return strings.HasSuffix(host, "."+suffix)
	}
	return pHost == host
}
