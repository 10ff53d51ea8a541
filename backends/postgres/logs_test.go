package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/lineagetest"
)

// withoutLogs is r as a history of a schema before 7 holds it.
func withoutLogs(r *lineage.Run) *lineage.Run {
	c := *r
	c.Records = append([]lineage.Record(nil), r.Records...)
	for i := range c.Records {
		c.Records[i].Logs = cas.Digest{}
	}
	return &c
}

// TestMigrateLogs copies runs into a schema of version 6 (before logs)
// and opens it: the runs read back as they were, without logs, and a new
// run's logs are stored and read back.
func TestMigrateLogs(t *testing.T) {
	ctx := t.Context()
	old := []*lineage.Run{lineagetest.SampleRun(t, "run-1", 0), lineagetest.MapRun(t, "run-m", time.Minute)}
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
	if err := migrateTo(ctx, pool, schema, history, 6); err != nil {
		t.Fatalf("create schema version 6: %v", err)
	}
	for _, table := range []string{"runs", "lineage", "errors"} {
		var cols []string
		if err := pool.QueryRow(ctx, `SELECT array_agg(quote_ident(column_name::text) ORDER BY ordinal_position)
			FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`, schema, table).Scan(&cols); err != nil {
			t.Fatal(err)
		}
		if table == "lineage" && strings.Contains(strings.Join(cols, " "), "logs") {
			t.Fatalf("schema version 6 has a logs column: %v", cols)
		}
		list := strings.Join(cols, ", ")
		if _, err := pool.Exec(ctx, "INSERT INTO "+pgx.Identifier{schema, table}.Sanitize()+" ("+list+") SELECT "+list+
			" FROM "+pgx.Identifier{latest, table}.Sanitize()); err != nil {
			t.Fatalf("copy %s into schema version 6: %v", table, err)
		}
	}

	h = openHistory(t, schema)
	for _, want := range old {
		checkRun(t, h, withoutLogs(want))
	}
	run := lineagetest.SampleRun(t, "run-new", 2*time.Minute)
	if err := h.RecordRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	checkRun(t, h, run)
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, "lineage_text"}.Sanitize()+
		" WHERE logs LIKE 'sha256:%' AND run_id = 'run-new'").Scan(&n); err != nil || n != 2 {
		t.Errorf("lineage_text: %d records of run-new with logs, %v; want 2", n, err)
	}
}
