//go:build duckdb

package backends_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn/backends"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/lineagetest"
)

// TestOpenDuckDB: a pirn built with the tag duckdb opens duckdb:PATH (and
// duckdb://PATH), and the history is there when the URL is opened again.
func TestOpenDuckDB(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, u := range []string{"duckdb:" + filepath.Join(dir, "h.duckdb"), "duckdb://" + filepath.Join(dir, "sub", "h2.duckdb")} {
		h, err := backends.OpenHistory(t.Context(), u)
		if err != nil {
			t.Fatalf("OpenHistory(%s): %v", u, err)
		}
		want := lineagetest.SampleRun(t, "run-1", 0)
		if err := h.RecordRun(t.Context(), want); err != nil {
			t.Fatalf("%s: RecordRun: %v", u, err)
		}
		if err := h.Close(); err != nil {
			t.Fatalf("%s: Close: %v", u, err)
		}
		h, err = backends.OpenHistory(t.Context(), u)
		if err != nil {
			t.Fatalf("OpenHistory(%s) again: %v", u, err)
		}
		got, err := h.Run(t.Context(), "run-1")
		if err != nil || len(got.Records) != len(want.Records) || got.Status != lineage.Failed {
			t.Errorf("%s: Run(run-1) after reopening = %+v, %v", u, got, err)
		}
		if err := h.Close(); err != nil {
			t.Error(err)
		}
	}
	if _, err := backends.OpenHistory(t.Context(), "duckdb:"); err == nil || !strings.Contains(err.Error(), "no path (duckdb:PATH)") {
		t.Errorf("OpenHistory(duckdb:) error = %v, want no path", err)
	}
	_, err := backends.OpenHistory(t.Context(), "duckdb:"+dir)
	if err == nil || !strings.Contains(err.Error(), dir) || errors.Is(err, backends.ErrNotBuilt) {
		t.Errorf("OpenHistory(duckdb:<a directory>) error = %v, want one naming the directory", err)
	}
}
