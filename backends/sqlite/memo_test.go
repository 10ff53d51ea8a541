package sqlite

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/lineagetest"
)

// undoSchema10 turns a file of schema 10 back into schema 9: no cache
// key, reuse and memo columns, no lineage_memo index, and schema 6's
// lineage_text view.
func undoSchema10(t *testing.T, db *sql.DB) {
	t.Helper()
	undoSchema11(t, db)
	_, view, ok := strings.Cut(migrations[5].sql, "DROP VIEW lineage_text;")
	if !ok {
		t.Fatal("migration 6 does not recreate lineage_text")
	}
	for _, q := range []string{
		"DROP INDEX lineage_memo",
		"DROP VIEW lineage_text",
		"ALTER TABLE lineage DROP COLUMN cache_key",
		"ALTER TABLE lineage DROP COLUMN reused_run",
		"ALTER TABLE lineage DROP COLUMN reused_knot",
		"ALTER TABLE lineage DROP COLUMN memo",
		view,
		"PRAGMA user_version = 9",
	} {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestMigrateMemo takes a file of schema 9 (before memoisation) holding
// runs to schema 10: the runs read back as they were, with no cache keys
// and nothing to reuse, and new runs' keys are stored and found. The file
// turned back is checked to be the schema the first 9 migrations create.
func TestMigrateMemo(t *testing.T) {
	ctx := t.Context()
	h, path := migratedFrom(t, 9, undoSchema10, lineagetest.LabeledRun(t, "run-old", 0, "7"), lineagetest.MapRun(t, "run-map", time.Minute))
	if s, err := h.CacheStats(ctx); err != nil || s != (lineage.CacheStats{}) {
		t.Errorf("CacheStats after migration = %+v, %v; want zero", s, err)
	}
	cached := lineagetest.CachedRun(t, "run-new", 2*time.Minute, lineage.Ref{})
	if err := h.RecordRun(ctx, cached); err != nil {
		t.Fatal(err)
	}
	rec, ok, err := h.Reusable(ctx, cached.Records[1].CacheKey)
	if err != nil || !ok || rec.RunID != "run-new" || rec.KnotID != "d" {
		t.Errorf("Reusable(d's key) = %s/%s, %v, %v; want run-new/d", rec.RunID, rec.KnotID, ok, err)
	}
	var n int
	if err := rawDB(t, path).QueryRowContext(ctx,
		"SELECT count(*) FROM lineage_text WHERE cache_key IS NOT NULL AND run_id = 'run-new'").Scan(&n); err != nil || n != 3 {
		t.Errorf("lineage_text: %d records of run-new with a cache key, %v; want 3", n, err)
	}
}
