package sqlite

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/lineagetest"
)

var equateTimes = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

// openTest opens a history at path, closed at the end of the test.
func openTest(t testing.TB, path string) *History {
	t.Helper()
	h, err := Open(t.Context(), Config{Path: path})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

// TestHistory runs the History conformance tests with index entries
// left pending (the default, for runs this small), written straight into
// the indexes (every run has at least 1), and folded every 20 entries
// (lineagetest.SampleRun has 13: some runs' entries pending, some
// folded).
func TestHistory(t *testing.T) {
	for _, fold := range []int64{foldRows, 1, 20} {
		t.Run(fmt.Sprintf("fold at %d", fold), func(t *testing.T) {
			setFoldRows(t, fold)
			lineagetest.RunHistory(t, func(t *testing.T) lineage.History {
				return openTest(t, filepath.Join(t.TempDir(), "history.db"))
			})
		})
	}
}

func TestOpenConfig(t *testing.T) {
	if _, err := Open(t.Context(), Config{}); err == nil {
		t.Errorf("Open(Config{}) error = nil, want an error naming Path")
	}
	for _, tc := range []struct {
		name  string
		empty bool // the file exists, empty
	}{
		{"missing file and directories", false},
		{"empty file", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "a", "b", ".pirn", "history.db")
			if tc.empty {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			h := openTest(t, path)
			if _, err := os.Stat(path); err != nil {
				t.Errorf("after Open, Stat(%s) = %v, want nil", path, err)
			}
			for pragma, want := range map[string]string{"page_size": "2048", "journal_mode": "wal", "foreign_keys": "1"} {
				var got string
				if err := h.db.QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
				}
			}
		})
	}
}

func TestOpenNotADatabase(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content []byte
	}{
		{"text", []byte(strings.Repeat("this is not a database\n", 100))},
		{"corrupt header", append([]byte("SQLite format 3\x00"), make([]byte, 4096)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "history.db")
			if err := os.WriteFile(path, tc.content, 0o644); err != nil {
				t.Fatal(err)
			}
			h, err := Open(t.Context(), Config{Path: path})
			if err == nil {
				h.Close()
				t.Fatalf("Open(%s) error = nil, want an error", tc.name)
			}
			if !strings.Contains(err.Error(), "not a SQLite database") || !strings.Contains(err.Error(), path) {
				t.Errorf("Open(%s) error = %q, want it to name the path and say not a SQLite database", tc.name, err)
			}
		})
	}
}

func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "history.db")
	h, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	want := lineagetest.SampleRun(t, "run-1", 0)
	if err := h.RecordRun(ctx, want); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	h = openTest(t, path)
	got, err := h.Run(ctx, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, equateTimes, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Run(run-1) after reopen mismatch (-want +got):\n%s", diff)
	}
	// Times come back in UTC, to the nanosecond.
	if got.StartedAt != want.StartedAt || got.Records[0].StartedAt.Location() != time.UTC {
		t.Errorf("StartedAt = %v (%v), want %v in UTC", got.StartedAt, got.Records[0].StartedAt.Location(), want.StartedAt)
	}
	sums, err := h.Runs(ctx, lineage.Query{})
	if err != nil || len(sums) != 1 {
		t.Fatalf("Runs = %v, %v; want 1 run", sums, err)
	}
	if diff := cmp.Diff(lineage.Summarize(want), sums[0], equateTimes); diff != "" {
		t.Errorf("Runs()[0] mismatch (-want +got):\n%s", diff)
	}
}

// bigRun is a run of n records with three inputs each: more rows than
// one batched INSERT takes.
func bigRun(t *testing.T, id string, n int) *lineage.Run {
	t.Helper()
	r := lineagetest.SampleRun(t, id, 0)
	r.Records, r.Errors = nil, nil
	for i := range n {
		out, err := cas.Hash(i)
		if err != nil {
			t.Fatal(err)
		}
		r.Records = append(r.Records, lineage.Record{RunID: id, KnotID: fmt.Sprintf("k%03d", i), Knot: "k",
			Inputs: []lineage.Input{{Name: "a", Digest: out}, {Name: "b", Digest: cas.Digest{byte(i)}}, {Name: "c"}}, Output: out, Outcome: lineage.OK,
			StartedAt: lineagetest.Base.Add(time.Duration(i)), FinishedAt: lineagetest.Base.Add(time.Duration(i + 1))})
	}
	return r
}

func TestRoundTripEdges(t *testing.T) {
	ctx := t.Context()
	h := openTest(t, filepath.Join(t.TempDir(), "history.db"))
	local := time.FixedZone("UTC+5", 5*3600)
	for _, tc := range []struct {
		name string
		run  *lineage.Run
	}{
		{"empty", &lineage.Run{ID: "empty"}},
		{"non-UTC times", &lineage.Run{ID: "local", Status: lineage.Cancelled,
			StartedAt: time.Date(2030, 1, 2, 3, 4, 5, 6, local), FinishedAt: time.Date(2262, 4, 11, 0, 0, 0, 0, time.UTC),
			Records: []lineage.Record{{RunID: "local", KnotID: "p", Knot: lineage.KnotParameter,
				StartedAt: time.Date(1678, 1, 1, 0, 0, 0, 0, time.UTC), SkipDetail: []byte{}}}}},
		{"odd names", &lineage.Run{ID: "run 'quoted' ?#%", Pipeline: "p\x00q", Terminals: []string{`"a"`, "b\n"},
			Records: []lineage.Record{{RunID: "run 'quoted' ?#%", KnotID: "k'1", Knot: lineage.PrefixHost + "x",
				Inputs: []lineage.Input{{Name: ""}, {Name: "z", Digest: cas.Digest{1}}}}}}},
		{"big", bigRun(t, "big", maxBatch*3+5)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := h.RecordRun(ctx, tc.run); err != nil {
				t.Fatalf("RecordRun: %v", err)
			}
			got, err := h.Run(ctx, tc.run.ID)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if diff := cmp.Diff(tc.run, got, equateTimes, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Run(%q) mismatch (-want +got):\n%s", tc.run.ID, diff)
			}
		})
	}
}

