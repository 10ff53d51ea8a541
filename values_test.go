package pirn_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/host"
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
