// Tests of geo.wasm, the AssemblyScript example module, in the real host:
// every knot's outcomes, the PDK's input checks, the manifest, and memory
// that stays bounded over many invocations.
package assemblyscript_test

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/host/hosttest"
	"github.com/pirn-wasm/pirn/internal/runtest"
	"github.com/pirn-wasm/pirn/model"
)

func load(t testing.TB) *host.Module {
	t.Helper()
	return hosttest.Load(t, host.Config{CacheDir: "-"}, "geo.wasm")
}

var knot = hosttest.Knot

// in is a call's named inputs.
type in map[string]any

func call(t testing.TB, inputs in) *host.Call {
	t.Helper()
	var kv []any
	for name, v := range inputs {
		kv = append(kv, name, v)
	}
	return hosttest.Call(t, kv...)
}

func TestManifest(t *testing.T) {
	t.Parallel()
	m := load(t).Manifest()
	if m.Name != "geo" {
		t.Errorf("module name %q, want geo", m.Name)
	}
	type sig struct {
		inputs []string // name: type, "?" marking optional
		output string
	}
	want := map[string]sig{
		"distance": {[]string{"a: list[float]", "b: list[float]"}, "float"},
		"norm":     {[]string{"v: list[float]"}, "float"},
		"centroid": {[]string{"points: list[list[float]]"}, "list[float]"},
		"bbox":     {[]string{"points: list[list[float]]"}, "dict[list[float]]"},
		"round":    {[]string{"x: float", "digits?: int"}, "float"},
		"clamp":    {[]string{"x: float", "lo: float", "hi: float"}, "float"},
		"finite":   {[]string{"x: float"}, "float"},
	}
	if got := strings.Join(m.KnotNames(), ","); got != "distance,norm,centroid,bbox,round,clamp,finite" {
		t.Errorf("knots %s", got)
	}
	for _, k := range m.Knots {
		var ins []string
		for _, i := range k.Inputs {
			opt := ""
			if i.Optional {
				opt = "?"
			}
			ins = append(ins, i.Name+opt+": "+i.Type)
		}
		got := sig{ins, k.Output}
		if w, ok := want[k.Name]; !ok || !reflect.DeepEqual(got, w) {
			t.Errorf("knot %s = %+v, want %+v", k.Name, got, w)
		}
		if k.Doc == "" || k.Rest != "" {
			t.Errorf("knot %s: doc %q, rest %q", k.Name, k.Doc, k.Rest)
		}
	}
	if in, _ := m.Knots[0].Input("b"); in == nil || in.Doc != "a point of the same dimension" {
		t.Errorf("distance's input b = %+v", in)
	}
}

