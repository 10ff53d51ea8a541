//go:build duckdb

package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

func TestHistory(t *testing.T) {
	lineagetest.RunHistory(t, func(t *testing.T) lineage.History {
		return openTest(t, filepath.Join(t.TempDir(), "history.duckdb"))
	})
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := Open(t.Context(), Config{}); err == nil || !strings.Contains(err.Error(), "Config.Path is empty") {
		t.Errorf("Open(Config{}) error = %v, want Config.Path is empty", err)
	}
	real := filepath.Join(dir, "real.duckdb")
	h := openTest(t, real)
	if err := h.RecordRun(t.Context(), lineagetest.SampleRun(t, "run-1", 0)); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	head, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		content []byte // nil: a directory
		want    string
	}{
		{"text", []byte(strings.Repeat("this is not a database\n", 100)), "not a valid DuckDB database file"},
		{"empty", []byte{}, "not a valid DuckDB database file"},
		{"header only", head[:4096], "Could not read enough bytes"},
		{"garbled header", append(append([]byte{}, head[:8]...), make([]byte, 8192)...), ""},
		{"directory", nil, "is a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".duckdb")
			if tc.content == nil {
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(path, tc.content, 0o644); err != nil {
				t.Fatal(err)
			}
			h, err := Open(t.Context(), Config{Path: path})
			if err == nil {
				h.Close()
				t.Fatalf("Open(%s) error = nil, want an error", tc.name)
			}
			if !strings.Contains(err.Error(), "duckdb: open history "+path+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open(%s) error = %q, want it to name the path and say %q", tc.name, err, tc.want)
			}
		})
	}
	// A file cut short past its catalog opens (DuckDB reads blocks when
	// they are needed), and the first read of what is missing fails
	// naming the file.
	cut := filepath.Join(dir, "cut.duckdb")
	if err := os.WriteFile(cut, head[:len(head)/3], 0o644); err != nil {
		t.Fatal(err)
	}
	if h, err := Open(t.Context(), Config{Path: cut}); err != nil {
		if !strings.Contains(err.Error(), cut) {
			t.Errorf("Open(cut short) error = %q, want it to name the path", err)
		}
	} else {
		_, err := h.Run(t.Context(), "run-1")
		if err == nil || !strings.Contains(err.Error(), cut) {
			t.Errorf("Run(run-1) of a file cut short: error = %v, want one naming the path", err)
		}
		if err := h.Close(); err != nil {
			t.Errorf("Close of a file cut short: %v", err)
		}
	}

	// A path whose parent directories are missing is created.
	deep := filepath.Join(dir, "a", "b", "history.duckdb")
	openTest(t, deep)
	if _, err := os.Stat(deep); err != nil {
		t.Errorf("Open did not create %s: %v", deep, err)
	}
}

// TestCloseTwice: Close is idempotent; a closed History's calls fail.
func TestCloseTwice(t *testing.T) {
	t.Parallel()
	h, err := Open(t.Context(), Config{Path: filepath.Join(t.TempDir(), "h.duckdb")})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.StartRun(t.Context(), &lineage.Run{ID: "run-a", Status: lineage.Running}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := h.Close(); err != nil {
			t.Errorf("Close #%d: %v", i+1, err)
		}
	}
	if _, err := h.Runs(t.Context(), lineage.Query{}); err == nil {
		t.Error("Runs after Close: no error")
	}
	if err := h.RecordRun(t.Context(), lineagetest.SampleRun(t, "run-1", 0)); err == nil {
		t.Error("RecordRun after Close: no error")
	}
}

func TestReopen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "history.duckdb")
	h, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	want := []*lineage.Run{lineagetest.SampleRun(t, "run-1", 0), lineagetest.MapRun(t, "run-2", time.Minute)}
	for _, r := range want {
		if err := h.RecordRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	h = openTest(t, path)
	for _, r := range want {
		got, err := h.Run(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(r, got, equateTimes, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Run(%s) after reopening (-want +got):\n%s", r.ID, diff)
		}
	}
	if v, err := version(ctx, h.db); err != nil || v != len(migrations) {
		t.Errorf("schema version = %d, %v; want %d", v, err, len(migrations))
	}
}

// TestNewerSchema: a file written by a newer pirn is refused, with an error
// that names the file and both versions, and is left as it was.
func TestNewerSchema(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "history.duckdb")
	h := openTest(t, path)
	if err := h.RecordRun(t.Context(), lineagetest.SampleRun(t, "run-1", 0)); err != nil {
		t.Fatal(err)
	}
	newer := len(migrations) + 1
	if _, err := h.db.ExecContext(t.Context(), `UPDATE schema_versions SET version = ? WHERE component = 'history'`, newer); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), Config{Path: path})
	want := fmt.Sprintf("duckdb: open history %s: history schema version %d is newer than this pirn supports (%d); upgrade pirn", path, newer, len(migrations))
	if err == nil || err.Error() != want {
		t.Fatalf("Open(newer schema) error = %v, want %q", err, want)
	}
	// Nothing was changed: the version is still the newer one.
	db, err := sql.Open("duckdb", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRowContext(t.Context(), `SELECT version FROM schema_versions`).Scan(&v); err != nil || v != newer {
		t.Errorf("schema version after the refusal = %d, %v; want %d", v, err, newer)
	}
}

