//go:build duckdb

package duckdb

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn/lineage/lineagetest"
)

// TestSlowestKnots: only the last N runs count; parameters, Map elements
// and skipped records are left out; the statistics are those of the
// durations.
func TestSlowestKnots(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := openTest(t, filepath.Join(t.TempDir(), "history.duckdb"))
	// Runs 0-3: SampleRun (x 0 ms, d 1 ms, answer 1 ms, bad 2 ms, after
	// skipped); run 4 (the newest): a Map run whose Map took 12 ms.
	for i := range 4 {
		if err := h.RecordRun(ctx, lineagetest.SampleRun(t, fmt.Sprint("run-", i), time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.RecordRun(ctx, lineagetest.MapRun(t, "run-4", 10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err := h.SlowestKnots(ctx, 3, 10)
	if err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	want := []KnotTimes{
		{KnotID: "sq:each", Records: 1, Mean: 12 * ms, P95: 12 * ms, Max: 12 * ms, Total: 12 * ms},
		{KnotID: "bad", Records: 2, Mean: 2 * ms, P95: 2 * ms, Max: 2 * ms, Total: 4 * ms},
		{KnotID: "answer", Records: 2, Mean: ms, P95: ms, Max: ms, Total: 2 * ms},
		{KnotID: "d", Records: 2, Mean: ms, P95: ms, Max: ms, Total: 2 * ms},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SlowestKnots(3 runs, 10) (-want +got):\n%s", diff)
	}
	if got, err := h.SlowestKnots(ctx, 1000, 1); err != nil || len(got) != 1 || got[0].KnotID != "sq:each" {
		t.Errorf("SlowestKnots(1000 runs, 1) = %+v, %v; want sq:each", got, err)
	}
	for _, a := range [][2]int{{0, 1}, {1, 0}, {-1, 5}} {
		if _, err := h.SlowestKnots(ctx, a[0], a[1]); err == nil {
			t.Errorf("SlowestKnots(%d, %d): no error", a[0], a[1])
		}
	}
}

// TestViews: the views for the duckdb shell show digests as pirn prints
// them, times as timestamps, and durations.
func TestViews(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := openTest(t, filepath.Join(t.TempDir(), "history.duckdb"))
	r := lineagetest.SampleRun(t, "run-1", 0)
	if err := h.RecordRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	var output, input, errID string
	var started time.Time
	var ms float64
	var hermetic bool
	err := h.db.QueryRowContext(ctx, `SELECT output_hash, input_hashes[2], started_at, duration_ms, hermetic
		FROM lineage_text WHERE knot_id = 'answer'`).Scan(&output, &input, &started, &ms, &hermetic)
	if err != nil {
		t.Fatal(err)
	}
	rec := r.Records[2]
	if output != rec.Output.String() || input != rec.Inputs[1].Digest.String() || !started.Equal(rec.StartedAt) || ms != 1 || hermetic {
		t.Errorf("lineage_text of answer = %s, %s, %v, %v ms, hermetic %v; want %s, %s, %v, 1 ms, false",
			output, input, started, ms, hermetic, rec.Output, rec.Inputs[1].Digest, rec.StartedAt)
	}
	if err := h.db.QueryRowContext(ctx, `SELECT error_id FROM errors_text`).Scan(&errID); err != nil || errID != r.Errors[0].ID.String() {
		t.Errorf("errors_text error_id = %q, %v; want %s", errID, err, r.Errors[0].ID)
	}
	var runMS float64
	if err := h.db.QueryRowContext(ctx, `SELECT duration_ms FROM runs_text`).Scan(&runMS); err != nil || runMS != 9 {
		t.Errorf("runs_text duration_ms = %v, %v; want 9", runMS, err)
	}
}

// TestREADMEQuery: the README's query for the duckdb shell, run as
// written, ranks the knots as SlowestKnots does.
func TestREADMEQuery(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "<!-- slowest-knots -->\n```sql\n")
	query, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no ```sql block after <!-- slowest-knots -->")
	}
	ctx := t.Context()
	h := openTest(t, filepath.Join(t.TempDir(), "history.duckdb"))
	for i := range 30 {
		if err := h.RecordRun(ctx, chainRun(i, 20)); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := h.db.QueryContext(ctx, query)
	if err != nil {
		t.Fatalf("the README's query: %v", err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id string
		var n int
		var mean, p95, longest float64
		if err := rows.Scan(&id, &n, &mean, &p95, &longest); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %d %.1f", id, n, mean))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	ks, err := h.SlowestKnots(ctx, 1000, 10)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, k := range ks {
		want = append(want, fmt.Sprintf("%s %d %.1f", k.KnotID, k.Records, float64(k.Mean)/1e6))
	}
	if diff := cmp.Diff(want, got); diff != "" || len(got) != 10 {
		t.Errorf("the README's query (-SlowestKnots +README):\n%s", diff)
	}
}