func TestKnots(t *testing.T) {
	t.Parallel()
	m := load(t)
	ok := func(v any) abi.Response {
		b, err := cas.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		return abi.OK(b)
	}
	fail := func(typ, msg string) abi.Response { return abi.Fail(typ, msg) }
	skipped := abi.Skipped
	for _, tc := range []struct {
		knot   string
		inputs in
		want   abi.Response
		noType bool // invoke without the host's type checks: the PDK's own checks answer
	}{
		{knot: "distance", inputs: in{"a": []any{0.0, 0.0}, "b": []any{3.0, 4.0}}, want: ok(5.0)},
		{knot: "distance", inputs: in{"a": []any{1, 2, 3}, "b": []any{1, 2, 3}}, want: ok(0.0)},
		// The host coerces ints and numeric text to the declared float.
		{knot: "distance", inputs: in{"a": []any{0, "3"}, "b": []any{4, 0}}, want: ok(5.0)},
		{knot: "distance", inputs: in{"a": []any{1.0}, "b": []any{1.0, 2.0}}, want: fail("ValueError", "a has 1 coordinates, b has 2")},
		{knot: "distance", inputs: in{"a": "x", "b": []any{1.0}},
			want: fail(host.ErrType, `knot distance: input "a": want list[float], got str "x"`)},
		{knot: "distance", inputs: in{"a": "x", "b": []any{1.0}}, noType: true,
			want: fail("InputError", `knot "distance": input "a": want list[float], got str "x"`)},
		{knot: "distance", inputs: in{"a": []any{1.0, "y"}, "b": []any{1.0, 2.0}}, noType: true,
			want: fail("InputError", `knot "distance": input "a": at [1]: want float, got str "y" (not a number)`)},
		{knot: "distance", inputs: in{"a": []any{1.0}}, want: fail("InputError", `knot "distance": missing input "b"`)},
		{knot: "distance", inputs: in{"a": []any{1.0}, "b": []any{1.0}, "c": 1}, noType: true,
			want: fail("InputError", `knot "distance": unknown input "c"`)},
		{knot: "norm", inputs: in{"v": []any{3, 4, 12}}, want: ok(13.0)},
		{knot: "norm", inputs: in{"v": []any{}}, want: ok(0.0)},
		{knot: "centroid", inputs: in{"points": []any{[]any{0, 0}, []any{2, 0}, []any{2, 2}, []any{0, 2}}}, want: ok([]any{1.0, 1.0})},
		{knot: "centroid", inputs: in{"points": []any{[]any{1.5, -2, 7}}}, want: ok([]any{1.5, -2.0, 7.0})},
		{knot: "centroid", inputs: in{"points": []any{}}, want: fail("ValueError", "points is empty")},
		{knot: "centroid", inputs: in{"points": []any{[]any{0, 0}, []any{1, 1}, []any{1, 2, 3}}},
			want: fail("ValueError", "point 2 has 3 coordinates, point 0 has 2")},
		{knot: "centroid", inputs: in{"points": []any{1, 2}},
			want: fail(host.ErrType, `knot centroid: input "points": at [0]: want list[float], got int 1`)},
		{knot: "bbox", inputs: in{"points": []any{[]any{1, 5}, []any{-2, 3}, []any{4, -1}}},
			want: ok(map[string]any{"min": []any{-2.0, -1.0}, "max": []any{4.0, 5.0}})},
		{knot: "round", inputs: in{"x": 2.5}, want: ok(3.0)},
		{knot: "round", inputs: in{"x": -2.5}, want: ok(-3.0)},
		{knot: "round", inputs: in{"x": 3.14159, "digits": 2}, want: ok(3.14)},
		{knot: "round", inputs: in{"x": 1234.5, "digits": -2}, want: ok(1200.0)},
		{knot: "round", inputs: in{"x": 7, "digits": "1"}, want: ok(7.0)},
		{knot: "round", inputs: in{"x": 1e300, "digits": 15}, want: ok(1e300)},
		{knot: "round", inputs: in{"x": 1.5, "digits": 99}, want: fail("ValueError", "digits = 99, want -15..15")},
		{knot: "round", inputs: in{"x": 1.5, "digits": 0.5},
			want: fail(host.ErrType, `knot round: input "digits": want int, got float 0.5 (has a fractional part or is not finite)`)},
		{knot: "clamp", inputs: in{"x": 5, "lo": 0, "hi": 2.5}, want: ok(2.5)},
		{knot: "clamp", inputs: in{"x": -5, "lo": 0, "hi": 2.5}, want: ok(0.0)},
		{knot: "clamp", inputs: in{"x": 1, "lo": 0, "hi": 2.5}, want: ok(1.0)},
		{knot: "clamp", inputs: in{"x": 1, "lo": 3, "hi": 2}, want: fail("ValueError", "lo = 3.0 is above hi = 2.0")},
		{knot: "finite", inputs: in{"x": 1.25}, want: ok(1.25)},
		{knot: "finite", inputs: in{"x": math.NaN()}, want: skipped("x is NaN")},
		{knot: "finite", inputs: in{"x": math.Inf(1)}, want: skipped("x is +Inf")},
		{knot: "finite", inputs: in{"x": math.Inf(-1)}, want: skipped("x is -Inf")},
		{knot: "finite", inputs: in{"x": "-inf"}, want: skipped("x is -Inf")},
	} {
		k := knot(t, m, host.KnotConfig{Name: tc.knot, NoTypeCheck: tc.noType, Limits: model.Limits{Memory: 4 << 20}})
		got := k.Invoke(t.Context(), call(t, tc.inputs))
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s(%v) = %s, want %s", tc.knot, tc.inputs, show(got), show(tc.want))
		}
	}
}

