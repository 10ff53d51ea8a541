package host_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/host/hosttest"
	"github.com/pirn-wasm/pirn/model"
)

// repo resolves a path from the repository root.
func repo(p string) string { return filepath.Join("..", p) }

func readWasm(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(repo(p))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newHost(t testing.TB, cfg host.Config) *host.Host {
	t.Helper()
	h, err := host.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h
}

func load(t testing.TB, h *host.Host, p string) *host.Module {
	t.Helper()
	m, err := h.Load(context.Background(), filepath.Base(p), readWasm(t, p))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func knot(t testing.TB, m *host.Module, name string, lim model.Limits) *host.Knot {
	return hosttest.Knot(t, m, host.KnotConfig{Name: name, Limits: lim})
}

func arg(t testing.TB, name string, v any) abi.Arg {
	t.Helper()
	return hosttest.Args(t, name, v)[0]
}

func call(args ...abi.Arg) *host.Call {
	abi.SortArgs(args)
	return &host.Call{RunID: "run-test", KnotID: "k", Inputs: args}
}

var decode = hosttest.Value

const (
	arith    = "examples/wasm/go/arith/arith.wasm"
	outcomes = "examples/wasm/go/outcomes/outcomes.wasm"
	bytesMod = "testdata/wasm/go/testknots/testknots.wasm"
)

func TestArith(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	m := load(t, h, arith)
	if got := strings.Join(m.Manifest().KnotNames(), ","); got != "double,add,inc,square,sum,range,positive,sign,total" {
		t.Errorf("knots = %s", got)
	}
	ctx := t.Context()
	for _, tc := range []struct {
		knot string
		args []abi.Arg
		want int64
	}{
		{"double", []abi.Arg{arg(t, "x", 5)}, 10},
		{"add", []abi.Arg{arg(t, "a", 5), arg(t, "b", 10)}, 15},
		{"inc", []abi.Arg{arg(t, "x", -1)}, 0},
		{"square", []abi.Arg{arg(t, "x", 12)}, 144},
		{"sum", []abi.Arg{arg(t, "p", 1), arg(t, "q", 2), arg(t, "r", 39)}, 42},
	} {
		got := decode(t, knot(t, m, tc.knot, model.Limits{}).Invoke(ctx, call(tc.args...)))
		if got != tc.want {
			t.Errorf("%s = %v, want %d", tc.knot, got, tc.want)
		}
	}
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	var logs hosttest.Logs
	h := newHost(t, host.Config{Logger: logs.Logger(slog.LevelDebug)})
	m := load(t, h, outcomes)
	ctx := t.Context()

	r := knot(t, m, "fail", model.Limits{}).Invoke(ctx, call(arg(t, "x", 3)))
	if r.Outcome != abi.OutcomeErr || r.Error.Type != "ValueError" || r.Error.Message != "fail was asked to fail" {
		t.Errorf("fail: %v %+v", r.Outcome, r.Error)
	}
	if d, _ := cas.Decode(r.Error.Detail); d == nil {
		t.Errorf("fail: detail %x, want {x: 3}", r.Error.Detail)
	}
	r = knot(t, m, "skip_odd", model.Limits{}).Invoke(ctx, call(arg(t, "x", 3)))
	if r.Outcome != abi.OutcomeSkip || r.Skip.Reason != "x is odd" {
		t.Errorf("skip_odd(3): %v %+v", r.Outcome, r.Skip)
	}
	if got := decode(t, knot(t, m, "skip_odd", model.Limits{}).Invoke(ctx, call(arg(t, "x", 4)))); got != int64(4) {
		t.Errorf("skip_odd(4) = %v, want 4", got)
	}
	r = knot(t, m, "panic", model.Limits{}).Invoke(ctx, call(arg(t, "x", 1)))
	if r.Outcome != abi.OutcomeErr || r.Error.Type != "Panic" || !strings.Contains(r.Error.Message, "nil map") || !strings.Contains(r.Error.Trace, "main.go") {
		t.Errorf("panic: %v %+v", r.Outcome, r.Error)
	}
	if got := decode(t, knot(t, m, "noisy", model.Limits{}).Invoke(ctx, call(arg(t, "x", 9)))); got != int64(9) {
		t.Errorf("noisy = %v", got)
	}
	for _, want := range []string{
		`"level":"WARN","msg":"about to fail on x=3","run":"run-test","knot":"k","module":"outcomes.wasm","stream":"log"`,
		`"level":"INFO","msg":"noisy got x=9","run":"run-test","knot":"k","module":"outcomes.wasm","stream":"stdout"`,
		`"level":"WARN","msg":"noisy warns about x=9","run":"run-test","knot":"k","module":"outcomes.wasm","stream":"stderr"`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("guest output record missing or untagged: %s\nin:\n%s", want, logs.String())
		}
	}
}

// TestGoGuestMemoryBounded: 2,000 calls with 1 MiB inputs on one instance
// of a Go guest. Without the PDK's yield to the Go scheduler the guest's
// heap reaches the 256 MiB limit at call 282; with it, linear memory stays
// near 20 MiB.
func TestGoGuestMemoryBounded(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("2,000 invocations with 1 MiB inputs")
	}
	h := newHost(t, host.Config{})
	m := load(t, h, bytesMod)
	// One instance, never recycled by count: only the guest's own memory
	// management keeps it bounded.
	k := hosttest.Knot(t, m, host.KnotConfig{Name: "len", State: model.StateKeep,
		Limits: model.Limits{Timeout: -1, MaxInvocations: 1 << 30, MaxInstances: 1, HighWater: 256 << 20}})
	data := bytes.Repeat([]byte{1}, 1<<20)
	c := call(arg(t, "data", data))
	ctx := t.Context()
	var peak uint32
	start := time.Now()
	for i := range 2000 {
		r := k.Invoke(ctx, c)
		if r.Outcome != abi.OutcomeOK {
			t.Fatalf("call %d: %v %+v", i, r.Outcome, r.Error)
		}
		if i%100 == 0 {
			peak = max(peak, host.InstanceMemory(k))
		}
	}
	t.Logf("2000 calls of 1 MiB in %s; peak linear memory %d MiB", time.Since(start), peak>>20)
	if peak > 64<<20 {
		t.Errorf("linear memory peaked at %d MiB over 2,000 calls of 1 MiB; want bounded under 64 MiB", peak>>20)
	}
}

