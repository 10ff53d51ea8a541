package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/backends/sqlite"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

// hermeticPipeline writes (and locks) a pipeline whose module knots all
// run hermetic (instance: reset, no grants): a parameter, a knot, two
// Maps of module knots (one binding a shared parent), a Map of an
// expression and a knot over a Map's list. With granted, it also has a
// knot granted randomness.
func hermeticPipeline(t *testing.T, dir string, granted bool) string {
	t.Helper()
	arith, _ := filepath.Abs("../../examples/wasm/go/arith/arith.wasm")
	capknots, _ := filepath.Abs("../../testdata/wasm/go/capknots/capknots.wasm")
	yaml := "name: hermetic\ninstance: reset\nmodules: {arith: " + arith + ", cap: " + capknots + "}\nnodes:\n" +
		"  - {id: n, type: parameter, type_: int, default: 4}\n" +
		"  - {id: numbers, type: knot, module: arith, knot: range, parents: {n: n}}\n" +
		"  - {id: squares, type: map, over: numbers, each: {module: arith, knot: square}}\n" +
		"  - {id: shifted, type: map, over: numbers, each: {module: arith, knot: add}, bind: a, parents: {b: n}}\n" +
		"  - {id: halves, type: map, over: numbers, each: \"item / 2\"}\n" +
		"  - {id: total, type: knot, module: arith, knot: total, parents: {xs: squares}}\n"
	if granted {
		yaml += "  - {id: dice, type: knot, module: cap, knot: random, grants: {random: true}}\n"
	}
	p := filepath.Join(dir, "hermetic.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runPirn(t, "lock", p); r.code != 0 {
		t.Fatalf("lock: %s", r.stderr)
	}
	return p
}

type shownRun struct {
	RunID          string            `json:"run_id"`
	PipelineDigest string            `json:"pipeline_digest"`
	Labels         map[string]string `json:"labels"`
	Outputs        map[string]any    `json:"outputs"`
	Knots          []struct {
		ID     string `json:"id"`
		Output string `json:"output"`
	} `json:"knots"`
}

// runJSON runs pirn with args (and --json) and decodes the run it prints.
func runJSON(t *testing.T, args ...string) shownRun {
	t.Helper()
	r := runPirn(t, append(args, "--json")...)
	var s shownRun
	if err := json.Unmarshal([]byte(r.stdout), &s); r.code != 0 || err != nil {
		t.Fatalf("pirn %v: exit %d, %v\n%s%s", args, r.code, err, r.stdout, r.stderr)
	}
	return s
}

type verifyDoc struct {
	OK           bool    `json:"ok"`
	Seed         *string `json:"seed"`
	Verified     int     `json:"verified"`
	Mismatches   int     `json:"mismatches"`
	Unverifiable int     `json:"unverifiable"`
	NotSampled   int     `json:"not_sampled"`
	Records      []struct {
		Knot, Status, Reason, Recorded, Got string
	} `json:"records"`
}

// verifyJSON runs pirn verify --json and checks its exit status.
func verifyJSON(t *testing.T, code int, args ...string) verifyDoc {
	t.Helper()
	r := runPirn(t, append([]string{"verify", "--json"}, args...)...)
	var d verifyDoc
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || r.code != code {
		t.Fatalf("pirn verify %v: exit %d (want %d), %v\n%s%s", args, r.code, code, err, r.stdout, r.stderr)
	}
	return d
}

// status returns the status and reason verify gave the knot's record.
func (d verifyDoc) status(knot string) (string, string) {
	for _, r := range d.Records {
		if r.Knot == knot {
			return r.Status, r.Reason
		}
	}
	return "", ""
}

