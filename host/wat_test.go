package host_test

import (
	"math"
	"testing"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/host/hosttest"
	"github.com/pirn-wasm/pirn/model"
)

// TestNegateWAT runs the hand-written WAT knot, whose CBOR reader and
// writer are a few dozen lines of WebAssembly text, over every width of
// integer head.
func TestNegateWAT(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	m := load(t, h, "examples/wasm/wat/negate.wasm")
	k := knot(t, m, "negate", model.Limits{})
	ctx := t.Context()
	for _, x := range []int64{0, 1, -1, 23, 24, -24, -25, 255, 256, -256, -257, 65535, 65536, -65537,
		math.MaxUint32, math.MaxUint32 + 1, -math.MaxUint32 - 2, math.MaxInt64, math.MinInt64 + 1} {
		if got := decode(t, k.Invoke(ctx, call(arg(t, "x", x)))); got != -x {
			t.Errorf("negate(%d) = %v, want %d", x, got, -x)
		}
	}
	// x bound as config, beside an unrelated input; a text x coerced by the host.
	c := call(arg(t, "y", []any{map[string]any{"deep": []byte("skip me")}, 1.5}))
	c.Config = []abi.Arg{arg(t, "x", 42)}
	if got := decode(t, k.Invoke(ctx, c)); got != int64(-42) {
		t.Errorf("negate(config x=42) = %v", got)
	}
	if got := decode(t, k.Invoke(ctx, call(arg(t, "x", " 7 ")))); got != int64(-7) {
		t.Errorf(`negate(" 7 ") = %v`, got)
	}
	r := k.Invoke(ctx, call(arg(t, "x", int64(math.MinInt64))))
	if r.Outcome != abi.OutcomeErr || r.Error.Type != "ValueError" || r.Error.Message != "-x overflows int64" {
		t.Errorf("negate(MinInt64): %v %+v", r.Outcome, r.Error)
	}
	unchecked := hosttest.Knot(t, m, host.KnotConfig{Name: "negate", NoTypeCheck: true})
	for _, args := range [][]abi.Arg{nil, {arg(t, "x", "seven")}, {arg(t, "x", 1.5)}} {
		r := unchecked.Invoke(ctx, call(args...))
		if r.Outcome != abi.OutcomeErr || r.Error.Type != "InputError" || r.Error.Message != "input x is missing or not an int" {
			t.Errorf("negate(%v) unchecked: %v %+v", args, r.Outcome, r.Error)
		}
	}
}