func TestIdent(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	m := load(t, h, "testdata/wasm/wat/ident.wasm")
	k := knot(t, m, "ident", model.Limits{})
	for _, v := range []any{int64(5), "hello", []any{1.5, map[string]any{"a": []byte{1}}}} {
		got := decode(t, k.Invoke(t.Context(), call(arg(t, "x", v))))
		want, _ := cas.Encode(v)
		if gotb, _ := cas.Encode(got); string(gotb) != string(want) {
			t.Errorf("ident(%v) = %v", v, got)
		}
	}
	r := k.Invoke(t.Context(), call(arg(t, "x", 1), arg(t, "y", 2)))
	if r.Outcome != abi.OutcomeErr || r.Error.Type != host.ErrTrap {
		t.Errorf("ident with two inputs = %v %+v, want a trap", r.Outcome, r.Error)
	}
}

// TestNoAmbientCapabilities: a knot sees no files, network, environment or
// arguments, a fake clock and a deterministic random source.
func TestNoAmbientCapabilities(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	m := load(t, h, bytesMod)
	k := knot(t, m, "ambient", model.Limits{MaxInvocations: 1})
	var seen []map[string]any
	for range 2 { // two fresh instances
		seen = append(seen, decode(t, k.Invoke(t.Context(), call())).(map[string]any))
	}
	got := seen[0]
	for _, key := range []string{"read_passwd", "read_cwd", "write_tmp", "dial"} {
		if s, _ := got[key].(string); s == "" {
			t.Errorf("%s succeeded inside the sandbox", key)
		}
	}
	if got["env"] != int64(0) || got["args"] != int64(0) {
		t.Errorf("environment %v, arguments %v; want none", got["env"], got["args"])
	}
	if got["year"] != int64(2022) {
		t.Errorf("clock reads year %v; want wazero's fake epoch, 2022", got["year"])
	}
	if seen[0]["random"] != seen[1]["random"] {
		t.Errorf("random source differs between fresh instances (%v, %v); want deterministic", seen[0]["random"], seen[1]["random"])
	}
}

