package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/lineagetest"
)

// TestMigrateMemo copies runs into a schema of version 5 (before
// memoisation) and opens it: the runs read back as they were, with
// nothing to reuse, and a new run's keys are stored and found through
// the index lineage_memo.
func TestMigrateMemo(t *testing.T) {
	ctx := t.Context()
	old := []*lineage.Run{lineagetest.LabeledRun(t, "run-1", 0, "7"), lineagetest.MapRun(t, "run-m", time.Minute)}
	latest := newSchema(t)
	h := openHistory(t, latest)
	for _, r := range old {
		if err := h.RecordRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	schema := newSchema(t)
	pool, err := connect(ctx, testDSN(), schema)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := migrateTo(ctx, pool, schema, history, 5); err != nil {
		t.Fatalf("create schema version 5: %v", err)
	}
	for _, table := range []string{"runs", "lineage", "errors"} {
		var cols []string
		if err := pool.QueryRow(ctx, `SELECT array_agg(quote_ident(column_name::text) ORDER BY ordinal_position)
			FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`, schema, table).Scan(&cols); err != nil {
			t.Fatal(err)
		}
		if table == "lineage" && strings.Contains(strings.Join(cols, " "), "cache_key") {
			t.Fatalf("schema version 5 has a cache_key column: %v", cols)
		}
		list := strings.Join(cols, ", ")
		if _, err := pool.Exec(ctx, "INSERT INTO "+pgx.Identifier{schema, table}.Sanitize()+" ("+list+") SELECT "+list+
			" FROM "+pgx.Identifier{latest, table}.Sanitize()); err != nil {
			t.Fatalf("copy %s into schema version 5: %v", table, err)
		}
	}

	h = openHistory(t, schema)
	for _, want := range old {
		checkRun(t, h, withoutLogs(want))
	}
	if s, err := h.CacheStats(ctx); err != nil || s != (lineage.CacheStats{}) {
		t.Errorf("CacheStats after migration = %+v, %v; want zero", s, err)
	}
	cached := lineagetest.CachedRun(t, "run-new", 2*time.Minute, lineage.Ref{})
	if err := h.RecordRun(ctx, cached); err != nil {
		t.Fatal(err)
	}
	checkRun(t, h, cached)
	rec, ok, err := h.Reusable(ctx, cached.Records[1].CacheKey)
	if err != nil || !ok || rec.RunID != "run-new" || rec.KnotID != "d" {
		t.Errorf("Reusable(d's key) = %s/%s, %v, %v; want run-new/d", rec.RunID, rec.KnotID, ok, err)
	}

	conn := admin(t)
	if _, err := conn.Exec(ctx, "SET search_path = "+pgx.Identifier{schema}.Sanitize()+"; SET enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, "EXPLAIN (COSTS OFF) "+reusable, cached.Records[1].CacheKey[:])
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if plan := strings.Join(lines, "\n"); !strings.Contains(plan, "lineage_memo") {
		t.Errorf("plan of Reusable does not use lineage_memo:\n%s", plan)
	}
}
