package viz_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/scheduler"
	"github.com/pirn-wasm/pirn/viz"
)

type fn func(in map[string]any) any

func (f fn) Invoke(_ context.Context, c *scheduler.Call) abi.Response {
	in := map[string]any{}
	for _, a := range c.Inputs {
		in[a.Name], _ = cas.Decode(a.Value)
	}
	b, _ := cas.Encode(f(in))
	return abi.OK(b)
}

// tapestry has two knots that output the same value: the original's
// hash-based edge reconstruction drew a wrong edge here.
func tapestry(t *testing.T) *scheduler.Tapestry {
	tp := scheduler.NewTapestry()
	add := func(n *scheduler.Node, err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	add(tp.AddParameter(scheduler.ParamDecl{ID: "x", Name: "x", Type: abi.Int}))
	same := fn(func(in map[string]any) any { return in["v"] })
	add(tp.AddKnot(scheduler.KnotDecl{ID: "a.copy", Fn: scheduler.Fn{Invoker: same, Name: "host:same"}, Parents: map[string]string{"v": "x"}}))
	add(tp.AddKnot(scheduler.KnotDecl{ID: "a_copy", Fn: scheduler.Fn{Invoker: same, Name: "host:same"}, Parents: map[string]string{"v": "a.copy"}}))
	add(tp.AddGate(scheduler.GateDecl{ID: "g", Input: "a_copy", Fn: scheduler.Fn{Invoker: fn(func(map[string]any) any { return false }), Name: "expr:false"}}))
	add(tp.AddKnot(scheduler.KnotDecl{ID: "9after", Fn: scheduler.Fn{Invoker: same, Name: "host:same"}, Parents: map[string]string{"v": "g"}}))
	return tp
}

func TestTapestry(t *testing.T) {
	got := viz.Tapestry(tapestry(t))
	want := `graph TD
    x(["x<br/>(parameter)"])
    a_copy["a.copy<br/>(knot: host:same)"]
    a_copy_2["a_copy<br/>(knot: host:same)"]
    g{{"g<br/>(gate: false)"}}
    n_9after["9after<br/>(knot: host:same)"]
    x -->|v| a_copy
    a_copy -->|v| a_copy_2
    a_copy_2 -->|input| g
    g -->|v| n_9after`
	if got != want {
		t.Errorf("Tapestry =\n%s\nwant\n%s", got, want)
	}
}

func TestRun(t *testing.T) {
	s, _ := scheduler.New(scheduler.Config{}, cas.NewMemory(), lineage.NewMemory())
	res, err := s.Run(t.Context(), tapestry(t), scheduler.Request{Params: map[string]any{"x": 1}})
	if err != nil {
		t.Fatal(err)
	}
	got := viz.Run(&res.Run)
	for _, want := range []string{
		`x -->|v| a_copy`,
		`a_copy -->|v| a_copy_2`, // equal outputs, yet the edges are the graph's own
		`a_copy_2 -->|input| g`,
		`g -->|v| n_9after`,
		`g{{"g<br/>(gate: false)<br/>skipped: gate_closed"}}`,
		`class x ok;`, `class g skipped;`, `class n_9after skipped;`,
		`classDef err fill:#fbd5d5`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Run graph lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "a_copy_2 -->|v| a_copy\n") || strings.Contains(got, "a_copy -->|v| a_copy\n") {
		t.Errorf("wrong edge from equal hashes:\n%s", got)
	}
}

// TestRunMapElements: a Map's elements are summarised on its node, read
// from each element record's Map, also when the Map's id contains ':'.
func TestRunMapElements(t *testing.T) {
	tp := scheduler.NewTapestry()
	if _, err := tp.AddParameter(scheduler.ParamDecl{ID: "xs", Name: "xs", Type: abi.ListOf(abi.Int)}); err != nil {
		t.Fatal(err)
	}
	half := fn(func(in map[string]any) any { return in["item"].(int64) / 2 })
	if _, err := tp.AddMap(scheduler.MapDecl{ID: "a:b:c", Over: "xs", Bind: "item", Fn: scheduler.Fn{Invoker: half, Name: "expr:item / 2"}}); err != nil {
		t.Fatal(err)
	}
	s, _ := scheduler.New(scheduler.Config{}, cas.NewMemory(), lineage.NewMemory())
	res, err := s.Run(t.Context(), tp, scheduler.Request{Params: map[string]any{"xs": []any{1, 2, 3}}})
	if err != nil {
		t.Fatal(err)
	}
	got := viz.Run(&res.Run)
	if want := `a_b_c[["a:b:c<br/>(map: item / 2)<br/>elements: 3 ok, 0 err, 0 skipped"]]`; !strings.Contains(got, want) {
		t.Errorf("Run graph lacks %q:\n%s", want, got)
	}
	if strings.Contains(got, "a:b:c:") {
		t.Errorf("Run graph draws an element:\n%s", got)
	}
}

// TestKeywordIDs: node ids that are words of Mermaid's syntax ("end",
// "graph", "class", in any case) get identifiers Mermaid accepts, and
// label text cannot close its quotes or start an entity.
func TestKeywordIDs(t *testing.T) {
	tp := scheduler.NewTapestry()
	if _, err := tp.AddParameter(scheduler.ParamDecl{ID: "end", Name: "x", Type: abi.Int}); err != nil {
		t.Fatal(err)
	}
	same := fn(func(in map[string]any) any { return in["v"] })
	for i, id := range []string{"graph", "End", "class", "style", "LR"} {
		parent := "end"
		if i > 0 {
			parent = []string{"graph", "End", "class", "style"}[i-1]
		}
		if _, err := tp.AddKnot(scheduler.KnotDecl{ID: id, Fn: scheduler.Fn{Invoker: same, Name: `expr:"a#b" < c`}, Parents: map[string]string{"v": parent}}); err != nil {
			t.Fatal(err)
		}
	}
	got := viz.Tapestry(tp)
	for _, line := range strings.Split(got, "\n")[1:] {
		id, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		id, _, _ = strings.Cut(id, "[")
		id, _, _ = strings.Cut(id, "(")
		if !strings.HasPrefix(id, "n_") {
			t.Errorf("line %q: identifier %q is not escaped", line, id)
		}
	}
	if !strings.Contains(got, `n_graph["graph<br/>(knot: #quot;a#35;b#quot; #lt; c)"]`) {
		t.Errorf("labels not escaped:\n%s", got)
	}
}
