package pirn_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/model"
)

type modules struct{ arith, outcomes, ident *pirn.Module }

func loadModules(t testing.TB, e *pirn.Engine) modules {
	t.Helper()
	var m modules
	for _, x := range []struct {
		dst  **pirn.Module
		path string
	}{{&m.arith, "examples/wasm/go/arith/arith.wasm"}, {&m.outcomes, "examples/wasm/go/outcomes/outcomes.wasm"}, {&m.ident, "testdata/wasm/wat/ident.wasm"}} {
		mod, err := e.LoadModule(context.Background(), x.path)
		if err != nil {
			t.Fatal(err)
		}
		*x.dst = mod
	}
	return m
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func runT(t *testing.T, e *pirn.Engine, tp *pirn.Tapestry, params map[string]any) *pirn.RunResult {
	t.Helper()
	res, err := e.Run(t.Context(), tp, pirn.RunRequest{Params: params})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func skips(res *pirn.RunResult) map[string]string {
	m := map[string]string{}
	for _, s := range res.Skipped {
		m[s.KnotID] = s.Reason
	}
	return m
}

func errTypes(res *pirn.RunResult) map[string]string {
	m := map[string]string{}
	for _, e := range res.Errors {
		m[e.KnotID] = e.Type
	}
	return m
}

// TestGoAPINodeTypes builds every node type in Go, with real Wasm knots,
// expressions and a host-native function.
func TestGoAPINodeTypes(t *testing.T) {
	t.Parallel()
	e := open(t, pirn.Config{})
	m := loadModules(t, e)
	tp := pirn.NewTapestry()
	node := must[*pirn.Node](t)
	n := node(tp.Parameter(pirn.Param{Name: "n", Type: "int"}))
	numbers := node(tp.Add(pirn.KnotDef{ID: "numbers", Kind: pirn.KindSource, Knot: m.arith.Knot("range"), In: pirn.In{"n": 4}}))
	_ = n
	squares := node(tp.Map(pirn.MapDef{ID: "squares", Over: numbers, Each: m.arith.Knot("square")}))
	node(tp.Map(pirn.MapDef{ID: "shifted", Over: numbers, Each: m.arith.Knot("add"), Bind: "a", In: pirn.In{"b": n}}))
	total := node(tp.Reduce(pirn.ReduceDef{ID: "total", Of: squares, Combine: m.arith.Knot("total")}))
	node(tp.Reduce(pirn.ReduceDef{ID: "digits", Of: numbers, Combine: pirn.Expr("acc * 10 + item"), Pairwise: true, Initial: 0}))
	pos := node(tp.Gate(pirn.GateDef{ID: "pos", Input: total, Predicate: m.arith.Knot("positive")}))
	route := must[*pirn.BranchNode](t)(tp.Branch(pirn.BranchDef{ID: "route", Input: pos, Selector: pirn.Expr("pos > 10 ? 'big' : 'small'"), Arms: []string{"big", "small"}}))
	big := node(tp.Knot("big", m.arith.Knot("double"), pirn.In{"x": route.Arm("big")}))
	node(tp.Knot("small", m.arith.Knot("inc"), pirn.In{"x": route.Arm("small")}))
	label := pirn.Func("label", func(_ context.Context, in struct {
		V int64  `pirn:"v"`
		P string `pirn:"prefix"`
	}) (string, error) {
		return fmt.Sprintf("%s%d", in.P, in.V), nil
	})
	named := node(tp.Knot("named", label, pirn.In{"v": big, "prefix": "total×2="}))
	node(tp.Add(pirn.KnotDef{ID: "summary", Kind: pirn.KindAggregator, In: pirn.In{"label": named, "n": n}}))
	node(tp.Add(pirn.KnotDef{ID: "log", Kind: pirn.KindSink, Knot: m.outcomes.Knot("noisy"), In: pirn.In{"x": big}}))

	res := runT(t, e, tp, map[string]any{"n": 100})
	want := map[string]any{
		"squares": []any{int64(0), int64(1), int64(4), int64(9)},
		"shifted": []any{int64(100), int64(101), int64(102), int64(103)},
		"total":   int64(14), "digits": int64(123), "pos": int64(14), "route": "big", "big": int64(28),
		"named": "total×2=28", "summary": map[string]any{"label": "total×2=28", "n": int64(100)}, "log": nil,
	}
	for id, v := range want {
		if diff := cmp.Diff(v, res.Outputs[id]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", id, diff)
		}
	}
	if diff := cmp.Diff(map[string]string{"route.small": "branch_not_selected", "small": "parent_failed_or_skipped"}, skips(res)); diff != "" {
		t.Errorf("skips (-want +got):\n%s", diff)
	}
	kinds := map[string]string{}
	for _, r := range res.Records {
		kinds[r.KnotID] = string(r.Kind) + " " + r.Knot
	}
	for id, k := range map[string]string{"numbers": "source range", "squares:2": "element square", "squares": "map square",
		"total": "reduce total", "pos": "gate positive", "route": "branch expr:pos > 10 ? 'big' : 'small'", "route.big": "arm arm:big",
		"named": "knot host:label", "summary": "aggregator builtin:collect", "log": "sink noisy"} {
		if kinds[id] != k {
			t.Errorf("record %s: %q, want %q", id, kinds[id], k)
		}
	}
}

func TestGoAPIPolicies(t *testing.T) {
	t.Parallel()
	e := open(t, pirn.Config{})
	m := loadModules(t, e)
	tp := pirn.NewTapestry()
	node := must[*pirn.Node](t)
	x := node(tp.Parameter(pirn.Param{Name: "x", Type: "int", Default: 3, HasDefault: true}))
	bad := node(tp.Knot("bad", m.outcomes.Knot("fail"), pirn.In{"x": x}))
	node(tp.Knot("skipped", m.arith.Knot("inc"), pirn.In{"x": bad}))
	node(tp.Add(pirn.KnotDef{ID: "handled", Knot: m.outcomes.Knot("recover"), In: pirn.In{"x": bad}, Policy: model.ReceiveErrors}))
	node(tp.Add(pirn.KnotDef{ID: "strict", Knot: m.arith.Knot("inc"), In: pirn.In{"x": bad}, Policy: model.RequireAllParents}))
	maybe := node(tp.Add(pirn.KnotDef{ID: "maybe", Knot: m.outcomes.Knot("fail"), In: pirn.In{"x": x}, Optional: true}))
	node(tp.Knot("after_maybe", m.arith.Knot("inc"), pirn.In{"x": maybe}))
	node(tp.Add(pirn.KnotDef{ID: "sees_skip", Knot: m.outcomes.Knot("recover"), In: pirn.In{"x": maybe}, Policy: model.ReceiveErrors}))
	res := runT(t, e, tp, nil)
	if res.Status != lineage.Failed || res.Outputs["handled"] != int64(-1) || res.Outputs["sees_skip"] != int64(0) {
		t.Errorf("status %s, outputs %v", res.Status, res.Outputs)
	}
	if diff := cmp.Diff(map[string]string{"bad": "ValueError", "strict": "ParentFailed", "maybe": "ValueError"}, errTypes(res)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"skipped": "parent_failed_or_skipped", "after_maybe": "parent_failed_or_skipped"}, skips(res)); diff != "" {
		t.Errorf("skips (-want +got):\n%s", diff)
	}
	// Hashes of failed and skipped parents are reproducible across runs.
	again := runT(t, e, tp, nil)
	for i := range res.Records {
		if diff := cmp.Diff(res.Records[i].Inputs, again.Records[i].Inputs); diff != "" {
			t.Errorf("%s inputs differ between runs:\n%s", res.Records[i].KnotID, diff)
		}
	}
}

// TestYAMLEdgeCases runs testdata/pipelines/edges.yaml: empty lists, a
// failing element, skipped elements, an undeclared arm, a closed gate, a
// skipped parent and an optional err, with real Wasm.
func TestYAMLEdgeCases(t *testing.T) {
	t.Parallel()
	e := open(t, pirn.Config{})
	p, err := e.LoadPipeline(t.Context(), "testdata/pipelines/edges.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res := runT(t, e, p.Tapestry, nil)
	for id, v := range map[string]any{"mapped_empty": []any{}, "folded_empty": int64(42), "summed_empty": int64(0), "evens": []any{int64(0), int64(2)}} {
		if diff := cmp.Diff(v, res.Outputs[id]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", id, diff)
		}
	}
	var mapErr, branchErr string
	for _, er := range res.Errors {
		switch er.KnotID {
		case "failing":
			mapErr = er.Message
		case "route":
			branchErr = er.Message
		}
	}
	if mapErr != `map "failing": element 0 failed: ValueError: fail was asked to fail` {
		t.Errorf("map error %q", mapErr)
	}
	if branchErr != `branch "route": the selector returned "zero", which is not a declared arm (declared: neg, pos)` {
		t.Errorf("branch error %q", branchErr)
	}
	want := map[string]string{"route.neg": "parent_failed_or_skipped", "route.pos": "parent_failed_or_skipped",
		"after_route": "parent_failed_or_skipped", "closed": "gate_closed", "after_closed": "parent_failed_or_skipped",
		"odd": "x is odd", "after_odd": "parent_failed_or_skipped"}
	if diff := cmp.Diff(want, skips(res)); diff != "" {
		t.Errorf("skips (-want +got):\n%s", diff)
	}
	am := res.Outputs["after_maybe"].(map[string]any)["m"].(map[string]any)
	if am["skip"].(map[string]any)["reason"] != "optional_failed" {
		t.Errorf("a receive_errors child of an optional err sees %v, want a skip", am)
	}
}

func TestGoAPIErrors(t *testing.T) {
	t.Parallel()
	e := open(t, pirn.Config{})
	m := loadModules(t, e)
	tp := pirn.NewTapestry()
	node := must[*pirn.Node](t)
	x := node(tp.Parameter(pirn.Param{Name: "x", Type: "int"}))
	xs := node(tp.Knot("xs", m.arith.Knot("range"), pirn.In{"n": x}))
	route, err := tp.Branch(pirn.BranchDef{ID: "route", Input: x, Selector: m.arith.Knot("sign"), Arms: []string{"neg", "zero", "pos"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		add  func() error
		want string
	}{
		{"undeclared arm", func() error { _, err := tp.Knot("k", m.arith.Knot("inc"), pirn.In{"x": route.Arm("po")}); return err },
			`knot "k": input "x": branch "route" has no arm "po" (its arms: neg, zero, pos); did you mean "pos"?`},
		{"undeclared arm into a gate", func() error {
			_, err := tp.Gate(pirn.GateDef{ID: "g0", Input: route.Arm("other"), Predicate: pirn.Expr("true")})
			return err
		}, `gate "g0": input: branch "route" has no arm "other" (its arms: neg, zero, pos)`},
		{"nil node", func() error { _, err := tp.Map(pirn.MapDef{ID: "m0", Each: pirn.Expr("item")}); return err },
			`map "m0": over is a nil *Node`},
		{"type mismatch", func() error { _, err := tp.Knot("sq", m.arith.Knot("square"), pirn.In{"x": xs}); return err }, `input "x" wants int, but "xs" produces list[int]`},
		{"bad constant", func() error { _, err := tp.Knot("d", m.arith.Knot("double"), pirn.In{"x": "seven"}); return err }, `constant "x": want int, got str "seven"`},
		{"map over a non-list", func() error {
			_, err := tp.Map(pirn.MapDef{ID: "m", Over: x, Each: m.arith.Knot("square")})
			return err
		}, `over: "param:x" produces int, not a list`},
		{"predicate type", func() error {
			_, err := tp.Gate(pirn.GateDef{ID: "g", Input: x, Predicate: pirn.Expr("x + 1")})
			return err
		}, `has type int, want bool`},
		{"pairwise arity", func() error {
			_, err := tp.Reduce(pirn.ReduceDef{ID: "r", Of: xs, Combine: m.arith.Knot("double"), Pairwise: true, Initial: 0})
			return err
		}, `a pairwise combine must take two required inputs`},
		{"bad func", func() error {
			_, err := tp.Knot("f", pirn.Func("f", func(context.Context, int) (int, error) { return 0, nil }), pirn.In{})
			return err
		}, `input type int is not a struct`},
		{"selector input type", func() error {
			_, err := tp.Branch(pirn.BranchDef{ID: "b", Input: xs, Selector: m.arith.Knot("sign"), Arms: []string{"pos"}})
			return err
		}, `selector knot sign wants int, but its input produces list[int]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.add(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want %q", err, tc.want)
			}
		})
	}
	if got := route.Arm("pos").ID(); got != "route.pos" || route.Arm("nope").ID() != "route.nope" || !cmp.Equal(route.Arms(), []string{"neg", "zero", "pos"}) {
		t.Errorf("arm ids %q, %q; arms %v", got, route.Arm("nope").ID(), route.Arms())
	}
	if err := tp.Err(); err == nil {
		t.Error("Tapestry.Err is nil after failed additions")
	}
	if _, err := e.Run(t.Context(), tp, pirn.RunRequest{Params: map[string]any{"x": 1}}); !errors.Is(err, tp.Err()) {
		t.Errorf("Run of a tapestry with a build error: %v", err)
	}
}

// TestSharedParent runs nodes that take one parent under several inputs
// (a knot's two inputs, a Map's list and a shared input, an aggregator's
// two inputs), built from YAML and in Go. Each once left the run waiting
// forever.
func TestSharedParent(t *testing.T) {
	t.Parallel()
	e := open(t, pirn.Config{})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	p, err := e.LoadPipeline(ctx, "testdata/pipelines/shared.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(ctx, p.Tapestry, pirn.RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"x": int64(4), "twice": int64(8), "xs": []any{int64(0), int64(1), int64(2), int64(3)},
		"scaled": []any{int64(0), int64(4), int64(8), int64(12)}, "both": map[string]any{"p": int64(8), "q": int64(8)}}
	if diff := cmp.Diff(want, res.Outputs); diff != "" {
		t.Errorf("YAML outputs (-want +got):\n%s", diff)
	}

	m := loadModules(t, e)
	tp := pirn.NewTapestry()
	node := must[*pirn.Node](t)
	x := node(tp.Parameter(pirn.Param{Name: "x", Type: "int"}))
	node(tp.Knot("s", m.arith.Knot("add"), pirn.In{"a": x, "b": x}))
	xs := node(tp.Knot("xs", m.arith.Knot("range"), pirn.In{"n": x}))
	node(tp.Map(pirn.MapDef{ID: "m", Over: xs, Each: pirn.Expr("item + size(all)"), In: pirn.In{"all": xs}}))
	res, err = e.Run(ctx, tp, pirn.RunRequest{Params: map[string]any{"x": 3}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outputs["s"] != int64(6) || !cmp.Equal(res.Outputs["m"], []any{int64(3), int64(4), int64(5)}) {
		t.Errorf("Go API outputs %v", res.Outputs)
	}
	for _, r := range res.Records {
		if r.KnotID == "s" && (len(r.Inputs) != 2 || r.Inputs[0].Parent != "param:x" || r.Inputs[1].Parent != "param:x") {
			t.Errorf("record of s: inputs %+v, want a and b from param:x", r.Inputs)
		}
	}
}
