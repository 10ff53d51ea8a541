package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/pirn-wasm/pirn/bundle"
	"github.com/pirn-wasm/pirn/cas"
)

var pirnBin string

// TestMain builds the pirn binary once, with the build tags of the test
// binary (buildTags): these tests run it as a separate process, as a user
// would.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pirn-cli")
	if err != nil {
		panic(err)
	}
	pirnBin = filepath.Join(dir, "pirn")
	build := exec.Command("go", "build", "-tags", buildTags, "-o", pirnBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("build pirn: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// runPirn runs the pirn binary; it fails the test if pirn cannot start.
// Only the test's own goroutine may call it; others use execPirn.
func runPirn(t *testing.T, args ...string) result {
	t.Helper()
	r, err := execPirn(args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// execPirn runs the pirn binary; the error says it could not start.
func execPirn(args ...string) (result, error) {
	cmd := exec.Command(pirnBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		return result{}, err
	}
	return result{out.String(), errb.String(), code}, nil
}

const quickstart = "../../examples/quickstart/pipeline.yaml"

func digest(t *testing.T, v any) string {
	t.Helper()
	d, err := cas.Hash(v)
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func TestRunQuickstartThenReadHistory(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	r := runPirn(t, "run", "--state", state, quickstart)
	if r.code != 0 {
		t.Fatalf("pirn run exited %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"succeeded", "x = 5", "d = 10", "answer = 15", "knot    outcome  duration"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("pirn run output lacks %q:\n%s", want, r.stdout)
		}
	}

	// A second process reads the SQLite history the first one wrote.
	r = runPirn(t, "runs", "--state", state, "--json")
	var runs []struct {
		ID     string `json:"run_id"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil || len(runs) != 1 || runs[0].Status != "succeeded" {
		t.Fatalf("pirn runs --json = %s (%v)", r.stdout, err)
	}
	id := runs[0].ID

	r = runPirn(t, "runs", "show", "--state", state, "--json", id)
	var shown struct {
		RunID   string         `json:"run_id"`
		Outputs map[string]any `json:"outputs"`
		Knots   []struct {
			ID, Outcome, Output string
			Inputs              map[string]string
		} `json:"knots"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil {
		t.Fatalf("pirn runs show: %v\n%s%s", err, r.stdout, r.stderr)
	}
	if diff := cmp.Diff(map[string]any{"x": 5.0, "d": 10.0, "answer": 15.0}, shown.Outputs); diff != "" {
		t.Errorf("runs show outputs (-want +got):\n%s", diff)
	}
	if len(shown.Knots) != 3 || shown.Knots[2].Inputs["b"] != digest(t, 10) {
		t.Errorf("runs show knots = %+v", shown.Knots)
	}

	r = runPirn(t, "runs", "show", "--state", state, id)
	if r.code != 0 || !strings.Contains(r.stdout, "answer = 15") {
		t.Errorf("runs show (text) exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Lineage queries, by output, input and knot, across a second run.
	if r := runPirn(t, "run", "--state", state, quickstart, "-p", "x=5"); r.code != 0 {
		t.Fatalf("second run: %s", r.stderr)
	}
	r = runPirn(t, "lineage", "--state", state, "--output", digest(t, 15))
	if strings.Count(r.stdout, "answer") != 2 {
		t.Errorf("lineage --output 15 should list answer twice:\n%s%s", r.stdout, r.stderr)
	}
	r = runPirn(t, "lineage", "--state", state, "--input", digest(t, 10), "--json")
	var recs []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil || len(recs) != 2 {
		t.Errorf("lineage --input 10 = %s (%v)", r.stdout, err)
	}
	r = runPirn(t, "lineage", "--state", state, "--knot", "d")
	if strings.Count(r.stdout, "run-") != 2 || !strings.Contains(r.stdout, "double@sha256:") {
		t.Errorf("lineage --knot d:\n%s", r.stdout)
	}
}

func TestRunParameters(t *testing.T) {
	t.Parallel()
	r := runPirn(t, "run", "--memory", "--json", quickstart, "-p", "x=7")
	var out struct {
		Status  string
		Outputs map[string]float64
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 0 {
		t.Fatalf("run -p x=7: %v %d\n%s%s", err, r.code, r.stdout, r.stderr)
	}
	if out.Outputs["answer"] != 21 {
		t.Errorf("answer = %v, want 21", out.Outputs["answer"])
	}
	// An integral float is an int (values are YAML).
	for _, v := range []string{"x=5.0", "x=5e0", "x= 5.00 "} {
		r = runPirn(t, "run", "--memory", "--json", quickstart, "-p", v)
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 0 || out.Outputs["answer"] != 15 {
			t.Errorf("run -p %s: exit %d, answer %v, %v\n%s", v, r.code, out.Outputs["answer"], err, r.stderr)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-p", "x=seven"}, `parameter "x": want int, got str "seven"`},
		{[]string{"-p", "x=7.5"}, `parameter "x": want int, got str "7.5" (has a fractional part)`},
		{[]string{"-p", "y=1"}, "unknown parameter(s) y (the pipeline has: x)"},
		{[]string{"-p", "x"}, `want name=value`},
		{[]string{"-t", "nope"}, `unknown terminal "nope"`},
	} {
		r := runPirn(t, append([]string{"run", "--memory", quickstart}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("run %v: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

// TestListParameter passes a list on the command line: -p values are YAML,
// and their commas are not separators.
func TestListParameter(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "total.yaml")
	arith, _ := filepath.Abs("../../examples/wasm/go/arith/arith.wasm")
	os.WriteFile(p, []byte("name: total\nmodules: {arith: "+arith+"}\nnodes:\n"+
		"  - {id: xs, type: parameter, type_: \"list[int]\"}\n"+
		"  - {id: t, type: knot, module: arith, knot: total, parents: {xs: xs}}\n"), 0o644)
	r := runPirn(t, "run", "--memory", "--unpinned", "--json", p, "-p", "xs=[1, 2,3]", "-p", "xs=[4,5]")
	if r.code != 2 || !strings.Contains(r.stdout, `"error":"-p xs given twice"`) { // --json: the error is JSON on stdout
		t.Errorf("xs twice: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runPirn(t, "run", "--memory", "--unpinned", "--json", p, "-p", "xs=[1, 2,3]")
	var out struct{ Outputs map[string]any }
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 0 {
		t.Fatalf("exit %d, %v: %s%s", r.code, err, r.stdout, r.stderr)
	}
	if out.Outputs["t"] != 6.0 {
		t.Errorf("t = %v, want 6", out.Outputs["t"])
	}
}

func TestRunFailingPipeline(t *testing.T) {
	t.Parallel()
	r := runPirn(t, "run", "--memory", "../../testdata/pipelines/contained.yaml")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 for a run with failed knots\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"trap        err", "Trap: unreachable",
		"loop        err", "Timeout: invocation exceeded its timeout of 300ms",
		"grow        err", "MemoryLimit",
		"badcbor     err", "ABIViolation",
		"after_trap  skipped", "parent_failed_or_skipped",
		"total = 112",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, `msg="about to fail on x=3"`) || !strings.Contains(r.stderr, "knot=fail") {
		t.Errorf("guest log not on stderr with its knot:\n%s", r.stderr)
	}
}

func TestRunBadPipeline(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.yaml")
	os.WriteFile(p, []byte("nodes:\n  - {id: x, type: parameter, type_: int}\n  - {id: x, type: parameter, type_: int}\n"), 0o644)
	r := runPirn(t, "run", "--memory", "--unpinned", p)
	if r.code != 2 || !strings.Contains(r.stderr, `bad.yaml:3: duplicate node id "x" (first defined at line 2)`) {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	r = runPirn(t, "run", "--memory", filepath.Join(dir, "missing.yaml"))
	if r.code != 2 || !strings.Contains(r.stderr, "no such file") {
		t.Errorf("missing file: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestInspect(t *testing.T) {
	t.Parallel()
	r := runPirn(t, "inspect", "../../examples/wasm/go/arith/arith.wasm")
	for _, want := range []string{"abi    pirn (manifest version 1)", "knot double(x: int) -> int", "Returns 2·x.", "knot sum(**: int) -> int", "x: the operand"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("inspect output lacks %q:\n%s%s", want, r.stdout, r.stderr)
		}
	}
	r = runPirn(t, "inspect", "--json", "../../examples/wasm/go/outcomes/outcomes.wasm")
	var out struct {
		Digest   string
		Manifest struct {
			ABI   int `json:"abi"`
			Knots []struct {
				Name   string `json:"name"`
				Inputs []struct {
					Name, Type string
				} `json:"inputs"`
			} `json:"knots"`
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || !strings.HasPrefix(out.Digest, "sha256:") || out.Manifest.ABI != 1 {
		t.Errorf("inspect --json = %s (%v)", r.stdout, err)
	}
	var names []string
	for _, k := range out.Manifest.Knots {
		names = append(names, k.Name)
	}
	if got, want := strings.Join(names, ","), "fail,skip_odd,noisy,recover,panic"; got != want {
		t.Errorf("inspect --json knots = %s, want %s", got, want)
	}
	if len(out.Manifest.Knots) > 0 && (len(out.Manifest.Knots[0].Inputs) != 1 || out.Manifest.Knots[0].Inputs[0].Type != "int") {
		t.Errorf("inspect --json: fail's inputs = %+v, want x: int", out.Manifest.Knots[0].Inputs)
	}
	r = runPirn(t, "inspect", "--abi", "wasi-command", "../../examples/wasm/wasi-command/wc/wc.wasm")
	if r.code != 0 || !strings.Contains(r.stdout, "abi    wasi-command") || !strings.Contains(r.stdout, "format json") || !strings.Contains(r.stdout, "knot main(**: any) -> any") {
		t.Errorf("inspect --abi wasi-command: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runPirn(t, "inspect", "--abi", "extism", "../../examples/wasm/wasi-command/wc/wc.wasm")
	if r.code != 2 || !strings.Contains(r.stderr, "exports no plugin function") {
		t.Errorf("inspect --abi extism of a command: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runPirn(t, "inspect", "../../testdata/hostile/badimport.wasm")
	if r.code != 2 || !strings.Contains(r.stderr, "imports env.abort, which the host does not provide") {
		t.Errorf("inspect of a bad module: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestLock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	wasm, _ := os.ReadFile("../../examples/wasm/go/arith/arith.wasm")
	os.WriteFile(filepath.Join(dir, "arith.wasm"), wasm, 0o644)
	p := filepath.Join(dir, "flow.yaml")
	os.WriteFile(p, []byte(`modules: {arith: arith.wasm}
nodes:
  - {id: x, type: parameter, type_: int, default: 2}
  - {id: sq, type: knot, module: arith, knot: square, parents: {x: x}}
`), 0o644)
	if r := runPirn(t, "run", "--memory", p); r.code != 2 || !strings.Contains(r.stderr, "run `pirn lock") {
		t.Errorf("run without a lock: exit %d, %q", r.code, r.stderr)
	}
	if r := runPirn(t, "run", "--memory", "--unpinned", p); r.code != 0 || !strings.Contains(r.stderr, "not pinned") || !strings.Contains(r.stdout, "sq = 4") {
		t.Errorf("run --unpinned: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := runPirn(t, "lock", p)
	if r.code != 0 || !strings.Contains(r.stdout, "arith "+cas.Sum(wasm).String()) {
		t.Fatalf("lock: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "flow.lock")); err != nil {
		t.Fatal(err)
	}
	if r := runPirn(t, "run", "--memory", p); r.code != 0 || !strings.Contains(r.stdout, "sq = 4") {
		t.Errorf("run after lock: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestCheckCommand(t *testing.T) {
	t.Parallel()
	r := runPirn(t, "check", "../../testdata/pipelines/check/broken.yaml")
	if r.code != 1 || !strings.Contains(r.stdout, `broken.yaml:14: error: knot "mismatch": input "x" wants int, but "xs" produces list[int]`) ||
		!strings.Contains(r.stdout, `broken.yaml:15: warning:`) {
		t.Errorf("check broken.yaml: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runPirn(t, "check", "../../examples/pipelines/branch.yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "ok, no issues found") {
		t.Errorf("check branch.yaml: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// An unpinned pipeline: an error, or with --unpinned a warning per module.
	dir := t.TempDir()
	p := filepath.Join(dir, "loose.yaml")
	arith, _ := filepath.Abs("../../examples/wasm/go/arith/arith.wasm")
	os.WriteFile(p, []byte("name: loose\nmodules: {arith: "+arith+"}\nnodes:\n"+
		"  - {id: x, type: parameter, type_: int}\n  - {id: d, type: knot, module: arith, knot: double, parents: {x: x}}\n"), 0o644)
	r = runPirn(t, "check", p)
	if r.code != 1 || !strings.Contains(r.stdout, "no lock file") || !strings.Contains(r.stderr, "1 error, 0 warnings") {
		t.Errorf("check unpinned: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runPirn(t, "check", "--unpinned", p)
	if r.code != 0 || !strings.Contains(r.stdout, `loose.yaml:2: warning: module "arith" is not pinned by a lock file: run `+"`pirn lock") {
		t.Errorf("check --unpinned: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runPirn(t, "check", "--unpinned", "--strict", p)
	if r.code != 1 || !strings.Contains(r.stderr, "0 errors, 1 warning") {
		t.Errorf("check --unpinned --strict: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestGraphCommand(t *testing.T) {
	t.Parallel()
	r := runPirn(t, "graph", "../../examples/pipelines/branch.yaml")
	for _, want := range []string{"graph TD", `route{"route<br/>(branch: sign)"}`, "x -->|input| route", "route -->|chosen| route_neg", "route_neg -->|x| flipped"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("graph lacks %q:\n%s%s", want, r.stdout, r.stderr)
		}
	}
	state := t.TempDir()
	r = runPirn(t, "run", "--state", state, "--run-id", "run-graph", "../../examples/pipelines/branch.yaml")
	if r.code != 0 {
		t.Fatalf("run: %s", r.stderr)
	}
	r = runPirn(t, "graph", "--state", state, "--run", "run-graph")
	for _, want := range []string{"class route ok;", "class route_zero skipped;", "class kept skipped;", "route_neg -->|x| flipped"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("run graph lacks %q:\n%s%s", want, r.stdout, r.stderr)
		}
	}
}

func TestConformanceCommand(t *testing.T) {
	t.Parallel()
	r := runPirn(t, "conformance", "--calls", "100", "../../examples/wasm/wat/negate.wasm", "../../testdata/hostile/badversion.wasm")
	if r.code != 1 || !strings.Contains(r.stderr, "1 of 2 modules failed conformance") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{
		"module ../../examples/wasm/wat/negate.wasm (sha256:",
		"  knot negate\n    PASS sample inputs   4 calls: 4 ok",
		"PASS: 7 passed, 0 warnings, 0 failed, 0 skipped",
		"  FAIL handshake       module ../../testdata/hostile/badversion.wasm (sha256:",
		"FAIL: 0 passed, 0 warnings, 1 failed, 0 skipped",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, r.stdout)
		}
	}
	r = runPirn(t, "conformance", "--json", "--abi", "wasi-command", "../../examples/wasm/wasi-command/wc/wc.wasm")
	var reports []struct {
		ABI    string
		Checks []struct{ Knot, Name, Status string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &reports); err != nil || r.code != 0 || len(reports) != 1 || reports[0].ABI != "wasi-command" {
		t.Fatalf("--json: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if c := reports[0].Checks[len(reports[0].Checks)-1]; c.Knot != "main" || c.Name != "memory" || c.Status != "skip" {
		t.Errorf("last check = %+v", c)
	}
	if r := runPirn(t, "conformance"); r.code != 2 {
		t.Errorf("no modules: exit %d", r.code)
	}
}

// TestGlobalFlagsAnywhere accepts the global flags after the command too.
func TestGlobalFlagsAnywhere(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--log-level", "info", "run", "--memory", quickstart},
		{"run", "--log-level", "info", "--memory", quickstart},
		{"run", quickstart, "--memory", "--log-level=info", "--log-format", "json"},
	} {
		r := runPirn(t, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "answer = 15") {
			t.Errorf("%v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
	r := runPirn(t, "run", quickstart, "--memory", "--log-level", "loud")
	if r.code != 2 || !strings.Contains(r.stderr, "--log-level") {
		t.Errorf("bad level: exit %d, %q", r.code, r.stderr)
	}
	state := t.TempDir()
	runPirn(t, "run", "--state", state, quickstart)
	r = runPirn(t, "runs", "show", "--log-level", "info", "--state", state, "run-nope")
	if r.code != 2 || !strings.Contains(r.stderr, "run-nope") {
		t.Errorf("runs show: exit %d, %q", r.code, r.stderr)
	}
}

// TestBundle packs the polyglot pipeline, runs the bundle, and refuses
// bundles that lack a module or were tampered with, before running.
func TestBundle(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "app.pirn")
	r := runPirn(t, "bundle", "../../examples/polyglot/pipeline.yaml", "-o", out)
	if r.code != 0 || !strings.Contains(r.stdout, out+" sha256:") {
		t.Fatalf("bundle: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	first, _ := os.ReadFile(out)
	runPirn(t, "bundle", "../../examples/polyglot/pipeline.yaml", "-o", out)
	if again, _ := os.ReadFile(out); !bytes.Equal(first, again) {
		t.Error("bundling twice gave different bytes")
	}
	// Run from another directory: nothing outside the bundle is needed.
	r = runPirn(t, "run", "--memory", "--json", out, "-p", "text=one two two")
	var res struct{ Outputs map[string]any }
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 {
		t.Fatalf("run bundle: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if report, _ := res.Outputs["report"].(map[string]any); report["shout"] != "ONE TWO TWO" {
		t.Errorf("report = %v", res.Outputs["report"])
	}

	c, err := bundle.ReadBytes(first)
	if err != nil {
		t.Fatal(err)
	}
	missing := *c
	missing.Modules = nil
	for _, m := range c.Modules {
		if m.Name != "negate" {
			missing.Modules = append(missing.Modules, m)
		}
	}
	var buf bytes.Buffer
	bundle.Write(&buf, missing)
	bad := filepath.Join(dir, "missing.pirn")
	os.WriteFile(bad, buf.Bytes(), 0o644)
	state := filepath.Join(dir, "state")
	r = runPirn(t, "run", "--state", state, bad)
	if r.code != 2 || !strings.Contains(r.stderr, `missing.pirn:pipeline.yaml:13: module "negate" is not in the bundle`) {
		t.Errorf("missing module: exit %d, %q", r.code, r.stderr)
	}
	tampered := bytes.Clone(first)
	tampered[len(tampered)/2] ^= 0xff
	os.WriteFile(bad, tampered, 0o644)
	r = runPirn(t, "run", "--state", state, bad)
	if r.code != 2 || !strings.Contains(r.stderr, "does not match its digest") {
		t.Errorf("tampered bundle: exit %d, %q", r.code, r.stderr)
	}
	// Nothing ran: no run was recorded.
	r = runPirn(t, "runs", "--state", state)
	if strings.Contains(r.stdout, "polyglot") {
		t.Errorf("a refused bundle left a run:\n%s", r.stdout)
	}
	if r := runPirn(t, "run", "--unpinned", "--memory", out); r.code != 2 || !strings.Contains(r.stderr, "--unpinned does not apply to a bundle") {
		t.Errorf("--unpinned with a bundle: exit %d, %q", r.code, r.stderr)
	}
}

// slowPipeline writes a pipeline whose run takes about half a second: a
// Map of 40 sleeps (real ones: the knot is granted the clock).
func slowPipeline(t *testing.T, dir string) string {
	t.Helper()
	capknots, _ := filepath.Abs("../../testdata/wasm/go/capknots/capknots.wasm")
	arith, _ := filepath.Abs("../../examples/wasm/go/arith/arith.wasm")
	p := filepath.Join(dir, "slow.yaml")
	yaml := "name: slow\ninstance: reset\nmodules: {cap: " + capknots + ", arith: " + arith + "}\nnodes:\n" +
		"  - {id: n, type: parameter, type_: int, default: 40}\n" +
		"  - {id: items, type: knot, module: arith, knot: range, parents: {n: n}}\n" +
		"  - {id: waits, type: map, over: items, each: {module: cap, knot: sleep}, bind: ms, grants: {clock: true}}\n" +
		"  - {id: total, type: knot, module: arith, knot: total, parents: {xs: waits}}\n"
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runPirn(t, "lock", p); r.code != 0 {
		t.Fatalf("lock: %s", r.stderr)
	}
	return p
}

// startUntil starts pirn with args and waits, for a minute at most, until
// a line of its stderr contains marker. log returns the stderr read so far.
// On a timeout the process is killed and waited for.
func startUntil(marker string, args ...string) (cmd *exec.Cmd, log func() string, err error) {
	cmd = exec.Command(pirnBin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	var mu sync.Mutex
	var b strings.Builder
	log = func() string {
		mu.Lock()
		defer mu.Unlock()
		return b.String()
	}
	seen := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			mu.Lock()
			b.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if !once && strings.Contains(sc.Text(), marker) {
				once = true
				close(seen)
			}
		}
	}()
	select {
	case <-seen:
		return cmd, log, nil
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		cmd.Wait()
		return nil, nil, fmt.Errorf("no %q on stderr within a minute:\n%s", marker, log())
	}
}

// checkState verifies a state directory after crashes: no run is left
// running, every finished run is readable in full, and every value in
// the data store hashes to its name.
func checkState(t *testing.T, state string) (succeeded, interrupted int) {
	t.Helper()
	r := runPirn(t, "runs", "--state", state, "--json")
	var runs []struct {
		ID         string   `json:"run_id"`
		Status     string   `json:"status"`
		DurationMS *float64 `json:"duration_ms"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil {
		t.Fatalf("runs: %v\n%s%s", err, r.stdout, r.stderr)
	}
	if r := runPirn(t, "runs", "--state", state); strings.Contains(r.stdout, "-9223372036854775808") {
		t.Errorf("runs lists a negative duration:\n%s", r.stdout)
	}
	for _, run := range runs {
		switch run.Status {
		case "succeeded":
			succeeded++
			r := runPirn(t, "runs", "show", "--state", state, "--json", run.ID)
			var shown struct {
				Knots []struct {
					ID       string   `json:"id"`
					Outcome  string   `json:"outcome"`
					Grants   []string `json:"grants"`
					Hermetic bool     `json:"hermetic"`
				} `json:"knots"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil || len(shown.Knots) != 4+40 {
				t.Errorf("run %s: %d records, %v\n%s", run.ID, len(shown.Knots), err, r.stderr)
			}
			for _, k := range shown.Knots {
				if k.Outcome != "ok" || (strings.HasPrefix(k.ID, "waits") != (len(k.Grants) == 1 && k.Grants[0] == "clock")) || k.Hermetic != (len(k.Grants) == 0) {
					t.Errorf("run %s, %s: %s, grants %v, hermetic %v", run.ID, k.ID, k.Outcome, k.Grants, k.Hermetic)
				}
			}
		case "interrupted":
			interrupted++
			if run.DurationMS != nil {
				t.Errorf("interrupted run %s: duration_ms %v, want null", run.ID, *run.DurationMS)
			}
		default:
			t.Errorf("run %s: status %s", run.ID, run.Status)
		}
	}
	filepath.WalkDir(filepath.Join(state, "data"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".tmp-") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil || cas.Sum(b).String() != "sha256:"+d.Name() {
			t.Errorf("store file %s does not hash to its name (%v)", p, err)
		}
		return nil
	})
	return succeeded, interrupted
}

// TestKillMidRun kills pirn run with SIGKILL at random points of runs,
// repeatedly, between runs that complete, and checks that the state
// directory stays consistent and the killed runs are marked interrupted.
func TestKillMidRun(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("kills processes for several seconds")
	}
	dir := t.TempDir()
	p := slowPipeline(t, dir)
	state := filepath.Join(dir, "state")
	completed, killed := 0, 0
	for round := range 8 {
		if round%2 == 0 {
			if r := runPirn(t, "run", "--state", state, p); r.code != 0 {
				t.Fatalf("round %d: exit %d: %s", round, r.code, r.stderr)
			}
			completed++
			continue
		}
		// Kill at a random point after the run has begun: the first
		// knot's debug record says the run is recorded. A fixed delay
		// from process start would often land before that on a loaded
		// machine (loading and compiling are not part of the run).
		cmd, _, err := startUntil(`msg="knot finished"`, "--log-level", "debug", "run", "--state", state, p)
		if err != nil {
			t.Errorf("round %d: %v", round, err)
			continue
		}
		time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		if err := cmd.Wait(); err != nil {
			killed++
		} else {
			completed++ // it finished before the signal came
		}
	}
	succeeded, interrupted := checkState(t, state)
	t.Logf("%d runs completed, %d killed: %d succeeded, %d interrupted", completed, killed, succeeded, interrupted)
	if succeeded < completed || interrupted == 0 || succeeded+interrupted > completed+killed {
		t.Errorf("%d succeeded and %d interrupted after %d completed and %d killed runs", succeeded, interrupted, completed, killed)
	}
}

// TestConcurrentRuns runs several pirn processes on one state directory at
// once.
func TestConcurrentRuns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := slowPipeline(t, dir)
	state := filepath.Join(dir, "state")
	const n = 4
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Go(func() {
			r, err := execPirn("run", "--state", state, p, "-p", fmt.Sprintf("n=%d", 40))
			codes[i] = r.code
			if err != nil || r.code != 0 {
				t.Errorf("run %d: %v %s", i, err, r.stderr)
			}
		})
	}
	wg.Wait()
	if succeeded, _ := checkState(t, state); succeeded != n {
		t.Errorf("%d runs succeeded, want %d (exit codes %v)", succeeded, n, codes)
	}
}

// TestSignalEndsRun sends SIGINT or SIGTERM to pirn run while a knot loops
// (under a long timeout) beside nodes that once hung the scheduler: the
// run must end promptly and be recorded cancelled.
func TestSignalEndsRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	misbehave, _ := filepath.Abs("../../testdata/hostile/misbehave.wasm")
	arith, _ := filepath.Abs("../../examples/wasm/go/arith/arith.wasm")
	p := filepath.Join(dir, "spin.yaml")
	yaml := "name: spin\nmodules: {bad: " + misbehave + ", arith: " + arith + "}\nlimits: {timeout: 10m}\nnodes:\n" +
		"  - {id: x, type: parameter, type_: int, default: 2}\n" +
		"  - {id: twice, type: knot, module: arith, knot: add, parents: {a: x, b: x}}\n" +
		"  - {id: spin, type: source, module: bad, knot: loop}\n" +
		"  - {id: after, type: aggregator, parents: {s: spin, t: twice, u: twice}}\n"
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runPirn(t, "lock", p); r.code != 0 {
		t.Fatalf("lock: %s", r.stderr)
	}
	state := filepath.Join(dir, "state")
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		id := "spin-" + strings.ToLower(sig.String()[:3]) + fmt.Sprint(int(sig))
		cmd, log, err := startUntil("knot=twice", "--log-level", "debug", "run", "--state", state, "--run-id", id, p)
		if err != nil {
			t.Fatalf("%v: %v", sig, err)
		}
		sent := time.Now()
		cmd.Process.Signal(sig)
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		select {
		case err := <-waited:
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Errorf("%v: exit %v, want status 1", sig, err)
			}
			t.Logf("%v: pirn ended %v after the signal", sig, time.Since(sent).Round(time.Millisecond))
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%v: pirn run still running 20s after the signal\n%s", sig, log())
		}
		r := runPirn(t, "runs", "show", "--state", state, "--json", id)
		var run struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &run); err != nil || run.Status != "cancelled" {
			t.Errorf("%v: recorded run: %v %s %s", sig, err, r.stdout, r.stderr)
		}
	}
}

// TestCommandLine covers what a new user meets first: the version, help,
// unknown commands and flags (one line and a hint on stderr, nothing on
// stdout), and --json on every command that prints results, errors
// included.
func TestCommandLine(t *testing.T) {
	t.Parallel()
	r := runPirn(t, "--version")
	if r.code != 0 || !strings.Contains(r.stdout, "pirn version") || !strings.Contains(r.stdout, "knot ABI v1") {
		t.Errorf("--version: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	r = runPirn(t, "help", "run")
	if r.code != 0 || !strings.Contains(r.stdout, "pirn run - run a pipeline") {
		t.Errorf("help run: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	for _, tc := range []struct {
		args       []string
		want, hint string
	}{
		{[]string{"rnu", "x.yaml"}, `unknown command "rnu"`, `did you mean "run"?`},
		{[]string{"run", "--bogus", quickstart}, "flag provided but not defined: -bogus", "pirn: see 'pirn run --help'"},
		{[]string{"runs", "show", "--limit", "3", "x"}, "flag provided but not defined: -limit", "pirn: see 'pirn runs show --help'"},
		{[]string{"run"}, "run takes one pipeline file, got 0 arguments", "pirn: see 'pirn run --help'"},
	} {
		r := runPirn(t, tc.args...)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code != 2 || r.stdout != "" || len(lines) != 2 || !strings.Contains(lines[0], tc.want) || !strings.Contains(r.stderr, tc.hint) {
			t.Errorf("pirn %v: exit %d, stdout %q, stderr %q; want 2, nothing, %q and %q", tc.args, r.code, r.stdout, r.stderr, tc.want, tc.hint)
		}
	}

	// --json: one JSON document on stdout, errors included.
	dir := t.TempDir()
	jsonOf := func(args ...string) (map[string]any, result) {
		t.Helper()
		r := runPirn(t, args...)
		var doc map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Errorf("pirn %v: stdout is not one JSON document (%v): %q (stderr %q)", args, err, r.stdout, r.stderr)
		}
		return doc, r
	}
	if doc, r := jsonOf("check", "--json", quickstart); r.code != 0 || doc["ok"] != true {
		t.Errorf("check --json: exit %d, %v", r.code, doc)
	}
	if doc, r := jsonOf("check", "--json", "../../testdata/pipelines/check/broken.yaml"); r.code != 1 || doc["ok"] != false || len(doc["errors"].([]any)) == 0 {
		t.Errorf("check --json of a broken pipeline: exit %d, %v", r.code, doc)
	}
	if doc, r := jsonOf("check", "--json", filepath.Join(dir, "missing.yaml")); r.code != 2 || !strings.Contains(fmt.Sprint(doc["error"]), "missing.yaml") || r.stderr != "" {
		t.Errorf("check --json of a missing file: exit %d, %v, stderr %q", r.code, doc, r.stderr)
	}
	if doc, r := jsonOf("run", "--json", "--frobnicate", quickstart); r.code != 2 || doc["help"] != "pirn run --help" {
		t.Errorf("run --json with a bad flag: exit %d, %v", r.code, doc)
	}
	if doc, r := jsonOf("graph", "--json", quickstart); r.code != 0 || len(doc["nodes"].([]any)) != 3 || len(doc["edges"].([]any)) != 3 ||
		!strings.HasPrefix(fmt.Sprint(doc["mermaid"]), "graph TD") {
		t.Errorf("graph --json: exit %d, %v", r.code, doc)
	}
	state := filepath.Join(dir, "state")
	runPirn(t, "run", "--state", state, "--run-id", "g", quickstart)
	if doc, r := jsonOf("graph", "--json", "--state", state, "--run", "g"); r.code != 0 || len(doc["nodes"].([]any)) != 3 || len(doc["edges"].([]any)) != 3 ||
		doc["nodes"].([]any)[2].(map[string]any)["outcome"] != "ok" {
		t.Errorf("graph --run --json: exit %d, %v", r.code, doc)
	}
	p := filepath.Join(dir, "q.yaml")
	src, _ := os.ReadFile(quickstart)
	arith, _ := filepath.Abs("../../examples/wasm/go/arith/arith.wasm")
	os.WriteFile(p, []byte(strings.Replace(string(src), "../wasm/go/arith/arith.wasm", arith, 1)), 0o644)
	if doc, r := jsonOf("lock", "--json", p); r.code != 0 || doc["lock_file"] != filepath.Join(dir, "q.lock") || len(doc["modules"].([]any)) != 1 {
		t.Errorf("lock --json: exit %d, %v", r.code, doc)
	}
	out := filepath.Join(dir, "q.pirn")
	if doc, r := jsonOf("bundle", "--json", "-o", out, p); r.code != 0 || doc["bundle"] != out || !strings.HasPrefix(fmt.Sprint(doc["digest"]), "sha256:") {
		t.Errorf("bundle --json: exit %d, %v", r.code, doc)
	}
}

// TestNoModulesNoLock runs a pipeline of parameters and expressions: it
// has nothing to pin, so it needs no lock file.
func TestNoModulesNoLock(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "expr.yaml")
	os.WriteFile(p, []byte("name: expr\nnodes:\n  - {id: x, type: parameter, type_: int, default: 2}\n"+
		"  - {id: big, type: gate, input: x, predicate: \"x > 1\"}\n"), 0o644)
	if r := runPirn(t, "run", "--memory", p); r.code != 0 || !strings.Contains(r.stdout, "big = 2") {
		t.Errorf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestReadOnlyCommandsNeedState: commands that read the history say the
// state directory does not exist rather than creating it.
func TestReadOnlyCommandsNeedState(t *testing.T) {
	t.Parallel()
	state := filepath.Join(t.TempDir(), "typo")
	for _, args := range [][]string{
		{"runs", "--state", state},
		{"runs", "show", "--state", state, "run-x"},
		{"lineage", "--state", state, "--knot", "x"},
		{"graph", "--state", state, "--run", "run-x"},
	} {
		r := runPirn(t, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "the state directory "+state+" does not exist") {
			t.Errorf("pirn %v: exit %d, stderr %q", args, r.code, r.stderr)
		}
		if _, err := os.Stat(state); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("pirn %v created %s", args, state)
		}
	}
}

// TestRunIDReuse: an explicit run id already recorded is refused, and
// replaced only when asked.
func TestRunIDReuse(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	if r := runPirn(t, "run", "--state", state, "--run-id", "mine", quickstart); r.code != 0 {
		t.Fatalf("first run: %s", r.stderr)
	}
	r := runPirn(t, "run", "--state", state, "--run-id", "mine", "-p", "x=7", quickstart)
	if r.code != 2 || !strings.Contains(r.stderr, `run id "mine" is already recorded`) || !strings.Contains(r.stderr, "--replace") {
		t.Errorf("second run: exit %d, %q", r.code, r.stderr)
	}
	r = runPirn(t, "runs", "show", "--state", state, "mine")
	if !strings.Contains(r.stdout, "answer = 15") {
		t.Errorf("the first run was touched:\n%s", r.stdout)
	}
	if r := runPirn(t, "run", "--state", state, "--run-id", "mine", "--replace", "-p", "x=7", quickstart); r.code != 0 {
		t.Fatalf("--replace: %s", r.stderr)
	}
	if r := runPirn(t, "runs", "show", "--state", state, "mine"); !strings.Contains(r.stdout, "answer = 21") {
		t.Errorf("after --replace:\n%s", r.stdout)
	}
}

// TestRunReport: the summary counts nodes as the table lists them, with
// Map elements apart, and a value changed on disk is reported corrupt.
func TestRunReport(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	r := runPirn(t, "run", "--state", state, "--run-id", "m", "../../examples/pipelines/map.yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "(5 nodes: 5 ok, 0 failed, 0 skipped; 12 map elements)") {
		t.Errorf("map run: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if rows := strings.Count(r.stdout[strings.Index(r.stdout, "knot "):], "\n") - 1; rows != 5 {
		t.Errorf("table has %d rows, want 5:\n%s", rows, r.stdout)
	}
	r = runPirn(t, "runs", "--state", state, "--json")
	var runs []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil || len(runs) != 1 || runs[0]["nodes"] != 5.0 || runs[0]["map_elements"] != 12.0 {
		t.Errorf("runs --json: %v %s", err, r.stdout)
	}
	// Corrupt one stored value.
	var shown struct {
		Knots []struct{ ID, Output string } `json:"knots"`
	}
	json.Unmarshal([]byte(runPirn(t, "runs", "show", "--json", "--state", state, "m").stdout), &shown)
	var victim, file string
	for _, k := range shown.Knots {
		if k.Output != "" && !strings.Contains(k.ID, ":") {
			victim, file = k.ID, filepath.Join(state, "data", "sha256", k.Output[7:9], k.Output[7:])
		}
	}
	if err := os.WriteFile(file, []byte{0x01}, 0o644); err != nil {
		t.Fatal(err)
	}
	r = runPirn(t, "runs", "show", "--state", state, "m")
	if !strings.Contains(r.stdout, victim+" = (corrupt in the data store") {
		t.Errorf("a corrupt value is not reported as corrupt (%s):\n%s", victim, r.stdout)
	}
}

// TestRunReportMapIDWithColon: a Map whose id contains ':' keeps its
// elements' summary in pirn run's table and in the run's flowchart, which
// read each element's Map from its record rather than from its id.
func TestRunReportMapIDWithColon(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "colon.yaml")
	if err := os.WriteFile(file, []byte(`name: colon
nodes:
  - {id: xs, type: parameter, type_: "list[int]", default: [1, 2, 0, 3]}
  - {id: "sq:each", type: map, over: xs, each: "10 / item"}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	r := runPirn(t, "run", "--state", state, "--run-id", "c", file)
	want := "(elements: 3 ok, 1 err, 0 skipped)"
	if r.code != 1 || !strings.Contains(r.stdout, "(2 nodes: 1 ok, 1 failed, 0 skipped; 4 map elements)") {
		t.Errorf("run: exit %d, want 1 (an element fails):\n%s%s", r.code, r.stdout, r.stderr)
	}
	var row string
	for line := range strings.Lines(r.stdout) {
		if strings.HasPrefix(line, "sq:each ") {
			row = line
		}
	}
	if !strings.Contains(row, want) {
		t.Errorf("run: the map's row %q lacks %q:\n%s", row, want, r.stdout)
	}
	r = runPirn(t, "graph", "--state", state, "--run", "c")
	if want := `sq_each[["sq:each<br/>(map: 10 / item)<br/>err: ElementFailed<br/>elements: 3 ok, 1 err, 0 skipped"]]`; r.code != 0 || !strings.Contains(r.stdout, want) {
		t.Errorf("graph --run: exit %d, lacks %q:\n%s%s", r.code, want, r.stdout, r.stderr)
	}
}

// TestKnotInOwnModule follows docs/pdk.md, "A Go knot in a module of your
// own", verbatim: its shell block runs in a fresh directory with PIRN set
// to this checkout, installing pirn into a directory of the test's, and
// its output must hold what the document says pirn inspect prints.
func TestKnotInOwnModule(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds a Go module for wasip1 and installs pirn")
	}
	doc, err := os.ReadFile("../../docs/pdk.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- tested by TestKnotInOwnModule")
	if !ok {
		t.Fatal("docs/pdk.md has no block marked for TestKnotInOwnModule")
	}
	block := func(after, fence string) string {
		_, body, ok := strings.Cut(rest[strings.Index(rest, after):], fence+"\n")
		if !ok {
			t.Fatalf("no %s block after %q", fence, after)
		}
		body, _, _ = strings.Cut(body, "\n```\n")
		return body
	}
	script := block("```sh", "```sh")
	want := block("`pirn inspect` prints", "```")
	checkout, _ := filepath.Abs("../..")
	dir, bin := t.TempDir(), t.TempDir()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PIRN="+checkout, "GOBIN="+bin, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the documented steps failed: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(want), "\n") {
		if !strings.Contains(string(out), line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
	if !strings.Contains(string(out), "0 failed") {
		t.Errorf("conformance did not pass:\n%s", out)
	}
}

// TestHostileTextEscaped: text a pipeline (or a module, or a stored value)
// supplies reaches the terminal with its control and bidirectional
// characters escaped, in text and in JSON output alike.
func TestHostileTextEscaped(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "evil.yaml")
	os.WriteFile(p, []byte("name: evil\nnodes:\n  - {id: x, type: parameter, type_: int, default: 0}\n"+
		"  - {id: g, type: gate, input: x, predicate: \"10 / x == 1 || \\\"\\e[2J\\u202e\\x9b\\\" == \\\"\\\"\"}\n"), 0o644)
	r := runPirn(t, "run", "--memory", p)
	if r.code != 1 || strings.ContainsAny(r.stdout+r.stderr, "\x1b\u202e\u009b") || !strings.Contains(r.stdout, `"\u001b[2J\u202e\u009b"`) {
		t.Errorf("text output: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	r = runPirn(t, "run", "--memory", "--json", p)
	var doc struct {
		Errors []struct{ Message string } `json:"errors"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || strings.ContainsAny(r.stdout, "\x1b\u202e\u009b") ||
		len(doc.Errors) != 1 || !strings.Contains(doc.Errors[0].Message, "\x1b[2J\u202e\u009b") {
		t.Errorf("JSON output: %v, %q", err, r.stdout)
	}
}

func TestTerminalWriter(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain text\n\twith a tab":   "plain text\n\twith a tab",
		"a\x1b[31mred\x07":           `a\u001b[31mred\u0007`,
		"del\x7f c1\u0085 csi\u009b": `del\u007f c1\u0085 csi\u009b`,
		"bidi\u202eevil\u2066":       `bidi\u202eevil\u2066`,
		"bad \xff\xfe utf-8":         `bad \xff\xfe utf-8`,
		"zero\u200bwidth é ü 漢":      `zero\u200bwidth é ü 漢`,
	} {
		var b strings.Builder
		n, err := terminalWriter{&b}.Write([]byte(in))
		if err != nil || n != len(in) || b.String() != want {
			t.Errorf("Write(%q) = %d, %v, wrote %q; want %q", in, n, err, b.String(), want)
		}
	}
}

// TestNotRegularFiles names devices, a named pipe and a directory where
// pirn expects a pipeline, a module or a bundle: each is refused at once,
// never read (from /dev/zero, forever) nor waited on (a pipe without a
// writer).
func TestNotRegularFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "p.yaml")
	os.WriteFile(p, []byte("name: p\nmodules: {z: /dev/zero}\nnodes:\n  - {id: k, type: source, module: z, knot: k}\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--memory", "/dev/zero"}, "pipeline /dev/zero is a device, not a regular file"},
		{[]string{"check", "/dev/zero"}, "pipeline /dev/zero is a device, not a regular file"},
		{[]string{"run", "--memory", fifo}, "is a named pipe, not a regular file"},
		{[]string{"run", "--memory", dir}, "is a directory, not a file"},
		{[]string{"inspect", "/dev/zero"}, "module /dev/zero is a device, not a regular file"},
		{[]string{"inspect", fifo}, "is a named pipe, not a regular file"},
		{[]string{"conformance", "/dev/urandom"}, "module /dev/urandom is a device, not a regular file"},
		{[]string{"run", "--memory", "--unpinned", p}, "module /dev/zero is a device, not a regular file"},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		cmd := exec.CommandContext(ctx, pirnBin, tc.args...)
		out, err := cmd.CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		var ee *exec.ExitError
		if timedOut || !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("pirn %v: %v (timed out: %v)\n%s\nwant exit 2 and %q", tc.args, err, timedOut, out, tc.want)
		}
	}
}

// TestAmplificationBounded runs testdata/hostile/amplify.yaml: knots return
// four million empty lists (4 MiB of CBOR, canonical; 8 MB, not), which
// decoded would be gigabytes (7.3 GiB of peak RSS and 36 s before the
// host kept values as bytes). Every consumer errs naming its bound, the
// siblings complete, and the process's peak RSS stays under 384 MiB
// (150 MiB on an idle machine, 160–190 MiB with both cores busy).
func TestAmplificationBounded(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs knots that return millions of elements")
	}
	cmd := exec.Command(pirnBin, "run", "--memory", "--json", "../../testdata/hostile/amplify.yaml")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	peak, err := runPeakRSS(cmd)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Knots  []struct{ ID, Outcome, Output string } `json:"knots"`
		Errors []struct{ Knot, Type, Message string } `json:"errors"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s%s", err, out.Bytes(), errb.Bytes())
	}
	outcome, output := map[string]string{}, map[string]string{}
	for _, k := range doc.Knots {
		outcome[k.ID], output[k.ID] = k.Outcome, k.Output
	}
	errs := map[string]string{}
	for _, e := range doc.Errors {
		errs[e.Knot] = e.Type + ": " + e.Message
	}
	for id, want := range map[string]string{"big": "ok", "big_loose": "ok", "counted": "ok", "one": "ok", "mapped": "err", "measured": "err", "summed": "err"} {
		if outcome[id] != want {
			t.Errorf("%s: %s, want %s (%s)", id, outcome[id], want, errs[id])
		}
	}
	if output["big"] != output["big_loose"] {
		t.Errorf("the loose list re-encoded to %s, the canonical one is %s", output["big_loose"], output["big"])
	}
	for id, want := range map[string]string{
		"mapped":   "TooManyElements: map \"mapped\": over: a list of 4000000 elements, over the limit max_elements=100000",
		"measured": "more than 1048576 elements",
		"summed":   "too large to convert",
	} {
		if !strings.Contains(errs[id], want) {
			t.Errorf("%s: %q, want it to contain %q", id, errs[id], want)
		}
	}
	t.Logf("peak RSS %d MiB, %v", peak>>20, time.Since(start).Round(time.Millisecond))
	if peak > 384<<20 {
		t.Errorf("peak RSS %d MiB, over 384 MiB", peak>>20)
	}
}

// runPeakRSS runs cmd and returns its peak RSS, the kernel's high-water
// mark read from /proc every 5 ms while it runs. Not the Maxrss of its
// rusage: Go starts a child sharing this process's memory until exec, and
// Linux counts the test binary's own high-water mark in the child's
// (under the race detector, hundreds of MiB that are not pirn's).
func runPeakRSS(cmd *exec.Cmd) (uint64, error) {
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	var peak uint64
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(status); err == nil {
			for line := range strings.Lines(string(b)) {
				if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					var kb uint64
					fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
					peak = max(peak, kb<<10)
				}
			}
		}
		select {
		case <-done:
			if peak == 0 {
				return 0, errors.New("no VmHWM in " + status)
			}
			return peak, nil
		case <-tick.C:
		}
	}
}

// TestBundleTrust: a bundle is someone else's work. It runs only if it is
// the digest it was pinned to, only if a trusted key signed it when keys
// are given, and grants its knots nothing unless the operator allows it,
// seeing what it grants.
func TestBundleTrust(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, other := filepath.Join(dir, "key"), filepath.Join(dir, "other")
	for _, k := range []string{key, other} {
		if r := runPirn(t, "keygen", k); r.code != 0 {
			t.Fatalf("keygen: %s", r.stderr)
		}
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the private key: %v, %v", fi.Mode(), err)
	}
	if r := runPirn(t, "keygen", key); r.code != 2 || !strings.Contains(r.stderr, "file exists") {
		t.Errorf("keygen over an existing key: exit %d, %s", r.code, r.stderr)
	}
	signed, unsigned := filepath.Join(dir, "signed.pirn"), filepath.Join(dir, "unsigned.pirn")
	if r := runPirn(t, "bundle", "--sign", key, "-o", signed, quickstart); r.code != 0 {
		t.Fatalf("bundle --sign: %s", r.stderr)
	}
	if r := runPirn(t, "bundle", "-o", unsigned, quickstart); r.code != 0 {
		t.Fatalf("bundle: %s", r.stderr)
	}
	b, _ := os.ReadFile(signed)
	for _, tc := range []struct {
		args []string
		want string // "" for a run that succeeds
	}{
		{[]string{"--trust", key + ".pub", signed}, ""},
		{[]string{"--trust", other + ".pub", "--trust", key + ".pub", signed}, ""},
		{[]string{"--trust", other + ".pub", signed}, "not signed by a trusted key: its signature (by key sha256:"},
		{[]string{"--trust", key + ".pub", unsigned}, "not signed by a trusted key: it is not signed"},
		{[]string{"--trust", key, signed}, "not a PEM public key"},
		{[]string{"--digest", bundle.Digest(b), signed}, ""},
		{[]string{"--digest", bundle.Digest(nil), signed}, "not the " + bundle.Digest(nil) + " it was pinned to"},
		{[]string{"--digest", bundle.Digest(b), quickstart}, "apply to a bundle"},
	} {
		r := runPirn(t, append([]string{"run", "--memory"}, tc.args...)...)
		if tc.want == "" && r.code != 0 || tc.want != "" && (r.code != 2 || !strings.Contains(r.stderr, tc.want)) {
			t.Errorf("run %v: exit %d, %s; want %q", tc.args, r.code, r.stderr, tc.want)
		}
	}

	// Grants need --allow-grants, and are shown.
	capknots, _ := filepath.Abs("../../testdata/wasm/go/capknots/capknots.wasm")
	p := filepath.Join(dir, "grants.yaml")
	os.WriteFile(p, []byte("name: grants\nmodules: {cap: "+capknots+"}\nnodes:\n"+
		"  - {id: home, type: knot, module: cap, knot: getenv, config: {name: HOME}, grants: {env: [HOME], clock: true}}\n"), 0o644)
	runPirn(t, "lock", p)
	granting := filepath.Join(dir, "grants.pirn")
	if r := runPirn(t, "bundle", "-o", granting, p); r.code != 0 {
		t.Fatalf("bundle: %s", r.stderr)
	}
	r := runPirn(t, "run", "--memory", granting)
	if r.code != 2 || !strings.Contains(r.stderr, "the bundle grants its knots capabilities") || !strings.Contains(r.stderr, "home: clock, env:HOME") {
		t.Errorf("a granting bundle without --allow-grants: exit %d, %s", r.code, r.stderr)
	}
	r = runPirn(t, "run", "--memory", "--allow-grants", granting)
	if r.code != 0 || !strings.Contains(r.stderr, "pirn: the bundle grants home: clock, env:HOME") {
		t.Errorf("with --allow-grants: exit %d, %s", r.code, r.stderr)
	}

	// check shows what a bundle is, who signed it and what it grants,
	// without running it.
	gb, _ := os.ReadFile(granting)
	r = runPirn(t, "check", granting)
	for _, want := range []string{"bundle " + bundle.Digest(gb) + `: pipeline "grants", 1 module`, "not signed", "grants home: clock, env:HOME", "ok, no issues found"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("check %s: exit %d, %s%s; want %q", granting, r.code, r.stdout, r.stderr, want)
		}
	}
	r = runPirn(t, "check", "--trust", key+".pub", signed)
	if r.code != 0 || !strings.Contains(r.stdout, "signed by trusted key sha256:") || !strings.Contains(r.stdout, "grants its knots nothing") {
		t.Errorf("check --trust: exit %d, %s%s", r.code, r.stdout, r.stderr)
	}
	r = runPirn(t, "check", signed)
	if r.code != 0 || !strings.Contains(r.stdout, "not verified: pass --trust KEY") {
		t.Errorf("check a signed bundle: exit %d, %s%s", r.code, r.stdout, r.stderr)
	}
	if r = runPirn(t, "check", "--trust", other+".pub", signed); r.code != 2 || !strings.Contains(r.stderr, "not signed by a trusted key") {
		t.Errorf("check --trust with the wrong key: exit %d, %s", r.code, r.stderr)
	}
}

// TestBackendURLs: --history and --store (and PIRN_HISTORY / PIRN_STORE)
// name where a run is recorded, on every command; an unknown scheme is a
// clear error that does not show the URL's password.
func TestBackendURLs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hist, store := "sqlite:"+filepath.Join(dir, "elsewhere.db"), "file:"+filepath.Join(dir, "values")
	if r := runPirn(t, "run", "--history", hist, "--store", store, "--state", filepath.Join(dir, "unused"), quickstart); r.code != 0 {
		t.Fatalf("pirn run exited %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "unused", "history.db")); err == nil {
		t.Error("the run was recorded in the state directory too")
	}
	entries, err := os.ReadDir(filepath.Join(dir, "values", "sha256"))
	if err != nil || len(entries) == 0 {
		t.Errorf("no values in the named store: %v", err)
	}
	// The flag after the command, and the environment.
	cmd := exec.Command(pirnBin, "runs", "--json")
	cmd.Env = append(os.Environ(), "PIRN_HISTORY="+hist)
	out, err := cmd.Output()
	var runs []struct {
		Status string `json:"status"`
	}
	if err != nil || json.Unmarshal(out, &runs) != nil || len(runs) != 1 || runs[0].Status != "succeeded" {
		t.Fatalf("PIRN_HISTORY runs = %s (%v)", out, err)
	}
	for _, args := range [][]string{
		{"run", "--history", "mysql://pirn:hunter2@db/x", quickstart},
		{"runs", "--store", "bolt:x", "--history", hist},
	} {
		r := runPirn(t, args...)
		if r.code == 0 || !strings.Contains(r.stderr, "unknown scheme") || strings.Contains(r.stderr+r.stdout, "hunter2") {
			t.Errorf("pirn %v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
}

// TestHistoryCopy: pirn history copy moves runs between histories,
// verified, and a second copy skips what is there.
func TestHistoryCopy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	from, to := "sqlite:"+filepath.Join(dir, "a.db"), "sqlite:"+filepath.Join(dir, "b.db")
	for range 2 {
		if r := runPirn(t, "run", "--history", from, "--state", dir, quickstart); r.code != 0 {
			t.Fatalf("pirn run: %s", r.stderr)
		}
	}
	r := runPirn(t, "history", "copy", "--from", from, "--to", to, "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "would copy 2 runs") {
		t.Fatalf("dry run: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = runPirn(t, "history", "copy", "--from", from, "--to", to, "--json")
	var st struct{ Copied, Skipped int }
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil || st.Copied != 2 {
		t.Fatalf("copy: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r = runPirn(t, "history", "copy", "--from", from, "--to", to); r.code != 0 || !strings.Contains(r.stdout, "copied 0 runs, skipped 2 runs") {
		t.Fatalf("again: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = runPirn(t, "runs", "--history", to, "--json")
	var runs []struct{ Status string }
	if json.Unmarshal([]byte(r.stdout), &runs) != nil || len(runs) != 2 {
		t.Errorf("runs in the copy: %s", r.stdout)
	}
	if r = runPirn(t, "history", "copy", "--from", "nope:x", "--to", to); r.code == 0 || !strings.Contains(r.stderr, "unknown scheme") {
		t.Errorf("bad URL: exit %d %q", r.code, r.stderr)
	}
}

// TestGC: pirn gc scrubs the values only expired runs need; the lineage
// stays and pirn runs show says the value was scrubbed.
func TestGC(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	var ids []string
	for _, x := range []string{"5", "7"} {
		r := runPirn(t, "run", "--state", state, "--json", "-p", "x="+x, quickstart)
		var out struct {
			RunID string `json:"run_id"`
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil {
			t.Fatalf("pirn run: %d %s", r.code, r.stderr)
		}
		ids = append(ids, out.RunID)
	}
	r := runPirn(t, "gc", "--state", state, "--keep-runs", "1", "--older-than", "0s", "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "would remove 3 values of 1 run") {
		t.Fatalf("dry run: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = runPirn(t, "gc", "--state", state, "--keep-runs", "1", "--older-than", "0s", "--json")
	var res struct{ Removed []string }
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &res) != nil || len(res.Removed) != 3 {
		t.Fatalf("gc: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if slices.Contains(res.Removed, digest(t, 21)) || !slices.Contains(res.Removed, digest(t, 15)) {
		t.Errorf("removed %v: want the first run's values only", res.Removed)
	}
	r = runPirn(t, "runs", "show", "--state", state, ids[0])
	if r.code != 0 || !strings.Contains(r.stdout, "scrubbed") || !strings.Contains(r.stdout, "by pirn gc") {
		t.Errorf("runs show of the scrubbed run:\n%s%s", r.stdout, r.stderr)
	}
	r = runPirn(t, "runs", "show", "--state", state, ids[1])
	if r.code != 0 || !strings.Contains(r.stdout, "answer = 21") {
		t.Errorf("runs show of the kept run:\n%s%s", r.stdout, r.stderr)
	}
	if r = runPirn(t, "gc", "--state", state, "--older-than", "soon"); r.code == 0 {
		t.Error("a bad --older-than was accepted")
	}
}

// TestPostgresFromTheCLI: pirn records to PostgreSQL by URL, reads it
// back, and copies a SQLite history into it.
func TestPostgresFromTheCLI(t *testing.T) {
	t.Parallel()
	base := os.Getenv("PIRN_TEST_POSTGRES")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	schema := fmt.Sprintf("pirn_cli_%d", time.Now().UnixNano())
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
	if r := runPirn(t, "run", "--history", pg, "--store", pg, "--state", dir, quickstart); r.code != 0 {
		t.Fatalf("pirn run to Postgres: %s", r.stderr)
	}
	lite := "sqlite:" + filepath.Join(dir, "h.db")
	if r := runPirn(t, "run", "--history", lite, "--state", dir, "-p", "x=7", quickstart); r.code != 0 {
		t.Fatalf("pirn run to SQLite: %s", r.stderr)
	}
	if r := runPirn(t, "history", "copy", "--from", lite, "--to", pg); r.code != 0 || !strings.Contains(r.stdout, "copied 1 run") {
		t.Fatalf("history copy: %q %q", r.stdout, r.stderr)
	}
	r := runPirn(t, "runs", "--history", pg, "--json")
	var runs []struct{ Status string }
	if json.Unmarshal([]byte(r.stdout), &runs) != nil || len(runs) != 2 {
		t.Errorf("runs in Postgres: %s %s", r.stdout, r.stderr)
	}
}

// TestRunStoredPipeline: a run records its pipeline's digest; pirn run of
// that digest runs the pipeline again from the data store alone, and a
// bundle of the same pipeline records the same digest.
func TestRunStoredPipeline(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	type shown struct {
		RunID          string         `json:"run_id"`
		PipelineDigest string         `json:"pipeline_digest"`
		Outputs        map[string]any `json:"outputs"`
	}
	runJSON := func(args ...string) shown {
		t.Helper()
		r := runPirn(t, append([]string{"run", "--state", state, "--json"}, args...)...)
		var s shown
		if err := json.Unmarshal([]byte(r.stdout), &s); r.code != 0 || err != nil {
			t.Fatalf("pirn run %v: exit %d, %v\n%s%s", args, r.code, err, r.stdout, r.stderr)
		}
		return s
	}
	first := runJSON(quickstart)
	if !strings.HasPrefix(first.PipelineDigest, "sha256:") {
		t.Fatalf("pipeline_digest = %q", first.PipelineDigest)
	}
	if r := runPirn(t, "runs", "show", "--state", state, first.RunID); !strings.Contains(r.stdout, "pipeline quickstart "+first.PipelineDigest) {
		t.Errorf("runs show does not name the pipeline's digest:\n%s", r.stdout)
	}
	again := runJSON(first.PipelineDigest, "-p", "x=7")
	if again.PipelineDigest != first.PipelineDigest || again.Outputs["answer"] != 21.0 {
		t.Errorf("run from the store: pipeline %s, outputs %v; want %s and answer 21", again.PipelineDigest, again.Outputs, first.PipelineDigest)
	}
	if r := runPirn(t, "check", "--state", state, first.PipelineDigest); r.code != 0 || !strings.Contains(r.stdout, `pipeline "quickstart", 1 module`) {
		t.Errorf("check of the stored pipeline: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	b := filepath.Join(t.TempDir(), "q.pirn")
	if r := runPirn(t, "bundle", "-o", b, quickstart); r.code != 0 {
		t.Fatalf("bundle: %s", r.stderr)
	}
	if got := runJSON(b).PipelineDigest; got != first.PipelineDigest {
		t.Errorf("the bundle's run recorded %s, the file's %s", got, first.PipelineDigest)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--unpinned", first.PipelineDigest}, 2, "--unpinned does not apply to a bundle or a pipeline from the data store"},
		{[]string{"--digest", "sha256:" + strings.Repeat("cd", 32), first.PipelineDigest}, 2, "not the sha256:cdcd"},
		{[]string{"sha256:" + strings.Repeat("ab", 32)}, 2, "is not in the data store"},
		{[]string{"--memory", first.PipelineDigest}, 2, "is not in the data store"},
	} {
		r := runPirn(t, append([]string{"run", "--state", state}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("run %v: exit %d, %q; want %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
}
