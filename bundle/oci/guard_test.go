package oci

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn/bundle"
)

// stub answers every request with body, and counts them.
type stub struct {
	body  []byte
	calls int
}

func (s *stub) RoundTrip(req *http.Request) (*http.Response, error) {
	s.calls++
	return &http.Response{StatusCode: 200, Body: io.NopCloser(bytes.NewReader(s.body)), ContentLength: -1, Request: req}, nil
}

// TestGuardPlainHTTP: plain HTTP goes only to the loopback interface,
// unless insecure; the refusal comes before any request is sent.
func TestGuardPlainHTTP(t *testing.T) {
	for _, tc := range []struct {
		url      string
		insecure bool
		refused  bool
	}{
		{"http://127.0.0.1:5000/v2/", false, false},
		{"http://127.8.9.10:5000/v2/", false, false},
		{"http://localhost:5000/v2/", false, false},
		{"http://[::1]:5000/v2/", false, false},
		{"http://10.1.2.3:5000/v2/", false, true},
		{"http://192.168.1.1/v2/", false, true},
		{"http://registry.example/v2/", false, true},
		{"http://localhost.example/v2/", false, true},
		{"http://registry.example/v2/", true, false},
		{"https://registry.example/v2/", false, false},
	} {
		s := &stub{}
		g := &guard{next: s, insecure: tc.insecure}
		req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
		_, err := g.RoundTrip(req)
		if refused := err != nil; refused != tc.refused || refused && (s.calls != 0 || !strings.Contains(err.Error(), "plain HTTP to "+req.URL.Host+" refused: allow it with --insecure-registry")) {
			t.Errorf("insecure=%v: GET %s: %v after %d requests; want refused = %v", tc.insecure, tc.url, err, s.calls, tc.refused)
		}
	}
}

// TestGuardBounds: a body may be as long as its kind allows and no
// longer, a redirected request keeping the bound of the first.
func TestGuardBounds(t *testing.T) {
	read := func(path string, n int, redirectedFrom string) error {
		g := &guard{next: &stub{body: make([]byte, n)}}
		req, _ := http.NewRequest(http.MethodGet, "https://registry.example"+path, nil)
		if redirectedFrom != "" {
			first, _ := http.NewRequest(http.MethodGet, "https://registry.example"+redirectedFrom, nil)
			req.Response = &http.Response{StatusCode: http.StatusTemporaryRedirect, Request: first}
		}
		resp, err := g.RoundTrip(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err == nil && len(got) != n {
			t.Errorf("GET %s: read %d bytes of %d", path, len(got), n)
		}
		return err
	}
	const blob = "/v2/team/app/blobs/sha256:" + "ab"
	for _, tc := range []struct {
		path, from string
		n          int
		want       string // "" for no error
	}{
		{"/v2/team/app/manifests/v1", "", bundle.MaxManifest, ""},
		{"/v2/team/app/manifests/v1", "", bundle.MaxManifest + 1, "registry.example sent more than 4194304 bytes for a manifest"},
		{"/v2/manifests/blobs/manifests/v1", "", bundle.MaxManifest + 1, "for a manifest"},
		{"/v2/", "", maxOther + 1, "sent more than 1048576 bytes for a response"},
		{"/token", "", maxOther, ""},
		{blob, "", bundle.MaxManifest + 1, ""},
		{"/storage/abc?sig=x", blob, bundle.MaxManifest + 1, ""},
		{"/storage/abc?sig=x", "/v2/team/app/manifests/v1", bundle.MaxManifest + 1, "for a manifest"},
	} {
		err := read(tc.path, tc.n, tc.from)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("GET %s (from %q), %d bytes: %v, want %q", tc.path, tc.from, tc.n, err, tc.want)
		}
	}
	// A body over the bound is refused by its Content-Length, unread.
	g := &guard{next: roundTripper(func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, ContentLength: bundle.MaxBlob + 1, Body: io.NopCloser(errReader{})}, nil
	})}
	req, _ := http.NewRequest(http.MethodGet, "https://registry.example"+blob, nil)
	if _, err := g.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "more than 67108864 bytes for a blob") {
		t.Errorf("a blob said to be over MaxBlob: %v", err)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type errReader struct{}

func (errReader) Read([]byte) (int, error) {
	return 0, errors.New("read the body of a refused response")
}