func show(r abi.Response) string {
	switch r.Outcome {
	case abi.OutcomeOK:
		v, err := cas.Decode(r.Value)
		if err != nil {
			return "ok(undecodable " + err.Error() + ")"
		}
		return fmt.Sprintf("ok(%v, %x)", v, r.Value)
	case abi.OutcomeErr:
		return "err(" + r.Error.Type + ": " + r.Error.Message + ")"
	case abi.OutcomeSkip:
		return "skip(" + r.Skip.Reason + ")"
	}
	return r.Outcome.String()
}

// TestMemoryBounded: 10,000 invocations with a sizeable input (4,096
// floats, 36 KiB of CBOR) and 1,000 with 1,000 points (a value per
// coordinate and a list per point) on one instance that is never recycled,
// under a 4 MiB memory limit. The module is built with AssemblyScript's
// minimal runtime and the PDK collects garbage at the end of every
// invocation; a leak of one invocation's values would hit the limit within
// a few dozen calls (and err with MemoryLimit).
func TestMemoryBounded(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("11,000 invocations")
	}
	m := load(t)
	// One pool (same module and limits) of one instance for both knots.
	lim := model.Limits{Memory: 4 << 20, HighWater: 4 << 20, MaxInvocations: 1 << 30, MaxInstances: 1}
	norm := knot(t, m, host.KnotConfig{Name: "norm", Limits: lim})
	centroid := knot(t, m, host.KnotConfig{Name: "centroid", Limits: lim})

	v := make([]any, 4096)
	var ss float64
	for i := range v {
		x := float64(i) + 0.1
		v[i] = x
		ss += x * x
	}
	bigVector := call(t, in{"v": v})
	if n := len(bigVector.Inputs[0].Value); n < 36<<10 {
		t.Fatalf("input of %d bytes; want a sizeable one", n)
	}
	wantNorm, _ := cas.Encode(math.Sqrt(ss))

	points := make([]any, 1000)
	var sx, sy float64
	for i := range points {
		x, y := float64(i)+0.1, -float64(i)/3
		points[i] = []any{x, y}
		sx, sy = sx+x, sy+y
	}
	manyPoints := call(t, in{"points": points})
	wantCentroid, _ := cas.Encode([]any{sx / 1000, sy / 1000})

	for i := range 10000 {
		if r := norm.Invoke(t.Context(), bigVector); r.Outcome != abi.OutcomeOK || string(r.Value) != string(wantNorm) {
			t.Fatalf("norm call %d: %s", i, show(r))
		}
		if i%10 == 0 {
			if r := centroid.Invoke(t.Context(), manyPoints); r.Outcome != abi.OutcomeOK || string(r.Value) != string(wantCentroid) {
				t.Fatalf("centroid call %d: %s", i, show(r))
			}
		}
	}
}

// TestPipeline runs pipeline.yaml, as
// `pirn run --memory --unpinned examples/wasm/assemblyscript/pipeline.yaml` does.
func TestPipeline(t *testing.T) {
	t.Parallel()
	res := runtest.Run(t, "pipeline.yaml", nil)
	for id, want := range map[string]any{
		"d": 5.0, "mid": []any{1.5, 2.0}, "lengths": []any{0.0, 5.0}, "capped": 4.5, "rounded": 5.0, "checked": 5.0,
	} {
		if got := res.Outputs[id]; !reflect.DeepEqual(got, want) {
			t.Errorf("output %s = %#v, want %#v", id, got, want)
		}
	}
}