func TestVerify(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	p := hermeticPipeline(t, dir, false)
	run := runJSON(t, "run", "--state", state, p).RunID

	// Every module knot's record, the Map elements' and the Maps' own
	// lists: verified. The expression Map's elements ran no module.
	d := verifyJSON(t, 0, "--state", state, run)
	if !d.OK || d.Verified != 12 || d.Mismatches+d.Unverifiable+d.NotSampled != 0 {
		t.Errorf("verify of a hermetic run: %+v; want 12 verified and nothing else", d)
	}
	for _, k := range []string{"numbers", "squares", "squares:3", "shifted:2", "total"} {
		if s, why := d.status(k); s != "verified" {
			t.Errorf("%s: %s (%s), want verified", k, s, why)
		}
	}
	r := runPirn(t, "verify", "--state", state, run)
	if r.code != 0 || !strings.Contains(r.stdout, "VERIFIED (12 verified, 0 mismatched, 0 unverifiable)") {
		t.Errorf("verify (text): exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// --knot: a Map's own record and its elements'; an unknown knot is an error.
	d = verifyJSON(t, 0, "--state", state, "--knot", "squares", run)
	if len(d.Records) != 5 || d.Verified != 5 {
		t.Errorf("--knot squares: %+v; want the map and its 4 elements", d)
	}
	if r := runPirn(t, "verify", "--state", state, "--knot", "nope", run); r.code != 2 || !strings.Contains(r.stderr, `--knot "nope"`) {
		t.Errorf("--knot nope: exit %d, %s", r.code, r.stderr)
	}

	// --sample: the same seed picks the same records; the seed is given.
	a := verifyJSON(t, 0, "--state", state, "--sample", "3", "--seed", "7", run)
	b := verifyJSON(t, 0, "--state", state, "--sample", "3", "--seed", "7", run)
	if a.Verified != 3 || a.NotSampled != 9 || a.Seed == nil || *a.Seed != "7" {
		t.Errorf("--sample 3 --seed 7: %+v", a)
	}
	for i := range a.Records {
		if a.Records[i].Status != b.Records[i].Status {
			t.Errorf("--seed 7 picked differently: %s %s, then %s", a.Records[i].Knot, a.Records[i].Status, b.Records[i].Status)
		}
	}
	if r := runPirn(t, "verify", "--state", state, "--sample", "2", run); r.code != 0 || !strings.Contains(r.stdout, "--seed ") {
		t.Errorf("--sample without --seed names no seed: %s", r.stdout)
	}

	// Bad arguments.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run-unknown"}, `run "run-unknown" is not in the history`},
		{[]string{}, "verify takes one run id"},
		{[]string{"--sample", "-1", run}, "--sample -1"},
	} {
		r := runPirn(t, append([]string{"verify", "--state", state}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("verify %v: exit %d, %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if r := runPirn(t, "verify", "--state", filepath.Join(dir, "none"), run); r.code != 2 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("verify of a missing state: exit %d, %s", r.code, r.stderr)
	}
}

// TestVerifyTampered: an output digest changed in the SQLite history, and
// a value replaced in the data store, are mismatches (exit 1).
func TestVerifyTampered(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	p := hermeticPipeline(t, dir, false)
	first := runJSON(t, "run", "--state", state, "-p", "n=4", p)
	second := runJSON(t, "run", "--state", state, "-p", "n=6", p)

	// The history: total's output digest of the first run becomes another's.
	db, err := sql.Open("sqlite", filepath.Join(state, "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := cas.Hash(int64(13))
	res, err := db.Exec(`UPDATE lineage SET output_hash = ? WHERE run_id = ? AND knot_id = 'total'`, forged[:], first.RunID)
	if n, _ := res.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("tamper: %v, %d rows", err, n)
	}
	db.Close()
	d := verifyJSON(t, 1, "--state", state, first.RunID)
	if s, why := d.status("total"); s != "mismatch" || !strings.Contains(why, "recorded output "+forged.String()) || d.Mismatches != 1 || d.Verified != 11 {
		t.Errorf("tampered history: total %s (%s); %+v", s, why, d)
	}
	r := runPirn(t, "verify", "--state", state, first.RunID)
	if r.code != 1 || !strings.Contains(r.stdout, "MISMATCH (11 verified, 1 mismatched") {
		t.Errorf("verify (text) of a tampered run: exit %d\n%s", r.code, r.stdout)
	}

	// The data store: the second run's squares list (total's input) is
	// replaced by other bytes under the same name.
	var squares string
	for _, k := range second.Knots {
		if k.ID == "squares" {
			squares = k.Output
		}
	}
	hexd := strings.TrimPrefix(squares, "sha256:")
	path := filepath.Join(state, "data", "sha256", hexd[:2], hexd)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	other, _ := cas.Encode([]int64{0, 1, 4, 9, 16, 26})
	if err := os.WriteFile(path, other, 0o644); err != nil {
		t.Fatal(err)
	}
	d = verifyJSON(t, 1, "--state", state, second.RunID)
	if s, why := d.status("total"); s != "mismatch" || !strings.Contains(why, "corrupt") {
		t.Errorf("replaced value: total %s (%s)", s, why)
	}
	if s, why := d.status("squares"); s != "mismatch" {
		t.Errorf("replaced value: squares %s (%s), want a mismatch", s, why)
	}
}

// TestVerifyUnverifiable: a scrubbed input, a granted knot, a knot
// whose instance keeps its state and a run built in Go are
// unverifiable: never a pass (exit 3).
func TestVerifyUnverifiable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	p := hermeticPipeline(t, dir, true)
	old := runJSON(t, "run", "--state", state, "-p", "n=3", p).RunID

	d := verifyJSON(t, 3, "--state", state, old)
	if s, why := d.status("dice"); s != "unverifiable" || !strings.Contains(why, "not hermetic: it ran with random") {
		t.Errorf("granted knot: %s (%s)", s, why)
	}
	if d.Verified != 10 || d.Unverifiable != 1 || d.OK {
		t.Errorf("run with a granted knot: %+v", d)
	}
	if r := runPirn(t, "verify", "--state", state, old); r.code != 3 || !strings.Contains(r.stdout, "NOT VERIFIED") {
		t.Errorf("verify (text): exit %d\n%s", r.code, r.stdout)
	}

	// Replay runs every knot: a granting pipeline needs --allow-grants.
	if r := runPirn(t, "replay", "--state", state, old); r.code != 2 || !strings.Contains(r.stderr, "--allow-grants") {
		t.Errorf("replay of a granting pipeline: exit %d, %s", r.code, r.stderr)
	}
	if r := runPirn(t, "replay", "--state", state, "--allow-grants", old); r.code != 0 || !strings.Contains(r.stdout, "total = 5") {
		t.Errorf("replay --allow-grants: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	runJSON(t, "run", "--state", state, "-p", "n=5", p) // the run gc keeps
	if r := runPirn(t, "gc", "--state", state, "--keep-runs", "1", "--older-than", "0s"); r.code != 0 {
		t.Fatalf("gc: %s", r.stderr)
	}
	d = verifyJSON(t, 3, "--state", state, old)
	if s, why := d.status("total"); s != "unverifiable" || !strings.Contains(why, "input xs") || !strings.Contains(why, "scrubbed from the data store at") {
		t.Errorf("scrubbed input: total %s (%s)", s, why)
	}
	if d.Mismatches != 0 || d.OK {
		t.Errorf("scrubbed run: %+v", d)
	}

	// The quickstart's knots keep their instances' state.
	q := runJSON(t, "run", "--state", state, quickstart).RunID
	d = verifyJSON(t, 3, "--state", state, q)
	if s, why := d.status("answer"); s != "unverifiable" || !strings.Contains(why, "not hermetic: it ran with state") {
		t.Errorf("keep-state knot: %s (%s)", s, why)
	}

	// A run of a tapestry built in Go names no pipeline in the store.
	h, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(state, "history.db")})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	mod, _ := cas.Hash("a module")
	out, _ := cas.Hash(int64(1))
	err = h.RecordRun(context.Background(), &lineage.Run{ID: "run-go", Status: lineage.Succeeded, StartedAt: now, FinishedAt: now,
		Records: []lineage.Record{{RunID: "run-go", KnotID: "k", Kind: lineage.KindSource, Module: mod.String(), Knot: "one",
			Outcome: lineage.OK, Output: out, StartedAt: now, FinishedAt: now}}})
	if err != nil {
		t.Fatal(err)
	}
	// A run with nothing to check, and one whose records were never written.
	for _, run := range []lineage.Run{{ID: "run-empty", Status: lineage.Succeeded}, {ID: "run-dead", Status: lineage.Interrupted}} {
		run.StartedAt, run.FinishedAt = now, now
		if err := h.RecordRun(context.Background(), &run); err != nil {
			t.Fatal(err)
		}
	}
	h.Close()
	if r := runPirn(t, "verify", "--state", state, "run-empty"); r.code != 3 || !strings.Contains(r.stdout, "NOTHING CHECKED") {
		t.Errorf("verify of a run with nothing to check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, cmd := range []string{"verify", "replay"} {
		if r := runPirn(t, cmd, "--state", state, "run-dead"); r.code != 2 || !strings.Contains(r.stderr, "run run-dead is interrupted") {
			t.Errorf("%s of an interrupted run: exit %d, %s", cmd, r.code, r.stderr)
		}
	}
	d = verifyJSON(t, 3, "--state", state, "run-go")
	if s, why := d.status("k"); s != "unverifiable" || !strings.Contains(why, "built in Go") {
		t.Errorf("Go-built run: %s (%s)", s, why)
	}
	if r := runPirn(t, "replay", "--state", state, "run-go"); r.code != 2 || !strings.Contains(r.stderr, "built in Go") {
		t.Errorf("replay of a Go-built run: exit %d, %s", r.code, r.stderr)
	}
}

// TestReadmeVerify runs the README's "See and trust a run" commands as
// written (with a state directory of the test's own).
func TestReadmeVerify(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	const p = "../../examples/verify/pipeline.yaml"
	if r := runPirn(t, "run", "--state", state, "--run-id", "first", p); r.code != 0 {
		t.Fatalf("run: %s", r.stderr)
	}
	page := filepath.Join(t.TempDir(), "first.html")
	if r := runPirn(t, "view", "--state", state, "first", "-o", page); r.code != 0 {
		t.Errorf("view: exit %d %s", r.code, r.stderr)
	} else if b, err := os.ReadFile(page); err != nil || !strings.Contains(string(b), "first") {
		t.Errorf("view wrote %d bytes, %v", len(b), err)
	}
	if r := runPirn(t, "run", "--state", state, "--run-id", "again", p); r.code != 0 || !strings.Contains(r.stdout, "10 results reused from earlier runs") {
		t.Errorf("run again: exit %d, want 10 results reused\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runPirn(t, "run", "--state", state, "--run-id", "six", "-p", "n=6", p); r.code != 0 || !strings.Contains(r.stdout, "4 reused") {
		t.Errorf("run -p n=6: exit %d, want the four old squares reused\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runPirn(t, "diff", "--state", state, "again", "six"); r.code != 1 || !strings.Contains(r.stdout, "changed (the value): 14 → 55") {
		t.Errorf("diff: exit %d, want 1 and total 14 → 55\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runPirn(t, "verify", "--state", state, "first"); r.code != 0 || !strings.Contains(r.stdout, "verify run first: VERIFIED (12 verified, 0 mismatched, 0 unverifiable)") {
		t.Errorf("verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runPirn(t, "replay", "--state", state, "-p", "n=6", "first"); r.code != 0 || !strings.Contains(r.stdout, "total = 55") {
		t.Errorf("replay: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
