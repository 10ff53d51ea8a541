package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/lineagetest"
)

// TestMigrateLabels takes a schema of version 4 (before labels) holding
// runs to version 5: the runs read back as they were, without labels, and
// runs with labels are stored, found by them, and shown by runs_text. The
// runs are recorded by today's code in a schema of the latest version,
// then copied into one of version 4, column by column as far as version 4
// has the columns.
func TestMigrateLabels(t *testing.T) {
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
	if err := migrateTo(ctx, pool, schema, history, 4); err != nil {
		t.Fatalf("create schema version 4: %v", err)
	}
	for _, table := range []string{"runs", "lineage", "errors"} {
		var cols []string
		if err := pool.QueryRow(ctx, `SELECT array_agg(quote_ident(column_name::text) ORDER BY ordinal_position)
			FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`, schema, table).Scan(&cols); err != nil {
			t.Fatal(err)
		}
		if table == "runs" && strings.Contains(strings.Join(cols, " "), "labels") {
			t.Fatalf("schema version 4 has a labels column: %v", cols)
		}
		list := strings.Join(cols, ", ")
		if _, err := pool.Exec(ctx, "INSERT INTO "+pgx.Identifier{schema, table}.Sanitize()+" ("+list+") SELECT "+list+
			" FROM "+pgx.Identifier{latest, table}.Sanitize()); err != nil {
			t.Fatalf("copy %s into schema version 4: %v", table, err)
		}
	}

	h = openHistory(t, schema)
	var v int
	if err := pool.QueryRow(ctx, "SELECT version FROM "+pgx.Identifier{schema, "schema_versions"}.Sanitize()+
		" WHERE component = 'history'").Scan(&v); err != nil || v != len(history.steps) {
		t.Errorf("schema version after Open = %d, %v; want %d", v, err, len(history.steps))
	}
	for _, want := range old {
		checkRun(t, h, withoutLogs(want))
	}
	labeled := lineagetest.LabeledRun(t, "run-new", 2*time.Minute, "1234")
	if err := h.RecordRun(ctx, labeled); err != nil {
		t.Fatal(err)
	}
	checkRun(t, h, labeled)
	sums, err := h.Runs(ctx, lineage.Query{Label: lineage.Label{Key: "kafka.offset", Value: "1234"}})
	if err != nil || len(sums) != 1 || sums[0].ID != "run-new" {
		t.Errorf("Runs(kafka.offset=1234) after migration = %v, %v; want run-new", sums, err)
	}
	var offset string
	if err := pool.QueryRow(ctx, "SELECT labels->>'kafka.offset' FROM "+pgx.Identifier{schema, "runs_text"}.Sanitize()+
		" WHERE run_id = 'run-new'").Scan(&offset); err != nil || offset != "1234" {
		t.Errorf("runs_text: labels->>'kafka.offset' = %q, %v; want 1234", offset, err)
	}
}

// TestLabelsIndexed checks that the Label filter of Runs can be answered
// through the GIN index runs_labels.
func TestLabelsIndexed(t *testing.T) {
	ctx := t.Context()
	schema := newSchema(t)
	h := openHistory(t, schema)
	if err := h.RecordRun(ctx, lineagetest.LabeledRun(t, "run-1", 0, "1234")); err != nil {
		t.Fatal(err)
	}
	conn := admin(t)
	if _, err := conn.Exec(ctx, "SET search_path = "+pgx.Identifier{schema}.Sanitize()+"; SET enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	stmt, args := runsQuery(lineage.Query{Label: lineage.Label{Key: "kafka.offset", Value: "1234"}}, 100)
	rows, err := conn.Query(ctx, "EXPLAIN (COSTS OFF) "+stmt, args...)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if plan := strings.Join(lines, "\n"); !strings.Contains(plan, "runs_labels") {
		t.Errorf("plan of a Label filter does not use runs_labels:\n%s", plan)
	}
}