func TestRecordRunInvalid(t *testing.T) {
	ctx := t.Context()
	h := openTest(t, filepath.Join(t.TempDir(), "history.db"))
	for _, tc := range []struct {
		name   string
		modify func(r *lineage.Run)
		want   string
	}{
		{"record of another run", func(r *lineage.Run) { r.Records[1].RunID = "other" }, `RunID = "other", want "run-1"`},
		{"error of another run", func(r *lineage.Run) { r.Errors[0].RunID = "" }, `RunID = "", want "run-1"`},
		{"time out of range", func(r *lineage.Run) { r.Records[2].FinishedAt = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) }, "outside the range"},
		{"duplicate knot", func(r *lineage.Run) { r.Records[3].KnotID = "d" }, "UNIQUE constraint failed: lineage.run_id, lineage.knot_id"},
		{"duplicate error", func(r *lineage.Run) { r.Errors = append(r.Errors, r.Errors[0]) }, "UNIQUE constraint failed: errors.run_id, errors.error_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := lineagetest.SampleRun(t, "run-1", 0)
			tc.modify(r)
			err := h.RecordRun(ctx, r)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("RecordRun(%s) error = %v, want one containing %q", tc.name, err, tc.want)
			}
		})
	}
	if err := h.RecordRun(ctx, nil); err == nil {
		t.Errorf("RecordRun(nil) error = nil, want an error")
	}
	if _, err := h.Runs(ctx, lineage.Query{Limit: -1}); err == nil {
		t.Errorf("Runs(Limit -1) error = nil, want an error")
	}
}

// countRows counts the rows of each table. An index entry is counted
// once, whether it is still pending or folded: "values" are the entries
// of lineage_values, "knots" those of lineage_knots.
func countRows(t *testing.T, db *sql.DB) map[string]int {
	t.Helper()
	n := map[string]int{}
	for name, q := range map[string]string{
		"runs":    "SELECT count(*) FROM runs",
		"lineage": "SELECT count(*) FROM lineage",
		"errors":  "SELECT count(*) FROM errors",
		"values":  "SELECT count(*) FROM lineage_values_text",
		"knots": `SELECT (SELECT count(*) FROM lineage_knots) +
			(SELECT count(*) FROM lineage_pending p JOIN lineage l ON l.run_id = p.run_id WHERE p.role = 3)`,
	} {
		var c int
		if err := db.QueryRowContext(t.Context(), q).Scan(&c); err != nil {
			t.Fatal(err)
		}
		n[name] = c
	}
	return n
}

// setFoldRows sets foldRows for the test.
func setFoldRows(t *testing.T, n int64) {
	old := foldRows
	foldRows = n
	t.Cleanup(func() { foldRows = old })
}

// pending is the number of entries in lineage_pending.
func pending(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM lineage_pending").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRecordRunAtomic(t *testing.T) {
	ctx := t.Context()
	h := openTest(t, filepath.Join(t.TempDir(), "history.db"))
	first := lineagetest.SampleRun(t, "run-1", 0)
	if err := h.RecordRun(ctx, first); err != nil {
		t.Fatal(err)
	}
	before := countRows(t, h.db)

	// Each failure comes after the run row, some records and their inputs
	// were written: the last record repeats a knot id, or the last error
	// (written after all records) repeats an error id.
	dupKnot := func(r *lineage.Run) { r.Records[4].KnotID = "x" }
	dupError := func(r *lineage.Run) { r.Errors = append(r.Errors, r.Errors[0]) }
	for _, tc := range []struct {
		name   string
		id     string
		modify func(*lineage.Run)
	}{
		{"new run, duplicate knot", "run-2", dupKnot},
		{"new run, duplicate error", "run-2", dupError},
		{"replacing run, duplicate knot", "run-1", dupKnot},
		{"replacing run, duplicate error", "run-1", dupError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := lineagetest.SampleRun(t, tc.id, time.Minute)
			tc.modify(r)
			if err := h.RecordRun(ctx, r); err == nil {
				t.Fatalf("RecordRun(%s) error = nil, want an error", tc.name)
			}
			if diff := cmp.Diff(before, countRows(t, h.db)); diff != "" {
				t.Errorf("rows after failed RecordRun (-want +got):\n%s", diff)
			}
			got, err := h.Run(ctx, "run-1")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(first, got, equateTimes, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Run(run-1) after failed RecordRun (-want +got):\n%s", diff)
			}
			if _, err := h.Run(ctx, "run-2"); !errors.Is(err, lineage.ErrNotFound) {
				t.Errorf("Run(run-2) error = %v, want ErrNotFound", err)
			}
			// The history still takes writes.
			if err := h.RecordRun(ctx, lineagetest.SampleRun(t, "run-3", 0)); err != nil {
				t.Errorf("RecordRun after a failed one: %v", err)
			}
			before = countRows(t, h.db)
		})
	}
}

