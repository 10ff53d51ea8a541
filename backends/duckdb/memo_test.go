//go:build duckdb

package duckdb

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/lineagetest"
)

// TestMigrateMemo takes a file of schema 2 (before memoisation) holding
// runs to schema 3: the runs read back as they were, with nothing to
// reuse, and a new run's keys are stored, found, and shown by
// lineage_text. The runs are recorded in a file of the latest schema and
// copied into one of schema 2, as far as it has the columns.
func TestMigrateMemo(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	latest, path := filepath.Join(dir, "latest.duckdb"), filepath.Join(dir, "history.duckdb")
	old := []*lineage.Run{lineagetest.LabeledRun(t, "run-1", 0, "7"), lineagetest.MapRun(t, "run-m", time.Minute)}
	h := openTest(t, latest)
	for _, r := range old {
		if err := h.RecordRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", path)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1) // ATTACH belongs to a connection
	defer db.Close()
	if err := migrateTo(ctx, db, 2); err != nil {
		t.Fatalf("create schema version 2: %v", err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`ATTACH '` + latest + `' AS latest (READ_ONLY)`)
	for _, table := range []string{"runs", "lineage", "lineage_inputs", "errors"} {
		rows, err := db.QueryContext(ctx, `SELECT column_name FROM duckdb_columns()
			WHERE database_name = current_database() AND schema_name = 'main' AND table_name = ? ORDER BY column_index`, table)
		if err != nil {
			t.Fatal(err)
		}
		var cols []string
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				t.Fatal(err)
			}
			cols = append(cols, c)
		}
		rows.Close()
		if table == "lineage" && strings.Contains(strings.Join(cols, " "), "cache_key") {
			t.Fatalf("schema version 2 has a cache_key column: %v", cols)
		}
		list := strings.Join(cols, ", ")
		exec("INSERT INTO " + table + " (" + list + ") SELECT " + list + " FROM latest.main." + table)
	}
	exec(`SELECT nextval('run_order') FROM range((SELECT max(recorded) FROM runs))`)
	exec(`DETACH latest`)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	h = openTest(t, path)
	for _, want := range old {
		got, err := h.Run(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(withoutLogs(want), got, equateTimes, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Run(%s) after migration (-want +got):\n%s", want.ID, diff)
		}
	}
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
	var key string
	if err := h.db.QueryRowContext(ctx, `SELECT cache_key FROM lineage_text WHERE run_id = 'run-new' AND knot_id = 'd'`).Scan(&key); err != nil || key != cached.Records[1].CacheKey.String() {
		t.Errorf("lineage_text: cache_key = %q, %v; want %s", key, err, cached.Records[1].CacheKey)
	}
}
