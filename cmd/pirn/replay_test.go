package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestReplay: pirn replay runs a recorded run again from the data store
// with its parameters and terminals, overrides one, labels the new run,
// and names what is wrong when it cannot.
func TestReplay(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	p := hermeticPipeline(t, dir, false)
	orig := runJSON(t, "run", "--state", state, "-p", "n=3", "-t", "total", p)
	if orig.Outputs["total"] != 5.0 {
		t.Fatalf("the original run: %+v", orig.Outputs)
	}
	// The pipeline file is gone: the data store alone serves the replay.
	os.Remove(p)

	again := runJSON(t, "replay", "--state", state, orig.RunID)
	if again.RunID == orig.RunID || again.PipelineDigest != orig.PipelineDigest || again.Labels["replay.of"] != orig.RunID {
		t.Errorf("replay: run %s, pipeline %s, labels %v; want a new run of %s labelled replay.of=%s", again.RunID, again.PipelineDigest, again.Labels, orig.PipelineDigest, orig.RunID)
	}
	if again.Outputs["total"] != 5.0 || len(again.Knots) != len(orig.Knots) {
		t.Errorf("replay: outputs %v, %d knots; want total 5 and the original's %d knots (its terminals)", again.Outputs, len(again.Knots), len(orig.Knots))
	}
	for i := range orig.Knots {
		if i < len(again.Knots) && again.Knots[i] != orig.Knots[i] {
			t.Errorf("replay: knot %+v, the original's %+v", again.Knots[i], orig.Knots[i])
		}
	}
	over := runJSON(t, "replay", "--state", state, "-p", "n=5", orig.RunID)
	if over.Outputs["total"] != 30.0 || over.Outputs["n"] != 5.0 {
		t.Errorf("replay -p n=5: outputs %v; want total 30", over.Outputs)
	}
	r := runPirn(t, "replay", "--state", state, orig.RunID)
	if r.code != 0 || !strings.Contains(r.stderr, "replaying run "+orig.RunID) || !strings.Contains(r.stdout, "total = 5") || !strings.Contains(r.stdout, `replay.of = "`+orig.RunID+`"`) {
		t.Errorf("replay (text): exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run-unknown"}, `run "run-unknown" is not in the history`},
		{[]string{"-p", "m=1", orig.RunID}, `has no parameter "m"`},
		{[]string{"-p", "n=[1]", orig.RunID}, "parameter"},
		{[]string{"-p", "n", orig.RunID}, "want name=value"},
		{[]string{}, "replay takes one run id"},
	} {
		r := runPirn(t, append([]string{"replay", "--state", state}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("replay %v: exit %d, %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}

	// A parameter value scrubbed from the data store: pirn gc keeps only
	// the values of a newer run (of the pipeline, from the store).
	runJSON(t, "run", "--state", state, "-p", "n=2", "-t", "total", orig.PipelineDigest) // no value 3 anywhere
	if r := runPirn(t, "gc", "--state", state, "--keep-runs", "1", "--older-than", "0s"); r.code != 0 {
		t.Fatalf("gc: %s", r.stderr)
	}
	r = runPirn(t, "replay", "--state", state, orig.RunID)
	if r.code != 2 || !strings.Contains(r.stderr, "the value of parameter n") || !strings.Contains(r.stderr, "scrubbed from the data store at") {
		t.Errorf("replay of a run whose parameter was scrubbed: exit %d, %s", r.code, r.stderr)
	}
}

// TestReplayPostgres: replay reads the run from a PostgreSQL history and
// its pipeline and parameters from a PostgreSQL data store.
func TestReplayPostgres(t *testing.T) {
	t.Parallel()
	base := os.Getenv("PIRN_TEST_POSTGRES")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	schema := fmt.Sprintf("pirn_replay_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), base)
		if err != nil {
			t.Errorf("drop schema: %v", err)
			return
		}
		defer conn.Close(context.Background())
		conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
	})
	pg := base + "&schema=" + schema
	dir := t.TempDir()
	p := hermeticPipeline(t, dir, false)
	orig := runJSON(t, "run", "--history", pg, "--store", pg, "--state", dir, "-p", "n=3", p)
	again := runJSON(t, "replay", "--history", pg, "--store", pg, "--state", dir, "-p", "n=4", orig.RunID)
	if again.Outputs["total"] != 14.0 || again.Labels["replay.of"] != orig.RunID {
		t.Errorf("replay on Postgres: outputs %v, labels %v", again.Outputs, again.Labels)
	}
	d := verifyJSON(t, 0, "--history", pg, "--store", pg, "--state", dir, again.RunID)
	if !d.OK || d.Verified != 12 {
		t.Errorf("verify on Postgres: %+v", d)
	}
}
