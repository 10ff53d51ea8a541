package c_test

// Tests of text.wasm, the C example module (text.c, built with the C PDK in
// pdk/c), in the real host: the manifest, every knot's ok, err and skip
// outcomes, typed-input errors, bounded memory, and pipeline.yaml.

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/host/hosttest"
	"github.com/pirn-wasm/pirn/internal/runtest"
	"github.com/pirn-wasm/pirn/model"
)

func load(t testing.TB, cfg host.Config) *host.Module {
	t.Helper()
	return hosttest.Load(t, cfg, "text.wasm")
}

var knot = hosttest.Knot

var (
	args   = hosttest.Args
	invoke = hosttest.Invoke
	value  = hosttest.Value
)

func TestManifest(t *testing.T) {
	t.Parallel()
	m := load(t, host.Config{})
	want := []abi.KnotSpec{
		{Name: "upper", Doc: "Returns s with ASCII letters in upper case.",
			Inputs: []abi.InputSpec{{Name: "s", Type: "str", Doc: "the text"}}, Output: "str"},
		{Name: "count", Doc: "Counts the non-overlapping occurrences of ch in s.",
			Inputs: []abi.InputSpec{{Name: "s", Type: "str", Doc: "the text"}, {Name: "ch", Type: "str", Doc: "what to count (non-empty)"}}, Output: "int"},
		{Name: "checksum", Doc: "Returns the CRC-32 (IEEE) of data.",
			Inputs: []abi.InputSpec{{Name: "data", Type: "bytes", Doc: "the data (text counts as its UTF-8)"}}, Output: "int"},
		{Name: "repeat", Doc: "Returns s repeated n times.",
			Inputs: []abi.InputSpec{{Name: "s", Type: "str", Doc: "the text"}, {Name: "n", Type: "int", Doc: "how many times (>= 0)"}}, Output: "str"},
		{Name: "nonblank", Doc: "Returns s without surrounding whitespace; skips if nothing is left.",
			Inputs: []abi.InputSpec{{Name: "s", Type: "str", Doc: "the text"}}, Output: "str"},
		{Name: "words", Doc: "Splits s on whitespace.",
			Inputs: []abi.InputSpec{{Name: "s", Type: "str", Doc: "the text"}}, Output: "list[str]"},
		{Name: "stats", Doc: "Returns the count, mean, min and max of xs.",
			Inputs: []abi.InputSpec{{Name: "xs", Type: "list[float]", Doc: "the numbers (at least one)"}}, Output: "dict[float]"},
		{Name: "join", Doc: "Joins every further input, in name order, with sep.",
			Inputs: []abi.InputSpec{{Name: "sep", Type: "str", Doc: "the separator (default a space)", Optional: true}}, Rest: "str", Output: "str"},
	}
	got := m.Manifest()
	if got.ABI != abi.Version || got.Name != "text" {
		t.Errorf("manifest abi %d, name %q", got.ABI, got.Name)
	}
	if diff := cmp.Diff(want, got.Knots); diff != "" {
		t.Errorf("knots (-want +got):\n%s", diff)
	}
}

