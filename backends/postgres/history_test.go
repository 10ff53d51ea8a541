package postgres

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/lineagetest"
)

var equateTimes = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

func isCorrupt(err error) bool { return errors.Is(err, cas.ErrCorrupt) }

// checkRun fails t unless h holds want.
func checkRun(t *testing.T, h *History, want *lineage.Run) {
	t.Helper()
	got, err := h.Run(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("Run(%q): %v", want.ID, err)
	}
	if diff := cmp.Diff(want, got, equateTimes, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Run(%q) mismatch (-want +got):\n%s", want.ID, diff)
	}
}

// bigRun is a run of n records with three inputs each, n/4 of them
// failed: more records and errors than one batch of INSERTs takes.
func bigRun(t *testing.T, id string, n int) *lineage.Run {
	t.Helper()
	r := lineagetest.SampleRun(t, id, 0)
	r.Records, r.Errors = nil, nil
	for i := range n {
		out, err := cas.Hash(i)
		if err != nil {
			t.Fatal(err)
		}
		rec := lineage.Record{RunID: id, KnotID: fmt.Sprintf("k%03d", i), Knot: "k",
			Inputs: []lineage.Input{{Name: "a", Parent: "p", Digest: out}, {Name: "b", Digest: cas.Digest{byte(i)}}, {Name: "c"}},
			Output: out, Outcome: lineage.OK,
			StartedAt: lineagetest.Base.Add(time.Duration(i)), FinishedAt: lineagetest.Base.Add(time.Duration(i + 1))}
		if i%4 == 0 {
			rec.Output, rec.Outcome, rec.ErrorID = cas.Digest{}, lineage.Err, cas.Digest{1, byte(i), byte(i >> 8)}
			r.Errors = append(r.Errors, lineage.ErrorRecord{ID: rec.ErrorID, RunID: id, KnotID: rec.KnotID, Type: "T",
				Detail: []byte{0xa0}, OccurredAt: rec.FinishedAt})
		}
		r.Records = append(r.Records, rec)
	}
	return r
}

