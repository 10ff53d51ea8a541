package oci_test

import (
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/pirn-wasm/pirn/bundle"
	"github.com/pirn-wasm/pirn/bundle/oci"
)

// exampleBundle is the bundle pirn bundle makes of
// examples/pipelines/map.yaml: the pipeline and arith.wasm (4.5 MB).
func exampleBundle(b *testing.B) []byte {
	b.Helper()
	pipeline, err := os.ReadFile("../../examples/pipelines/map.yaml")
	if err != nil {
		b.Fatal(err)
	}
	wasm, err := os.ReadFile("../../examples/wasm/go/arith/arith.wasm")
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := bundle.Write(&buf, bundle.Contents{Name: "map", Pipeline: pipeline, Modules: []bundle.Module{{Name: "arith", Wasm: wasm}}}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkRegistry pushes the example bundle to an in-process registry
// (new: an empty registry each time; again: one that holds its blobs)
// and pulls it back. The registry shares the process and its 2 cores.
func BenchmarkRegistry(b *testing.B) {
	file := exampleBundle(b)
	var current atomic.Pointer[http.Handler]
	fresh := func() {
		h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
		current.Store(&h)
	}
	fresh()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*current.Load()).ServeHTTP(w, r) }))
	defer srv.Close()
	ref := "oci://" + strings.TrimPrefix(srv.URL, "http://") + "/examples/map:v1"

	b.Run("push/new", func(b *testing.B) {
		b.SetBytes(int64(len(file)))
		for b.Loop() {
			fresh()
			if _, err := oci.Push(b.Context(), ref, file, oci.Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("push/again", func(b *testing.B) {
		b.SetBytes(int64(len(file)))
		for b.Loop() {
			if _, err := oci.Push(b.Context(), ref, file, oci.Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pull", func(b *testing.B) {
		if _, err := oci.Push(b.Context(), ref, file, oci.Options{}); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(file)))
		for b.Loop() {
			p, err := oci.Pull(b.Context(), ref, oci.Options{})
			if err != nil {
				b.Fatal(err)
			}
			if len(p.File) != len(file) {
				b.Fatalf("pulled %d bytes, pushed %d", len(p.File), len(file))
			}
		}
	})
}
