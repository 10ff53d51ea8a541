package main

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRedactEverySink plants a secret in a knot's error: the value of an
// environment variable granted to it, in the error's message and in a
// line the knot writes to stderr (logged). It appears in none of pirn
// run's JSON, its logs, the history's files or what pirn runs and pirn
// history print; it is masked where it was. A --redact pattern masks its
// matches too.
func TestRedactEverySink(t *testing.T) {
	t.Parallel()
	const secret = "tok-8c1f3a5e77"
	dir := t.TempDir()
	capknots, _ := filepath.Abs("../../testdata/wasm/go/capknots/capknots.wasm")
	p := filepath.Join(dir, "leak.yaml")
	os.WriteFile(p, []byte("name: leak\nmodules: {cap: "+capknots+"}\nnodes:\n"+
		"  - {id: leak, type: knot, module: cap, knot: failenv, config: {name: PIRN_TEST_TOKEN}, grants: {env: [PIRN_TEST_TOKEN]}, optional: true}\n"), 0o644)
	state := filepath.Join(dir, "state")
	run := func(args ...string) (string, string) {
		all := append([]string{"--log-level", "debug", "--redact", `ref(used)`, args[0], "--state", state}, args[1:]...)
		cmd := exec.Command(pirnBin, all...)
		cmd.Env = append(os.Environ(), "PIRN_TEST_TOKEN="+secret)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.Run()
		return out.String(), errb.String()
	}
	stdout, stderr := run("run", "--unpinned", "--json", p)
	if !strings.Contains(stdout, "[REDACTED]") || !strings.Contains(stdout, "login with token [REDACTED] ref[REDACTED]") {
		t.Errorf("run --json: want the masked error:\n%s\n%s", stdout, stderr)
	}
	if !strings.Contains(stderr, "connecting with [REDACTED]") {
		t.Errorf("the knot's stderr line, masked, is not in the log:\n%s", stderr)
	}
	showOut, showErr := run("runs", "--json")
	sinks := map[string]string{"run stdout": stdout, "run stderr": stderr, "runs": showOut + showErr}
	for _, cmdArgs := range [][]string{{"history", "--json"}, {"runs"}} {
		o, e := run(cmdArgs...)
		sinks[strings.Join(cmdArgs, " ")] = o + e
	}
	filepath.WalkDir(state, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), "history.db") {
			b, _ := os.ReadFile(path)
			sinks[path] = string(b)
		}
		return nil
	})
	for name, text := range sinks {
		for _, s := range []string{secret} {
			if strings.Contains(text, s) {
				t.Errorf("%s holds %q", name, s)
			}
		}
	}
}