func TestOK(t *testing.T) {
	t.Parallel()
	m := load(t, host.Config{})
	fox := "the quick brown fox"
	for _, tc := range []struct {
		knot string
		args []any
		want any
	}{
		{"upper", []any{"s", "Hello, wörld!"}, "HELLO, WöRLD!"},
		{"upper", []any{"s", ""}, ""},
		{"count", []any{"s", "banana", "ch", "a"}, int64(3)},
		{"count", []any{"s", "aaaa", "ch", "aa"}, int64(2)},
		{"count", []any{"s", "héhé", "ch", "é"}, int64(2)},
		{"count", []any{"s", "abc", "ch", "abcd"}, int64(0)},
		{"checksum", []any{"data", []byte("123456789")}, int64(0xcbf43926)},
		{"checksum", []any{"data", []byte{}}, int64(0)},
		{"checksum", []any{"data", fox}, int64(crc32.ChecksumIEEE([]byte(fox)))}, // text coerced to bytes
		{"repeat", []any{"s", "ab", "n", 3}, "ababab"},
		{"repeat", []any{"s", "ab", "n", 0}, ""},
		{"repeat", []any{"s", "", "n", int64(1) << 60}, ""},
		{"nonblank", []any{"s", " \t hi there \n"}, "hi there"},
		{"nonblank", []any{"s", "x"}, "x"},
		{"words", []any{"s", "  the quick\tbrown\n fox "}, []any{"the", "quick", "brown", "fox"}},
		{"words", []any{"s", "   "}, []any{}},
		{"stats", []any{"xs", []any{1, 2.5, 4}}, map[string]any{"count": 3.0, "mean": 2.5, "min": 1.0, "max": 4.0}},
		{"stats", []any{"xs", []any{-0.5}}, map[string]any{"count": 1.0, "mean": -0.5, "min": -0.5, "max": -0.5}},
		{"join", []any{"b", "world", "a", "hello"}, "hello world"},
		{"join", []any{"b", "2", "a", "1", "c", "3", "sep", ", "}, "1, 2, 3"},
		{"join", []any{}, ""},
	} {
		got := value(t, invoke(t, knot(t, m, host.KnotConfig{Name: tc.knot}), tc.args...))
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s%v (-want +got):\n%s", tc.knot, tc.args, diff)
		}
	}
}

func TestErrAndSkip(t *testing.T) {
	t.Parallel()
	m := load(t, host.Config{})
	for _, tc := range []struct {
		knot      string
		args      []any
		typ, want string
	}{
		{"repeat", []any{"s", "ab", "n", -1}, "ValueError", "n = -1, want n >= 0"},
		{"repeat", []any{"s", "ab", "n", int64(1) << 40}, "ValueError", "the result would exceed 16777216 bytes"},
		{"count", []any{"s", "abc", "ch", ""}, "ValueError", "ch is empty"},
		{"stats", []any{"xs", []any{}}, "ValueError", "xs is empty"},
	} {
		r := invoke(t, knot(t, m, host.KnotConfig{Name: tc.knot}), tc.args...)
		if r.Outcome != abi.OutcomeErr || r.Error.Type != tc.typ || r.Error.Message != tc.want {
			t.Errorf("%s%v = %v %+v, want err %s %q", tc.knot, tc.args, r.Outcome, r.Error, tc.typ, tc.want)
		}
	}
	for _, s := range []string{"", "   ", " \t\r\n "} {
		r := invoke(t, knot(t, m, host.KnotConfig{Name: "nonblank"}), "s", s)
		if r.Outcome != abi.OutcomeSkip || r.Skip.Reason != "s is blank" {
			t.Errorf("nonblank(%q) = %v %+v, want skip %q", s, r.Outcome, r.Skip, "s is blank")
		}
	}
}

