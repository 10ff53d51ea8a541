package oci_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/pirn-wasm/pirn/bundle"
	"github.com/pirn-wasm/pirn/bundle/oci"
)

// newRegistry starts an in-process OCI registry (go-containerregistry's)
// behind wrap, if not nil, and returns its host:port.
func newRegistry(t testing.TB, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// sample writes a bundle of two small modules, signed with key unless nil.
func sample(t testing.TB, key ed25519.PrivateKey) []byte {
	t.Helper()
	c := bundle.Contents{
		Name:     "demo",
		Pipeline: []byte("name: demo\nmodules: {m: m.wasm, w: {path: w.wasm, abi: wasi-command}}\nnodes: []\n"),
		Modules: []bundle.Module{
			{Name: "w", ABI: "wasi-command", Format: "json", Wasm: bytes.Repeat([]byte("\x00asm\x01\x00\x00\x00command"), 1000)},
			{Name: "m", Wasm: []byte("\x00asm\x01\x00\x00\x00knots")},
		},
	}
	var buf bytes.Buffer
	if err := bundle.WriteSigned(&buf, c, key); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestPushPull: a signed bundle pushed and pulled back, by tag and by
// digest, is the same file, and its signature still verifies.
func TestPushPull(t *testing.T) {
	t.Parallel()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	file := sample(t, key)
	c, err := bundle.ReadBytes(file)
	if err != nil {
		t.Fatal(err)
	}
	host := newRegistry(t, nil)
	ref := "oci://" + host + "/team/demo:v1"
	pushed, err := oci.Push(t.Context(), ref, file, oci.Options{})
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	if want := bundle.Digest(c.Index); pushed.Digest != want || pushed.Reference != ref+"@"+want {
		t.Errorf("Push = %+v, want digest %s (the index's) and reference %s@%[1]s", pushed, want, ref)
	}
	again, err := oci.Push(t.Context(), ref, file, oci.Options{})
	if err != nil || *again != *pushed {
		t.Errorf("Push again = %+v, %v; want %+v", again, err, pushed)
	}

	for _, from := range []string{ref, pushed.Reference, "oci://" + host + "/team/demo@" + pushed.Digest} {
		p, err := oci.Pull(t.Context(), from, oci.Options{})
		if err != nil {
			t.Fatalf("Pull(%s): %v", from, err)
		}
		if !bytes.Equal(p.File, file) {
			t.Errorf("Pull(%s) gave a file of %s, want the pushed %s", from, bundle.Digest(p.File), bundle.Digest(file))
		}
		if p.Digest != pushed.Digest || p.Reference != "oci://"+host+"/team/demo@"+pushed.Digest {
			t.Errorf("Pull(%s) = digest %s, reference %s", from, p.Digest, p.Reference)
		}
		if err := p.Verify([]ed25519.PublicKey{pub}); err != nil {
			t.Errorf("Pull(%s): the signature no longer verifies: %v", from, err)
		}
		if p.Name != "demo" || len(p.Modules) != 2 {
			t.Errorf("Pull(%s) = %s with %d modules", from, p.Name, len(p.Modules))
		}
	}

	// By digest, a push must name the bundle's own digest.
	byDigest := "oci://" + host + "/other@" + pushed.Digest
	if p, err := oci.Push(t.Context(), byDigest, file, oci.Options{}); err != nil || p.Reference != byDigest {
		t.Errorf("Push(%s) = %+v, %v", byDigest, p, err)
	}
	wrong := "oci://" + host + "/other@" + bundle.Digest(nil)
	if _, err := oci.Push(t.Context(), wrong, file, oci.Options{}); err == nil || !strings.Contains(err.Error(), "the bundle is "+pushed.Digest+" in a registry, not "+bundle.Digest(nil)) {
		t.Errorf("Push(%s) = %v", wrong, err)
	}
	// What is pushed is verified first.
	bad := bytes.Clone(file)
	bad[len(bad)/2] ^= 1
	if _, err := oci.Push(t.Context(), ref, bad, oci.Options{}); err == nil || !strings.Contains(err.Error(), "push "+ref+": bundle:") {
		t.Errorf("Push of a tampered bundle = %v", err)
	}
}

// TestPullErrors: a tag the registry lacks, a registry that is not
// there, and references that are not references are clear errors naming
// the reference (never a credential in it).
func TestPullErrors(t *testing.T) {
	t.Parallel()
	host := newRegistry(t, nil)
	if _, err := oci.Push(t.Context(), "oci://"+host+"/demo:v1", sample(t, nil), oci.Options{}); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	for _, tc := range []struct {
		ref    string
		want   string
		is     error
		hidden string // must not appear in the error
	}{
		{ref: "oci://" + host + "/demo:nope", want: "pull oci://" + host + "/demo:nope: not in the registry", is: oci.ErrNotFound},
		{ref: "oci://" + host + "/absent:v1", want: "not in the registry", is: oci.ErrNotFound},
		{ref: "oci://" + host + "/demo@" + bundle.Digest(nil), want: "not in the registry", is: oci.ErrNotFound},
		{ref: "oci://" + closed + "/demo:v1", want: "pull oci://" + closed + "/demo:v1: cannot reach " + closed + ": dial tcp " + closed + ": connect: connection refused"},
		{ref: "oci://demo:v1", want: "oci://demo:v1: strict validation requires the registry to be explicitly defined: want oci://HOST/REPOSITORY:TAG"},
		{ref: "oci://" + host + "/demo", want: "tag"},
		{ref: "oci://" + host + "/Demo:v1", want: "repository can only contain"},
		{ref: "oci://alice:s3cret@" + host + "/demo:v1", want: "oci://***@" + host + "/demo:v1: a reference names no credentials", hidden: "s3cret"},
		{ref: "oci://alice:s3/cr@t@" + host + "/demo@" + bundle.Digest(nil), want: "oci://***@" + host + "/demo@" + bundle.Digest(nil) + ": a reference names no credentials", hidden: "cr@t"},
		{ref: "oci://alice@" + host + "/demo:v1", want: "oci://***@" + host + "/demo:v1: a reference names no credentials", hidden: "alice"},
		{ref: host + "/demo:v1", want: "is not an oci:// reference"},
	} {
		_, err := oci.Pull(t.Context(), tc.ref, oci.Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || tc.is != nil && !errors.Is(err, tc.is) || tc.hidden != "" && strings.Contains(err.Error(), tc.hidden) {
			t.Errorf("Pull(%q) = %v, want an error containing %q", tc.ref, err, tc.want)
		}
	}
}

// TestCredentials: a registry that wants a password gets the one the
// Docker configuration holds for it, and no error shows it.
func TestCredentials(t *testing.T) {
	host := newRegistry(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "s3cret" {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "who are you?", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("DOCKER_CONFIG", dir)
	config := func(password string) {
		auth := base64.StdEncoding.EncodeToString([]byte("alice:" + password))
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths": {"`+host+`": {"auth": "`+auth+`"}}}`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ref := "oci://" + host + "/private:v1"
	file := sample(t, nil)
	if _, err := oci.Push(t.Context(), ref, file, oci.Options{}); err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") && !strings.Contains(err.Error(), "401") {
		t.Errorf("Push without credentials = %v, want refused", err)
	}
	config("s3cret")
	if _, err := oci.Push(t.Context(), ref, file, oci.Options{}); err != nil {
		t.Fatalf("Push with credentials: %v", err)
	}
	if p, err := oci.Pull(t.Context(), ref, oci.Options{}); err != nil || !bytes.Equal(p.File, file) {
		t.Fatalf("Pull with credentials: %v", err)
	}
	config("wrong-password")
	_, err := oci.Pull(t.Context(), ref, oci.Options{})
	if err == nil || strings.Contains(err.Error(), "wrong-password") || strings.Contains(err.Error(), base64.StdEncoding.EncodeToString([]byte("alice:wrong-password"))) {
		t.Errorf("Pull with a wrong password = %v, want an error that does not show it", err)
	}
}

// TestTimeout: a registry that never answers costs a pull its Timeout,
// and the error says so.
func TestTimeout(t *testing.T) {
	t.Parallel()
	host := newRegistry(t, func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	})
	ref := "oci://" + host + "/demo:v1"
	start := time.Now()
	_, err := oci.Pull(t.Context(), ref, oci.Options{Timeout: 300 * time.Millisecond})
	if !errors.Is(err, oci.ErrTimeout) || !strings.Contains(err.Error(), "pull "+ref+": timed out after 300ms") {
		t.Errorf("Pull from a registry that hangs = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Pull took %v with a timeout of 300ms", d)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := oci.Push(ctx, ref, sample(t, nil), oci.Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Push with a cancelled context = %v", err)
	}
}
