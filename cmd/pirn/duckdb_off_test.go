//go:build !duckdb

package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// buildTags are the tags TestMain builds pirn with: those of this test.
const buildTags = ""

// TestDuckDBNotBuilt: a pirn built without the tag duckdb refuses a
// duckdb: history with a message naming the URL and the build command.
func TestDuckDBNotBuilt(t *testing.T) {
	t.Parallel()
	u := "duckdb:" + filepath.Join(t.TempDir(), "h.duckdb")
	r := runPirn(t, "run", "--history", u, "--state", t.TempDir(), quickstart)
	if r.code != 2 {
		t.Errorf("pirn run --history %s: exit %d, want 2", u, r.code)
	}
	for _, want := range []string{u, "built without DuckDB", "go build -tags duckdb ./cmd/pirn"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("pirn run --history %s: stderr %q lacks %q", u, r.stderr, want)
		}
	}
}
