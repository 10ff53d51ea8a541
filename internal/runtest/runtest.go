// Package runtest runs a pipeline file for tests that check what an
// example's pipeline produces.
package runtest

import (
	"context"
	"testing"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/lineage"
)

// Run loads the pipeline at path on an engine with an in-memory history
// and store (modules need no lock file, compiled code is not cached) and
// runs it with params; it fails the test unless the run succeeds.
func Run(t testing.TB, path string, params map[string]any) *pirn.RunResult {
	t.Helper()
	e, err := pirn.Open(t.Context(), pirn.Config{AllowUnpinned: true, CacheDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	p, err := e.LoadPipeline(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(t.Context(), p.Tapestry, pirn.RunRequest{Pipeline: p.Spec.Name, Params: params})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != lineage.Succeeded {
		t.Fatalf("status %s, errors %+v", res.Status, res.Errors)
	}
	return res
}
