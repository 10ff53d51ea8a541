package main

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// hermeticQuickstart writes the quickstart pipeline with its knots'
// instances reset (hermetic, so memoised) into dir, and returns its path.
func hermeticQuickstart(t *testing.T, dir string) string {
	t.Helper()
	arith, err := filepath.Abs("../../examples/wasm/go/arith/arith.wasm")
	if err != nil {
		t.Fatal(err)
	}
	src := `name: quickstart
instance: reset
modules:
  arith: ` + arith + `
nodes:
  - {id: x, type: parameter, type_: int, default: 5}
  - {id: d, type: knot, module: arith, knot: double, parents: {x: x}}
  - {id: answer, type: knot, module: arith, knot: add, parents: {a: x, b: d}}
`
	path := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var runID = regexp.MustCompile(`run (run-[0-9a-f]{32}) succeeded`)

// TestCacheCommands runs a hermetic pipeline twice through the CLI: the
// second run reuses both knots and says so (pirn run, runs show, lineage),
// --no-cache and another salt run them again, and pirn cache stats and
// clear report and forget the reusable results.
func TestCacheCommands(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	path := hermeticQuickstart(t, t.TempDir())
	run := func(args ...string) (string, string) {
		t.Helper()
		r := runPirn(t, append([]string{"run", "--state", state, "--unpinned", path}, args...)...)
		if r.code != 0 {
			t.Fatalf("pirn run %v exited %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
		m := runID.FindStringSubmatch(r.stdout)
		if m == nil {
			t.Fatalf("pirn run prints no run id:\n%s", r.stdout)
		}
		return m[1], r.stdout
	}
	first, out := run()
	if strings.Contains(out, "reused") {
		t.Errorf("first run reports reuse:\n%s", out)
	}
	second, out := run()
	for _, want := range []string{"2 results reused from earlier runs", "ok (reused from " + first + "/d)", "ok (reused from " + first + "/answer)", "answer = 15"} {
		if !strings.Contains(out, want) {
			t.Errorf("second run's report lacks %q:\n%s", want, out)
		}
	}

	r := runPirn(t, "runs", "show", "--state", state, "--json", second)
	var shown struct {
		Knots []struct {
			ID         string `json:"id"`
			CacheKey   string `json:"cache_key"`
			ReusedFrom *struct {
				RunID  string `json:"run_id"`
				KnotID string `json:"knot_id"`
			} `json:"reused_from"`
		} `json:"knots"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil {
		t.Fatalf("runs show --json: %v\n%s", err, r.stdout)
	}
	for _, k := range shown.Knots {
		reused := k.ReusedFrom != nil && k.ReusedFrom.RunID == first && k.ReusedFrom.KnotID == k.ID && strings.HasPrefix(k.CacheKey, "sha256:")
		if reused != (k.ID != "x") {
			t.Errorf("runs show --json: %s reused_from %+v, cache_key %q", k.ID, k.ReusedFrom, k.CacheKey)
		}
	}
	if r := runPirn(t, "lineage", "--state", state, "--knot", "d"); !strings.Contains(r.stdout, "(reused from "+first+"/d)") {
		t.Errorf("lineage --knot d does not show the reuse:\n%s%s", r.stdout, r.stderr)
	}

	if _, out := run("--no-cache"); strings.Contains(out, "reused") {
		t.Errorf("run --no-cache reuses:\n%s", out)
	}
	if r := runPirn(t, "run", "--state", state, "--unpinned", "--cache-salt", "other", path); r.code != 0 || strings.Contains(r.stdout, "reused") {
		t.Errorf("run with another salt exited %d or reused:\n%s%s", r.code, r.stdout, r.stderr)
	}

	stats := func() map[string]int {
		t.Helper()
		r := runPirn(t, "cache", "stats", "--state", state, "--json")
		var s map[string]int
		if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
			t.Fatalf("cache stats --json: %v\n%s%s", err, r.stdout, r.stderr)
		}
		return s
	}
	// Keys: d and answer under the default salt, and under "other".
	// Executed with a key: 2 in each run but the second; reused: 2.
	if got, want := stats(), map[string]int{"entries": 4, "executed": 6, "reused": 2}; !maps.Equal(got, want) {
		t.Errorf("cache stats = %v, want %v", got, want)
	}
	if r := runPirn(t, "cache", "stats", "--state", state); !strings.Contains(r.stdout, "reusable results") || !strings.Contains(r.stdout, "25.0%") {
		t.Errorf("cache stats:\n%s%s", r.stdout, r.stderr)
	}

	r = runPirn(t, "cache", "clear", "--state", state, "--knot", "double")
	if r.code != 0 || !strings.Contains(r.stdout, "forgot 3 reusable results") {
		t.Errorf("cache clear --knot double exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	// d runs again; its value is the same, so answer is still reused.
	_, out = run()
	if !strings.Contains(out, "1 result reused") || !strings.Contains(out, "/answer)") || strings.Contains(out, "/d)") {
		t.Errorf("after clearing double, the run's report:\n%s", out)
	}
	if r := runPirn(t, "cache", "clear", "--state", state, "--module", "sha256:nothex"); r.code != 2 || !strings.Contains(r.stderr, "--module") {
		t.Errorf("cache clear --module bad exited %d:\n%s", r.code, r.stderr)
	}
	if r := runPirn(t, "cache", "clear", "--state", state, "--json"); r.code != 0 || !strings.Contains(r.stdout, `"forgotten":`) {
		t.Errorf("cache clear --json exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := stats(); got["entries"] != 0 {
		t.Errorf("after cache clear, stats = %v, want no entries", got)
	}
	if _, out := run(); strings.Contains(out, "reused") {
		t.Errorf("after cache clear, a run reuses:\n%s", out)
	}
	if r := runPirn(t, "cache", "stats", "--state", filepath.Join(state, "missing")); r.code == 0 {
		t.Errorf("cache stats of a missing state exited 0")
	}
}

// TestCacheWithDuckDB runs a hermetic pipeline twice with a DuckDB
// history (a pirn built with the tag duckdb: make test-duckdb): the second
// run reuses both knots, and pirn cache reads and clears the index there.
func TestCacheWithDuckDB(t *testing.T) {
	if buildTags != "duckdb" {
		t.Skip("pirn is built without the tag duckdb (make test-duckdb runs this)")
	}
	t.Parallel()
	dir := t.TempDir()
	duck := "duckdb:" + filepath.Join(dir, "history.duckdb")
	path := hermeticQuickstart(t, t.TempDir())
	var ids []string
	for range 2 {
		r := runPirn(t, "run", "--history", duck, "--state", dir, "--unpinned", path)
		m := runID.FindStringSubmatch(r.stdout)
		if r.code != 0 || m == nil {
			t.Fatalf("pirn run --history %s exited %d\n%s%s", duck, r.code, r.stdout, r.stderr)
		}
		ids = append(ids, m[1])
	}
	r := runPirn(t, "lineage", "--history", duck, "--knot", "answer")
	if !strings.Contains(r.stdout, "(reused from "+ids[0]+"/answer)") {
		t.Errorf("lineage --knot answer does not show the reuse:\n%s%s", r.stdout, r.stderr)
	}
	r = runPirn(t, "cache", "stats", "--history", duck, "--json")
	var s map[string]int
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || !maps.Equal(s, map[string]int{"entries": 2, "executed": 2, "reused": 2}) {
		t.Errorf("cache stats = %s (%v)%s", r.stdout, err, r.stderr)
	}
	if r := runPirn(t, "cache", "clear", "--history", duck); r.code != 0 || !strings.Contains(r.stdout, "forgot 2 reusable results") {
		t.Errorf("cache clear exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
}