func TestTypeChecks(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	ar := load(t, h, arith)
	double := knot(t, ar, "double", model.Limits{})
	ctx := t.Context()
	if got := decode(t, double.Invoke(ctx, call(arg(t, "x", "5")))); got != int64(10) {
		t.Errorf("double(\"5\") = %v, want 10: a declared int accepts decimal text", got)
	}
	r := double.Invoke(ctx, call(arg(t, "x", 7.5)))
	if r.Outcome != abi.OutcomeErr || r.Error.Type != host.ErrType || r.Error.Message != `knot double: input "x": want int, got float 7.5 (has a fractional part or is not finite)` {
		t.Errorf("double(7.5) = %v %+v", r.Outcome, r.Error)
	}
	// Constants (config) are checked too, and the caller's slices are not modified.
	c := &host.Call{Config: []abi.Arg{arg(t, "x", "6")}}
	before := string(c.Config[0].Value)
	if got := decode(t, double.Invoke(ctx, c)); got != int64(12) || string(c.Config[0].Value) != before {
		t.Errorf("double(config x=\"6\") = %v; config now %x", got, c.Config[0].Value)
	}
	sum := knot(t, ar, "sum", model.Limits{})
	r = sum.Invoke(ctx, call(arg(t, "a", 1), arg(t, "b", "two")))
	if r.Outcome != abi.OutcomeErr || !strings.Contains(r.Error.Message, `input "b": want int`) {
		t.Errorf("sum with a bad rest input = %v %+v", r.Outcome, r.Error)
	}
	// Outputs are coerced to the declared type, or err.
	mb := load(t, h, misbehave)
	if got := decode(t, knot(t, mb, "xseven", model.Limits{}).Invoke(ctx, call())); got != int64(7) {
		t.Errorf("xseven = %#v, want the int 7", got)
	}
	r = knot(t, mb, "words", model.Limits{}).Invoke(ctx, call())
	if r.Outcome != abi.OutcomeErr || r.Error.Message != `knot words: output: want int, got str "x" (not a decimal integer)` {
		t.Errorf("words = %v %+v", r.Outcome, r.Error)
	}
	// validate_io: false passes values through unchecked.
	loose := hosttest.Knot(t, mb, host.KnotConfig{Name: "words", NoTypeCheck: true})
	if got := decode(t, loose.Invoke(ctx, call())); got != "x" {
		t.Errorf("words unchecked = %#v", got)
	}
}

// TestCancelledParentsDoNotLeak runs rounds of calls on one pooled
// instance, each round under a context cancelled when it ends: the
// cancellation of one round must never reach a call of the next (it used
// to, as a false Timeout, when the old context's watch fired late).
func TestCancelledParentsDoNotLeak(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	m := load(t, h, arith)
	k := knot(t, m, "double", model.Limits{MaxInstances: 1, MaxInvocations: 1 << 30})
	c := call(arg(t, "x", 21))
	for round := range 300 {
		ctx, cancel := context.WithCancel(t.Context())
		for i := range 30 {
			if r := k.Invoke(ctx, c); r.Outcome != abi.OutcomeOK {
				t.Fatalf("round %d, call %d: %v %+v", round, i, r.Outcome, r.Error)
			}
		}
		cancel()
	}
	// And a background context after a cancelled one.
	ctx, cancel := context.WithCancel(t.Context())
	k.Invoke(ctx, c)
	cancel()
	if r := k.Invoke(context.Background(), c); r.Outcome != abi.OutcomeOK {
		t.Errorf("after a cancelled context: %v %+v", r.Outcome, r.Error)
	}
}

func TestInputLimits(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	m := load(t, h, "examples/wasm/wat/negate.wasm")
	ctx := t.Context()
	k := knot(t, m, "negate", model.Limits{MaxInput: 1 << 10, MaxDepth: 3})
	deep := []any{[]any{[]any{[]any{1}}}} // 4 levels
	for _, tc := range []struct {
		args []abi.Arg
		want string // "" for ok
	}{
		{[]abi.Arg{arg(t, "x", 5), arg(t, "y", strings.Repeat("a", 900))}, ""},
		{[]abi.Arg{arg(t, "x", 5), arg(t, "y", strings.Repeat("a", 2000))}, "knot negate: the inputs take 2032 bytes, over the limit MaxInput=1024"},
		{[]abi.Arg{arg(t, "x", 5), arg(t, "y", []any{[]any{[]any{1}}})}, ""},
		{[]abi.Arg{arg(t, "x", 5), arg(t, "y", deep)}, `knot negate: input "y" is nested 4 levels deep, over the limit MaxDepth=3`},
	} {
		r := k.Invoke(ctx, call(tc.args...))
		switch {
		case tc.want == "" && r.Outcome != abi.OutcomeOK:
			t.Errorf("%v: %v %+v, want ok", tc.args, r.Outcome, r.Error)
		case tc.want != "" && (r.Outcome != abi.OutcomeErr || r.Error.Type != host.ErrLimit || r.Error.Message != tc.want):
			t.Errorf("got %v %+v, want LimitExceeded %q", r.Outcome, r.Error, tc.want)
		}
	}
	if _, err := m.Knot(host.KnotConfig{Name: "negate", Limits: model.Limits{MaxDepth: 65}}); err == nil || !strings.Contains(err.Error(), "MaxDepth 65 is not within 1..64") {
		t.Errorf("MaxDepth 65: %v", err)
	}
}
