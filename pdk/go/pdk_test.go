package pdk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn/abi"
)

type addIn struct {
	A int64 `pirn:"a" doc:"left"`
	B int64 `pirn:"b"`
}

type richIn struct {
	UserID  string            `doc:"who"`
	Scores  []float64         `pirn:"scores"`
	Labels  map[string]string `pirn:"labels,optional"`
	Limit   *int              `pirn:"limit"`
	Raw     []byte            `pirn:"raw"`
	Flag    bool              `pirn:"flag"`
	Ignored int               `pirn:"-"`
	//lint:ignore U1000 an unexported field, which the PDK must ignore
	private int
}

type restIn struct {
	Base  int64            `pirn:"base"`
	Terms map[string]int64 `pirn:"*"`
}

func init() {
	Register("t_add", "Adds.", func(in addIn) (int64, error) { return in.A + in.B, nil })
	Register("t_rich", "Echoes a summary.", func(in richIn) (map[string]any, error) {
		lim := -1
		if in.Limit != nil {
			lim = *in.Limit
		}
		return map[string]any{"user": in.UserID, "n": len(in.Scores), "labels": len(in.Labels), "limit": lim, "raw": len(in.Raw), "flag": in.Flag}, nil
	})
	Register("t_rest", "Sums.", func(in restIn) (int64, error) {
		s := in.Base
		for _, v := range in.Terms {
			s += v
		}
		return s, nil
	})
	Register("t_fail", "Fails.", func(in addIn) (int64, error) {
		return 0, fmt.Errorf("wrapped: %w", &Error{Type: "RangeError", Message: "too big", Detail: map[string]any{"a": in.A}})
	})
	Register("t_plain", "Fails plainly.", func(in addIn) (int64, error) { return 0, errors.New("plain failure") })
	Register("t_skip", "Skips.", func(in addIn) (int64, error) { return 0, Skip("not today") })
	Register("t_panic", "Panics.", func(in addIn) (int64, error) { panic("oh no") })
	Register("t_str", "Returns a string.", func(in addIn) (string, error) { return fmt.Sprint(in.A), nil })
}

