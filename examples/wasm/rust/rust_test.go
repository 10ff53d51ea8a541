package rust_test

import (
	"log/slog"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/host/hosttest"
)

// The same crate built for wasm32-wasi and for wasm32-unknown-unknown (which
// imports nothing but pirn.*) must behave identically.
var modules = []string{"stats.wasm", "stats-unknown.wasm"}

func load(t *testing.T, file string) (*host.Module, *hosttest.Logs) {
	t.Helper()
	logs := &hosttest.Logs{}
	return hosttest.Load(t, host.Config{CacheDir: "-", Logger: logs.Logger(slog.LevelDebug)}, file), logs
}

// in is one named input value.
type in struct {
	name  string
	value any
}

func invoke(t *testing.T, m *host.Module, knot string, noTypeCheck bool, inputs ...in) abi.Response {
	t.Helper()
	var kv []any
	for _, a := range inputs {
		kv = append(kv, a.name, a.value)
	}
	return hosttest.Invoke(t, hosttest.Knot(t, m, host.KnotConfig{Name: knot, NoTypeCheck: noTypeCheck}), kv...)
}

var ok = hosttest.Value

func TestManifest(t *testing.T) {
	t.Parallel()
	type input struct {
		name, typ string
		optional  bool
	}
	want := []struct {
		name, output, rest string
		inputs             []input
	}{
		{"mean", "float", "", []input{{"xs", "list[float]", false}}},
		{"describe", "dict[float]", "", []input{{"xs", "list[float]", false}}},
		{"percentile", "float", "", []input{{"xs", "list[float]", false}, {"p", "float", false}}},
		{"scale", "float", "", []input{{"x", "float", false}, {"factor", "float", false}}},
		{"words", "list[str]", "", []input{{"text", "str", false}, {"lower", "optional[bool]", true}}},
		{"nonempty", "list", "", []input{{"xs", "list", false}}},
		{"total", "float", "float", nil},
		{"byte_mean", "float", "", []input{{"data", "bytes", false}}},
	}
	for _, file := range modules {
		t.Run(file, func(t *testing.T) {
			m, _ := load(t, file)
			man := m.Manifest()
			if man.Name != "stats" || man.ABI != 1 {
				t.Errorf("manifest name %q, abi %d", man.Name, man.ABI)
			}
			if len(man.Knots) != len(want) {
				t.Fatalf("%d knots (%v), want %d", len(man.Knots), man.KnotNames(), len(want))
			}
			for i, w := range want {
				k := man.Knots[i]
				if k.Name != w.name || k.Output != w.output || k.Rest != w.rest {
					t.Errorf("knot %d: %s -> %s (rest %q), want %s -> %s (rest %q)", i, k.Name, k.Output, k.Rest, w.name, w.output, w.rest)
				}
				if k.Doc == "" || strings.Contains(k.Doc, "\n") {
					t.Errorf("%s: doc %q, want one non-empty line", k.Name, k.Doc)
				}
				var got []input
				for _, in := range k.Inputs {
					got = append(got, input{in.Name, in.Type, in.Optional})
					if in.Doc == "" {
						t.Errorf("%s.%s: no doc", k.Name, in.Name)
					}
				}
				if !reflect.DeepEqual(got, w.inputs) {
					t.Errorf("%s inputs = %v, want %v", k.Name, got, w.inputs)
				}
			}
			if d := man.Knots[0].Doc; d != "Returns the arithmetic mean of xs." {
				t.Errorf("mean doc = %q", d)
			}
		})
	}
}

