package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/lineagetest"
)

// undoSchema11 turns a file of schema 11 back into one of schema 10,
// dropping the records' log digests.
func undoSchema11(t *testing.T, db *sql.DB) {
	t.Helper()
	undoSchema12(t, db)
	_, view, ok := strings.Cut(migrations[9].sql, "DROP VIEW lineage_text;")
	if !ok {
		t.Fatal("migration 10 does not recreate lineage_text")
	}
	for _, q := range []string{
		"DROP VIEW lineage_text",
		"ALTER TABLE lineage DROP COLUMN logs",
		view,
		"PRAGMA user_version = 10",
	} {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// migratedFrom records runs in a file at the newest schema, turns the file
// back to schema version with undo (checked to be what the first version
// migrations create), opens it again (migrating it forward) and checks
// that the runs read back as they were, without what came after version.
func migratedFrom(t *testing.T, version int, undo func(*testing.T, *sql.DB), old ...*lineage.Run) (*History, string) {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	fresh := filepath.Join(dir, fmt.Sprintf("fresh-v%d.db", version))
	schemaAt(t, fresh, version)
	path := filepath.Join(dir, "history.db")
	h := openTest(t, path)
	for _, r := range old {
		if err := h.RecordRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	undo(t, db)
	db.Close()
	if diff := cmp.Diff(schemaOf(t, fresh), schemaOf(t, path)); diff != "" {
		t.Fatalf("the file turned back is not schema %d (-migrations +file):\n%s", version, diff)
	}
	h = openTest(t, path)
	for _, want := range old {
		got, err := h.Run(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if version < 11 {
			want = withoutLogs(want)
		}
		if diff := cmp.Diff(want, got, equateTimes, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Run(%s) after migration (-want +got):\n%s", want.ID, diff)
		}
	}
	return h, path
}

// withoutLogs is r as a history of a schema before 11 holds it.
func withoutLogs(r *lineage.Run) *lineage.Run {
	c := *r
	c.Records = append([]lineage.Record(nil), r.Records...)
	for i := range c.Records {
		c.Records[i].Logs = [32]byte{}
	}
	return &c
}

// TestMigrateLogs takes a file of schema 10 holding runs to schema 11:
// the runs read back as they were, without logs, and new runs' logs are
// stored and read back.
func TestMigrateLogs(t *testing.T) {
	ctx := t.Context()
	h, path := migratedFrom(t, 10, undoSchema11, lineagetest.SampleRun(t, "run-old", 0), lineagetest.MapRun(t, "run-map", time.Minute))
	run := lineagetest.SampleRun(t, "run-new", 2*time.Minute)
	if err := h.RecordRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	got, err := h.Run(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(run, got, equateTimes, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Run(run-new) after migration (-want +got):\n%s", diff)
	}
	var n int
	if err := rawDB(t, path).QueryRowContext(ctx,
		"SELECT count(*) FROM lineage_text WHERE logs LIKE 'sha256:%' AND run_id = 'run-new'").Scan(&n); err != nil || n != 2 {
		t.Errorf("lineage_text: %d records of run-new with logs, %v; want 2", n, err)
	}
}
