//go:build duckdb

package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// buildTags are the tags TestMain builds pirn with: those of this test.
const buildTags = "duckdb"

// TestDuckDBFromTheCLI: a pirn built with the tag duckdb records runs to a
// DuckDB file by URL, lists and shows them, answers lineage queries from
// it, and copies a SQLite history into it.
func TestDuckDBFromTheCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	duck := "duckdb:" + filepath.Join(dir, "history.duckdb")
	r := runPirn(t, "run", "--history", duck, "--state", dir, "--json", quickstart)
	var run struct {
		RunID string `json:"run_id"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &run) != nil {
		t.Fatalf("pirn run --history %s: exit %d\n%s%s", duck, r.code, r.stdout, r.stderr)
	}
	lite := "sqlite:" + filepath.Join(dir, "h.db")
	if r := runPirn(t, "run", "--history", lite, "--state", dir, "-p", "x=7", quickstart); r.code != 0 {
		t.Fatalf("pirn run to SQLite: %s", r.stderr)
	}
	if r := runPirn(t, "history", "copy", "--from", lite, "--to", duck); r.code != 0 || !strings.Contains(r.stdout, "copied 1 run") {
		t.Fatalf("history copy to DuckDB: %q %q", r.stdout, r.stderr)
	}
	r = runPirn(t, "runs", "--history", duck, "--json")
	var runs []struct{ Status string }
	if json.Unmarshal([]byte(r.stdout), &runs) != nil || len(runs) != 2 || runs[0].Status != "succeeded" || runs[1].Status != "succeeded" {
		t.Errorf("pirn runs --history %s = %s %s; want two succeeded runs", duck, r.stdout, r.stderr)
	}
	r = runPirn(t, "runs", "show", "--history", duck, "--state", dir, run.RunID)
	if r.code != 0 || !strings.Contains(r.stdout, "answer = 15") {
		t.Errorf("pirn runs show %s:\n%s%s", run.RunID, r.stdout, r.stderr)
	}
	r = runPirn(t, "lineage", "--history", duck, "--output", digest(t, 15), "--json")
	if r.code != 0 || !strings.Contains(r.stdout, run.RunID) || !strings.Contains(r.stdout, `"answer"`) {
		t.Errorf("pirn lineage --output <15>:\n%s%s", r.stdout, r.stderr)
	}
}
