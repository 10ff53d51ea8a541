package sqlite

import (
	"database/sql"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/lineagetest"
)

// undoSchema12 turns a file of schema 12 back into schema 11: the entries
// of each pending run become schema 11's rows of lineage_pending (an
// output entry, role 0, and a knot entry, role 2, per record), and
// lineage_values_text is schema 4's view again.
func undoSchema12(t *testing.T, db *sql.DB) {
	t.Helper()
	_, view, ok := strings.Cut(migrations[3].sql, "DROP VIEW lineage_values_text;")
	if !ok {
		t.Fatal("migration 4 does not recreate lineage_values_text")
	}
	for _, q := range []string{
		`INSERT INTO lineage_pending (hash, role, run_id, knot_id, name)
			SELECT l.output_hash, 0, l.run_id, l.knot_id, '' FROM lineage_pending p JOIN lineage l ON l.run_id = p.run_id
			WHERE p.role = 3 AND l.output_hash IS NOT NULL`,
		`INSERT INTO lineage_pending (hash, role, run_id, knot_id, name)
			SELECT NULL, 2, l.run_id, l.knot_id, '' FROM lineage_pending p JOIN lineage l ON l.run_id = p.run_id
			WHERE p.role = 3`,
		"DELETE FROM lineage_pending WHERE role = 3",
		"DROP VIEW lineage_values_text",
		view,
		"PRAGMA user_version = 11",
	} {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestMigratePending takes a file of schema 11 whose runs' index entries
// are all pending, as schema 11 wrote them, to schema 12: the migration
// folds them, and the lookups by output, input and knot find the same
// records; a run recorded after leaves a row for itself and one per input
// pending, and is found too.
func TestMigratePending(t *testing.T) {
	ctx := t.Context()
	old := lineagetest.SampleRun(t, "run-old", 0)
	h, path := migratedFrom(t, 11, func(t *testing.T, db *sql.DB) {
		undoSchema12(t, db)
		var n int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM lineage_pending WHERE role IN (0, 2)").Scan(&n); err != nil || n == 0 {
			t.Fatalf("schema 11 file: %d output and knot entries pending, %v; want some", n, err)
		}
	}, old, lineagetest.MapRun(t, "run-map", time.Minute))
	db := rawDB(t, path)
	if n := pending(t, db); n != 0 {
		t.Errorf("after migration, %d rows pending, want 0 (folded)", n)
	}
	found := func(run *lineage.Run) {
		t.Helper()
		for _, r := range run.Records {
			got, err := h.ByKnot(ctx, r.KnotID)
			if err != nil || !hasRecord(got, run.ID, r.KnotID) {
				t.Errorf("ByKnot(%s) = %d records, %v; want %s/%s among them", r.KnotID, len(got), err, run.ID, r.KnotID)
			}
			if !r.Output.IsZero() {
				got, err := h.ByOutput(ctx, r.Output)
				if err != nil || !hasRecord(got, run.ID, r.KnotID) {
					t.Errorf("ByOutput(%s's output) = %d records, %v; want %s/%s among them", r.KnotID, len(got), err, run.ID, r.KnotID)
				}
			}
			for _, in := range r.Inputs {
				got, err := h.ByInput(ctx, in.Digest)
				if err != nil || !hasRecord(got, run.ID, r.KnotID) {
					t.Errorf("ByInput(%s's input %s) = %d records, %v; want %s/%s among them", r.KnotID, in.Name, len(got), err, run.ID, r.KnotID)
				}
			}
		}
	}
	found(old)

	run := lineagetest.SampleRun(t, "run-new", 2*time.Minute)
	if err := h.RecordRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	inputs := 0
	for _, r := range run.Records {
		inputs += len(r.Inputs)
	}
	if got, want := pending(t, db), 1+inputs; got != want {
		t.Errorf("after recording run-new, %d rows pending, want %d (the run and its %d inputs)", got, want, inputs)
	}
	found(run)
}

func hasRecord(recs []lineage.Record, runID, knotID string) bool {
	for _, r := range recs {
		if r.RunID == runID && r.KnotID == knotID {
			return true
		}
	}
	return false
}

// TestLookupPlans: the look-ups by output, input and knot, the fold and
// lineage_values_text read lineage and runs by key, never by a scan of
// either (which a plain JOIN with lineage_pending let SQLite's planner
// choose: a look-up then read the whole history).
func TestLookupPlans(t *testing.T) {
	h := openTest(t, filepath.Join(t.TempDir(), "history.db"))
	scan := regexp.MustCompile(`^SCAN (l|r|lineage|runs)( |$)`)
	for name, q := range map[string]string{
		"ByOutput":            recordsQuery(byEntries(byOutputPairs), ""),
		"ByInput":             recordsQuery(byEntries(byInputPairs), ""),
		"ByKnot":              recordsQuery(byEntries(byKnotPairs), ""),
		"fold values":         foldQueries[0],
		"fold knots":          foldQueries[1],
		"lineage_values_text": "SELECT * FROM lineage_values_text",
	} {
		rows, err := h.db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, "x")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		for _, step := range plan {
			if scan.MatchString(step) {
				t.Errorf("%s: plan has %q, want lineage and runs read by key:\n%s", name, step, strings.Join(plan, "\n"))
			}
		}
	}
}

