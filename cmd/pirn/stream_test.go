package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const negate = "../../serve/testdata/negate.yaml"

// TestStreamStdin pipes JSON lines into pirn stream: one run per value,
// in order, each in the history; a value the parameter refuses is
// reported and skipped; a terminal escape in a value is escaped.
func TestStreamStdin(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	cmd := exec.Command(pirnBin, "stream", "--state", state, "--cache-dir", "-", "--json", "--from", "stdin", negate)
	cmd.Stdin = strings.NewReader("1\n2\n\"\\u001b[31mred\"\n4")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("pirn stream: %v (want exit 1: a value was rejected)\n%s", err, errb.String())
	}
	type line struct {
		RunID  string            `json:"run_id"`
		Status string            `json:"status"`
		Origin map[string]string `json:"origin"`
		Error  string            `json:"error"`
	}
	var lines []line
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		lines = append(lines, l)
	}
	want := []string{"succeeded 1", "succeeded 2", "rejected 3", "succeeded 4"}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, l := range lines {
		if got := l.Status + " " + l.Origin["line"]; got != want[i] || l.Origin["source"] != "stdin" {
			t.Errorf("line %d: %s (origin %v), want %s from stdin", i, got, l.Origin, want[i])
		}
		if l.Status != "succeeded" {
			continue
		}
		r := runPirn(t, "runs", "show", "--state", state, "--json", l.RunID)
		var run struct {
			Outputs map[string]any `json:"outputs"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &run); err != nil {
			t.Fatalf("runs show %s: %v %s", l.RunID, err, r.stderr)
		}
		if run.Outputs["neg"] != -run.Outputs["x"].(float64) {
			t.Errorf("run %s outputs %v", l.RunID, run.Outputs)
		}
	}
	if !strings.Contains(lines[2].Error, `want int`) {
		t.Errorf("rejected value's error %q", lines[2].Error)
	}
	if bytes.Contains(errb.Bytes(), []byte("\x1b")) || bytes.Contains(out.Bytes(), []byte("\x1b")) || !strings.Contains(errb.String(), "line=3") {
		t.Errorf("the rejected value is not logged with its line, or its escape reaches the terminal raw:\n%q", errb.String())
	}
	r := runPirn(t, "runs", "--state", state, "--json")
	var runs []struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil || len(runs) != 3 {
		t.Errorf("runs in the history: %v %v, want the 3 that succeeded", runs, err)
	}
}

// TestStreamSignalDrains: SIGINT while a run is in flight stops the
// reading and lets the run finish (it is recorded as it ended, not
// cancelled), then pirn stream exits.
func TestStreamSignalDrains(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	misbehave, _ := filepath.Abs("../../testdata/hostile/misbehave.wasm")
	p := filepath.Join(dir, "slow.yaml")
	yaml := "name: slow\nmodules: {bad: " + misbehave + "}\nnodes:\n" +
		"  - {id: x, type: parameter, type_: int}\n" +
		"  - {id: echo, type: knot, module: bad, knot: echo, parents: {x: x}}\n" +
		"  - {id: spin, type: source, module: bad, knot: loop, limits: {timeout: 1500ms}}\n"
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runPirn(t, "lock", p); r.code != 0 {
		t.Fatalf("lock: %s", r.stderr)
	}
	in := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(in, []byte("1\n2\n3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	cmd, log, err := startUntil("knot=echo", "--log-level", "debug", "--cache-dir", "-", "stream", "--state", state,
		"--from", "file:"+in, "--from-start", "--concurrency", "1", "--max-in-flight", "1", p)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGINT)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("exit %v, want status 1 (the run failed: its knot timed out)", err)
		}
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatalf("pirn stream still running a minute after SIGINT\n%s", log())
	}
	r := runPirn(t, "runs", "--state", state, "--json")
	var runs []struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil {
		t.Fatalf("runs: %v %s", err, r.stderr)
	}
	if len(runs) != 1 || runs[0].Status != "failed" {
		t.Errorf("runs after SIGINT %+v, want the one in flight, drained (failed by its timeout, not cancelled)\n%s", runs, log())
	}
}

// TestStreamArguments: mistakes on the command line are usage errors.
func TestStreamArguments(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"stream", "--from", "kafka:x", negate}, `--from "kafka:x": want stdin or file:PATH`},
		{[]string{"stream", "--from", "stdin", "--param", "y", negate}, "--param y: the pipeline has no such parameter (it has: x)"},
		{[]string{"stream", "--from", "stdin", "-p", "x=1", negate}, "-p x: that is the parameter"},
		{[]string{"stream", "--from", "stdin", "--from-start", negate}, "--from-start applies to --from file:PATH"},
		{[]string{"stream", "--from", "stdin", "--window-count", "9", "--max-in-flight", "3", negate}, "--max-in-flight 3"},
	} {
		args := append([]string{"--cache-dir", "-"}, tc.args...)
		args = append(args[:3:3], append([]string{"--state", t.TempDir()}, args[3:]...)...) // never the working directory's .pirn
		r := runPirn(t, args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("pirn %v: exit %d, %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}
