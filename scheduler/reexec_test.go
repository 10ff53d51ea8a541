package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/model"
	"github.com/pirn-wasm/pirn/scheduler"
)

// TestReexecute: every record of a knot, an aggregator with a constant,
// a ReceiveErrors knot, a sink and a Map's elements re-executes to its
// recorded output from the values its inputs name; the kinds whose
// output is not their function's, and missing inputs, are refused.
func TestReexecute(t *testing.T) {
	tp := scheduler.NewTapestry()
	node := must[*scheduler.Node](t)
	paramX(t, tp, abi.ListOf(abi.Int))
	node(tp.AddKnot(scheduler.KnotDecl{ID: "k", Kind: model.KindSource, Fn: f(func(context.Context, map[string]any) (any, error) { return 10, nil })}))
	node(tp.AddKnot(scheduler.KnotDecl{ID: "sum", Kind: model.KindAggregator, Parents: map[string]string{"xs": "x", "k": "k"}, Config: map[string]any{"c": 100},
		Fn: f(func(_ context.Context, in map[string]any) (any, error) {
			s := in["k"].(int64) + in["c"].(int64)
			for _, v := range in["xs"].([]any) {
				s += v.(int64)
			}
			return s, nil
		})}))
	node(tp.AddKnot(scheduler.KnotDecl{ID: "wrapped", Parents: map[string]string{"v": "sum"}, Policy: model.ReceiveErrors,
		Fn: f(func(_ context.Context, in map[string]any) (any, error) { return fmt.Sprint(in["v"]), nil })}))
	node(tp.AddKnot(scheduler.KnotDecl{ID: "out", Kind: model.KindSink, Parents: map[string]string{"v": "wrapped"},
		Fn: f(func(context.Context, map[string]any) (any, error) { return "written", nil })}))
	node(tp.AddMap(scheduler.MapDecl{ID: "m", Over: "x", Bind: "item", Parents: map[string]string{"scale": "k"},
		Fn: f(func(_ context.Context, in map[string]any) (any, error) {
			return in["item"].(int64) * in["scale"].(int64), nil
		})}))
	node(tp.AddGate(scheduler.GateDecl{ID: "g", Input: "k", FnInput: "v", Fn: f(func(context.Context, map[string]any) (any, error) { return true, nil })}))
	res := run(t, tp, []any{1, 2, 3})
	if !res.Succeeded() {
		t.Fatalf("run: %v", res.Status)
	}

	values := map[cas.Digest]cas.Value{}
	for _, v := range res.Values {
		values[v.Digest] = v
	}
	items, err := cas.Elements(res.Values["x"].Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range items {
		v := cas.CanonicalValue(b)
		values[v.Digest] = v
	}
	checked := 0
	for i := range res.Records {
		r := &res.Records[i]
		inputs := map[string]cas.Value{}
		for _, in := range r.Inputs {
			inputs[in.Name] = values[in.Digest]
		}
		got, err := tp.Reexecute(t.Context(), r, inputs)
		switch r.Kind {
		case lineage.KindParameter, lineage.KindGate, lineage.KindMap:
			if !errors.Is(err, scheduler.ErrNotReexecutable) {
				t.Errorf("Reexecute(%s, a %s) = %+v, %v; want ErrNotReexecutable", r.KnotID, r.Kind, got, err)
			}
			continue
		}
		if err != nil || got.Outcome != lineage.OK || got.Output != r.Output {
			t.Errorf("Reexecute(%s) = %+v, %v; want ok %s", r.KnotID, got, err, r.Output)
		}
		checked++
	}
	if checked != 7 { // k, sum, wrapped, out and 3 elements
		t.Errorf("re-executed %d records, want 7", checked)
	}

	// Other inputs give another output; a missing input, an unknown
	// node, a record of another kind are refused.
	sum := record(t, res, "sum")
	other, _ := cas.NewValue([]any{int64(5)})
	got, err := tp.Reexecute(t.Context(), &sum, map[string]cas.Value{"xs": other, "k": res.Values["k"]})
	if err != nil || got.Output == sum.Output {
		t.Errorf("Reexecute(sum, other xs) = %+v, %v; want another output", got, err)
	}
	if _, err := tp.Reexecute(t.Context(), &sum, map[string]cas.Value{"xs": other}); !errors.Is(err, scheduler.ErrNotReexecutable) {
		t.Errorf("Reexecute without input k: %v", err)
	}
	for _, r := range []lineage.Record{{KnotID: "nope", Kind: lineage.KindKnot}, {KnotID: "sum", Kind: lineage.KindSink}} {
		if _, err := tp.Reexecute(t.Context(), &r, nil); !errors.Is(err, scheduler.ErrNotReexecutable) {
			t.Errorf("Reexecute(%s as a %s): %v, want ErrNotReexecutable", r.KnotID, r.Kind, err)
		}
	}
}
