package conformance_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn/conformance"
	"github.com/pirn-wasm/pirn/host"
)

func run(t *testing.T, path string, opts conformance.Options) *conformance.Report {
	t.Helper()
	h, err := host.New(host.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	b, err := os.ReadFile(filepath.Join("..", path))
	if err != nil {
		t.Fatal(err)
	}
	r := conformance.Run(t.Context(), h, path, b, opts)
	for _, c := range r.Checks {
		t.Logf("%s %s %s: %s", c.Knot, c.Name, c.Status, c.Detail)
	}
	return r
}

func find(t *testing.T, r *conformance.Report, knot, check string) conformance.Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Knot == knot && c.Name == check {
			return c
		}
	}
	t.Fatalf("no check %s of %q", check, knot)
	return conformance.Check{}
}

func want(t *testing.T, r *conformance.Report, knot, check string, s conformance.Status, detail string) {
	t.Helper()
	c := find(t, r, knot, check)
	if c.Status != s || !strings.Contains(c.Detail, detail) {
		t.Errorf("%s %s: %s %q, want %s containing %q", knot, check, c.Status, c.Detail, s, detail)
	}
}

// TestWellBehaved runs the kit on modules that conform, one per ABI.
func TestWellBehaved(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		path string
		opts conformance.Options
	}{
		{"examples/wasm/wat/negate.wasm", conformance.Options{}},
		{"examples/wasm/go/outcomes/outcomes.wasm", conformance.Options{Calls: 500}},
		{"examples/wasm/extism/wordfreq/wordfreq.wasm", conformance.Options{Load: host.LoadOptions{ABI: host.ABIExtism}, Calls: 100}},
		{"examples/wasm/wasi-command/wc/wc.wasm", conformance.Options{Load: host.LoadOptions{ABI: host.ABICommand}}},
	} {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			r := run(t, tc.path, tc.opts)
			if !r.OK() {
				t.Errorf("%s failed conformance", tc.path)
			}
		})
	}
}

func TestReportsDetail(t *testing.T) {
	t.Parallel()
	r := run(t, "examples/wasm/wat/negate.wasm", conformance.Options{Calls: 200})
	want(t, r, "", "handshake", conformance.Pass, "ABI version 1; 1 knots: negate")
	want(t, r, "negate", "sample inputs", conformance.Pass, "4 calls: 4 ok, 0 err, 0 skipped; outputs are int")
	want(t, r, "negate", "missing input", conformance.Pass, "without x: err InputError")
	want(t, r, "negate", "mistyped input", conformance.Pass, `x (int) = {"not": "int"}: err InputError`)
	want(t, r, "negate", "memory", conformance.Pass, "steady at 0.06 MiB")

	r = run(t, "examples/wasm/go/outcomes/outcomes.wasm", conformance.Options{Calls: 200})
	want(t, r, "fail", "sample inputs", conformance.Pass, "0 ok, 4 err (ValueError)")
	want(t, r, "skip_odd", "sample inputs", conformance.Pass, "2 ok, 0 err, 2 skipped")
	want(t, r, "recover", "mistyped input", conformance.Pass, "err InputError")
	want(t, r, "fail", "memory", conformance.Skip, "no sample input gave an ok value")

	r = run(t, "examples/wasm/wasi-command/wc/wc.wasm", conformance.Options{Load: host.LoadOptions{ABI: host.ABICommand}})
	want(t, r, "main", "memory", conformance.Skip, "fresh instance per call")
}

// TestCatchesMisbehaviour runs the kit on modules that do not conform.
func TestCatchesMisbehaviour(t *testing.T) {
	t.Parallel()
	r := run(t, "testdata/wasm/go/testknots/testknots.wasm", conformance.Options{Calls: 1000})
	if r.OK() {
		t.Error("testknots passed, but retain leaks every input")
	}
	want(t, r, "retain", "memory", conformance.Fail, "")
	want(t, r, "retain", "deterministic", conformance.Warn, "answered ok 1 and then ok 2")
	want(t, r, "ambient", "deterministic", conformance.Warn, "")
	want(t, r, "len", "memory", conformance.Pass, "steady")

	r = run(t, "testdata/hostile/badversion.wasm", conformance.Options{})
	want(t, r, "", "handshake", conformance.Fail, "declares ABI version")
	if len(r.Checks) != 1 {
		t.Errorf("checks after a failed handshake: %+v", r.Checks)
	}

	// misbehave traps, loops and breaks the ABI on any input.
	r = run(t, "testdata/hostile/misbehave.wasm", conformance.Options{Calls: 100, Timeout: 200e6})
	want(t, r, "trap", "sample inputs", conformance.Fail, "Trap: unreachable")
	want(t, r, "loop", "sample inputs", conformance.Fail, "Timeout")
	want(t, r, "badcbor", "sample inputs", conformance.Fail, "ABIViolation")
}