func TestKnots(t *testing.T) {
	t.Parallel()
	for _, file := range modules {
		t.Run(file, func(t *testing.T) {
			m, logs := load(t, file)
			list := func(xs ...any) []any { return append([]any{}, xs...) } // never nil (null)

			eq := func(name string, got, want any) {
				t.Helper()
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %#v, want %#v", name, got, want)
				}
			}
			eq("mean([1 2 3 4])", ok(t, invoke(t, m, "mean", false, in{"xs", list(1, 2, 3, 4)})), 2.5)
			eq("mean([0.5])", ok(t, invoke(t, m, "mean", false, in{"xs", list(0.5)})), 0.5)
			eq("describe", ok(t, invoke(t, m, "describe", false, in{"xs", list(2, 4, 4, 4, 5, 5, 7, 9)})),
				map[string]any{"n": 8.0, "min": 2.0, "max": 9.0, "mean": 5.0, "std": 2.0})
			eq("percentile(50)", ok(t, invoke(t, m, "percentile", false, in{"xs", list(4, 1, 3, 2)}, in{"p", 50})), 2.5)
			eq("percentile(0)", ok(t, invoke(t, m, "percentile", false, in{"xs", list(4, 1, 3, 2)}, in{"p", 0})), 1.0)
			eq("scale", ok(t, invoke(t, m, "scale", false, in{"x", 3}, in{"factor", 1.5})), 4.5)
			// The host coerces "2" (text) to the declared float.
			eq("scale(text)", ok(t, invoke(t, m, "scale", false, in{"x", 3}, in{"factor", "2"})), 6.0)
			eq("words", ok(t, invoke(t, m, "words", false, in{"text", " Hello big\tWorld\n"})), list("Hello", "big", "World"))
			eq("words(lower)", ok(t, invoke(t, m, "words", false, in{"text", "Hello World"}, in{"lower", true})), list("hello", "world"))
			eq("words(lower=null)", ok(t, invoke(t, m, "words", false, in{"text", "A"}, in{"lower", nil})), list("A"))
			eq("nonempty", ok(t, invoke(t, m, "nonempty", false, in{"xs", list(1, "a", nil, []byte{1})})), list(int64(1), "a", nil, []byte{1}))
			eq("total", ok(t, invoke(t, m, "total", false, in{"a", 1}, in{"b", 2.5}, in{"zz", -0.5})), 3.0)
			eq("total()", ok(t, invoke(t, m, "total", false)), 0.0)
			eq("byte_mean", ok(t, invoke(t, m, "byte_mean", false, in{"data", []byte{0, 255}})), 127.5)
			eq("byte_mean(text)", ok(t, invoke(t, m, "byte_mean", false, in{"data", "ab"})), 97.5)
			// NaN and infinities survive the round trip.
			if v := ok(t, invoke(t, m, "scale", false, in{"x", math.Inf(1)}, in{"factor", 0})); !math.IsNaN(v.(float64)) {
				t.Errorf("scale(inf, 0) = %v, want NaN", v)
			}

			errs := []struct {
				name       string
				r          abi.Response
				typ, msg   string
				wantDetail any
			}{
				{"mean([])", invoke(t, m, "mean", false, in{"xs", list()}), "ValueError", "mean of an empty list", nil},
				{"describe([])", invoke(t, m, "describe", false, in{"xs", list()}), "ValueError", "describe of an empty list", nil},
				{"percentile(p=101)", invoke(t, m, "percentile", false, in{"xs", list(1)}, in{"p", 101}), "ValueError", "p = 101, want 0 ≤ p ≤ 100", 101.0},
				{"percentile(NaN)", invoke(t, m, "percentile", false, in{"xs", list(1, math.NaN())}, in{"p", 1}), "ValueError", "xs[1] is NaN", nil},
				{"byte_mean(empty)", invoke(t, m, "byte_mean", false, in{"data", []byte{}}), "ValueError", "byte_mean of no bytes", nil},
				// Input errors the guest reports.
				{"scale(missing)", invoke(t, m, "scale", false, in{"x", 1}), "InputError", `knot "scale": missing input "factor"`, nil},
				{"scale(unknown)", invoke(t, m, "scale", false, in{"x", 1}, in{"factor", 2}, in{"y", 3}), "InputError", `knot "scale": unknown input "y"`, nil},
				{"words(missing)", invoke(t, m, "words", false, in{"lower", true}), "InputError", `knot "words": missing input "text"`, nil},
				// Values that do not convert: without the host's check, the guest's
				// own, an InputError (the host keeps TypeError for its check).
				{"mean(guest)", invoke(t, m, "mean", true, in{"xs", list(1.5, "a")}), "InputError", `knot "mean": input "xs": at [1]: want float, got str "a"`, nil},
				{"scale(guest)", invoke(t, m, "scale", true, in{"x", "3"}, in{"factor", 1}), "InputError", `knot "scale": input "x": want float, got str "3"`, nil},
				{"words(guest)", invoke(t, m, "words", true, in{"text", "a"}, in{"lower", 1}), "InputError", `knot "words": input "lower": want bool, got int 1`, nil},
				{"total(guest)", invoke(t, m, "total", true, in{"a", "x"}), "InputError", `knot "total": input "a": want float, got str "x"`, nil},
				{"byte_mean(guest)", invoke(t, m, "byte_mean", true, in{"data", "ab"}), "InputError", `knot "byte_mean": input "data": want bytes, got str "ab"`, nil},
			}
			for _, e := range errs {
				if e.r.Outcome != abi.OutcomeErr || e.r.Error.Type != e.typ || e.r.Error.Message != e.msg {
					t.Errorf("%s: %v %+v %+v, want err %s: %s", e.name, e.r.Outcome, e.r.Error, e.r.Skip, e.typ, e.msg)
					continue
				}
				var d any
				if e.r.Error.Detail != nil {
					d, _ = cas.Decode(e.r.Error.Detail)
				}
				if !reflect.DeepEqual(d, e.wantDetail) {
					t.Errorf("%s: detail %#v, want %#v", e.name, d, e.wantDetail)
				}
			}

			// With the host's check on, the host refuses ill-typed inputs first.
			r := invoke(t, m, "mean", false, in{"xs", "not a list"})
			if r.Outcome != abi.OutcomeErr || r.Error.Type != host.ErrType || !strings.Contains(r.Error.Message, `input "xs"`) {
				t.Errorf("mean(str): %v %+v, want the host's TypeError", r.Outcome, r.Error)
			}

			r = invoke(t, m, "nonempty", false, in{"xs", list()})
			if r.Outcome != abi.OutcomeSkip || r.Skip.Reason != "empty list" {
				t.Errorf("nonempty([]): %v %+v %+v, want skip", r.Outcome, r.Error, r.Skip)
			}

			for _, want := range []string{
				`"level":"DEBUG","msg":"describe: 8 values","run":"run-test","knot":"k","module":"` + file + `","stream":"log"`,
			} {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("log record missing: %s\nin:\n%s", want, logs.String())
				}
			}
		})
	}
}