func enc(t *testing.T, v any) []byte {
	t.Helper()
	b, err := abi.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func invokeT(t *testing.T, knot string, inputs, config map[string]any) abi.Response {
	t.Helper()
	r := &abi.Request{Knot: knot}
	for k, v := range inputs {
		r.Inputs = append(r.Inputs, abi.Arg{Name: k, Value: enc(t, v)})
	}
	for k, v := range config {
		r.Config = append(r.Config, abi.Arg{Name: k, Value: enc(t, v)})
	}
	abi.SortArgs(r.Inputs)
	abi.SortArgs(r.Config)
	resp, err := abi.DecodeResponse(Invoke(abi.AppendRequest(nil, r)))
	if err != nil {
		t.Fatalf("response does not decode: %v", err)
	}
	return resp
}

func okValue(t *testing.T, r abi.Response) any {
	t.Helper()
	if r.Outcome != abi.OutcomeOK {
		t.Fatalf("outcome %v (%+v %+v), want ok", r.Outcome, r.Error, r.Skip)
	}
	v, err := abi.DecodeValue(r.Value)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestManifestDerivedFromTypes(t *testing.T) {
	b, err := Manifest()
	if err != nil {
		t.Fatal(err)
	}
	m, err := abi.DecodeManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	rich, ok := m.Knot("t_rich")
	if !ok {
		t.Fatal("t_rich missing")
	}
	want := abi.KnotSpec{Name: "t_rich", Doc: "Echoes a summary.", Output: "dict[any]", Inputs: []abi.InputSpec{
		{Name: "user_id", Type: "str", Doc: "who"},
		{Name: "scores", Type: "list[float]"},
		{Name: "labels", Type: "dict[str]", Optional: true},
		{Name: "limit", Type: "optional[int]", Optional: true},
		{Name: "raw", Type: "bytes"},
		{Name: "flag", Type: "bool"},
	}}
	if diff := cmp.Diff(want, *rich); diff != "" {
		t.Errorf("t_rich spec (-want +got):\n%s", diff)
	}
	rest, _ := m.Knot("t_rest")
	if rest.Rest != "int" || len(rest.Inputs) != 1 {
		t.Errorf("t_rest spec = %+v, want rest int and one input", rest)
	}
	add, _ := m.Knot("t_add")
	if add.Inputs[0].Doc != "left" || add.Output != "int" {
		t.Errorf("t_add spec = %+v", add)
	}
}

func TestInvoke(t *testing.T) {
	if got := okValue(t, invokeT(t, "t_add", map[string]any{"a": 2}, map[string]any{"b": 40})); got != int64(42) {
		t.Errorf("t_add = %#v, want 42 (a from inputs, b from config)", got)
	}
	got := okValue(t, invokeT(t, "t_rich", map[string]any{
		"user_id": "u1", "scores": []any{1, 2.5}, "raw": []byte{1, 2, 3}, "flag": true,
	}, nil))
	want := map[string]any{"user": "u1", "n": int64(2), "labels": int64(0), "limit": int64(-1), "raw": int64(3), "flag": true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("t_rich (-want +got):\n%s", diff)
	}
	if got := okValue(t, invokeT(t, "t_rest", map[string]any{"base": 1, "x": 2, "y": 3}, map[string]any{"z": 4})); got != int64(10) {
		t.Errorf("t_rest = %v, want 10", got)
	}
	if got := okValue(t, invokeT(t, "t_str", map[string]any{"a": -7, "b": 0}, nil)); got != "-7" {
		t.Errorf("t_str = %v", got)
	}
}

func TestOutcomes(t *testing.T) {
	r := invokeT(t, "t_fail", map[string]any{"a": 1, "b": 2}, nil)
	if r.Outcome != abi.OutcomeErr || r.Error.Type != "RangeError" || r.Error.Message != "wrapped: RangeError: too big" || len(r.Error.Detail) == 0 {
		t.Errorf("t_fail = %v %+v", r.Outcome, r.Error)
	}
	r = invokeT(t, "t_plain", map[string]any{"a": 1, "b": 2}, nil)
	if r.Outcome != abi.OutcomeErr || r.Error.Type != "Error" || r.Error.Message != "plain failure" {
		t.Errorf("t_plain = %v %+v", r.Outcome, r.Error)
	}
	r = invokeT(t, "t_skip", map[string]any{"a": 1, "b": 2}, nil)
	if r.Outcome != abi.OutcomeSkip || r.Skip.Reason != "not today" {
		t.Errorf("t_skip = %v %+v", r.Outcome, r.Skip)
	}
	r = invokeT(t, "t_panic", map[string]any{"a": 1, "b": 2}, nil)
	if r.Outcome != abi.OutcomeErr || r.Error.Type != "Panic" || r.Error.Message != "oh no" || !strings.Contains(r.Error.Trace, "pdk_test.go") {
		t.Errorf("t_panic = %v %+v", r.Outcome, r.Error)
	}
}

func TestInputErrors(t *testing.T) {
	for _, tc := range []struct {
		knot   string
		inputs map[string]any
		want   string
	}{
		{"t_add", map[string]any{"a": 1}, `knot "t_add": missing input "b"`},
		{"t_add", map[string]any{"a": 1, "b": 2, "c": 3}, `knot "t_add": unknown input "c"`},
		{"t_add", map[string]any{"a": "x", "b": 2}, `knot "t_add": input "a": not an integer`},
		{"t_add", map[string]any{"a": 1.5, "b": 2}, `input "a": not an integer`},
		{"t_rich", map[string]any{"user_id": 5, "scores": []any{}, "raw": []byte{}, "flag": true}, `input "user_id"`},
		{"t_rest", map[string]any{"base": 1, "x": "no"}, `input "x"`},
		{"nope", nil, `module has no knot "nope"`},
	} {
		r := invokeT(t, tc.knot, tc.inputs, nil)
		if r.Outcome != abi.OutcomeErr || !strings.Contains(r.Error.Message, tc.want) {
			t.Errorf("%s(%v) = %v %+v, want err containing %q", tc.knot, tc.inputs, r.Outcome, r.Error, tc.want)
		}
	}
	r, err := abi.DecodeResponse(Invoke([]byte{0xff}))
	if err != nil || r.Outcome != abi.OutcomeErr || r.Error.Type != "PDKError" {
		t.Errorf("malformed request: %v %+v %v", r.Outcome, r.Error, err)
	}
}

func TestRegisterRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		reg  func()
		want string
	}{
		{"bad name", func() { Register("a b", "", func(addIn) (int, error) { return 0, nil }) }, "invalid knot name"},
		{"twice", func() { Register("t_add", "", func(addIn) (int, error) { return 0, nil }) }, "registered twice"},
		{"not struct", func() { Register("t_x1", "", func(int) (int, error) { return 0, nil }) }, "not a struct"},
		{"bad field type", func() {
			Register("t_x2", "", func(struct{ C chan int }) (int, error) { return 0, nil })
		}, "no ABI equivalent"},
		{"int map key", func() {
			Register("t_x3", "", func(struct{ M map[int]int }) (int, error) { return 0, nil })
		}, "not string"},
		{"bad rest", func() {
			Register("t_x4", "", func(struct {
				R []int `pirn:"*"`
			}) (int, error) {
				return 0, nil
			})
		}, `needs a map[string]T`},
		{"dup input", func() {
			Register("t_x5", "", func(struct {
				A int `pirn:"a"`
				B int `pirn:"a"`
			}) (int, error) {
				return 0, nil
			})
		}, `declared twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				p := recover()
				if p == nil || !strings.Contains(fmt.Sprint(p), tc.want) {
					t.Errorf("Register panic = %v, want one containing %q", p, tc.want)
				}
			}()
			tc.reg()
		})
	}
}

func TestSnake(t *testing.T) {
	for in, want := range map[string]string{"X": "x", "UserID": "user_id", "HTTPServer": "http_server", "A1": "a1", "simple": "simple", "ID": "id"} {
		if got := snake(in); got != want {
			t.Errorf("snake(%q) = %q, want %q", in, got, want)
		}
	}
}

type collectionsIn struct {
	Ints   []int64              `pirn:"ints"`
	Names  []string             `pirn:"names"`
	Grid   [][]float64          `pirn:"grid"`
	Totals map[string]float64   `pirn:"totals"`
	Nested map[string][]int64   `pirn:"nested,optional"`
	Any    []any                `pirn:"any,optional"`
	Named  map[string]namedType `pirn:"named,optional"`
}

type namedType string

func init() {
	Register("t_collections", "Summarises collections.", func(in collectionsIn) (map[string]any, error) {
		var sum int64
		for _, i := range in.Ints {
			sum += i
		}
		var cells float64
		for _, row := range in.Grid {
			for _, c := range row {
				cells += c
			}
		}
		var totals float64
		for _, v := range in.Totals {
			totals += v
		}
		return map[string]any{"sum": sum, "names": strings.Join(in.Names, "+"), "cells": cells, "totals": totals,
			"nested": len(in.Nested["k"]), "any": len(in.Any), "named": string(in.Named["n"]), "nil": in.Ints == nil}, nil
	})
}

// TestCollectionDecoding covers the direct decoders of lists and maps.
func TestCollectionDecoding(t *testing.T) {
	got := okValue(t, invokeT(t, "t_collections", map[string]any{
		"ints": []any{1, -2, 300000}, "names": []any{"a", "b"}, "grid": []any{[]any{1.5, 2}, []any{}},
		"totals": map[string]any{"x": 1, "y": 0.5}, "nested": map[string]any{"k": []any{1, 2}},
		"any": []any{1, "two", nil}, "named": map[string]any{"n": "v"},
	}, nil))
	want := map[string]any{"sum": int64(299999), "names": "a+b", "cells": 3.5, "totals": 1.5, "nested": int64(2), "any": int64(3), "named": "v", "nil": false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("t_collections (-want +got):\n%s", diff)
	}
	got = okValue(t, invokeT(t, "t_collections", map[string]any{"ints": nil, "names": []any{}, "grid": []any{}, "totals": map[string]any{}}, nil))
	if m := got.(map[string]any); m["nil"] != true || m["names"] != "" {
		t.Errorf("null and empty collections: %v", got)
	}
	for _, tc := range []struct {
		ins  map[string]any
		want string
	}{
		{map[string]any{"ints": []any{1, "two"}, "names": []any{}, "grid": []any{}, "totals": map[string]any{}}, `input "ints": element 1: not an integer`},
		{map[string]any{"ints": map[string]any{}, "names": []any{}, "grid": []any{}, "totals": map[string]any{}}, `input "ints": not a definite-length array`},
		{map[string]any{"ints": []any{}, "names": []any{}, "grid": []any{[]any{1, true}}, "totals": map[string]any{}}, `input "grid": element 0: element 1: not a number`},
		{map[string]any{"ints": []any{}, "names": []any{}, "grid": []any{}, "totals": map[string]any{"x": "1"}}, `input "totals": "x": not a number`},
	} {
		r := invokeT(t, "t_collections", tc.ins, nil)
		if r.Outcome != abi.OutcomeErr || !strings.Contains(r.Error.Message, tc.want) {
			t.Errorf("%v: %v %+v, want an error containing %q", tc.ins, r.Outcome, r.Error, tc.want)
		}
	}
}

type timeIn struct {
	At time.Time `pirn:"at"`
}

// A time.Time is RFC 3339 text in the one encoding, so a knot declares it
// str, and takes and returns it as such.
func TestTimeIsText(t *testing.T) {
	t.Parallel()
	k, err := New("later", "", func(_ context.Context, in timeIn) (time.Time, error) { return in.At.Add(time.Hour), nil })
	if err != nil {
		t.Fatal(err)
	}
	spec := k.Spec()
	if spec.Inputs[0].Type != "str" || spec.Output != "str" {
		t.Fatalf("spec = %+v, want str in and out", spec)
	}
	at := time.Date(2026, 12, 3, 14, 0, 0, 123456789, time.FixedZone("X", 3600))
	b, err := abi.Marshal(at)
	if err != nil {
		t.Fatal(err)
	}
	r := k.Respond(t.Context(), &abi.Request{Knot: "later", Inputs: []abi.Arg{{Name: "at", Value: b}}})
	if r.Outcome != abi.OutcomeOK {
		t.Fatalf("%+v", r.Error)
	}
	v, err := abi.DecodeValue(r.Value)
	if want := at.Add(time.Hour).Format(time.RFC3339Nano); err != nil || v != want {
		t.Errorf("output %v (%v), want %q", v, err, want)
	}
}

// TestCyclicOutput: a knot (here on the host, as package pirn's Func runs
// one) that returns a cyclic value errs with OutputError; the CBOR library
// alone would recurse until the stack overflowed and end the process.
func TestCyclicOutput(t *testing.T) {
	t.Parallel()
	type none struct{}
	k, err := New("loop", "", func(context.Context, none) (map[string]any, error) {
		m := map[string]any{}
		m["self"] = m
		return m, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r := k.Respond(t.Context(), &abi.Request{Knot: "loop"})
	if r.Outcome != abi.OutcomeErr || r.Error.Type != "OutputError" || !strings.Contains(r.Error.Message, "a cycle?") {
		t.Fatalf("outcome %v, error %+v; want an OutputError naming the cycle", r.Outcome, r.Error)
	}
}
