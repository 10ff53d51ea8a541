package pirn_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/bundle"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

// TestLoadBundleStored runs a pipeline from its file, then again from the data
// store alone, by the digest its run recorded: in another engine that
// shares only the store, from a directory without the pipeline. The two
// runs agree on every value, and the digest is the one a bundle of the
// pipeline has for its manifest.
func TestLoadBundleStored(t *testing.T) {
	ctx := t.Context()
	store := cas.NewMemory()
	first := open(t, pirn.Config{Store: store})
	p, err := first.LoadPipeline(ctx, "examples/pipelines/map.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := first.Run(ctx, p.Tapestry, pirn.RunRequest{})
	if err != nil || res.Status != lineage.Succeeded {
		t.Fatalf("run from the file: %v, %v", res.Status, err)
	}
	d := res.PipelineDigest
	if d.IsZero() || d != p.Digest() || res.Pipeline != p.Spec.Name {
		t.Fatalf("the run recorded pipeline %q %s; the pipeline is %q %s", res.Pipeline, d, p.Spec.Name, p.Digest())
	}
	var buf bytes.Buffer
	if err := first.Bundle(ctx, "examples/pipelines/map.yaml", &buf, pirn.BundleOptions{}); err != nil {
		t.Fatal(err)
	}
	c, err := bundle.ReadBytes(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if c.ManifestDigest != d.String() {
		t.Errorf("the bundle's manifest is %s; the run recorded %s", c.ManifestDigest, d)
	}

	t.Chdir(t.TempDir())
	second := open(t, pirn.Config{Store: store})
	q, err := second.LoadBundle(ctx, d.String(), pirn.LoadBundleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := second.Run(ctx, q.Tapestry, pirn.RunRequest{})
	if err != nil || again.Status != lineage.Succeeded {
		t.Fatalf("run from the store: %v, %v", again.Status, err)
	}
	if again.PipelineDigest != d || again.Pipeline != res.Pipeline {
		t.Errorf("the second run recorded pipeline %q %s, want %q %s", again.Pipeline, again.PipelineDigest, res.Pipeline, d)
	}
	if len(again.Records) != len(res.Records) {
		t.Fatalf("%d records from the store, %d from the file", len(again.Records), len(res.Records))
	}
	for i, r := range res.Records {
		g := again.Records[i]
		if g.KnotID != r.KnotID || g.Output != r.Output || g.Module != r.Module || g.ConfigHash != r.ConfigHash {
			t.Errorf("record %d: from the store %s %s (module %s), from the file %s %s (module %s)", i, g.KnotID, g.Output, g.Module, r.KnotID, r.Output, r.Module)
		}
	}

	// A Go-built tapestry has no pipeline digest.
	tp := pirn.NewTapestry()
	x, _ := tp.Parameter(pirn.Param{Name: "x", Type: "int"})
	if _, err := tp.Knot("y", pirn.Expr("x + 1"), pirn.In{"x": x}); err != nil {
		t.Fatal(err)
	}
	if res, err := second.Run(ctx, tp, pirn.RunRequest{Params: map[string]any{"x": 1}}); err != nil || !res.PipelineDigest.IsZero() {
		t.Errorf("Go tapestry: pipeline digest %s, %v; want none", res.PipelineDigest, err)
	}
}

// TestLoadBundleStoredRefuses: a digest the store lacks, a value that is not a
// pipeline, a module the store lost or holds changed, and grants not
// allowed are each a clear error.
func TestLoadBundleStoredRefuses(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	capknots, _ := filepath.Abs("testdata/wasm/go/capknots/capknots.wasm")
	path := filepath.Join(dir, "p.yaml")
	yaml := "name: grants\nmodules: {cap: " + capknots + "}\nnodes:\n" +
		"  - {id: region, type: knot, module: cap, knot: getenv, config: {name: PIRN_TEST_REGION}, grants: {env: [PIRN_TEST_REGION]}}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	store := cas.NewMemory()
	e := open(t, pirn.Config{Store: store, AllowUnpinned: true})
	p, err := e.LoadPipeline(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	d := p.Digest().String()
	grants := pirn.LoadBundleOptions{AllowGrants: true}
	value, _ := cas.Hash(42)
	enc, _ := cas.Encode(42)
	if err := store.Put(ctx, value, enc); err != nil {
		t.Fatal(err)
	}
	if _, err := e.LoadBundle(ctx, d, pirn.LoadBundleOptions{}); !errors.Is(err, pirn.ErrBundleGrants) || !strings.Contains(err.Error(), "env:PIRN_TEST_REGION") {
		t.Errorf("grants not allowed: %v", err)
	}
	if _, err := e.LoadBundle(ctx, d, grants); err != nil {
		t.Errorf("grants allowed: %v", err)
	}
	missing := strings.Repeat("0", 63) + "1"
	for _, tc := range []struct{ digest, want string }{
		{"sha256:" + missing, "is not in the data store"},
		{"sha256:" + strings.Repeat("0", 64), "zero digest"},
		{"sha256:xyz", "want 64 hex digits"},
		{value.String(), "bundle: manifest:"},
	} {
		if _, err := e.LoadBundle(ctx, tc.digest, grants); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadBundle(%s): %v, want an error containing %q", tc.digest, err, tc.want)
		}
	}

	wasm, err := os.ReadFile(capknots)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Delete(ctx, cas.Sum(wasm)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.LoadBundle(ctx, d, grants); err == nil || !strings.Contains(err.Error(), `module "cap" `+cas.Sum(wasm).String()) {
		t.Errorf("module lost from the store: %v", err)
	}
	if err := store.Put(ctx, cas.Sum(wasm), wasm); err != nil {
		t.Fatal(err)
	}
	lying := open(t, pirn.Config{Store: changed{store, cas.Sum(wasm)}})
	if _, err := lying.LoadBundle(ctx, d, grants); err == nil || !strings.Contains(err.Error(), "does not match its digest") {
		t.Errorf("module changed in the store: %v", err)
	}
}

// changed is a store that returns the bytes under one digest changed in
// their last byte.
type changed struct {
	cas.Store
	d cas.Digest
}

func (c changed) Get(ctx context.Context, d cas.Digest) ([]byte, error) {
	b, err := c.Store.Get(ctx, d)
	if err == nil && d == c.d {
		b = append([]byte(nil), b...)
		b[len(b)-1] ^= 1
	}
	return b, err
}