// TestPanic checks what a panic looks like through the host: a Trap, with
// the panic message logged at level error by the PDK's panic hook (the only
// trace of it on wasm32-unknown-unknown, which has no stderr).
func TestPanic(t *testing.T) {
	t.Parallel()
	m, logs := load(t, "testdata/panicky.wasm")
	r := invoke(t, m, "panics", false, in{"message", "boom"})
	if r.Outcome != abi.OutcomeErr || r.Error.Type != host.ErrTrap {
		t.Errorf("panics: %v %+v, want a Trap", r.Outcome, r.Error)
	}
	r = invoke(t, m, "index", false, in{"xs", []any{1, 2}}, in{"i", 5})
	if r.Outcome != abi.OutcomeErr || r.Error.Type != host.ErrTrap {
		t.Errorf("index: %v %+v, want a Trap", r.Outcome, r.Error)
	}
	// The module still works afterwards (on a fresh instance).
	if v := ok(t, invoke(t, m, "index", false, in{"xs", []any{1, 2}}, in{"i", 1})); v != int64(2) {
		t.Errorf("index = %v, want 2", v)
	}
	// Rust 1.63 writes "panicked at 'boom', src/lib.rs:14:9"; later versions
	// "panicked at src/lib.rs:14:9:\nboom".
	for _, want := range [][2]string{
		{`"level":"ERROR","msg":"knot \"panics\": panicked at `, "boom"},
		{`"level":"ERROR","msg":"knot \"index\": panicked at `, "index out of bounds: the len is 2 but the index is 5"},
	} {
		found := false
		for _, line := range strings.Split(logs.String(), "\n") {
			found = found || strings.Contains(line, want[0]) && strings.Contains(line, want[1]) && strings.Contains(line, `"stream":"log"`)
		}
		if !found {
			t.Errorf("no log record with %s…%s\nin:\n%s", want[0], want[1], logs.String())
		}
	}
}

// TestManyInvocations checks that a pooled instance serves many
// invocations of varied sizes (no leak or corruption across calls).
func TestManyInvocations(t *testing.T) {
	t.Parallel()
	m, _ := load(t, "stats.wasm")
	for i := range 300 {
		n := 1 + (i*37)%2000
		xs := make([]any, n)
		for j := range xs {
			xs[j] = float64(j)
		}
		got := ok(t, invoke(t, m, "mean", false, in{"xs", xs}))
		if want := float64(n-1) / 2; got != want {
			t.Fatalf("invocation %d: mean(0..%d) = %v, want %v", i, n-1, got, want)
		}
	}
}