// TestTypedInputs: with type checking (the default) the host coerces inputs
// to the declared types or refuses them; without it the PDK's typed getters
// refuse what does not fit. Binding errors are always the PDK's.
func TestTypedInputs(t *testing.T) {
	t.Parallel()
	m := load(t, host.Config{})
	checked := knot(t, m, host.KnotConfig{Name: "repeat"})
	if got := value(t, invoke(t, checked, "s", "x", "n", "3")); got != "xxx" {
		t.Errorf(`repeat(n="3") = %v, want "xxx" (coerced by the host)`, got)
	}
	r := invoke(t, checked, "s", "x", "n", "three")
	if r.Outcome != abi.OutcomeErr || r.Error.Type != host.ErrType {
		t.Errorf(`repeat(n="three") = %v %+v, want a host TypeError`, r.Outcome, r.Error)
	}

	raw := func(name string) *host.Knot { return knot(t, m, host.KnotConfig{Name: name, NoTypeCheck: true}) }
	for _, tc := range []struct {
		knot string
		args []any
		want string
	}{
		{"repeat", []any{"s", "x", "n", "3"}, `knot "repeat": input "n": want int, got str`},
		{"repeat", []any{"s", "x", "n", 2.5}, `knot "repeat": input "n": want int, got float`},
		{"repeat", []any{"s", 7, "n", 1}, `knot "repeat": input "s": want str, got int`},
		{"checksum", []any{"data", "text"}, `knot "checksum": input "data": want bytes, got str`},
		{"stats", []any{"xs", []any{1, "two"}}, `knot "stats": input "xs": element 1: want float, got str`},
		{"stats", []any{"xs", map[string]any{"a": 1}}, `knot "stats": input "xs": want list[float], got dict`},
		{"join", []any{"a", 1}, `knot "join": input "a": want str, got int`},
		{"upper", []any{}, `knot "upper": missing input "s"`},
		{"upper", []any{"s", "a", "t", "b"}, `knot "upper": unknown input "t"`},
		{"count", []any{"s", "a"}, `knot "count": missing input "ch"`},
	} {
		r := invoke(t, raw(tc.knot), tc.args...)
		if r.Outcome != abi.OutcomeErr || r.Error.Type != "InputError" || r.Error.Message != tc.want {
			t.Errorf("%s%v = %v %+v, want InputError %q", tc.knot, tc.args, r.Outcome, r.Error, tc.want)
		}
	}
	// Config binds inputs too.
	k := knot(t, m, host.KnotConfig{Name: "count"})
	r = k.Invoke(t.Context(), &host.Call{RunID: "run-test", KnotID: "k", Inputs: args(t, "s", "a-b-c"), Config: args(t, "ch", "-")})
	if got := value(t, r); got != int64(2) {
		t.Errorf("count with ch from config = %v, want 2", got)
	}
}

func TestLog(t *testing.T) {
	t.Parallel()
	var logs hosttest.Logs
	m := load(t, host.Config{Logger: logs.Logger(slog.LevelDebug)})
	value(t, invoke(t, knot(t, m, host.KnotConfig{Name: "stats"}), "xs", []any{1, 2}))
	want := `"level":"DEBUG","msg":"stats over 2 values","run":"run-test","knot":"k","module":"text.wasm","stream":"log"`
	if !strings.Contains(logs.String(), want) {
		t.Errorf("log record missing: %s\nin:\n%s", want, logs.String())
	}
}

