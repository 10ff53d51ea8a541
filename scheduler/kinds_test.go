package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/model"
	"github.com/pirn-wasm/pirn/scheduler"
)

func f(k fn) scheduler.Fn { return scheduler.Fn{Invoker: k, Name: "host:test"} }

// one builds a one-input function of the value under name.
func one(name string, body func(v any) (any, error)) fn {
	return func(_ context.Context, in map[string]any) (any, error) { return body(in[name]) }
}

func paramX(t *testing.T, tp *scheduler.Tapestry, typ abi.Type) {
	t.Helper()
	must[*scheduler.Node](t)(tp.AddParameter(scheduler.ParamDecl{ID: "x", Name: "x", Type: typ}))
}

func run(t *testing.T, tp *scheduler.Tapestry, x any) *scheduler.Result {
	t.Helper()
	e := newEnv(t, scheduler.Config{Workers: 2})
	res, err := e.s.Run(t.Context(), tp, scheduler.Request{Params: map[string]any{"x": x}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func record(t *testing.T, res *scheduler.Result, id string) lineage.Record {
	t.Helper()
	for _, r := range res.Records {
		if r.KnotID == id {
			return r
		}
	}
	t.Fatalf("no record for %s", id)
	return lineage.Record{}
}

func skipsOf(res *scheduler.Result) map[string]string {
	m := map[string]string{}
	for _, s := range res.Skipped {
		m[s.KnotID] = s.Reason
	}
	return m
}

func TestSourceSinkAggregator(t *testing.T) {
	tp := scheduler.NewTapestry()
	node := must[*scheduler.Node](t)
	node(tp.AddKnot(scheduler.KnotDecl{ID: "src", Kind: model.KindSource, Fn: f(func(context.Context, map[string]any) (any, error) { return 7, nil })}))
	paramX(t, tp, abi.Int)
	node(tp.AddKnot(scheduler.KnotDecl{ID: "agg", Kind: model.KindAggregator, Parents: map[string]string{"a": "src", "b": "x"},
		Fn: f(func(_ context.Context, in map[string]any) (any, error) { return in["a"].(int64) * in["b"].(int64), nil })}))
	var sunk atomic.Value
	node(tp.AddKnot(scheduler.KnotDecl{ID: "out", Kind: model.KindSink, Parents: map[string]string{"v": "agg"},
		Fn: f(func(_ context.Context, in map[string]any) (any, error) { sunk.Store(in["v"]); return "written", nil })}))
	res := run(t, tp, 3)
	if diff := cmp.Diff(map[string]any{"src": int64(7), "x": int64(3), "agg": int64(21), "out": nil}, res.Outputs); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	if sunk.Load() != int64(21) || record(t, res, "out").Kind != "sink" || record(t, res, "src").Kind != "source" {
		t.Errorf("sink saw %v; kinds %s %s", sunk.Load(), record(t, res, "out").Kind, record(t, res, "src").Kind)
	}
	for _, tc := range []struct {
		spec scheduler.KnotDecl
		want string
	}{
		{scheduler.KnotDecl{ID: "s2", Kind: model.KindSource, Fn: f(nil), Parents: map[string]string{"a": "x"}}, "a source takes no parents"},
		{scheduler.KnotDecl{ID: "a2", Kind: model.KindAggregator, Fn: f(nil)}, "an aggregator needs at least one parent"},
		{scheduler.KnotDecl{ID: "k2", Fn: f(nil), Parents: map[string]string{"a": "out"}}, `"out" is a sink, which nothing may consume`},
		{scheduler.KnotDecl{ID: "k3", Kind: model.KindGate, Fn: f(nil)}, "AddKnot cannot add a gate"},
	} {
		if _, err := tp.AddKnot(tc.spec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("AddKnot(%s) error = %v, want %q", tc.spec.ID, err, tc.want)
		}
	}
}

func gateTapestry(t *testing.T, pred fn) *scheduler.Tapestry {
	tp := scheduler.NewTapestry()
	paramX(t, tp, abi.Int)
	must[*scheduler.Node](t)(tp.AddGate(scheduler.GateDecl{ID: "g", Input: "x", Fn: f(pred), FnInput: "v"}))
	must[*scheduler.Node](t)(tp.AddKnot(scheduler.KnotDecl{ID: "after", Fn: f(double), Parents: map[string]string{"x": "g"}}))
	return tp
}

func TestGate(t *testing.T) {
	positive := one("v", func(v any) (any, error) { return v.(int64) > 0, nil })
	res := run(t, gateTapestry(t, positive), 4)
	if res.Outputs["g"] != int64(4) || res.Outputs["after"] != int64(8) {
		t.Errorf("open gate: %v", res.Outputs)
	}
	if r := record(t, res, "g"); r.Output != res.Values["x"].Digest || r.Kind != "gate" {
		t.Errorf("an open gate passes its input through unchanged: %+v", r)
	}
	res = run(t, gateTapestry(t, positive), -4)
	if diff := cmp.Diff(map[string]string{"g": scheduler.ReasonGateClosed, "after": scheduler.ReasonParentFailed}, skipsOf(res)); diff != "" {
		t.Errorf("closed gate skips (-want +got):\n%s", diff)
	}
	if !res.Succeeded() {
		t.Error("a closed gate must not fail the run")
	}
	// Truthiness of other values.
	for _, tc := range []struct {
		v    any
		want bool
	}{{0, false}, {1, true}, {"", false}, {"a", true}, {nil, false}, {0.0, false}, {math.Copysign(0, -1), false},
		{0.5, true}, {[]any{}, false}, {[]any{0}, true}, {map[string]any{}, false}, {[]byte{}, false}, {false, false}, {true, true}} {
		res := run(t, gateTapestry(t, one("v", func(any) (any, error) { return tc.v, nil })), 1)
		if got := res.Outputs["g"] != nil; got != tc.want {
			t.Errorf("predicate returning %#v: gate open = %v, want %v", tc.v, got, tc.want)
		}
	}
	res = run(t, gateTapestry(t, one("v", func(any) (any, error) { return nil, errors.New("bad predicate") })), 1)
	if len(res.Errors) != 1 || res.Errors[0].KnotID != "g" || res.Errors[0].Message != "bad predicate" {
		t.Errorf("failing predicate: %+v", res.Errors)
	}
}

func branchTapestry(t *testing.T, sel fn) *scheduler.Tapestry {
	tp := scheduler.NewTapestry()
	paramX(t, tp, abi.Any)
	node := must[*scheduler.Node](t)
	node(tp.AddBranch(scheduler.BranchDecl{ID: "route", Input: "x", Fn: f(sel), FnInput: "m", Arms: []string{"tool", "response"}}))
	node(tp.AddKnot(scheduler.KnotDecl{ID: "t", Fn: f(one("p", func(v any) (any, error) { return "tool:" + v.(map[string]any)["body"].(string), nil })), Parents: map[string]string{"p": "route.tool"}}))
	node(tp.AddKnot(scheduler.KnotDecl{ID: "r", Fn: f(one("p", func(v any) (any, error) { return "resp", nil })), Parents: map[string]string{"p": "route.response"}}))
	return tp
}

func TestBranch(t *testing.T) {
	byType := one("m", func(v any) (any, error) { return v.(map[string]any)["type"], nil })
	res := run(t, branchTapestry(t, byType), map[string]any{"type": "tool", "body": "ls"})
	if res.Outputs["route"] != "tool" || res.Outputs["t"] != "tool:ls" || res.Outputs["route.tool"] == nil {
		t.Errorf("outputs %v", res.Outputs)
	}
	if diff := cmp.Diff(map[string]string{"route.response": scheduler.ReasonBranchNotSelected, "r": scheduler.ReasonParentFailed}, skipsOf(res)); diff != "" {
		t.Errorf("skips (-want +got):\n%s", diff)
	}
	if !res.Succeeded() {
		t.Error("an unselected arm must not fail the run")
	}
	arm := record(t, res, "route.tool")
	if arm.Kind != "arm" || len(arm.Inputs) != 2 || arm.Inputs[1].Name != "passthrough" || arm.Inputs[1].Parent != "x" || arm.Output != res.Values["x"].Digest {
		t.Errorf("arm record %+v", arm)
	}
	for _, s := range res.Skipped {
		if s.KnotID == "route.response" && fmt.Sprint(s.Detail) != "map[branch_name:response]" {
			t.Errorf("unselected arm detail %v", s.Detail)
		}
	}
	// An undeclared arm name is an err naming the declared arms; every arm is skipped.
	res = run(t, branchTapestry(t, byType), map[string]any{"type": "zz"})
	if len(res.Errors) != 1 || res.Errors[0].Type != scheduler.ErrBranch ||
		res.Errors[0].Message != `branch "route": the selector returned "zz", which is not a declared arm (declared: tool, response)` {
		t.Errorf("errors %+v", res.Errors)
	}
	if diff := cmp.Diff(map[string]string{"route.tool": scheduler.ReasonParentFailed, "route.response": scheduler.ReasonParentFailed,
		"t": scheduler.ReasonParentFailed, "r": scheduler.ReasonParentFailed}, skipsOf(res)); diff != "" {
		t.Errorf("skips after an undeclared arm (-want +got):\n%s", diff)
	}
	res = run(t, branchTapestry(t, one("m", func(any) (any, error) { return 5, nil })), map[string]any{})
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Message, "the selector returned 5, not the name of an arm") {
		t.Errorf("non-text selector: %+v", res.Errors)
	}
	// Consuming the branch itself is refused: its arms are what flows on.
	tp := branchTapestry(t, byType)
	if _, err := tp.AddKnot(scheduler.KnotDecl{ID: "bad", Fn: f(double), Parents: map[string]string{"x": "route"}}); err == nil ||
		!strings.Contains(err.Error(), "consume one of its arms (route.tool, route.response)") {
		t.Errorf("consuming a branch: %v", err)
	}
	if _, err := tp.AddBranch(scheduler.BranchDecl{ID: "b2", Input: "x", Fn: f(byType), Arms: []string{"a", "a"}}); err == nil || !strings.Contains(err.Error(), `arm "a" declared twice`) {
		t.Errorf("duplicate arms: %v", err)
	}
	if _, err := tp.AddGate(scheduler.GateDecl{ID: "g2", Input: "x", Fn: f(byType), Policy: model.ReceiveErrors}); err == nil || !strings.Contains(err.Error(), "cannot use receive_errors") {
		t.Errorf("receive_errors gate: %v", err)
	}
}

func mapTapestry(t *testing.T, each fn, onSkip model.OnSkip) *scheduler.Tapestry {
	tp := scheduler.NewTapestry()
	paramX(t, tp, abi.Any)
	node := must[*scheduler.Node](t)
	node(tp.AddParameter(scheduler.ParamDecl{ID: "k", Name: "k", Type: abi.Int, Default: 10, HasDefault: true}))
	node(tp.AddMap(scheduler.MapDecl{ID: "m", Over: "x", Fn: f(each), Bind: "item", Parents: map[string]string{"scale": "k"},
		Config: map[string]any{"offset": 1}, OnSkip: onSkip}))
	return tp
}

func TestMap(t *testing.T) {
	var calls atomic.Int32
	affine := fn(func(_ context.Context, in map[string]any) (any, error) {
		calls.Add(1)
		item := in["item"].(int64)
		switch {
		case item < 0:
			return nil, fmt.Errorf("negative %d", item)
		case item == 0:
			return nil, skipErr("zero")
		}
		return item*in["scale"].(int64) + in["offset"].(int64), nil
	})
	res := run(t, mapTapestry(t, affine, model.OnSkipNull), []any{1, 2, 0, 3})
	if diff := cmp.Diff([]any{int64(11), int64(21), nil, int64(31)}, res.Outputs["m"]); diff != "" {
		t.Errorf("map output (-want +got):\n%s", diff)
	}
	el := record(t, res, "m:1")
	if el.Kind != lineage.KindElement || el.Map != "m" || el.Index != 1 || el.Outcome != lineage.OK || el.Output != digest(t, 21) || len(el.Inputs) != 2 ||
		el.Inputs[0] != (lineage.Input{Name: "item", Parent: "x", Digest: digest(t, 2)}) || el.Inputs[1].Name != "scale" {
		t.Errorf("element record %+v", el)
	}
	if r := record(t, res, "m:2"); r.Outcome != lineage.Skipped || r.SkipReason != "zero" {
		t.Errorf("skipped element record %+v", r)
	}
	res = run(t, mapTapestry(t, affine, model.OnSkipDrop), []any{1, 0, 2})
	if diff := cmp.Diff([]any{int64(11), int64(21)}, res.Outputs["m"]); diff != "" {
		t.Errorf("on_skip drop (-want +got):\n%s", diff)
	}
	res = run(t, mapTapestry(t, affine, model.OnSkipSkip), []any{1, 0, 2})
	if skipsOf(res)["m"] != scheduler.ReasonElementSkipped {
		t.Errorf("on_skip skip: %v", res.Skipped)
	}
	// A failing element: the Map errs naming the first failing index.
	res = run(t, mapTapestry(t, affine, model.OnSkipNull), []any{1, -5, 2, -7})
	var mapErr *lineage.ErrorRecord
	for i := range res.Errors {
		if res.Errors[i].KnotID == "m" {
			mapErr = &res.Errors[i]
		}
	}
	if mapErr == nil || mapErr.Type != scheduler.ErrElement || mapErr.Message != `map "m": element 1 failed: TestError: negative -5` {
		t.Fatalf("map error %+v (all: %+v)", mapErr, res.Errors)
	}
	if len(res.Errors) != 3 { // both elements and the map
		t.Errorf("errors %d, want 3", len(res.Errors))
	}
	// Empty list and not a list.
	res = run(t, mapTapestry(t, affine, model.OnSkipNull), []any{})
	if diff := cmp.Diff([]any{}, res.Outputs["m"]); diff != "" {
		t.Errorf("empty list (-want +got):\n%s", diff)
	}
	res = run(t, mapTapestry(t, affine, model.OnSkipNull), map[string]any{"a": 1})
	if len(res.Errors) != 1 || res.Errors[0].Message != `map "m": over: want a list, got a dict` {
		t.Errorf("map over a dict: %+v", res.Errors)
	}
	// Many elements run on the pool.
	calls.Store(0)
	items := make([]any, 500)
	for i := range items {
		items[i] = i + 1
	}
	res = run(t, mapTapestry(t, affine, model.OnSkipNull), items)
	if got := res.Outputs["m"].([]any); len(got) != 500 || got[499] != int64(5001) || calls.Load() != 500 {
		t.Errorf("500 elements: %d outputs, %d calls", len(got), calls.Load())
	}
	if len(res.Records) != 2+500+1 {
		t.Errorf("%d records, want 503 (2 parameters, 500 elements, the map)", len(res.Records))
	}
}

func reduceTapestry(t *testing.T, spec scheduler.ReduceDecl) *scheduler.Tapestry {
	tp := scheduler.NewTapestry()
	paramX(t, tp, abi.Any)
	spec.ID, spec.Of = "total", "x"
	must[*scheduler.Node](t)(tp.AddReduce(spec))
	return tp
}

func TestReduce(t *testing.T) {
	sumAll := fn(func(_ context.Context, in map[string]any) (any, error) {
		var s int64
		for _, v := range in["items"].([]any) {
			s += v.(int64)
		}
		return s, nil
	})
	addPair := fn(func(_ context.Context, in map[string]any) (any, error) {
		if in["item"].(int64) < 0 {
			return nil, errors.New("negative")
		}
		return in["acc"].(int64) + in["item"].(int64), nil
	})
	whole := scheduler.ReduceDecl{Fn: f(sumAll)}
	pair := scheduler.ReduceDecl{Fn: f(addPair), Pairwise: true, Initial: 100}
	for _, tc := range []struct {
		name string
		spec scheduler.ReduceDecl
		in   any
		want any
	}{
		{"whole", whole, []any{1, 2, 3}, int64(6)},
		{"whole empty", whole, []any{}, int64(0)},
		{"pairwise", pair, []any{1, 2, 3}, int64(106)},
		{"pairwise empty gives initial", pair, []any{}, int64(100)},
	} {
		res := run(t, reduceTapestry(t, tc.spec), tc.in)
		if res.Outputs["total"] != tc.want {
			t.Errorf("%s: %v, want %v (errors %+v)", tc.name, res.Outputs["total"], tc.want, res.Errors)
		}
	}
	res := run(t, reduceTapestry(t, pair), []any{1, -1})
	if len(res.Errors) != 1 || res.Errors[0].Message != `reduce "total": step 1: negative` {
		t.Errorf("failing step: %+v", res.Errors)
	}
	res = run(t, reduceTapestry(t, whole), "abc")
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Message, "of: want a list, got a str") {
		t.Errorf("reduce over text: %+v", res.Errors)
	}
}

// TestMapMaxElements: a Map's list longer than its bound errs before any
// element runs, naming the bound; at the bound it runs.
func TestMapMaxElements(t *testing.T) {
	var calls atomic.Int32
	each := one("item", func(v any) (any, error) { calls.Add(1); return v, nil })
	for _, tc := range []struct {
		max, n int
		want   string
	}{
		{5, 6, `map "m": over: a list of 6 elements, over the limit max_elements=5`},
		{6, 6, ""},
		{0, scheduler.DefaultMaxElements + 1, fmt.Sprintf("over the limit max_elements=%d", scheduler.DefaultMaxElements)},
	} {
		tp := scheduler.NewTapestry()
		paramX(t, tp, abi.Any)
		must[*scheduler.Node](t)(tp.AddMap(scheduler.MapDecl{ID: "m", Over: "x", Fn: f(each), Bind: "item", MaxElements: tc.max}))
		calls.Store(0)
		res := run(t, tp, make([]any, tc.n))
		if tc.want == "" {
			if !res.Succeeded() || calls.Load() != int32(tc.n) {
				t.Errorf("max %d, %d elements: %s after %d calls", tc.max, tc.n, res.Status, calls.Load())
			}
			continue
		}
		if len(res.Errors) != 1 || res.Errors[0].Type != scheduler.ErrTooMany || !strings.Contains(res.Errors[0].Message, tc.want) || calls.Load() != 0 {
			t.Errorf("max %d, %d elements: %+v after %d calls", tc.max, tc.n, res.Errors, calls.Load())
		}
	}
}
