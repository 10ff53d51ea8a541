package bundle_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn/bundle"
)

// TestWriteLayoutRemakesTheFile: what Read keeps of a bundle (its
// index.json and manifest as stored, its pipeline and modules) is enough
// to write the same bytes again, signed or not, whatever the blobs' order.
func TestWriteLayoutRemakesTheFile(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []ed25519.PrivateKey{nil, key} {
		var orig bytes.Buffer
		if err := bundle.WriteSigned(&orig, sample(), k); err != nil {
			t.Fatal(err)
		}
		c, err := bundle.ReadBytes(orig.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		blobs := [][]byte{c.Modules[1].Wasm, c.Pipeline, c.Manifest, c.Modules[0].Wasm, c.Pipeline}
		var again bytes.Buffer
		if err := bundle.WriteLayout(&again, c.Index, blobs); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(orig.Bytes(), again.Bytes()) {
			t.Errorf("signed=%v: WriteLayout gave %s, want the original %s", k != nil, bundle.Digest(again.Bytes()), bundle.Digest(orig.Bytes()))
		}
	}
}

func TestManifestOfAndBlobsOf(t *testing.T) {
	c, err := bundle.ReadBytes(write(t, sample()))
	if err != nil {
		t.Fatal(err)
	}
	md, err := bundle.ManifestOf(c.Index)
	if err != nil || md.Digest != c.ManifestDigest || md.Size != int64(len(c.Manifest)) {
		t.Fatalf("ManifestOf = %+v, %v; want %s of %d bytes", md, err, c.ManifestDigest, len(c.Manifest))
	}
	blobs, err := bundle.BlobsOf(c.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	want := []bundle.Blob{{Digest: bundle.Digest(c.Pipeline), Size: int64(len(c.Pipeline)), MediaType: bundle.MediaTypePipeline}}
	for _, m := range c.Modules {
		want = append(want, bundle.Blob{Digest: bundle.Digest(m.Wasm), Size: int64(len(m.Wasm)), MediaType: bundle.MediaTypeModule, Module: m.Name})
	}
	if fmt.Sprint(blobs) != fmt.Sprint(want) {
		t.Errorf("BlobsOf = %v, want %v", blobs, want)
	}
}

// TestBlobsOfBounds: a manifest is refused for what it names before a
// reader fetches any of it.
func TestBlobsOfBounds(t *testing.T) {
	c, err := bundle.ReadBytes(write(t, sample()))
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(c.Manifest, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	layer := func(m map[string]any) map[string]any { return m["layers"].([]any)[0].(map[string]any) }
	for _, tc := range []struct {
		name     string
		manifest []byte
		want     string
	}{
		{"too many layers", edit(func(m map[string]any) {
			var ls []any
			for i := range bundle.MaxEntries {
				ls = append(ls, map[string]any{"mediaType": bundle.MediaTypeModule, "digest": bundle.Digest(fmt.Append(nil, i)), "size": 1,
					"annotations": map[string]any{bundle.AnnotationModule: fmt.Sprint("m", i)}})
			}
			m["layers"] = ls
		}), "names 1024 modules, more than 1020"},
		{"a module over MaxBlob", edit(func(m map[string]any) { layer(m)["size"] = bundle.MaxBlob + 1 }), "over the limit of 67108864"},
		{"a negative size", edit(func(m map[string]any) { layer(m)["size"] = -1 }), "-1 bytes"},
		{"over MaxTotal in all", edit(func(m map[string]any) {
			var ls []any
			for i := range 17 {
				ls = append(ls, map[string]any{"mediaType": bundle.MediaTypeModule, "digest": bundle.Digest(fmt.Append(nil, i)), "size": bundle.MaxBlob,
					"annotations": map[string]any{bundle.AnnotationModule: fmt.Sprint("m", i)}})
			}
			m["layers"] = ls
		}), "over 1073741824 bytes in all"},
		{"a path for a digest", edit(func(m map[string]any) { layer(m)["digest"] = "sha256:../../v2/other" }), `has digest "sha256:../../v2/other"`},
		{"another algorithm", edit(func(m map[string]any) { layer(m)["digest"] = "sha512:" + strings.Repeat("ab", 64) }), "not sha256:<hex>"},
		{"a container image", edit(func(m map[string]any) {
			delete(m, "artifactType")
			m["config"].(map[string]any)["mediaType"] = "application/vnd.oci.image.config.v1+json"
		}), "not a pirn bundle"},
		{"a layer of another type", edit(func(m map[string]any) { layer(m)["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip" }), "is not a named pirn module"},
		{"not JSON", []byte("<html>"), "bundle: manifest: invalid character"},
	} {
		if _, err := bundle.BlobsOf(tc.manifest); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: BlobsOf = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}

	var idx map[string]any
	json.Unmarshal(c.Index, &idx)
	idx["manifests"].([]any)[0].(map[string]any)["size"] = bundle.MaxManifest + 1
	big, _ := json.Marshal(idx)
	if _, err := bundle.ManifestOf(big); err == nil || !strings.Contains(err.Error(), "over the limit of 4194304") {
		t.Errorf("ManifestOf a manifest over MaxManifest = %v", err)
	}
	if _, err := bundle.ManifestOf([]byte(`{"manifests": []}`)); err == nil || !strings.Contains(err.Error(), "names 0 manifests") {
		t.Errorf("ManifestOf an empty index = %v", err)
	}
}
