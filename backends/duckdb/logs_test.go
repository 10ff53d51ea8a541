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

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/lineagetest"
)

// TestMigrateLogs takes a file of schema 3 (before logs) holding runs to
// schema 4: the runs read back as they were, without logs, and a new
// run's logs are stored, read back and shown by lineage_text. The runs
// are recorded in a file of the latest schema and copied into one of
// schema 3, as far as it has the columns.
func TestMigrateLogs(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	latest, path := filepath.Join(dir, "latest.duckdb"), filepath.Join(dir, "history.duckdb")
	old := []*lineage.Run{lineagetest.SampleRun(t, "run-1", 0), lineagetest.MapRun(t, "run-m", time.Minute)}
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
	if err := migrateTo(ctx, db, 3); err != nil {
		t.Fatalf("create schema version 3: %v", err)
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
		if table == "lineage" && strings.Contains(strings.Join(cols, " "), "logs") {
			t.Fatalf("schema version 3 has a logs column: %v", cols)
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
	var logs string
	if err := h.db.QueryRowContext(ctx, `SELECT logs FROM lineage_text WHERE run_id = 'run-new' AND knot_id = 'd'`).Scan(&logs); err != nil || logs != run.Records[1].Logs.String() {
		t.Errorf("lineage_text: logs = %q, %v; want %s", logs, err, run.Records[1].Logs)
	}
}

// withoutLogs is r as a history of a schema before 4 holds it.
func withoutLogs(r *lineage.Run) *lineage.Run {
	c := *r
	c.Records = append([]lineage.Record(nil), r.Records...)
	for i := range c.Records {
		c.Records[i].Logs = cas.Digest{}
	}
	return &c
}