// TestMemoryBounded invokes knots 10,000 times with 64 KiB inputs on one
// instance that is never recycled (no invocation limit, high water at the
// memory limit) and whose memory is capped at 1 MiB, then 100,000 times
// with small inputs: a PDK that leaked even a few bytes per invocation
// would hit MemoryLimit. Interruption is off (Timeout -1): this measures memory, and
// byte loops run about ten times faster without it.
//
// Every call runs under one context: a host that sees the context of
// earlier calls cancelled may fail a later call with a spurious Timeout
// (so no subtests, whose contexts end with them).
func TestMemoryBounded(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("10,000 invocations with 64 KiB inputs")
	}
	m := load(t, host.Config{})
	ctx := t.Context()
	lim := model.Limits{Timeout: -1, Memory: 1 << 20, HighWater: 1 << 20, MaxInvocations: 1 << 30, MaxInstances: 1}
	text := strings.Repeat("abcdefgh", 8<<10) // 64 KiB
	data := bytes.Repeat([]byte{0xa5}, 64<<10)
	blank := strings.Repeat(" ", 64<<10)
	var many []any // 40 inputs
	for i := range 40 {
		many = append(many, fmt.Sprintf("input_%d", i), "v")
	}
	for _, tc := range []struct {
		knot    string
		noCheck bool
		args    []any
		n       int
		outcome abi.Outcome
		want    any
	}{
		{"upper", false, []any{"s", text}, 10000, abi.OutcomeOK, strings.ToUpper(text)},
		{"checksum", false, []any{"data", data}, 10000, abi.OutcomeOK, int64(crc32.ChecksumIEEE(data))},
		{"count", false, []any{"s", text, "ch", "h"}, 1000, abi.OutcomeOK, int64(8 << 10)},
		{"words", false, []any{"s", strings.Repeat("ab cd ", 64<<10/6)}, 1000, abi.OutcomeOK, nil},
		{"repeat", false, []any{"s", text, "n", 2}, 1000, abi.OutcomeOK, text + text},
		{"join", false, []any{"a", text, "b", text}, 1000, abi.OutcomeOK, text + " " + text},
		// many small calls: a leak of a few bytes per call adds up
		{"upper", false, []any{"s", "x"}, 100000, abi.OutcomeOK, "X"},
		{"join", false, many, 20000, abi.OutcomeOK, nil},
		// errors, input errors and skips free their memory too
		{"repeat", false, []any{"s", text, "n", -1}, 1000, abi.OutcomeErr, nil},
		{"repeat", true, []any{"s", text, "n", "x"}, 1000, abi.OutcomeErr, nil},
		{"nonblank", false, []any{"s", blank}, 1000, abi.OutcomeSkip, nil},
	} {
		k := knot(t, m, host.KnotConfig{Name: tc.knot, Limits: lim, NoTypeCheck: tc.noCheck})
		c := &host.Call{RunID: "run-test", KnotID: "k", Inputs: args(t, tc.args...)}
		for i := range tc.n {
			r := k.Invoke(ctx, c)
			if r.Outcome != tc.outcome {
				t.Fatalf("%s call %d: %v %+v %+v, want %v", tc.knot, i, r.Outcome, r.Error, r.Skip, tc.outcome)
			}
			if i == 0 && tc.want != nil {
				if diff := cmp.Diff(tc.want, value(t, r)); diff != "" {
					t.Fatalf("%s: result (-want +got):\n%s", tc.knot, diff)
				}
			}
		}
	}
}

// TestHugeInput: a request larger than the memory limit fails cleanly with
// MemoryLimit, and the next call gets a fresh instance.
func TestHugeInput(t *testing.T) {
	t.Parallel()
	m := load(t, host.Config{})
	k := knot(t, m, host.KnotConfig{Name: "checksum", Limits: model.Limits{Memory: 1 << 20, MaxInstances: 1}})
	r := invoke(t, k, "data", make([]byte, 2<<20))
	if r.Outcome != abi.OutcomeErr || r.Error.Type != host.ErrMemory {
		t.Errorf("checksum(2 MiB) with 1 MiB of memory = %v %+v, want MemoryLimit", r.Outcome, r.Error)
	}
	if got := value(t, invoke(t, k, "data", []byte("123456789"))); got != int64(0xcbf43926) {
		t.Errorf("checksum after the failure = %v", got)
	}
}

func TestPipeline(t *testing.T) {
	t.Parallel()
	res := runtest.Run(t, "pipeline.yaml", nil)
	fox := "the quick brown fox jumps over the lazy dog"
	want := map[string]any{
		"trimmed": fox,
		"shout":   strings.ToUpper(fox),
		"os":      int64(4),
		"crc":     int64(crc32.ChecksumIEEE([]byte(fox))),
		"tokens":  []any{"the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog"},
		"loud":    []any{"THE", "QUICK", "BROWN", "FOX", "JUMPS", "OVER", "THE", "LAZY", "DOG"},
		"twice":   strings.Repeat(strings.ToUpper(fox), 2),
		"label":   strings.ToUpper(fox) + " | " + fox,
		"summary": map[string]any{"count": 3.0, "mean": 2.5, "min": 1.0, "max": 4.0},
	}
	for id, v := range want {
		if diff := cmp.Diff(v, res.Outputs[id]); diff != "" {
			t.Errorf("output %s (-want +got):\n%s", id, diff)
		}
	}
}