func TestRoundTripEdges(t *testing.T) {
	ctx := t.Context()
	h := openHistory(t, newSchema(t))
	local := time.FixedZone("UTC+5", 5*3600)
	for _, tc := range []struct {
		name string
		run  *lineage.Run
	}{
		{"empty", &lineage.Run{ID: "empty"}},
		{"non-UTC times", &lineage.Run{ID: "local", Status: lineage.Cancelled,
			StartedAt: time.Date(2030, 1, 2, 3, 4, 5, 6, local), FinishedAt: time.Date(2262, 4, 11, 0, 0, 0, 0, time.UTC),
			Records: []lineage.Record{{RunID: "local", KnotID: "p", Knot: lineage.KnotParameter,
				StartedAt: time.Date(1678, 1, 1, 0, 0, 0, 0, time.UTC), SkipDetail: []byte{}}}}},
		{"odd names", &lineage.Run{ID: "run 'quoted' ?#% ünï\n", Pipeline: `p"q\`, Terminals: []string{`"a"`, "b\n", ""},
			Records: []lineage.Record{{RunID: "run 'quoted' ?#% ünï\n", KnotID: "k'1", Knot: lineage.PrefixHost + "x",
				Grants: []string{"", "{}"},
				Inputs: []lineage.Input{{Name: ""}, {Name: "z", Digest: cas.Digest{1}}, {Name: "{a,b}", Parent: "NULL"}}}}}},
		{"big", bigRun(t, "big", batchRows*3+5)},
		{"at the batch limit", bigRun(t, "limit", batchRows)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := h.RecordRun(ctx, tc.run); err != nil {
				t.Fatalf("RecordRun: %v", err)
			}
			checkRun(t, h, tc.run)
		})
	}
	// Times come back in UTC, to the nanosecond.
	r, err := h.Run(ctx, "local")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2030, 1, 2, 3, 4, 5, 6, local).UTC(); r.StartedAt != want || r.Records[0].StartedAt.Location() != time.UTC {
		t.Errorf("StartedAt = %v (%v), want %v in UTC", r.StartedAt, r.Records[0].StartedAt.Location(), want)
	}
}

func TestRecordRunInvalid(t *testing.T) {
	// A run that cannot be stored is an error, and leaves the run it
	// would have replaced as it was.
	ctx := t.Context()
	h := openHistory(t, newSchema(t))
	first := lineagetest.SampleRun(t, "run-1", 0)
	if err := h.RecordRun(ctx, first); err != nil {
		t.Fatal(err)
	}
	big := bigRun(t, "run-1", batchRows*2)
	for _, tc := range []struct {
		name   string
		modify func(r *lineage.Run)
		want   string
	}{
		{"record of another run", func(r *lineage.Run) { r.Records[1].RunID = "other" }, `RunID = "other", want "run-1"`},
		{"error of another run", func(r *lineage.Run) { r.Errors[0].RunID = "" }, `RunID = "", want "run-1"`},
		{"time out of range", func(r *lineage.Run) { r.Records[2].FinishedAt = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) }, "outside the range"},
		{"duplicate knot", func(r *lineage.Run) { r.Records[3].KnotID = "d" },
			`insert records: ERROR: duplicate key value violates unique constraint "lineage_pkey" (SQLSTATE 23505): Key (run_id, knot_id)=(run-1, d) already exists.`},
		{"duplicate error", func(r *lineage.Run) { r.Errors = append(r.Errors, r.Errors[0]) },
			`insert errors: ERROR: duplicate key value violates unique constraint "errors_pkey"`},
		{"duplicate knot, copied", func(r *lineage.Run) { *r = *big; r.Records[batchRows+1].KnotID = "k000" },
			`copy records: ERROR: duplicate key value violates unique constraint "lineage_pkey" (SQLSTATE 23505): Key (run_id, knot_id)=(run-1, k000) already exists.`},
		{"NUL in text", func(r *lineage.Run) { r.Pipeline = "p\x00q" }, `run: text "p\x00q" holds a NUL byte`},
		{"NUL in a record", func(r *lineage.Run) { r.Records[4].SkipReason = "\x00" }, `record 4 ("after"): text "\x00" holds a NUL byte`},
		{"NUL in an input", func(r *lineage.Run) { r.Records[2].Inputs[1].Parent = "\x00" }, `record 2 ("answer") inputs: text "\x00" holds a NUL byte`},
		{"invalid UTF-8", func(r *lineage.Run) { r.Records[0].Knot = "\xff" }, `record 0 ("x"): text "\xff" is not valid UTF-8`},
		{"invalid UTF-8 in an error", func(r *lineage.Run) { r.Errors[0].Message = "\xff" }, `is not valid UTF-8`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := lineagetest.SampleRun(t, "run-1", time.Minute)
			tc.modify(r)
			err := h.RecordRun(ctx, r)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("RecordRun(%s) error = %v, want one containing %q", tc.name, err, tc.want)
			}
			checkRun(t, h, first)
		})
	}
	if err := h.RecordRun(ctx, nil); err == nil {
		t.Errorf("RecordRun(nil) error = nil, want an error")
	}
	if _, err := h.Runs(ctx, lineage.Query{Limit: -1}); err == nil {
		t.Errorf("Runs(Limit -1) error = nil, want an error")
	}
}

func TestRunsOrder(t *testing.T) {
	// Runs that started at the same time list the last recorded first, as
	// lineage.Memory does; re-recording a run makes it the last.
	ctx := t.Context()
	h := openHistory(t, newSchema(t))
	for _, id := range []string{"a", "b", "c", "a"} {
		if err := h.RecordRun(ctx, lineagetest.SampleRun(t, id, 0)); err != nil {
			t.Fatal(err)
		}
	}
	sums, err := h.Runs(ctx, lineage.Query{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range sums {
		got = append(got, s.ID)
	}
	if diff := cmp.Diff([]string{"a", "c", "b"}, got); diff != "" {
		t.Errorf("Runs order (-want +got):\n%s", diff)
	}
	recs, err := h.ByKnot(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, r := range recs {
		got = append(got, r.RunID)
	}
	if diff := cmp.Diff([]string{"b", "c", "a"}, got); diff != "" {
		t.Errorf("ByKnot order (-want +got):\n%s", diff)
	}
}

func TestMigrate(t *testing.T) {
	// A database made by the first schema, with runs in it, is migrated
	// to the latest when opened; the runs read back, and the views of
	// step 2 show them. The runs are recorded by today's code in a
	// schema of the latest version, then copied into one of version 1,
	// column by column as far as version 1 has the columns: what a
	// version-1 pirn would have written.
	ctx := t.Context()
	want, wantMap := lineagetest.SampleRun(t, "run-1", 0), lineagetest.MapRun(t, "run-m", time.Minute)
	want.PipelineDigest = cas.Digest{} // version 1 has no column for it
	latest := newSchema(t)
	h := openHistory(t, latest)
	for _, r := range []*lineage.Run{want, wantMap} {
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
	if err := migrateTo(ctx, pool, schema, history, 1); err != nil {
		t.Fatalf("create schema version 1: %v", err)
	}
	for _, table := range []string{"runs", "lineage", "errors"} {
		var cols []string
		if err := pool.QueryRow(ctx, `SELECT array_agg(quote_ident(column_name::text) ORDER BY ordinal_position)
			FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`, schema, table).Scan(&cols); err != nil {
			t.Fatal(err)
		}
		list := strings.Join(cols, ", ")
		if _, err := pool.Exec(ctx, "INSERT INTO "+pgx.Identifier{schema, table}.Sanitize()+" ("+list+") SELECT "+list+
			" FROM "+pgx.Identifier{latest, table}.Sanitize()); err != nil {
			t.Fatalf("copy %s into schema version 1: %v", table, err)
		}
	}
	conn := admin(t)
	versionOf := func() int {
		t.Helper()
		var v int
		if err := conn.QueryRow(ctx, "SELECT version FROM "+pgx.Identifier{schema, "schema_versions"}.Sanitize()+
			" WHERE component = 'history'").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := versionOf(); v != 1 {
		t.Fatalf("schema version = %d, want 1", v)
	}

	h = openHistory(t, schema)
	if v := versionOf(); v != len(history.steps) {
		t.Errorf("schema version after Open = %d, want %d", v, len(history.steps))
	}
	checkRun(t, h, withoutLogs(want))
	checkRun(t, h, withoutLogs(wantMap))
	var output, started string
	if err := conn.QueryRow(ctx, "SELECT output_hash, started_at::text FROM "+pgx.Identifier{schema, "lineage_text"}.Sanitize()+
		" WHERE run_id = 'run-1' AND knot_id = 'd'").Scan(&output, &started); err != nil {
		t.Fatal(err)
	}
	if output != want.Records[1].Output.String() || !strings.HasPrefix(started, "2026-11-27 10:00:00.125") {
		t.Errorf("lineage_text: output %s, started %s; want %s, %v", output, started, want.Records[1].Output, want.Records[1].StartedAt)
	}

	// A schema newer than this package knows is refused.
	if _, err := conn.Exec(ctx, "UPDATE "+pgx.Identifier{schema, "schema_versions"}.Sanitize()+" SET version = 99"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, Config{DSN: testDSN(), Schema: schema}); err == nil || !strings.Contains(err.Error(), "newer than this pirn supports") {
		t.Errorf("Open of a newer schema: %v, want an error", err)
	}
}

func TestConcurrentOpen(t *testing.T) {
	// Processes opening a new database at once each find it migrated
	// once.
	schema := newSchema(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			var c interface{ Close() error }
			var err error
			if i%2 == 0 {
				c, err = Open(t.Context(), Config{DSN: testDSN(), Schema: schema})
			} else {
				c, err = OpenStore(t.Context(), StoreConfig{DSN: testDSN(), Schema: schema})
			}
			if err != nil {
				errs <- err
				return
			}
			c.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	h := openHistory(t, schema)
	if err := h.RecordRun(t.Context(), lineagetest.SampleRun(t, "run-1", 0)); err != nil {
		t.Fatal(err)
	}
}

func TestTwoHistories(t *testing.T) {
	// Two processes (here two History values, each with its own pool)
	// record into one schema at once, runs of their own and one run id
	// both write.
	ctx := t.Context()
	schema := newSchema(t)
	hs := []*History{openHistory(t, schema), openHistory(t, schema)}
	const writers, runs = 3, 10
	var wg sync.WaitGroup
	errs := make(chan error, len(hs)*writers*(runs+1))
	for i, h := range hs {
		for w := range writers {
			wg.Go(func() {
				for k := range runs {
					r := lineagetest.SampleRun(t, fmt.Sprintf("run-%d-%d-%d", i, w, k), time.Duration(k)*time.Second)
					if k%3 == 0 {
						r = lineagetest.LargeRun(t, r.ID, batchRows*2, 10)
					}
					if err := h.RecordRun(ctx, r); err != nil {
						errs <- err
					}
				}
				if err := h.RecordRun(ctx, lineagetest.SampleRun(t, "shared", time.Hour)); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, h := range hs {
		sums, err := h.Runs(ctx, lineage.Query{Limit: 1000})
		if want := len(hs)*writers*runs + 1; err != nil || len(sums) != want {
			t.Errorf("Runs = %d runs, %v; want %d", len(sums), err, want)
		}
		recs, err := h.ByKnot(ctx, "answer")
		if want := len(hs)*writers*(runs-4) + 1; err != nil || len(recs) != want { // LargeRun has no answer
			t.Errorf("ByKnot(answer) = %d records, %v; want %d", len(recs), err, want)
		}
	}
	checkRun(t, hs[0], lineagetest.SampleRun(t, "shared", time.Hour))
}

func TestQueryPlans(t *testing.T) {
	// Each cross-run query can be answered through its index (the tables
	// here are too small for the planner to choose it unasked).
	ctx := t.Context()
	schema := newSchema(t)
	h := openHistory(t, schema)
	if err := h.RecordRun(ctx, lineagetest.SampleRun(t, "run-1", 0)); err != nil {
		t.Fatal(err)
	}
	conn := admin(t)
	if _, err := conn.Exec(ctx, "SET search_path = "+pgx.Identifier{schema}.Sanitize()+"; SET enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	d := lineagetest.SampleRun(t, "run-1", 0).Records[1].Output
	for _, tc := range []struct {
		query, index string
		arg          any
	}{
		{byOutput, "lineage_output", d[:]},
		{byInput, "lineage_inputs", d[:]},
		{byKnot, "lineage_knot", "d"},
	} {
		plan := explain(t, conn, tc.query, tc.arg)
		if !strings.Contains(plan, tc.index) || strings.Contains(plan, "runs") {
			t.Errorf("plan of %s does not use %s alone:\n%s", tc.index, tc.index, plan)
		}
		if sorted := strings.Contains(plan, "Sort"); sorted != (tc.index == "lineage_inputs") {
			t.Errorf("plan of %s sorts: %v, want %v:\n%s", tc.index, sorted, !sorted, plan)
		}
	}
}

// explain returns the plan of query with arg, as text.
func explain(t testing.TB, conn *pgx.Conn, query string, arg any, options ...string) string {
	t.Helper()
	rows, err := conn.Query(t.Context(), "EXPLAIN ("+strings.Join(append(options, "COSTS OFF"), ", ")+") "+query, arg)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

func TestInterruptedRuns(t *testing.T) {
	// A run that started and was never recorded, and whose process is
	// gone, is found interrupted; a run still in progress elsewhere is
	// left running. No lock file: the owner's session holds its lock.
	ctx := t.Context()
	schema := newSchema(t)
	conn := admin(t)
	status := func(h *History, id string) lineage.Status {
		t.Helper()
		r, err := h.Run(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return r.Status
	}
	start := func(h *History, id string) {
		t.Helper()
		if err := h.StartRun(ctx, &lineage.Run{ID: id, Pipeline: "p", Status: lineage.Running, StartedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	h1 := openHistory(t, schema)
	start(h1, "run-a")
	start(h1, "run-b")
	if err := h1.StartRun(ctx, &lineage.Run{ID: "run-a", Status: lineage.Running}); err == nil {
		t.Error("starting a run that is in progress: no error")
	}
	if err := h1.StartRun(ctx, &lineage.Run{ID: "run-x"}); err == nil {
		t.Error("StartRun of a run that is not running: no error")
	}

	// Another process sees both running, and cannot start run-a.
	h2 := openHistory(t, schema)
	if s := status(h2, "run-a"); s != lineage.Running {
		t.Errorf("run-a while in progress: %s", s)
	}
	if err := h2.StartRun(ctx, &lineage.Run{ID: "run-a", Status: lineage.Running}); err == nil || !strings.Contains(err.Error(), "another process is running it") {
		t.Errorf("starting run-a in another process: %v, want an error", err)
	}

	// run-b finishes; then h1's owner session dies (as it does with its
	// process or host), with run-a unrecorded.
	done := lineagetest.SampleRun(t, "run-b", 0)
	if err := h1.RecordRun(ctx, done); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend($1)", h1.ownerConn.PgConn().PID()); err != nil {
		t.Fatal(err)
	}
	waitGone(t, conn, h1.ownerConn.PgConn().PID())
	h3 := openHistory(t, schema)
	if s := status(h3, "run-a"); s != lineage.Interrupted {
		t.Errorf("run-a after its process ended: %s, want interrupted", s)
	}
	if s := status(h3, "run-b"); s != done.Status {
		t.Errorf("run-b: %s, want %s", s, done.Status)
	}
	sums, err := h2.Runs(ctx, lineage.Query{})
	if err != nil || len(sums) != 2 || sums[0].Status != lineage.Interrupted && sums[1].Status != lineage.Interrupted {
		t.Errorf("Runs = %+v, %v; want run-a interrupted", sums, err)
	}
	// Another process may now start run-a again.
	start(h3, "run-a")

	// h1 lives on: its next StartRun opens a new owner session.
	start(h1, "run-c")
	if s := status(h2, "run-c"); s != lineage.Running {
		t.Errorf("run-c: %s, want running", s)
	}

	// A History that closes with a run in progress leaves it interrupted,
	// as does a run recorded as running by RecordRun, which no process
	// owns.
	start(h2, "run-d")
	if err := h2.RecordRun(ctx, &lineage.Run{ID: "run-e", Status: lineage.Running}); err != nil {
		t.Fatal(err)
	}
	h2.Close()
	for id, want := range map[string]lineage.Status{"run-d": lineage.Interrupted, "run-e": lineage.Interrupted,
		"run-a": lineage.Running, "run-c": lineage.Running} {
		if s := status(h3, id); s != want {
			t.Errorf("%s: %s, want %s", id, s, want)
		}
	}
}

func TestKilledProcess(t *testing.T) {
	// A process killed while it runs a run leaves it running, and no file
	// behind; once the server has seen its connections close, the run is
	// found interrupted.
	schema := newSchema(t)
	h := openHistory(t, schema)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PIRN_TEST_POSTGRES_HELPER="+schema+" run-k")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "started\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper process: %q, %v", line, err)
	}
	if r, err := h.Run(t.Context(), "run-k"); err != nil || r.Status != lineage.Running {
		t.Errorf("run-k while its process lives: %v, %v; want running", r, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := h.Run(t.Context(), "run-k")
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == lineage.Interrupted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run-k 10s after its process was killed: %s, want interrupted", r.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOwnerSessionTakesBackItsRuns(t *testing.T) {
	// A process whose owner session ended while it lives (an
	// administrator ended it) has its runs marked interrupted; its next
	// StartRun takes them back, and RecordRun records them.
	ctx := t.Context()
	schema := newSchema(t)
	conn := admin(t)
	h1, h2 := openHistory(t, schema), openHistory(t, schema)
	if err := h1.StartRun(ctx, &lineage.Run{ID: "run-a", Status: lineage.Running}); err != nil {
		t.Fatal(err)
	}
	pid := h1.ownerConn.PgConn().PID()
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	waitGone(t, conn, pid)
	if r, err := h2.Run(ctx, "run-a"); err != nil || r.Status != lineage.Interrupted {
		t.Fatalf("run-a after its owner session ended: %v, %v; want interrupted", r, err)
	}
	if err := h1.StartRun(ctx, &lineage.Run{ID: "run-b", Status: lineage.Running}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"run-a", "run-b"} {
		if r, err := h2.Run(ctx, id); err != nil || r.Status != lineage.Running {
			t.Errorf("%s after the owner's next StartRun: %v, %v; want running", id, r, err)
		}
	}
	want := lineagetest.SampleRun(t, "run-a", 0)
	if err := h1.RecordRun(ctx, want); err != nil {
		t.Fatal(err)
	}
	checkRun(t, h2, want)
}

// waitGone waits until the server has ended the session pid.
func waitGone(t *testing.T, conn *pgx.Conn, pid uint32) {
	t.Helper()
	for range 100 {
		var n int
		if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("session %d still there", pid)
}

func TestConnectionDrop(t *testing.T) {
	// The server ends every session of the History and the Store, between
	// operations and during them: the next operations succeed on new
	// connections, and nothing recorded is lost.
	ctx := t.Context()
	schema := newSchema(t)
	app := "pirn_test_drop_" + schema[len("pirn_test_"):]
	dsn := withAppName(t, testDSN(), app)
	h := openHistoryDSN(t, dsn, schema)
	s := openStore(t, dsn, schema)
	conn := admin(t)

	var recorded []*lineage.Run
	record := func(r *lineage.Run) {
		t.Helper()
		if err := h.RecordRun(ctx, r); err != nil {
			t.Fatalf("RecordRun(%s): %v", r.ID, err)
		}
		recorded = append(recorded, r)
	}
	for i := range 3 {
		record(lineagetest.SampleRun(t, fmt.Sprint("run-", i), time.Duration(i)*time.Second))
	}
	v, err := cas.NewValue("kept")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
		t.Fatal(err)
	}
	if n := terminate(t, conn, app); n == 0 {
		t.Fatalf("no session named %s to end", app)
	}
	record(lineagetest.SampleRun(t, "run-3", 3*time.Second))
	record(lineagetest.LargeRun(t, "run-4", batchRows*3, 20))
	if got, err := s.Get(ctx, v.Digest); err != nil || string(got) != string(v.Bytes) {
		t.Errorf("Get after the sessions ended = %x, %v", got, err)
	}
	terminate(t, conn, app)
	if ok, err := s.Has(ctx, v.Digest); err != nil || !ok {
		t.Errorf("Has after the sessions ended = %v, %v", ok, err)
	}

	// Sessions ended while runs are being recorded.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 6 {
			select {
			case <-stop:
				return
			case <-time.After(60 * time.Millisecond):
				terminate(t, conn, app)
			}
		}
	})
	var mu sync.Mutex
	var failed []error
	var writers sync.WaitGroup
	for w := range 2 {
		writers.Go(func() {
			for k := range 15 {
				r := lineagetest.SampleRun(t, fmt.Sprintf("during-%d-%d", w, k), time.Minute)
				if k%4 == 0 {
					r = lineagetest.LargeRun(t, r.ID, batchRows*4, 30)
				}
				err := h.RecordRun(ctx, r)
				mu.Lock()
				if err != nil {
					failed = append(failed, err)
				} else {
					recorded = append(recorded, r)
				}
				mu.Unlock()
			}
		})
	}
	writers.Wait()
	close(stop)
	wg.Wait()
	for _, err := range failed {
		// Retries should have absorbed every drop; a failure must at
		// least say what happened.
		t.Errorf("RecordRun while sessions were ended: %v", err)
	}
	for _, r := range recorded {
		checkRun(t, h, r)
	}
	sums, err := h.Runs(ctx, lineage.Query{Limit: 1000})
	if err != nil || len(sums) != len(recorded) {
		t.Errorf("Runs = %d, %v; want %d", len(sums), err, len(recorded))
	}
}

func TestServerGone(t *testing.T) {
	// An operation on a server that stays away is retried until its
	// context ends, then fails with an error that names the server and
	// not the password.
	pool, err := pgxpool.New(t.Context(), "postgres://u:secret@127.0.0.1:1/d?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	h := &History{pool: pool, schema: "s", cfg: pool.Config().ConnConfig, running: map[string]bool{}}
	defer h.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = h.RecordRun(ctx, lineagetest.SampleRun(t, "run-1", 0))
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1") || strings.Contains(err.Error(), "secret") ||
		!errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("RecordRun with the server gone = %v; want an error naming the server and the deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("RecordRun with the server gone took %v, want about 300ms", d)
	}
	t.Logf("error: %v", err)
}