// TestFinishInPlace: a run this History started is finished over its
// running entry, the same row (no index of runs rewritten), its labels
// replaced by the record's; an entry that changed since (here marked
// interrupted, as another process's sweep would) is replaced as any
// recorded run is.
func TestFinishInPlace(t *testing.T) {
	ctx := t.Context()
	h := openTest(t, filepath.Join(t.TempDir(), "history.db"))
	rowid := func(id string) (n int64) {
		t.Helper()
		if err := h.db.QueryRowContext(ctx, "SELECT rowid FROM runs WHERE run_id = ?", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, tc := range []struct {
		id      string
		changed bool
	}{{"run-kept", false}, {"run-swept", true}} {
		start := &lineage.Run{ID: tc.id, Pipeline: "p", Status: lineage.Running, StartedAt: lineagetest.Base,
			Labels: map[string]string{"k": "start", "gone": "x"}}
		if err := h.StartRun(ctx, start); err != nil {
			t.Fatal(err)
		}
		before := rowid(tc.id)
		if _, err := h.db.ExecContext(ctx, "INSERT INTO runs (run_id, pipeline, status, terminals, dispatcher, host, started_at, finished_at, knots, failed, skipped) VALUES (?, 'other', 'succeeded', '[]', '', '', 0, 0, 0, 0, 0)", tc.id+"-later"); err != nil {
			t.Fatal(err)
		}
		if tc.changed {
			if _, err := h.db.ExecContext(ctx, "UPDATE runs SET status = 'interrupted' WHERE run_id = ?", tc.id); err != nil {
				t.Fatal(err)
			}
		}
		r := lineagetest.SampleRun(t, tc.id, 0)
		r.Labels = map[string]string{"k": "end", "new": "y"}
		if err := h.RecordRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		if got := rowid(tc.id); (got == before) == tc.changed {
			t.Errorf("%s: rowid %d before, %d after (changed entry: %v)", tc.id, before, got, tc.changed)
		}
		got, err := h.Run(ctx, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != r.Status || len(got.Records) != len(r.Records) || !maps.Equal(got.Labels, r.Labels) {
			t.Errorf("%s read back: status %s, %d records, labels %v; want %s, %d, %v", tc.id, got.Status, len(got.Records), got.Labels, r.Status, len(r.Records), r.Labels)
		}
		var owner string
		var n int
		if err := h.db.QueryRowContext(ctx, "SELECT owner, (SELECT count(*) FROM runs WHERE run_id = ?1) FROM runs WHERE run_id = ?1", tc.id).Scan(&owner, &n); err != nil || owner != "" || n != 1 {
			t.Errorf("%s: owner %q, %d rows (%v)", tc.id, owner, n, err)
		}
		if rs, err := h.ByOutput(ctx, r.Records[1].Output); err != nil || !slices.ContainsFunc(rs, func(x lineage.Record) bool { return x.RunID == tc.id }) {
			t.Errorf("%s: ByOutput = %d records, %v", tc.id, len(rs), err)
		}
	}
}
