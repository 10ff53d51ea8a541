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

// TestMigrateLabels takes a file of schema 1 (before labels) holding runs
// to schema 2: the runs read back as they were, without labels, and runs
// with labels are stored, found by them, and shown by runs_text. The runs
// are recorded by today's code in a file of the latest schema, then
// copied into one made by the first migration, column by column as far as
// it has the columns.
func TestMigrateLabels(t *testing.T) {
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
	if err := migrateTo(ctx, db, 1); err != nil {
		t.Fatalf("create schema version 1: %v", err)
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
		if table == "runs" && strings.Contains(strings.Join(cols, " "), "label") {
			t.Fatalf("schema version 1 has label columns: %v", cols)
		}
		list := strings.Join(cols, ", ")
		exec("INSERT INTO " + table + " (" + list + ") SELECT " + list + " FROM latest.main." + table)
	}
	// The sequence of recorded goes on from the runs copied.
	exec(`SELECT nextval('run_order') FROM range((SELECT max(recorded) FROM runs))`)
	exec(`DETACH latest`)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	h = openTest(t, path)
	var v int
	if err := h.db.QueryRowContext(ctx, `SELECT version FROM schema_versions WHERE component = 'history'`).Scan(&v); err != nil || v != len(migrations) {
		t.Errorf("schema version after Open = %d, %v; want %d", v, err, len(migrations))
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
	got, err := h.Run(ctx, "run-new")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(labeled, got, equateTimes, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Run(run-new) after migration (-want +got):\n%s", diff)
	}
	for label, want := range map[lineage.Label][]string{
		{Key: "kafka.offset", Value: "1234"}: {"run-new"},
		{Key: "kafka.offset", Value: "1"}:    nil,
	} {
		sums, err := h.Runs(ctx, lineage.Query{Label: label})
		var ids []string
		for _, s := range sums {
			ids = append(ids, s.ID)
		}
		if err != nil || !cmp.Equal(want, ids) {
			t.Errorf("Runs(%s) after migration = %v, %v; want %v", label, ids, err, want)
		}
	}
	var offset string
	if err := h.db.QueryRowContext(ctx, `SELECT labels['kafka.offset'] FROM runs_text WHERE run_id = 'run-new'`).Scan(&offset); err != nil || offset != "1234" {
		t.Errorf("runs_text: labels['kafka.offset'] = %q, %v; want 1234", offset, err)
	}
}
