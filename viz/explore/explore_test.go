package explore

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/pirn-wasm/pirn/backends/sqlite"
	"github.com/pirn-wasm/pirn/lineage/lineagetest"
	"github.com/pirn-wasm/pirn/pipeline"
	"github.com/pirn-wasm/pirn/viz/page"
)

// write writes a file under dir, creating its folders.
func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const good = `name: "good <b>one</b>"
description: "<script>window.__pwned=1</script>"
modules:
  arith: ../nowhere/arith.wasm
nodes:
  - {id: x, type: parameter, type_: int, default: -4}
  - id: route
    type: branch
    input: x
    selector: "x < 0 ? 'neg' : 'pos'"
    branches: [neg, pos]
  - {id: flipped, type: knot, module: arith, knot: double, parents: {x: route.neg}}
`

// recordHistory writes a history at path with n sample runs.
func recordHistory(t *testing.T, path string, n int) []string {
	t.Helper()
	h, err := sqlite.Open(t.Context(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("run-%02d", i)
		if err := h.RecordRun(t.Context(), lineagetest.SampleRun(t, id, time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// sqliteFile creates a SQLite database at path with user_version v.
func sqliteFile(t *testing.T, path string, v int) []byte {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"CREATE TABLE t (x)", fmt.Sprintf("PRAGMA user_version = %d", v)} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func paths(ex *page.Exploration) (pipes, hists []string) {
	for _, p := range ex.Pipelines {
		pipes = append(pipes, filepath.ToSlash(p.Path))
	}
	for _, h := range ex.Histories {
		hists = append(hists, filepath.ToSlash(h.Path))
	}
	return pipes, hists
}

// TestScan: pipelines are found and parsed, broken ones listed with their
// error, other YAML ignored; hidden folders (but .pirn), node_modules and
// symbolic links are not entered; histories at this schema are read, and
// other databases are left alone, byte for byte.
func TestScan(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a/good.yaml", good)
	write(t, dir, "b/broken.yaml", "name: broken\nnodes:\n  - {id: x, type: nonsense}\n")
	write(t, dir, "ci.yaml", "steps: [build, test]\n")
	write(t, dir, "c/unclosed.yml", "nodes: [\n")
	write(t, dir, ".git/hidden.yaml", good)
	write(t, dir, "node_modules/dep/p.yaml", good)
	if err := os.Symlink(filepath.Join(dir, "a", "good.yaml"), filepath.Join(dir, "link.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(dir, "a", "loop")); err != nil {
		t.Fatal(err)
	}
	ids := recordHistory(t, filepath.Join(dir, ".pirn", "history.db"), 3)
	other := sqliteFile(t, filepath.Join(dir, "app.db"), 0)
	old := sqliteFile(t, filepath.Join(dir, "old", "history.db"), 3)
	write(t, dir, "junk.db", "not a database at all")

	ex, err := Scan(t.Context(), Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	pipes, hists := paths(ex)
	if want := []string{"a/good.yaml", "b/broken.yaml", "c/unclosed.yml"}; !slices.Equal(pipes, want) {
		t.Errorf("pipelines = %q, want %q", pipes, want)
	}
	if want := []string{"old/history.db", ".pirn/history.db"}; !slices.Equal(hists, want) {
		t.Errorf("histories = %q, want %q", hists, want)
	}
	g := ex.Pipelines[0]
	if g.Err != "" || g.Name != "good <b>one</b>" || len(g.Graph.Nodes) != 5 || len(g.Modules) != 1 {
		t.Errorf("good.yaml = %+v", g)
	}
	var edges []string
	for _, e := range g.Graph.Edges {
		edges = append(edges, e.From+"->"+e.To)
	}
	if want := []string{"x->route", "route->route.neg", "route->route.pos", "route.neg->flipped"}; !slices.Equal(edges, want) {
		t.Errorf("edges = %q, want %q", edges, want)
	}
	if !strings.Contains(ex.Pipelines[1].Err, "nonsense") || ex.Pipelines[2].Err == "" {
		t.Errorf("broken pipelines: %q, %q", ex.Pipelines[1].Err, ex.Pipelines[2].Err)
	}
	if h := ex.Histories[0]; !strings.Contains(h.Err, "older pirn") || len(h.Runs) != 0 {
		t.Errorf("old history = %+v", h)
	}
	h := ex.Histories[1]
	if h.Err != "" || len(h.Runs) != 3 || h.More {
		t.Fatalf("history = %+v", h)
	}
	for i, r := range h.Runs {
		if r.Summary.ID != ids[2-i] || r.Run == nil || len(r.Run.Records) == 0 {
			t.Errorf("run %d = %+v", i, r)
		}
	}
	for name, want := range map[string][]byte{"app.db": other, "old/history.db": old} {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s changed by the scan (%v)", name, err)
		}
	}
	for _, name := range []string{"app.db-wal", "old/history.db-wal", "app.db-runs"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("the scan created %s", name)
		}
	}

	var buf bytes.Buffer
	if err := page.Explorer(&buf, page.Config{}, ex); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"a/good.yaml", "good &lt;b&gt;one&lt;/b&gt;", "&lt;script&gt;window.__pwned=1&lt;/script&gt;",
		"unknown type &#34;nonsense&#34;", "older pirn", "run-02", `class="n ok"`, `class="n pending"`, "route.neg"} {
		if !strings.Contains(out, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(out, "<script>window") || strings.Contains(out, "<b>one") {
		t.Error("page holds unescaped markup from a pipeline")
	}
}

// TestScanBounds: each bound stops the scan where it says, and the page
// says what was left out.
func TestScanBounds(t *testing.T) {
	dir := t.TempDir()
	for i := range 30 {
		write(t, dir, fmt.Sprintf("p%02d.yaml", i), good)
	}
	deep := filepath.Join("d1", "d2", "d3", "d4")
	write(t, dir, filepath.Join(deep, "deep.yaml"), good)
	recordHistory(t, filepath.Join(dir, "s", "history.db"), 5)
	write(t, dir, "big/huge.yaml", "nodes:\n"+strings.Repeat("# padding\n", pipeline.MaxFileBytes/10+1))

	for _, tc := range []struct {
		name  string
		cfg   Config
		check func(ex *page.Exploration) bool
		note  string
	}{
		{"entries", Config{MaxEntries: 10}, func(ex *page.Exploration) bool { return len(ex.Pipelines) < 10 }, "stopped after 10 directory entries"},
		{"depth", Config{MaxDepth: 3}, func(ex *page.Exploration) bool {
			return !slices.ContainsFunc(ex.Pipelines, func(p page.PipelineEntry) bool { return strings.HasSuffix(p.Path, "deep.yaml") })
		}, "more than 3 levels deep"},
		{"pipelines", Config{MaxPipelines: 7}, func(ex *page.Exploration) bool { return len(ex.Pipelines) == 7 }, "first 7 pipeline files"},
		{"bytes", Config{MaxBytes: 4096}, func(ex *page.Exploration) bool { return len(ex.Pipelines) <= 4096/len(good) }, "first 4 KiB"},
		{"runs", Config{MaxRuns: 2, MaxRunGraphs: 1}, func(ex *page.Exploration) bool {
			h := ex.Histories[0]
			return len(h.Runs) == 2 && h.More && h.Runs[0].Run != nil && h.Runs[1].Run == nil
		}, ""},
		{"records", Config{MaxRunRecords: 2}, func(ex *page.Exploration) bool { return ex.Histories[0].Runs[0].Run == nil }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Dir = dir
			ex, err := Scan(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(ex) {
				p, h := paths(ex)
				t.Errorf("pipelines %q, histories %q, notes %q", p, h, ex.Notes)
			}
			if tc.note != "" && !slices.ContainsFunc(ex.Notes, func(n string) bool { return strings.Contains(n, tc.note) }) {
				t.Errorf("notes = %q, want one with %q", ex.Notes, tc.note)
			}
		})
	}
	// A file over the parser's limit is listed with the reason.
	ex, err := Scan(t.Context(), Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ex.Pipelines, func(p page.PipelineEntry) bool { return strings.HasSuffix(p.Path, "huge.yaml") })
	if i < 0 || !strings.Contains(ex.Pipelines[i].Err, "limit") {
		t.Errorf("huge.yaml: %+v", ex.Pipelines)
	}

	// The budget of records read for graphs, all runs together.
	per := len(ex.Histories[0].Runs[0].Run.Records)
	ex2, err := Scan(t.Context(), Config{Dir: dir, MaxRecords: per + 1})
	if err != nil {
		t.Fatal(err)
	}
	drawn := 0
	for _, r := range ex2.Histories[0].Runs {
		if r.Run != nil {
			drawn++
		}
	}
	if drawn != 1 || !slices.ContainsFunc(ex2.Notes, func(n string) bool { return strings.Contains(n, fmt.Sprintf("until %d of their records", per+1)) }) {
		t.Errorf("with a budget of %d records, %d runs read; notes %q", per+1, drawn, ex2.Notes)
	}

	// The page's budget of nodes drawn.
	var buf bytes.Buffer
	if err := page.Explorer(&buf, page.Config{MaxDrawn: 12}, ex); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), `<svg class="g"`); n != 2 || !strings.Contains(buf.String(), "draws at most 12 nodes in all") {
		t.Errorf("with a budget of 12 nodes the page draws %d graphs", n)
	}
}

// TestScanSymlinkedRoot: the folder named may be a symbolic link (the
// only one followed); paths are named from it.
func TestScanSymlinkedRoot(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "real/p/good.yaml", good)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(filepath.Join(dir, "real"), link); err != nil {
		t.Fatal(err)
	}
	ex, err := Scan(t.Context(), Config{Dir: link})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := paths(ex); !slices.Equal(p, []string{"p/good.yaml"}) || ex.Dir != link {
		t.Errorf("pipelines %q under %s", p, ex.Dir)
	}
}

// TestIsHistoryReadsTheLog: a database whose schema version is still in
// its write-ahead log (a process has it open, no checkpoint yet) is read
// at that version, through a read-only connection that changes nothing.
func TestIsHistoryReadsTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range []string{"CREATE TABLE t (x)", fmt.Sprintf("PRAGMA user_version = %d", sqlite.SchemaVersion())} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	head, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(head) >= 64 && int(head[63]) == sqlite.SchemaVersion() {
		t.Fatal("the version reached the file's header: the test needs it only in the log")
	}
	if ok, why := isHistory(t.Context(), path); !ok {
		t.Errorf("isHistory = false, %q; want true from the log", why)
	}
	if after, err := os.ReadFile(path); err != nil || !bytes.Equal(after, head) {
		t.Errorf("reading the version changed the file (%v)", err)
	}
}

// TestScanErrors: a folder that is not one is an error, as is a ctx that
// ended.
func TestScanErrors(t *testing.T) {
	f := write(t, t.TempDir(), "p.yaml", good)
	for _, cfg := range []Config{{}, {Dir: f}, {Dir: filepath.Join(f, "nope")}} {
		if _, err := Scan(t.Context(), cfg); err == nil {
			t.Errorf("Scan(%q): no error", cfg.Dir)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Scan(ctx, Config{Dir: filepath.Dir(f)}); err == nil {
		t.Error("Scan with a cancelled context: no error")
	}
}
