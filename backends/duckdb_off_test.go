//go:build !duckdb

package backends_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn/backends"
)

// TestDuckDBNotBuilt: a pirn built without the tag duckdb refuses a
// duckdb: URL, naming it and saying how to build one that opens it.
func TestDuckDBNotBuilt(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "h.duckdb")
	u := "duckdb:" + path
	h, err := backends.OpenHistory(t.Context(), u)
	if err == nil {
		h.Close()
		t.Fatalf("OpenHistory(%s) opened a history in a build without DuckDB", u)
	}
	for _, want := range []string{"history " + u + ":", "built without DuckDB", "go build -tags duckdb ./cmd/pirn"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("OpenHistory(%s) error = %q, want it to contain %q", u, err, want)
		}
	}
	if !errors.Is(err, backends.ErrNotBuilt) {
		t.Errorf("OpenHistory(%s) error = %v, want it to wrap ErrNotBuilt", u, err)
	}
	if matches, _ := filepath.Glob(path + "*"); len(matches) != 0 {
		t.Errorf("the refused URL left files: %v", matches)
	}
}
