package oci_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/bundle"
	"github.com/pirn-wasm/pirn/bundle/oci"
)

// endless writes zeros until the client goes away.
func endless(w http.ResponseWriter, r *http.Request) {
	chunk := make([]byte, 64<<10)
	for r.Context().Err() == nil {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

// TestHostileRegistry pulls from a registry that holds a real bundle but
// answers some requests as an attacker would. Each pull fails with an
// error naming the reference and what was wrong, having read no more than
// the bounds allow (an endless body would otherwise never end), and
// fetching no blob of a manifest it refuses.
func TestHostileRegistry(t *testing.T) {
	file := sample(t, nil)
	c, err := bundle.ReadBytes(file)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := c.Module("w")
	module := bundle.Digest(w.Wasm)

	// A manifest of our own making, and an index naming it.
	fake := func(manifest map[string]any) (index, man []byte) {
		man, _ = json.Marshal(manifest)
		index, _ = json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
			"manifests": []any{map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": bundle.Digest(man), "size": len(man)}}})
		return index, man
	}
	pirnManifest := func(layers []any) map[string]any {
		return map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "artifactType": bundle.ArtifactType,
			"config":      map[string]any{"mediaType": bundle.MediaTypePipeline, "digest": bundle.Digest(c.Pipeline), "size": len(c.Pipeline)},
			"layers":      layers,
			"annotations": map[string]any{"org.opencontainers.image.title": "demo"}}
	}
	layer := func(i int, size int64) any {
		return map[string]any{"mediaType": bundle.MediaTypeModule, "digest": bundle.Digest(fmt.Append(nil, i)), "size": size,
			"annotations": map[string]any{bundle.AnnotationModule: fmt.Sprint("m", i)}}
	}
	containerIndex, containerManifest := fake(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": bundle.Digest([]byte("{}")), "size": 2},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": bundle.Digest(nil), "size": 0}}})
	var many []any
	for i := range 2000 {
		many = append(many, layer(i, 1))
	}
	manyIndex, manyManifest := fake(pirnManifest(many))
	bigIndex, bigManifest := fake(pirnManifest([]any{layer(0, bundle.MaxBlob+1)}))

	// serve answers GET path with b as contentType.
	serve := func(path, contentType string, b []byte) func(http.ResponseWriter, *http.Request) bool {
		return func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, path) {
				return false
			}
			w.Header().Set("Content-Type", contentType)
			w.Write(b)
			return true
		}
	}
	both := func(fs ...func(http.ResponseWriter, *http.Request) bool) func(http.ResponseWriter, *http.Request) bool {
		return func(w http.ResponseWriter, r *http.Request) bool {
			for _, f := range fs {
				if f(w, r) {
					return true
				}
			}
			return false
		}
	}
	const index = "application/vnd.oci.image.index.v1+json"
	const manifest = "application/vnd.oci.image.manifest.v1+json"

	for _, tc := range []struct {
		name    string
		answer  func(http.ResponseWriter, *http.Request) bool // true if it answered
		ref     string                                        // "" for the tag v1
		want    string
		noBlobs bool // the pull must fetch no blob
	}{
		{name: "an endless manifest", answer: func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/manifests/v1") {
				return false
			}
			w.Header().Set("Content-Type", index)
			endless(w, r)
			return true
		}, want: "sent more than 4194304 bytes for a manifest", noBlobs: true},
		{name: "a manifest said to be huge", answer: func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/manifests/v1") {
				return false
			}
			w.Header().Set("Content-Type", index)
			w.Header().Set("Content-Length", strconv.Itoa(1<<40))
			w.Write([]byte("{}"))
			return true
		}, want: "sent more than 4194304 bytes for a manifest", noBlobs: true},
		{name: "a Docker image where the bundle was", answer: serve("/manifests/v1", "application/vnd.docker.distribution.manifest.v2+json", c.Index),
			want: `the registry holds a "application/vnd.docker.distribution.manifest.v2+json" there, not a pirn bundle`, noBlobs: true},
		{name: "a container image", answer: both(serve("/manifests/v1", index, containerIndex), serve("/manifests/"+bundle.Digest(containerManifest), manifest, containerManifest)),
			want: "the manifest is not a pirn bundle", noBlobs: true},
		{name: "a manifest of the wrong type", answer: both(serve("/manifests/v1", index, containerIndex), serve("/manifests/"+bundle.Digest(containerManifest), "text/plain", containerManifest)),
			want: fmt.Sprintf(`the registry sent %d bytes of "text/plain"`, len(containerManifest)), noBlobs: true},
		{name: "too many layers", answer: both(serve("/manifests/v1", index, manyIndex), serve("/manifests/"+bundle.Digest(manyManifest), manifest, manyManifest)),
			want: "the manifest names 2000 modules, more than 1020", noBlobs: true},
		{name: "a module over the limit", answer: both(serve("/manifests/v1", index, bigIndex), serve("/manifests/"+bundle.Digest(bigManifest), manifest, bigManifest)),
			want: `module "m0" is 67108865 bytes, over the limit of 67108864`, noBlobs: true},
		{name: "an index that is not JSON", answer: serve("/manifests/v1", index, []byte("<html>hello</html>")), want: "bundle: index.json: invalid character", noBlobs: true},
		{name: "a manifest that is not the one named", ref: "@" + bundle.Digest(c.Index), answer: serve("/manifests/"+bundle.Digest(c.Index), index, containerIndex),
			want: "does not match requested digest", noBlobs: true},
		{name: "a module whose bytes do not match", answer: func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+module) {
				return false
			}
			b := bytes.Clone(w2(c))
			b[len(b)/2] ^= 1
			w.Write(b)
			return true
		}, want: `module "w" (blob ` + module + `): the registry's bytes do not match the digest: they hash to sha256:`},
		{name: "a module longer than its descriptor", answer: func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+module) {
				return false
			}
			w.Write(w2(c))
			w.(http.Flusher).Flush() // no Content-Length
			endless(w, r)
			return true
		}, want: fmt.Sprintf(`module "w" (blob %s): the registry sent more than the %d bytes the manifest says`, module, len(w2(c)))},
		{name: "a module cut short", answer: func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+module) {
				return false
			}
			w.Write(w2(c)[:100])
			return true
		}, want: fmt.Sprintf(`module "w" (blob %s): `, module)},
		{name: "a module that never comes", answer: func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+module) {
				return false
			}
			<-r.Context().Done()
			return true
		}, want: "timed out after 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var blobs atomic.Int32
			host := newRegistry(t, func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
						blobs.Add(1)
					}
					if !tc.answer(w, r) {
						next.ServeHTTP(w, r)
					}
				})
			})
			if _, err := oci.Push(t.Context(), "oci://"+host+"/demo:v1", file, oci.Options{}); err != nil {
				t.Fatal(err)
			}
			blobs.Store(0)
			ref := "oci://" + host + "/demo:v1"
			if tc.ref != "" {
				ref = "oci://" + host + "/demo" + tc.ref
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			p, err := oci.Pull(t.Context(), ref, oci.Options{Timeout: time.Second})
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), "pull "+ref+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Pull = %v, %v; want an error naming %s and containing %q", p, err, ref, tc.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Pull took %v", d)
			}
			// Never more than a few times the bound on a manifest.
			if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
				t.Errorf("Pull allocated %d MiB", n>>20)
			}
			if n := blobs.Load(); tc.noBlobs && n > 0 {
				t.Errorf("Pull fetched %d blobs of a bundle it refused", n)
			}
		})
	}
}

// w2 is module w's bytes.
func w2(c *bundle.Contents) []byte {
	m, _ := c.Module("w")
	return m.Wasm
}