func TestRecordRunCancelled(t *testing.T) {
	h := openTest(t, filepath.Join(t.TempDir(), "history.db"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := h.RecordRun(ctx, lineagetest.SampleRun(t, "run-1", 0)); !errors.Is(err, context.Canceled) {
		t.Errorf("RecordRun(cancelled) error = %v, want context.Canceled", err)
	}
	if _, err := h.Run(t.Context(), "run-1"); !errors.Is(err, lineage.ErrNotFound) {
		t.Errorf("Run(run-1) after a cancelled RecordRun: error = %v, want ErrNotFound", err)
	}
}

// TestReRecordLeavesNoRows re-records a run whose index entries are still
// pending, one whose entries were written straight into the indexes, and
// one whose entries the re-recording folds.
func TestReRecordLeavesNoRows(t *testing.T) {
	for _, fold := range []int64{1 << 20, 1, 14} {
		t.Run(fmt.Sprintf("fold at %d", fold), func(t *testing.T) {
			setFoldRows(t, fold)
			ctx := t.Context()
			h := openTest(t, filepath.Join(t.TempDir(), "history.db"))
			if err := h.RecordRun(ctx, lineagetest.SampleRun(t, "run-1", 0)); err != nil {
				t.Fatal(err)
			}
			if got, folded := pending(t, h.db), fold == 1; (got == 0) != folded {
				t.Errorf("%d entries pending (fold at %d)", got, fold)
			}
			second := lineagetest.SampleRun(t, "run-1", time.Second)
			second.Records, second.Errors = second.Records[:2], nil
			if err := h.RecordRun(ctx, second); err != nil {
				t.Fatal(err)
			}
			// outputs of x and d, d's input; the knots x and d
			want := map[string]int{"runs": 1, "lineage": 2, "values": 3, "knots": 2, "errors": 0}
			if diff := cmp.Diff(want, countRows(t, h.db)); diff != "" {
				t.Errorf("rows after re-recording (-want +got):\n%s", diff)
			}
			for _, knot := range []string{"x", "d"} {
				if recs, err := h.ByKnot(ctx, knot); err != nil || len(recs) != 1 {
					t.Errorf("ByKnot(%s) = %d records, %v; want 1", knot, len(recs), err)
				}
			}
		})
	}
}

// rawDB opens path with the driver alone.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func userVersion(t *testing.T, db *sql.DB) int {
	t.Helper()
	var v int
	if err := db.QueryRowContext(t.Context(), "PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMigrate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version int    // user_version of an existing file without tables; -1: no file
		wantErr string // "" for success
	}{
		{"new file", -1, ""},
		{"version 0", 0, ""},
		{"newer version", 99, fmt.Sprintf("history database schema version 99 is newer than this pirn supports (%d); upgrade pirn", len(migrations))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "history.db")
			if tc.version >= 0 {
				db := rawDB(t, path)
				if _, err := db.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", tc.version)); err != nil {
					t.Fatal(err)
				}
				if got := userVersion(t, db); got != tc.version {
					t.Fatalf("user_version = %d, want %d", got, tc.version)
				}
				db.Close()
				if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
					t.Fatalf("Stat(%s) = %v, %v; want a non-empty database file", path, fi, err)
				}
			}
			h, err := Open(ctx, Config{Path: path})
			if tc.wantErr != "" {
				if err == nil {
					h.Close()
					t.Fatalf("Open error = nil, want %q", tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("Open error = %q, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if err := h.RecordRun(ctx, lineagetest.SampleRun(t, "run-1", 0)); err != nil {
				t.Errorf("RecordRun after migration: %v", err)
			}
			if err := h.Close(); err != nil {
				t.Fatal(err)
			}
			if got := userVersion(t, rawDB(t, path)); got != len(migrations) {
				t.Errorf("user_version after Open = %d, want %d", got, len(migrations))
			}
			// Opening an up-to-date file again changes nothing.
			h = openTest(t, path)
			if _, err := h.Run(ctx, "run-1"); err != nil {
				t.Errorf("Run(run-1) after reopen: %v", err)
			}
		})
	}
}

