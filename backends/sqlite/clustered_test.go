package sqlite

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/lineagetest"
)

// undoSchema12 turns a file of schema 12 back into schema 11: lineage
// with a rowid again, as schema 11's migrations made it (its definition
// is read from a file they create).
func undoSchema12(t *testing.T, db *sql.DB) {
	t.Helper()
	v11 := filepath.Join(t.TempDir(), "v11.db")
	schemaAt(t, v11, 11)
	old := rawDB(t, v11)
	var table string
	if err := old.QueryRowContext(t.Context(), "SELECT sql FROM sqlite_schema WHERE name = 'lineage'").Scan(&table); err != nil {
		t.Fatal(err)
	}
	old.Close()
	_, view, ok := strings.Cut(migrations[10].sql, "DROP VIEW lineage_text;")
	if !ok {
		t.Fatal("migration 11 does not recreate lineage_text")
	}
	_, values, ok := strings.Cut(migrations[3].sql, "DROP VIEW lineage_values_text;")
	if !ok {
		t.Fatal("migration 4 does not recreate lineage_values_text")
	}
	for _, q := range append(foldQueries[:len(foldQueries):len(foldQueries)],
		"DROP VIEW lineage_values_text",
		"DROP VIEW lineage_text",
		"DROP INDEX lineage_memo",
		"ALTER TABLE lineage RENAME TO lineage_v12",
		table,
		"INSERT INTO lineage ("+lineageColumns+") SELECT "+lineageColumns+" FROM lineage_v12",
		"DROP TABLE lineage_v12",
		"CREATE INDEX lineage_memo ON lineage (cache_key) WHERE memo = 1",
		view,
		values,
		"PRAGMA user_version = 11",
	) {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestMigrateClustered takes a file of schema 11 holding runs (one of
// them with records indexed by cache key) to schema 12, where lineage has
// no rowid: the runs read back as they were, the cache index and the
// lookups by value and knot find the same records, and the file has no
// index of lineage's key beside the table.
func TestMigrateClustered(t *testing.T) {
	ctx := t.Context()
	cached := lineagetest.CachedRun(t, "run-cached", 2*time.Minute, lineage.Ref{})
	sample := lineagetest.SampleRun(t, "run-old", 0)
	h, path := migratedFrom(t, 11, undoSchema12, sample, lineagetest.MapRun(t, "run-map", time.Minute), cached)
	rec, ok, err := h.Reusable(ctx, cached.Records[1].CacheKey)
	if err != nil || !ok || rec.RunID != "run-cached" || rec.KnotID != "d" {
		t.Errorf("Reusable(d's key) = %s/%s, %v, %v; want run-cached/d", rec.RunID, rec.KnotID, ok, err)
	}
	for _, r := range sample.Records {
		if r.Output.IsZero() {
			continue
		}
		got, err := h.ByOutput(ctx, r.Output)
		if err != nil || !hasRecord(got, "run-old", r.KnotID) {
			t.Errorf("ByOutput(%s's output) = %d records, %v; want run-old/%s among them", r.KnotID, len(got), err, r.KnotID)
		}
		got, err = h.ByKnot(ctx, r.KnotID)
		if err != nil || !hasRecord(got, "run-old", r.KnotID) {
			t.Errorf("ByKnot(%s) = %d records, %v; want run-old/%s among them", r.KnotID, len(got), err, r.KnotID)
		}
	}
	var n int
	if err := rawDB(t, path).QueryRowContext(ctx,
		"SELECT count(*) FROM sqlite_schema WHERE tbl_name = 'lineage' AND name LIKE 'sqlite_autoindex%'").Scan(&n); err != nil || n != 0 {
		t.Errorf("lineage has %d automatic indexes, %v; want none (WITHOUT ROWID)", n, err)
	}
	if err := rawDB(t, path).QueryRowContext(ctx, "SELECT count(*) FROM lineage_text").Scan(&n); err != nil || n == 0 {
		t.Errorf("lineage_text: %d rows, %v; want the records", n, err)
	}
}

func hasRecord(recs []lineage.Record, runID, knotID string) bool {
	for _, r := range recs {
		if r.RunID == runID && r.KnotID == knotID {
			return true
		}
	}
	return false
}
