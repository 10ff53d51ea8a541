package pirn_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/host"
	pdk "github.com/pirn-wasm/pirn/pdk/go"
)

// typesOf names the dynamic types in v, recursively, as the types knot of
// testdata/wasm/go/testknots does inside the sandbox.
func typesOf(v any) string {
	switch x := v.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = typesOf(e)
		}
		return "[]any{" + strings.Join(parts, ",") + "}"
	case map[string]any:
		var parts []string
		for k, e := range x {
			parts = append(parts, k+":"+typesOf(e))
		}
		slices.Sort(parts)
		return "map[string]any{" + strings.Join(parts, ",") + "}"
	case nil:
		return "nil"
	}
	return fmt.Sprintf("%T", v)
}

// TestAnyInputsDecodeToDataModel passes one value to an any-typed input of
// a Go knot in the sandbox and of a host-native Func: both see the data
// model's Go types (int64, map[string]any), never the CBOR library's
// defaults (uint64, map[any]any), at the top level, nested, and inside a
// struct field.
func TestAnyInputsDecodeToDataModel(t *testing.T) {
	t.Parallel()
	e := open(t, pirn.Config{})
	mod, err := e.LoadModule(t.Context(), "testdata/wasm/go/testknots/testknots.wasm")
	if err != nil {
		t.Fatal(err)
	}
	type anything struct {
		V    any             `pirn:"v"`
		Held struct{ X any } `pirn:"held,optional"`
	}
	fn := pirn.Func("types", func(_ context.Context, in anything) (string, error) {
		return typesOf(in.V) + " " + typesOf(in.Held.X), nil
	})
	tp := pirn.NewTapestry()
	node := must[*pirn.Node](t)
	v := node(tp.Parameter(pirn.Param{Name: "v"}))
	held := map[string]any{"X": map[string]any{"n": 7}}
	node(tp.Knot("guest", mod.Knot("types"), pirn.In{"v": v, "held": held}))
	node(tp.Knot("host", fn, pirn.In{"v": v, "held": held}))
	res, err := e.Run(t.Context(), tp, pirn.RunRequest{Params: map[string]any{
		"v": map[string]any{"a": 1, "b": []any{2, -3, "x", nil, 1.5, []byte{1}}, "c": map[string]any{"d": true}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := "map[string]any{a:int64,b:[]any{int64,int64,string,nil,float64,[]uint8},c:map[string]any{d:bool}} map[string]any{n:int64}"
	for _, id := range []string{"guest", "host"} {
		if res.Outputs[id] != want {
			t.Errorf("%s saw %v, want %s", id, res.Outputs[id], want)
		}
	}
}

// TestFuncInputsAreCoerced checks that a host-native Func's inputs are
// coerced to its declared types exactly as a Wasm knot's are: a str "3"
// into an int input is 3, and "x" is a TypeError naming the input.
func TestFuncInputsAreCoerced(t *testing.T) {
	t.Parallel()
	e := open(t, pirn.Config{})
	m := loadModules(t, e)
	type in struct {
		X int64 `pirn:"x"`
	}
	double := pirn.Func("double", func(_ context.Context, in in) (int64, error) { return 2 * in.X, nil })
	tp := pirn.NewTapestry()
	node := must[*pirn.Node](t)
	s := node(tp.Parameter(pirn.Param{Name: "s", Type: "str"}))
	node(tp.Knot("host", double, pirn.In{"x": s}))
	node(tp.Knot("wasm", m.arith.Knot("double"), pirn.In{"x": s}))
	if len(tp.Warnings()) != 2 {
		t.Errorf("warnings %q, want one per str -> int edge", tp.Warnings())
	}
	res := runT(t, e, tp, map[string]any{"s": "3"})
	if diff := cmp.Diff(map[string]any{"param:s": "3", "host": int64(6), "wasm": int64(6)}, res.Outputs); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	res = runT(t, e, tp, map[string]any{"s": "x"})
	got := map[string]string{}
	for _, er := range res.Errors {
		got[er.KnotID] = er.Type + ": " + er.Message
	}
	want := map[string]string{
		"host": host.ErrType + `: knot double: input "x": want int, got str "x" (not a decimal integer)`,
		"wasm": host.ErrType + `: knot double: input "x": want int, got str "x" (not a decimal integer)`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

// TestIntegralFloatIsInt: an int parameter takes an integral float, or
// text of one, from the Go API, from defaults (Go and YAML) and from
// run requests alike; a fractional value is an error naming it.
func TestIntegralFloatIsInt(t *testing.T) {
	t.Parallel()
	e := open(t, pirn.Config{})
	tp := pirn.NewTapestry()
	node := must[*pirn.Node](t)
	node(tp.Parameter(pirn.Param{Name: "x", Type: "int", Default: 5.0, HasDefault: true}))
	node(tp.Parameter(pirn.Param{Name: "y", Type: "int", Default: "6.0", HasDefault: true}))
	res := runT(t, e, tp, nil)
	if res.Outputs["param:x"] != int64(5) || res.Outputs["param:y"] != int64(6) {
		t.Errorf("defaults 5.0 and \"6.0\": %#v", res.Outputs)
	}
	res = runT(t, e, tp, map[string]any{"x": 7.0, "y": "8e0"})
	if res.Outputs["param:x"] != int64(7) || res.Outputs["param:y"] != int64(8) {
		t.Errorf("values 7.0 and \"8e0\": %#v", res.Outputs)
	}
	if _, err := e.Run(t.Context(), tp, pirn.RunRequest{Params: map[string]any{"x": 7.5}}); err == nil ||
		err.Error() != `parameter "x": want int, got float 7.5 (has a fractional part or is not finite)` {
		t.Errorf("x = 7.5: %v", err)
	}
	if _, err := pirn.NewTapestry().Parameter(pirn.Param{Name: "z", Type: "int", Default: "5.5", HasDefault: true}); err == nil ||
		!strings.Contains(err.Error(), `default: want int, got str "5.5" (has a fractional part)`) {
		t.Errorf("default \"5.5\": %v", err)
	}

	dir := t.TempDir()
	yaml := "name: floats\nnodes:\n  - {id: a, type: parameter, type_: int, default: 5.0}\n  - {id: b, type: parameter, type_: int, default: \"6.0\"}\n"
	path := dir + "/p.yaml"
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := e.LoadPipeline(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	res = runT(t, e, p.Tapestry, nil)
	if res.Outputs["a"] != int64(5) || res.Outputs["b"] != int64(6) {
		t.Errorf("YAML defaults: %#v", res.Outputs)
	}
}

// The types and function of the shapes knot in
// testdata/wasm/go/testknots, copied: the host encodes them with the CBOR
// library, the Go PDK inside the module with its own codec.
type (
	shape struct {
		Name   string          `json:"name"`
		Tags   []string        `cbor:"tags,omitempty"`
		When   time.Time       `cbor:"when"`
		Size   *float64        `cbor:"size,omitempty"`
		Parts  []part          `cbor:"parts"`
		ByName map[string]part `cbor:"by_name"`
		Extra  map[string]any  `cbor:"extra,omitzero"`
		Raw    []byte          `cbor:"raw"`
		Pair   pair            `cbor:"pair"`
		meta
	}
	part struct {
		ID     int     `cbor:"id"`
		Weight float32 `cbor:"weight"`
		Note   string  `cbor:"note,omitempty"`
	}
	pair struct {
		_ struct{} `cbor:",toarray"`
		A int
		B string
	}
	meta struct {
		Version int `cbor:"version"`
		Owner   string
	}
	shapeIn struct {
		S    shape `pirn:"s"`
		Fail bool  `pirn:"fail,optional"`
	}
)

func reshape(_ context.Context, in shapeIn) (shape, error) {
	s := in.S
	if in.Fail {
		return shape{}, &pdk.Error{Type: "ShapeError", Message: "asked to fail", Detail: s}
	}
	s.Parts = append(s.Parts, part{ID: len(s.Parts), Weight: 0.5})
	if s.ByName == nil {
		s.ByName = map[string]part{}
	}
	for _, p := range s.Parts {
		s.ByName[fmt.Sprint("p", p.ID)] = p
	}
	s.When = s.When.Add(90 * time.Minute)
	s.Version++
	s.Pair.A, s.Pair.B = s.Pair.A+1, s.Pair.B+"!"
	return s, nil
}

// TestGuestCodecMatchesHost runs one Go function as a knot in the sandbox
// (the Go PDK's own codec decodes its struct input and encodes its struct
// output and its error's detail) and on the host (the CBOR library does):
// the values and the error details must be the same bytes.
func TestGuestCodecMatchesHost(t *testing.T) {
	t.Parallel()
	e := open(t, pirn.Config{})
	mod, err := e.LoadModule(t.Context(), "testdata/wasm/go/testknots/testknots.wasm")
	if err != nil {
		t.Fatal(err)
	}
	fn := pirn.Func("shapes", reshape)
	inputs := []map[string]any{
		{"name": "empty"},
		{
			"name": "full", "tags": []any{"a", "b"}, "when": "2026-12-04T13:04:05.123456789+05:30",
			"size": 2.25, "parts": []any{map[string]any{"id": 7, "weight": 1.5, "note": "n"}},
			"by_name": map[string]any{"x": map[string]any{"id": 1}}, "extra": map[string]any{"k": []any{1, "v", nil}},
			"raw": []byte{0, 1, 2}, "pair": []any{3, "three"}, "version": 4, "Owner": "me",
			"unknown": "ignored",
		},
		{"name": "owner by another case", "owner": "lower", "when": "2026-01-01T00:00:00Z"},
		{"name": "name twice", "NAME": "matches name too"},                    // refused alike
		{"name": "not a time", "when": "yesterday"},                           // refused alike
		{"name": "a float into an int", "version": 1.5},                       // refused alike
		{"name": "short pair", "pair": []any{1}},                              // refused alike
		{"name": "overflow", "parts": []any{map[string]any{"weight": 1e300}}}, // refused alike
	}
	for i, s := range inputs {
		for _, fail := range []bool{false, true} {
			if fail && i >= 3 {
				continue
			}
			tp := pirn.NewTapestry()
			node := must[*pirn.Node](t)
			in := pirn.In{"s": s}
			if fail {
				in["fail"] = true
			}
			node(tp.Knot("guest", mod.Knot("shapes"), in))
			node(tp.Knot("host", fn, in))
			res := runT(t, e, tp, nil)
			if fail {
				if len(res.Errors) != 2 {
					t.Fatalf("input %d: %d errors, want 2: %+v", i, len(res.Errors), res.Errors)
				}
				a, b := res.Errors[0], res.Errors[1]
				if a.Type != "ShapeError" || a.Type != b.Type || a.Message != b.Message || !bytes.Equal(a.Detail, b.Detail) || len(a.Detail) == 0 {
					t.Errorf("input %d: errors differ:\n%s %s %x\n%s %s %x", i, a.KnotID, a.Type, a.Detail, b.KnotID, b.Type, b.Detail)
				}
				continue
			}
			if i >= 3 { // refused by both, with the same message
				// The types are main.T in the module, pirn_test.t here.
				norm := strings.NewReplacer("main.", "", "pirn_test.", "")
				if len(res.Errors) != 2 || res.Errors[0].Type != "InputError" || res.Errors[0].Type != res.Errors[1].Type ||
					!strings.EqualFold(norm.Replace(res.Errors[0].Message), norm.Replace(res.Errors[1].Message)) {
					t.Errorf("input %d: want the same InputError from both, got %+v", i, res.Errors)
				}
				continue
			}
			if len(res.Errors) != 0 {
				t.Fatalf("input %d: errors %+v", i, res.Errors)
			}
			if diff := cmp.Diff(res.Outputs["host"], res.Outputs["guest"]); diff != "" || res.Outputs["guest"] == nil {
				t.Errorf("input %d: guest and host outputs differ (-host +guest):\n%s", i, diff)
			}
		}
	}
}