// TestMigrateV1File opens a history written by schema 1 (by pirn itself:
// testdata/history-v1.db holds three runs of that version's `pirn run`)
// and checks that every record survives, with each input's parent
// recovered where the run says which node produced it.
func TestMigrateV1File(t *testing.T) {
	ctx := t.Context()
	src, err := os.ReadFile(filepath.Join("testdata", "history-v1.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "history.db")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := userVersion(t, rawDB(t, path)); got != 1 {
		t.Fatalf("fixture user_version = %d, want 1", got)
	}
	h := openTest(t, path)
	sums, err := h.Runs(ctx, lineage.Query{})
	if err != nil {
		t.Fatal(err)
	}
	byPipeline := map[string]string{}
	for _, s := range sums {
		byPipeline[s.Pipeline] = s.ID
	}
	type in struct{ knot, name, parent string }
	for _, tc := range []struct {
		pipeline string
		records  int
		inputs   []in
	}{
		// answer adds x and d (= 2x): each value has one producer.
		{"quickstart", 3, []in{{"d", "x", "x"}, {"answer", "a", "x"}, {"answer", "b", "d"}}},
		{"contained", 12, []in{{"sq", "x", "x"}, {"total", "a", "sq"}, {"total", "b", "x"}, {"after_trap", "x", ""}}},
		// x, a and b all hold 1: which one fed b cannot be told apart.
		{"ident3", 3, []in{{"a", "x", ""}, {"b", "x", ""}}},
	} {
		id, ok := byPipeline[tc.pipeline]
		if !ok {
			t.Errorf("no run of %s after migration; runs: %v", tc.pipeline, byPipeline)
			continue
		}
		run, err := h.Run(ctx, id)
		if err != nil {
			t.Errorf("Run(%s): %v", id, err)
			continue
		}
		if len(run.Records) != tc.records {
			t.Errorf("%s: %d records, want %d", tc.pipeline, len(run.Records), tc.records)
		}
		recs := map[string]*lineage.Record{}
		for i := range run.Records {
			r := &run.Records[i]
			recs[r.KnotID] = r
			if r.Kind != lineage.KindKnot {
				t.Errorf("%s/%s: kind = %q, want knot (the default for old records)", tc.pipeline, r.KnotID, r.Kind)
			}
			// Schema 6: no old record is an element, whatever its id.
			if r.Map != "" || r.Index != 0 {
				t.Errorf("%s/%s: map %q, index %d; want none (not an element)", tc.pipeline, r.KnotID, r.Map, r.Index)
			}
		}
		for _, want := range tc.inputs {
			r := recs[want.knot]
			if r == nil {
				t.Errorf("%s: no record of %s", tc.pipeline, want.knot)
				continue
			}
			var got *lineage.Input
			for i := range r.Inputs {
				if r.Inputs[i].Name == want.name {
					got = &r.Inputs[i]
				}
			}
			if got == nil {
				t.Errorf("%s/%s: no input %q in %+v", tc.pipeline, want.knot, want.name, r.Inputs)
				continue
			}
			if got.Parent != want.parent {
				t.Errorf("%s/%s input %s: parent = %q, want %q", tc.pipeline, want.knot, want.name, got.Parent, want.parent)
			}
			if want.parent != "" && recs[want.parent].Output != got.Digest {
				t.Errorf("%s/%s input %s: digest %v is not %s's output %v", tc.pipeline, want.knot, want.name, got.Digest, want.parent, recs[want.parent].Output)
			}
		}
		// Lineage queries still join on the migrated rows.
		if x := recs["x"]; x != nil {
			d := x.Output
			consumers, err := h.ByInput(ctx, d)
			if err != nil || len(consumers) == 0 {
				t.Errorf("%s: ByInput(x's output) = %d records, %v", tc.pipeline, len(consumers), err)
			}
		}
		// Schema 4 built the knot index from the existing records.
		for knot := range recs {
			found := false
			byKnot, err := h.ByKnot(ctx, knot)
			for _, r := range byKnot {
				found = found || r.RunID == id
			}
			if err != nil || !found {
				t.Errorf("%s: ByKnot(%s) = %d records, %v; none of run %s", tc.pipeline, knot, len(byKnot), err, id)
			}
		}
	}
	if err := h.RecordRun(ctx, lineagetest.SampleRun(t, "run-new", 0)); err != nil {
		t.Errorf("RecordRun after migration: %v", err)
	}
	// Elements written after migration keep their Map and Index.
	want := lineagetest.MapRun(t, "run-map", 0)
	if err := h.RecordRun(ctx, want); err != nil {
		t.Fatalf("RecordRun after migration: %v", err)
	}
	got, err := h.Run(ctx, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, equateTimes, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Run(%s) after migration (-want +got):\n%s", want.ID, diff)
	}
}

func TestConcurrentOpen(t *testing.T) {
	// Several processes starting at once on a new file: each creates and
	// migrates it or waits for the one that does, then writes.
	path := filepath.Join(t.TempDir(), "history.db")
	const n = 6
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			h, err := Open(t.Context(), Config{Path: path})
			if err != nil {
				t.Errorf("Open %d: %v", i, err)
				return
			}
			if err := h.RecordRun(t.Context(), lineagetest.SampleRun(t, fmt.Sprintf("run-%d", i), 0)); err != nil {
				t.Errorf("RecordRun %d: %v", i, err)
			}
			if err := h.Close(); err != nil {
				t.Errorf("Close %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	h := openTest(t, path)
	if sums, err := h.Runs(t.Context(), lineage.Query{}); err != nil || len(sums) != n {
		t.Errorf("Runs = %d runs, %v; want %d", len(sums), err, n)
	}
}

func TestTwoConnections(t *testing.T) {
	// Two Histories on one file stand in for two pirn processes.
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "history.db")
	hs := []*History{openTest(t, path), openTest(t, path)}
	const perWriter = 20
	var wg sync.WaitGroup
	for w, h := range hs {
		for g := range 2 {
			wg.Go(func() {
				for i := range perWriter {
					id := fmt.Sprintf("run-%d-%d-%02d", w, g, i)
					if err := h.RecordRun(ctx, lineagetest.SampleRun(t, id, time.Duration(i)*time.Second)); err != nil {
						t.Errorf("writer %d/%d: %v", w, g, err)
						return
					}
					if _, err := h.ByKnot(ctx, "answer"); err != nil {
						t.Errorf("reader %d/%d: %v", w, g, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()

	const total = 2 * 2 * perWriter
	for w, h := range hs {
		sums, err := h.Runs(ctx, lineage.Query{Limit: 1000})
		if err != nil || len(sums) != total {
			t.Errorf("history %d: Runs = %d runs, %v; want %d", w, len(sums), err, total)
		}
		recs, err := h.ByOutput(ctx, lineagetest.SampleRun(t, "x", 0).Records[1].Output)
		if err != nil || len(recs) != total {
			t.Errorf("history %d: ByOutput(10) = %d records, %v; want %d", w, len(recs), err, total)
		}
		for _, s := range sums {
			want := lineagetest.SampleRun(t, s.ID, 0)
			got, err := h.Run(ctx, s.ID)
			if err != nil {
				t.Errorf("history %d: Run(%s): %v", w, s.ID, err)
				continue
			}
			if len(got.Records) != len(want.Records) || len(got.Errors) != len(want.Errors) {
				t.Errorf("history %d: Run(%s) = %d records, %d errors; want %d, %d",
					w, s.ID, len(got.Records), len(got.Errors), len(want.Records), len(want.Errors))
			}
		}
	}
}

// helperEnv, when set, makes TestMain a writer process for TestProcesses:
// "<path> <name>" records helperRuns runs named "<name>-<i>" into path.
const (
	helperEnv  = "PIRN_SQLITE_TEST_WRITER"
	helperRuns = 25
)

func TestMain(m *testing.M) {
	if arg := os.Getenv(helperEnv); arg != "" {
		if err := writer(arg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func writer(arg string) error {
	path, name, _ := strings.Cut(arg, " ")
	ctx := context.Background()
	h, err := Open(ctx, Config{Path: path})
	if err != nil {
		return err
	}
	return errors.Join(writeRuns(ctx, h, name), h.Close())
}

func writeRuns(ctx context.Context, h *History, name string) error {
	for i := range helperRuns {
		r, err := chainRun(fmt.Sprintf("%s-%d", name, i), 10)
		if err != nil {
			return err
		}
		if err := h.RecordRun(ctx, r); err != nil {
			return err
		}
		if _, err := h.ByKnot(ctx, "k1"); err != nil {
			return err
		}
	}
	return nil
}

func TestProcesses(t *testing.T) {
	// pirn processes sharing one history file, from its creation.
	path := filepath.Join(t.TempDir(), "history.db")
	const procs = 3
	var wg sync.WaitGroup
	for p := range procs {
		wg.Go(func() {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s p%d", helperEnv, path, p))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("writer process %d: %v\n%s", p, err, out)
			}
		})
	}
	wg.Wait()
	h := openTest(t, path)
	sums, err := h.Runs(t.Context(), lineage.Query{Limit: 1000})
	if err != nil || len(sums) != procs*helperRuns {
		t.Fatalf("Runs = %d runs, %v; want %d", len(sums), err, procs*helperRuns)
	}
	recs, err := h.ByKnot(t.Context(), "k9")
	if err != nil || len(recs) != procs*helperRuns {
		t.Errorf("ByKnot(k9) = %d records, %v; want %d", len(recs), err, procs*helperRuns)
	}
}

func TestRunsOrder(t *testing.T) {
	// Runs that started at the same time list the last recorded first, as
	// lineage.Memory does; re-recording a run makes it the last.
	ctx := t.Context()
	h := openTest(t, filepath.Join(t.TempDir(), "history.db"))
	for _, id := range []string{"a", "b", "c", "a"} {
		if err := h.RecordRun(ctx, lineagetest.SampleRun(t, id, 0)); err != nil {
			t.Fatal(err)
		}
	}
	sums, err := h.Runs(ctx, lineage.Query{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range sums {
		got = append(got, s.ID)
	}
	if diff := cmp.Diff([]string{"a", "c", "b"}, got); diff != "" {
		t.Errorf("Runs order (-want +got):\n%s", diff)
	}
	recs, err := h.ByKnot(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, r := range recs {
		got = append(got, r.RunID)
	}
	if diff := cmp.Diff([]string{"b", "c", "a"}, got); diff != "" {
		t.Errorf("ByKnot order (-want +got):\n%s", diff)
	}
}

// chainRun is a run of n OK knots, each consuming the previous one's
// output, like lineagetest.SampleRun's.
func chainRun(id string, n int) (*lineage.Run, error) {
	at := lineagetest.Base
	r := &lineage.Run{ID: id, Pipeline: "chain", Status: lineage.Succeeded, Terminals: []string{fmt.Sprintf("k%d", n-1)},
		Dispatcher: "local", Host: "bench-host", StartedAt: at, FinishedAt: at.Add(time.Second)}
	prev, err := cas.Hash(0)
	if err != nil {
		return nil, err
	}
	for i := range n {
		out, err := cas.Hash(i + 1)
		if err != nil {
			return nil, err
		}
		r.Records = append(r.Records, lineage.Record{
			RunID: id, KnotID: fmt.Sprintf("k%d", i), Module: "sha256:" + out.Hex(), Knot: "inc",
			ConfigHash: out, Inputs: []lineage.Input{{Name: "in", Digest: prev}}, Output: out, Outcome: lineage.OK,
			Dispatcher: "local", StartedAt: at.Add(time.Duration(i) * time.Millisecond),
			FinishedAt: at.Add(time.Duration(i+1) * time.Millisecond),
		})
		prev = out
	}
	return r, nil
}

// BenchmarkRecordRun records 10-knot runs whose ids are like the
// scheduler's: "run-" and 32 hex digits, the first 12 the start time in
// milliseconds (so that a run's rows land next to the previous run's).
// Each run records the same values, as a pipeline re-run on the same
// inputs does. BenchmarkRecordRun/random-ids shows the cost of fully
// random ids, and BenchmarkRecordRun/new-values that of runs whose every
// value is new (each is a leaf of the values index to write).
func BenchmarkRecordRun(b *testing.B) {
	b.Run("time-ordered-ids", func(b *testing.B) { benchRecordRun(b, true, false) })
	b.Run("random-ids", func(b *testing.B) { benchRecordRun(b, false, false) })
	b.Run("new-values", func(b *testing.B) { benchRecordRun(b, true, true) })
}

func benchRecordRun(b *testing.B, ordered, newValues bool) {
	const knots = 10
	h := openTest(b, filepath.Join(b.TempDir(), "history.db"))
	r, err := chainRun("", knots)
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		var rnd [16]byte
		crand.Read(rnd[:])
		if ordered {
			binary.BigEndian.PutUint64(rnd[:8], uint64(time.Now().UnixMilli())<<16|uint64(rnd[6])<<8|uint64(rnd[7]))
		}
		r.ID = "run-" + hex.EncodeToString(rnd[:])
		var prev cas.Digest
		for j := range r.Records {
			rec := &r.Records[j]
			rec.RunID = r.ID
			if newValues {
				crand.Read(rec.Output[:])
				if j > 0 {
					rec.Inputs[0].Digest = prev
				}
				prev = rec.Output
			}
		}
		if err := h.RecordRun(b.Context(), r); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N*knots)/b.Elapsed().Seconds(), "records/s")
}

// TestInterruptedRuns: a run that started but was never recorded, and
// whose process is gone, is marked interrupted when the history is next
// opened; a run still in progress elsewhere is left running.
func TestInterruptedRuns(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "history.db")
	h1 := openTest(t, path)
	start := func(h *History, id string) {
		t.Helper()
		if err := h.StartRun(ctx, &lineage.Run{ID: id, Pipeline: "p", Status: lineage.Running, StartedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	start(h1, "run-a")
	start(h1, "run-b")
	if err := h1.StartRun(ctx, &lineage.Run{ID: "run-a", Status: lineage.Running}); err == nil {
		t.Error("starting a run that is in progress: no error")
	}
	status := func(h *History, id string) lineage.Status {
		t.Helper()
		r, err := h.Run(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return r.Status
	}
	// Another process (here another handle) sees both running, and
	// cannot start run-a.
	h2 := openTest(t, path)
	if s := status(h2, "run-a"); s != lineage.Running {
		t.Errorf("run-a while in progress: %s", s)
	}
	if err := h2.StartRun(ctx, &lineage.Run{ID: "run-a", Status: lineage.Running}); err == nil || !strings.Contains(err.Error(), "another process is running it") {
		t.Errorf("starting run-a in another process: %v, want an error", err)
	}
	// run-b finishes; run-a's process dies without recording it.
	done := lineagetest.SampleRun(t, "run-b", 0)
	if err := h1.RecordRun(ctx, done); err != nil {
		t.Fatal(err)
	}
	h1.Close()
	// h1's lock file went with Close; h2's stays while h2 is open.
	if files, _ := os.ReadDir(path + "-runs"); len(files) != 1 || files[0].Name() != h2.owner+".lock" {
		t.Errorf("lock files after h1's Close: %v, want h2's only", files)
	}
	h3 := openTest(t, path)
	if s := status(h3, "run-a"); s != lineage.Interrupted {
		t.Errorf("run-a after its process ended: %s, want interrupted", s)
	}
	if s := status(h3, "run-b"); s != done.Status {
		t.Errorf("run-b: %s, want %s", s, done.Status)
	}
	sums, _ := h3.Runs(ctx, lineage.Query{})
	if len(sums) != 2 {
		t.Errorf("runs = %+v", sums)
	}
}

// TestKilledOwner: a process killed mid-run leaves its lock file,
// unlocked. The next Open marks its runs interrupted and removes the file,
// as it does the file of a process killed after recording its runs; it
// also marks interrupted a run left running by a pirn before schema 4 (a
// lock file per run, here gone).
func TestKilledOwner(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "history.db")
	kill := func(h *History) {
		h.ownerLock.Close() // the kernel's part of dying: the lock goes, the file stays
		h.ownerLock = nil
	}
	h1 := openTest(t, path)
	if err := h1.StartRun(ctx, &lineage.Run{ID: "run-a", Status: lineage.Running}); err != nil {
		t.Fatal(err)
	}
	kill(h1)
	h2 := openTest(t, path)
	if r, err := h2.Run(ctx, "run-a"); err != nil || r.Status != lineage.Interrupted {
		t.Errorf("run-a after its process was killed: %v; want status interrupted", err)
	}
	if err := h2.StartRun(ctx, &lineage.Run{ID: "run-b", Status: lineage.Running}); err != nil {
		t.Fatal(err)
	}
	done := lineagetest.SampleRun(t, "run-b", 0)
	if err := h2.RecordRun(ctx, done); err != nil {
		t.Fatal(err)
	}
	kill(h2)
	if _, err := h2.db.ExecContext(ctx, `INSERT INTO runs (run_id, pipeline, status, terminals, dispatcher, host,
		started_at, finished_at, knots, failed, skipped) VALUES ('run-old', 'p', 'running', '[]', '', '', 1, 0, 0, 0, 0)`); err != nil {
		t.Fatal(err)
	}
	if files, _ := os.ReadDir(path + "-runs"); len(files) != 1 {
		t.Errorf("lock files: %v, want h2's", files)
	}
	h3 := openTest(t, path)
	for id, want := range map[string]lineage.Status{"run-a": lineage.Interrupted, "run-b": done.Status, "run-old": lineage.Interrupted} {
		if r, err := h3.Run(ctx, id); err != nil || r.Status != want {
			t.Errorf("%s: %v; want status %s", id, err, want)
		}
	}
	if files, _ := os.ReadDir(path + "-runs"); len(files) != 0 {
		t.Errorf("lock files left after the sweep: %v", files)
	}
}

// TestBackgroundCheckpoint: with checkpoints out of the commits, the
// checkpointer still copies the WAL into the database file while the
// History is open, and every run reads back after reopening.
func TestBackgroundCheckpoint(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "history.db")
	h, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	const runs = 2*checkpointEvery + 1
	for i := range runs {
		if err := h.RecordRun(ctx, lineagetest.SampleRun(t, fmt.Sprintf("run-%03d", i), 0)); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing but a checkpoint writes the database file in WAL mode.
	deadline := time.Now().Add(10 * time.Second)
	for size() == before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if size() == before {
		t.Errorf("database file still %d bytes after %d runs: no checkpoint ran", before, runs)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WAL after the last Close: %v", err)
	}
	h = openTest(t, path)
	sums, err := h.Runs(ctx, lineage.Query{Limit: runs + 1})
	if err != nil || len(sums) != runs {
		t.Errorf("Runs after reopening: %d runs, %v; want %d", len(sums), err, runs)
	}
}

// TestMigrateElementCounts writes a run with Map elements, turns the file
// back into schema 4 (whose counts included the elements, and which had
// no elements column; nor schema 6's columns), and checks that schema 5
// recounts it.
func TestMigrateElementCounts(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "history.db")
	h := openTest(t, path)
	run := lineagetest.SampleRun(t, "run-m", 0)
	for i, outcome := range []lineage.Outcome{lineage.OK, lineage.Err, lineage.Skipped, lineage.OK} {
		rec := run.Records[1] // d, a knot
		rec.KnotID, rec.Kind, rec.Map, rec.Index, rec.Outcome = lineage.ElementID("m", i), lineage.KindElement, "m", i, outcome
		rec.Output, rec.ErrorID, rec.SkipReason = cas.Digest{}, cas.Digest{}, ""
		switch outcome {
		case lineage.OK:
			rec.Output = run.Records[1].Output
		case lineage.Err:
			rec.ErrorID = run.Errors[0].ID
		case lineage.Skipped:
			rec.SkipReason = "element skipped"
		}
		run.Records = append(run.Records, rec)
	}
	if err := h.RecordRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	want := lineage.Summarize(run)
	if want.Knots != 5 || want.Failed != 1 || want.Skipped != 1 || want.Elements != 4 {
		t.Fatalf("Summarize = %+v, want 5 nodes (1 failed, 1 skipped) and 4 elements", want)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	undoSchema6(t, db)
	for _, q := range []string{
		"UPDATE runs SET knots = knots + elements, failed = failed + 1, skipped = skipped + 1",
		"ALTER TABLE runs DROP COLUMN elements",
		"PRAGMA user_version = 4",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	h = openTest(t, path)
	sums, err := h.Runs(ctx, lineage.Query{})
	if err != nil || len(sums) != 1 {
		t.Fatalf("Runs = %v, %v", sums, err)
	}
	if got := sums[0]; got.Knots != want.Knots || got.Failed != want.Failed || got.Skipped != want.Skipped || got.Elements != want.Elements {
		t.Errorf("after migration: %+v, want %+v", got, want)
	}
}

// undoSchema6 turns a file of schema 9 back into schema 5: no run_labels
// table (9), no pipeline digest column (8), no scrubbed table (7), no
// map_id and map_index columns, and schema 3's lineage_text view (6).
func undoSchema6(t *testing.T, db *sql.DB) {
	t.Helper()
	undoSchema10(t, db)
	for _, q := range []string{
		"DROP TABLE run_labels",
		"ALTER TABLE runs DROP COLUMN pipeline_digest",
		"DROP TABLE scrubbed",
		"DROP VIEW lineage_text",
		"ALTER TABLE lineage DROP COLUMN map_id",
		"ALTER TABLE lineage DROP COLUMN map_index",
		`CREATE VIEW lineage_text AS
		SELECT run_id, seq, knot_id, kind, module, knot,
			'sha256:' || lower(hex(config_hash)) AS config_hash,
			CASE WHEN output_hash IS NULL THEN NULL ELSE 'sha256:' || lower(hex(output_hash)) END AS output_hash,
			outcome, skip_reason,
			CASE WHEN error_id IS NULL THEN NULL ELSE 'sha256:' || lower(hex(error_id)) END AS error_id,
			dispatcher, started_at, finished_at, grants, grants = '' AS hermetic
		FROM lineage`,
		"PRAGMA user_version = 5",
	} {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestMigrateElementMaps writes runs with Map elements, turns the file
// back into schema 5 (which had no map_id and map_index columns), and
// checks that schema 6 recovers each element's Map and Index from its
// knot id, also when the Map's id contains ':' or ends in digits, and
// leaves other records' empty even when their ids look like an
// element's.
func TestMigrateElementMaps(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "history.db")
	h := openTest(t, path)
	maps := lineagetest.MapRun(t, "run-m", 0) // elements of "sq:each"
	other := lineagetest.SampleRun(t, "run-s", time.Minute)
	other.PipelineDigest = cas.Digest{} // schema 5 has no column for it
	d := other.Records[1]               // a knot
	for i, id := range []string{"m2", "m:", "a:b:c"} {
		el := d
		el.KnotID, el.Kind, el.Map, el.Index = lineage.ElementID(id, 100+i), lineage.KindElement, id, 100+i
		other.Records = append(other.Records, el)
	}
	lookalike := d
	lookalike.KnotID = "route:7" // a knot, whatever its id
	other.Records = append(other.Records, lookalike)
	for _, r := range []*lineage.Run{maps, other} {
		if err := h.RecordRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	undoSchema6(t, db)
	db.Close()

	h = openTest(t, path)
	if got := userVersion(t, rawDB(t, path)); got != len(migrations) {
		t.Errorf("user_version after Open = %d (%d migrations), want all", got, len(migrations))
	}
	for _, want := range []*lineage.Run{maps, other} {
		got, err := h.Run(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(withoutLogs(want), got, equateTimes, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Run(%s) after migration (-want +got):\n%s", want.ID, diff)
		}
	}
	var n int
	if err := rawDB(t, path).QueryRowContext(ctx,
		"SELECT count(*) FROM lineage_text WHERE map_id = 'sq:each' AND map_index IN (0, 1, 10)").Scan(&n); err != nil || n != 3 {
		t.Errorf("lineage_text: %d elements of sq:each, %v; want 3", n, err)
	}
}

func TestScrubbed(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "history.db")
	h := openTest(t, path)
	a, b := cas.Sum([]byte("a")), cas.Sum([]byte("b"))
	at := time.Date(2026, 12, 3, 12, 0, 0, 123, time.UTC)
	if err := h.MarkScrubbed(t.Context(), []cas.Digest{a}, at); err != nil {
		t.Fatal(err)
	}
	again := openTest(t, path)
	if got, ok, err := again.Scrubbed(t.Context(), a); err != nil || !ok || !got.Equal(at) {
		t.Errorf("Scrubbed(a) = %v, %v, %v", got, ok, err)
	}
	if _, ok, err := again.Scrubbed(t.Context(), b); err != nil || ok {
		t.Errorf("Scrubbed(b) = %v, %v", ok, err)
	}
}

// schemaAt creates a history file at path of schema version n, by the
// first n migrations as migrate applies them.
func schemaAt(t *testing.T, path string, n int) {
	t.Helper()
	ctx := t.Context()
	db := rawDB(t, path)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for i, m := range migrations[:n] {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
		if m.fn != nil {
			if err := m.fn(ctx, tx); err != nil {
				t.Fatalf("migration %d: %v", i+1, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", n)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	db.Close()
}

// schemaOf lists a file's tables, indexes and views as SQLite keeps
// their definitions, with its user_version.
func schemaOf(t *testing.T, path string) []string {
	t.Helper()
	db := rawDB(t, path)
	defer db.Close()
	rows, err := db.QueryContext(t.Context(), "SELECT type, name, coalesce(sql, '') FROM sqlite_schema ORDER BY type, name")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := []string{fmt.Sprint("user_version ", userVersion(t, db))}
	for rows.Next() {
		var typ, name, def string
		if err := rows.Scan(&typ, &name, &def); err != nil {
			t.Fatal(err)
		}
		out = append(out, typ+" "+name+": "+def)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMigrateLabels takes a file of schema 8 (before labels) holding
// runs to schema 9: the runs read back as they were, without labels, and
// runs with labels are stored and found by them. The file is written by
// this pirn and turned back into schema 8, which is checked to be the
// schema the first 8 migrations create.
func TestMigrateLabels(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	fresh := filepath.Join(dir, "fresh-v8.db")
	schemaAt(t, fresh, 8)
	path := filepath.Join(dir, "history.db")
	h := openTest(t, path)
	old := []*lineage.Run{lineagetest.SampleRun(t, "run-old", 0), lineagetest.MapRun(t, "run-map", time.Minute)}
	for _, r := range old {
		if err := h.RecordRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	undoSchema10(t, db)
	for _, q := range []string{"DROP TABLE run_labels", "PRAGMA user_version = 8"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	if diff := cmp.Diff(schemaOf(t, fresh), schemaOf(t, path)); diff != "" {
		t.Fatalf("the file turned back is not schema 8 (-migrations +file):\n%s", diff)
	}

	h = openTest(t, path)
	if got := userVersion(t, rawDB(t, path)); got != len(migrations) {
		t.Errorf("user_version after Open = %d, want %d", got, len(migrations))
	}
	for _, want := range old {
		got, err := h.Run(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(withoutLogs(want), got, equateTimes, cmpopts.EquateEmpty()); diff != "" || got.Labels != nil {
			t.Errorf("Run(%s) after migration (-want +got):\n%s", want.ID, diff)
		}
	}
	labeled := lineagetest.LabeledRun(t, "run-new", 2*time.Minute, "1234")
	if err := h.RecordRun(ctx, labeled); err != nil {
		t.Fatal(err)
	}
	sums, err := h.Runs(ctx, lineage.Query{Label: lineage.Label{Key: "kafka.offset", Value: "1234"}})
	if err != nil || len(sums) != 1 || sums[0].ID != "run-new" {
		t.Errorf("Runs(kafka.offset=1234) after migration = %v, %v; want run-new", sums, err)
	}
	// The migrated file and a new one have one schema.
	newer := filepath.Join(dir, "fresh.db")
	schemaAt(t, newer, len(migrations))
	if diff := cmp.Diff(schemaOf(t, newer), schemaOf(t, path)); diff != "" {
		t.Errorf("migrated file's schema differs from a new file's (-new +migrated):\n%s", diff)
	}
}

// TestLabelsIndexed checks that Runs finds a Label through the index
// run_labels_value rather than by reading every run.
func TestLabelsIndexed(t *testing.T) {
	h := openTest(t, filepath.Join(t.TempDir(), "history.db"))
	rows, err := h.db.QueryContext(t.Context(), `EXPLAIN QUERY PLAN SELECT run_id FROM runs
		WHERE run_id IN (SELECT run_id FROM run_labels WHERE key = ? AND value = ?)`, "k", "v")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if got := strings.Join(plan, "; "); !strings.Contains(got, "run_labels_value") {
		t.Errorf("query plan of a Label filter = %q, want it to use run_labels_value", got)
	}
}