// TestRecordRunInvalid: runs DuckDB cannot store are refused with an error
// that says why, and leave the run recorded before under the id intact.
func TestRecordRunInvalid(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := openTest(t, filepath.Join(t.TempDir(), "history.duckdb"))
	before := lineagetest.SampleRun(t, "run-1", 0)
	if err := h.RecordRun(ctx, before); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(r *lineage.Run)
		want   string
	}{
		{"other run id", func(r *lineage.Run) { r.Records[2].RunID = "run-2" }, `record 2 (answer): RunID = "run-2", want "run-1"`},
		{"time out of range", func(r *lineage.Run) { r.Records[1].FinishedAt = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }, "outside the range of int64 unix nanoseconds"},
		{"invalid UTF-8", func(r *lineage.Run) { r.Records[4].SkipReason = "bad \xff" }, `record 4 ("after"): text "bad \xff" is not valid UTF-8`},
		{"invalid UTF-8 in an input", func(r *lineage.Run) { r.Records[2].Inputs[1].Parent = "\xc3" }, `record 2 ("answer") inputs: text "\xc3" is not valid UTF-8`},
		{"invalid UTF-8 in an error", func(r *lineage.Run) { r.Errors[0].Message = "\xc3(" }, `is not valid UTF-8`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := lineagetest.SampleRun(t, "run-1", time.Hour)
			tc.change(r)
			err := h.RecordRun(ctx, r)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), `duckdb: record run "run-1": `) {
				t.Fatalf("RecordRun(%s) error = %v, want one naming the run and saying %q", tc.name, err, tc.want)
			}
			got, err := h.Run(ctx, "run-1")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(before, got, equateTimes, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("the run recorded before changed (-want +got):\n%s", diff)
			}
		})
	}
	if err := h.RecordRun(ctx, nil); err == nil {
		t.Error("RecordRun(nil): no error")
	}
}

// TestCancelled: every call honours a context that is done, with an error
// wrapping it, and a write cancelled partway stores nothing.
func TestCancelled(t *testing.T) {
	t.Parallel()
	h := openTest(t, filepath.Join(t.TempDir(), "history.duckdb"))
	done, cancel := context.WithCancel(t.Context())
	cancel()
	for name, call := range map[string]func() error{
		"RecordRun":    func() error { return h.RecordRun(done, lineagetest.SampleRun(t, "run-1", 0)) },
		"StartRun":     func() error { return h.StartRun(done, &lineage.Run{ID: "run-2", Status: lineage.Running}) },
		"Run":          func() error { _, err := h.Run(done, "run-1"); return err },
		"Runs":         func() error { _, err := h.Runs(done, lineage.Query{}); return err },
		"ByKnot":       func() error { _, err := h.ByKnot(done, "x"); return err },
		"ByOutput":     func() error { _, err := h.ByOutput(done, cas.Sum([]byte("x"))); return err },
		"ByInput":      func() error { _, err := h.ByInput(done, cas.Sum([]byte("x"))); return err },
		"SlowestKnots": func() error { _, err := h.SlowestKnots(done, 10, 10); return err },
		"MarkScrubbed": func() error { return h.MarkScrubbed(done, []cas.Digest{cas.Sum([]byte("x"))}, time.Now()) },
		"Scrubbed":     func() error { _, _, err := h.Scrubbed(done, cas.Sum([]byte("x"))); return err },
	} {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a done context: error = %v, want context.Canceled", name, err)
		}
	}
	if _, err := Open(done, Config{Path: filepath.Join(t.TempDir(), "h.duckdb")}); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a done context: error = %v, want context.Canceled", err)
	}

	// A big run whose context ends while it is written.
	ctx, cancel := context.WithCancel(t.Context())
	big := lineagetest.LargeRun(t, "run-big", 20000, 100)
	go func() {
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	if err := h.RecordRun(ctx, big); err != nil {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("RecordRun cancelled partway: error = %v, want it to say it was cancelled", err)
		}
		if _, err := h.Run(t.Context(), "run-big"); !errors.Is(err, lineage.ErrNotFound) {
			t.Errorf("Run(run-big) after a cancelled RecordRun: %v, want ErrNotFound", err)
		}
		if recs, err := h.ByKnot(t.Context(), "k5"); err != nil || len(recs) != 0 {
			t.Errorf("ByKnot(k5) after a cancelled RecordRun = %d records, %v; want none", len(recs), err)
		}
	} else {
		t.Logf("the run was recorded in under 20 ms: nothing was cancelled")
	}
	if err := h.RecordRun(t.Context(), lineagetest.SampleRun(t, "run-1", 0)); err != nil {
		t.Errorf("RecordRun after cancelled calls: %v", err)
	}
}
