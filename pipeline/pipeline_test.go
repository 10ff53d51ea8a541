package pipeline_test

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/model"
	"github.com/pirn-wasm/pirn/pipeline"
)

const quickstart = `name: quickstart
modules:
  arith: ../wasm/go/arith/arith.wasm
nodes:
  - id: answer
    type: knot
    module: arith
    knot: add
    parents: {a: x, b: d}
  - id: d
    type: knot
    module: arith
    knot: double
    parents:
      x: x
  - id: x
    type: parameter
    type_: int
    default: 5
`

func TestParseQuickstart(t *testing.T) {
	s, err := pipeline.Parse("examples/quickstart/pipeline.yaml", []byte(quickstart))
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, n := range s.Nodes {
		order = append(order, n.ID)
	}
	if diff := cmp.Diff([]string{"x", "d", "answer"}, order); diff != "" {
		t.Errorf("topological order (-want +got):\n%s", diff)
	}
	x := s.Nodes[0]
	if x.ParamName != "x" || x.ValueType.String() != "int" || x.Default != int64(5) || !x.HasDefault || x.Line != 16 {
		t.Errorf("x = %+v", x)
	}
	if p, _ := s.ModulePath("arith"); p != filepath.Join("examples", "wasm", "go", "arith", "arith.wasm") {
		t.Errorf("module path = %s", p)
	}
	if a := s.Nodes[2]; a.InputLine("b") != 9 || a.Parents["b"] != "d" {
		t.Errorf("answer = %+v", a)
	}
}

func TestParseValues(t *testing.T) {
	s, err := pipeline.Parse("p.yaml", []byte(`
modules: {m: m.wasm}
nodes:
  - {id: "param:n", type: parameter, type_: "list[int]", default: [1, 2]}
  - {id: none, type: parameter, type_: any, has_default: true}
  - id: k
    type: knot
    module: m
    knot: k
    error_policy: require_all_parents
    optional: true
    parents: {xs: "param:n"}
    config: {f: 1.5, s: hi, b: !!binary aGk=, l: [1, {a: null}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Nodes[0].ParamName != "n" {
		t.Errorf("param:n name = %q, want n", s.Nodes[0].ParamName)
	}
	if n := s.Nodes[1]; !n.HasDefault || n.Default != nil {
		t.Errorf("has_default without default = %+v, want a null default", n)
	}
	k := s.Nodes[2]
	want := map[string]any{"f": 1.5, "s": "hi", "b": []byte("hi"), "l": []any{int64(1), map[string]any{"a": nil}}}
	if diff := cmp.Diff(want, k.Config); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if k.Policy != model.RequireAllParents || !k.Optional {
		t.Errorf("k = %+v", k)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"not yaml", "nodes: [", []string{"p.yaml: not valid YAML"}},
		{"not a mapping", "- 1", []string{"p.yaml:1: a pipeline must be a mapping"}},
		{"no nodes", "name: x", []string{"p.yaml:1: pipeline has no nodes"}},
		{"unknown top key", "name: x\nnodse: []\n", []string{`p.yaml:2: pipeline: unknown key "nodse"; did you mean "nodes"?`}},
		{"duplicate id", `
modules: {m: m.wasm}
nodes:
  - {id: a, type: parameter, type_: int}
  - {id: a, type: parameter, type_: str}
`, []string{`p.yaml:5: duplicate node id "a" (first defined at line 4)`}},
		{"unknown module", `
modules: {arith: a.wasm}
nodes:
  - {id: k, type: knot, module: arth, knot: double}
`, []string{`p.yaml:4: knot "k": unknown module "arth" (declared: arith); did you mean "arith"?`}},
		{"unknown parent", `
modules: {m: m.wasm}
nodes:
  - {id: x, type: parameter, type_: int}
  - id: k
    type: knot
    module: m
    knot: k
    parents:
      a: y
`, []string{`p.yaml:10: knot "k": input "a" references unknown node "y"; did you mean "x"?`}},
		{"cycle", `
modules: {m: m.wasm}
nodes:
  - {id: a, type: knot, module: m, knot: k, parents: {x: c}}
  - {id: b, type: knot, module: m, knot: k, parents: {x: a}}
  - {id: c, type: knot, module: m, knot: k, parents: {x: b}}
`, []string{"cycle: a -> c -> b -> a"}},
		{"bad type", `
nodes:
  - {id: x, type: parameter, type_: widget}
`, []string{`p.yaml:3: parameter "x": type "widget": unknown type "widget"`}},
		{"missing type_", `
nodes:
  - {id: x, type: parameter}
`, []string{`parameter "x": a parameter needs a type_`}},
		{"unknown node type", `
nodes:
  - {id: x, type: knto}
`, []string{`unknown type "knto" (want one of parameter, knot, source, sink, aggregator, branch, gate, map, reduce); did you mean "knot"?`}},
		{"unknown node key", `
modules: {m: m.wasm}
nodes:
  - {id: k, type: knot, module: m, knot: k, parnets: {}}
`, []string{`knot "k": unknown key "parnets"; did you mean "parents"?`}},
		{"bad policy", `
modules: {m: m.wasm}
nodes:
  - {id: k, type: knot, module: m, knot: k, error_policy: never}
`, []string{`unknown error_policy "never"`}},
		{"bad id", `
nodes:
  - {id: "a b", type: parameter, type_: int}
`, []string{`node id "a b" contains invalid characters`}},
		{"knot without module", `
nodes:
  - {id: k, type: knot}
`, []string{`knot "k": needs a module`, `knot "k": needs a knot`}},
		{"parent and config", `
modules: {m: m.wasm}
nodes:
  - {id: x, type: parameter, type_: int}
  - {id: k, type: knot, module: m, knot: k, parents: {a: x}, config: {a: 1}}
`, []string{`input "a" is in both parents and config`}},
		{"has_default false", `
nodes:
  - {id: x, type: parameter, type_: int, default: 1, has_default: false}
`, []string{`has_default is false but a default is given`}},
		{"module twice", `
modules:
  m: a.wasm
  m: b.wasm
nodes:
  - {id: x, type: parameter, type_: int}
`, []string{`p.yaml:4: module "m" declared twice (first at line 3)`}},
		{"int map keys", `
modules: {m: m.wasm}
nodes:
  - {id: k, type: knot, module: m, knot: k, config: {a: {1: x}}}
`, []string{`map keys must be strings`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pipeline.Parse("p.yaml", []byte(tc.yaml))
			var errs pipeline.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Parse error = %v, want pipeline.Errors", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse error:\n%v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestParseNodeTypes(t *testing.T) {
	s, err := pipeline.Parse("p.yaml", []byte(`
modules: {m: m.wasm}
outputs: [total, t]
nodes:
  - {id: xs, type: parameter, type_: "list[int]"}
  - {id: src, type: source, module: m, knot: gen, config: {n: 3}}
  - {id: route, type: branch, input: src, selector: "input.kind", branches: [tool, text]}
  - {id: t, type: knot, module: m, knot: handle, parents: {p: "route:tool"}}
  - {id: pos, type: gate, input: xs, predicate: {module: m, knot: ok}}
  - {id: sq, type: map, over: pos, each: "item * item", bind: item, on_skip: drop}
  - {id: total, type: reduce, of: sq, combine: "acc + item", initial: 0}
  - {id: both, type: aggregator, parents: {a: total, b: t}}
  - {id: out, type: sink, module: m, knot: save, parents: {v: both}}
`))
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]pipeline.Node{}
	for _, n := range s.Nodes {
		byID[n.ID] = n
	}
	if n := byID["t"]; n.Parents["p"] != "route.tool" {
		t.Errorf("arm reference route:tool not normalised: %v", n.Parents)
	}
	if n := byID["route"]; n.Input != "src" || n.Fn.Expr != "input.kind" || len(n.Arms) != 2 {
		t.Errorf("branch %+v", n)
	}
	if n := byID["pos"]; n.Fn.Module != "m" || n.Fn.Knot != "ok" {
		t.Errorf("gate %+v", n.Fn)
	}
	if n := byID["sq"]; n.Over != "pos" || n.Bind != "item" || n.OnSkip != model.OnSkipDrop {
		t.Errorf("map %+v", n)
	}
	if n := byID["total"]; n.Of != "sq" || !n.HasInitial || n.Initial != int64(0) {
		t.Errorf("reduce %+v", n)
	}
	if diff := cmp.Diff([]string{"total", "t"}, s.Outputs); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	var order []string
	for _, n := range s.Nodes {
		order = append(order, n.ID)
	}
	if diff := cmp.Diff([]string{"xs", "src", "route", "t", "pos", "sq", "total", "both", "out"}, order); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

func TestParseNodeTypeErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"gate without predicate", "nodes:\n  - {id: x, type: parameter, type_: int}\n  - {id: g, type: gate, input: x}\n", `gate "g": needs a predicate`},
		{"branch used directly", `
nodes:
  - {id: x, type: parameter, type_: int}
  - {id: b, type: branch, input: x, selector: "'a'", branches: [a]}
  - {id: g, type: gate, input: b, predicate: "true"}
`, `gate "g": input references branch "b" itself; use one of its arms: b.a`},
		{"sink consumed", `
modules: {m: m.wasm}
nodes:
  - {id: s, type: sink, module: m, knot: k}
  - {id: g, type: gate, input: s, predicate: "true"}
`, `references sink "s", which nothing may consume`},
		{"unknown arm", `
nodes:
  - {id: x, type: parameter, type_: int}
  - {id: b, type: branch, input: x, selector: "'a'", branches: [a]}
  - {id: g, type: gate, input: b.z, predicate: "true"}
`, `gate "g": input references unknown node "b.z"; did you mean "b.a"?`},
		{"source with parents", "nodes:\n  - {id: s, type: source, module: m, knot: k, parents: {a: x}}\n", `source "s": unknown key "parents"`},
		{"bad fn", "nodes:\n  - {id: x, type: parameter, type_: int}\n  - {id: g, type: gate, input: x, predicate: {module: m}}\n", `want {module: <name>, knot: <name>}`},
		{"unknown fn module", "nodes:\n  - {id: x, type: parameter, type_: int}\n  - {id: g, type: gate, input: x, predicate: {module: m, knot: k}}\n", `gate "g": unknown module "m"`},
		{"bad on_skip", "nodes:\n  - {id: x, type: parameter, type_: int}\n  - {id: g, type: map, over: x, each: item, on_skip: ignore}\n", `unknown on_skip "ignore"`},
		{"duplicate arm id", `
nodes:
  - {id: x, type: parameter, type_: int}
  - {id: b, type: branch, input: x, selector: "'a'", branches: [a]}
  - {id: b.a, type: parameter, type_: int}
`, `duplicate node id "b.a"`},
		{"unknown output", "outputs: [zz]\nnodes:\n  - {id: x, type: parameter, type_: int}\n", `outputs: unknown node "zz"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pipeline.Parse("p.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse error:\n%v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseReportsEveryError(t *testing.T) {
	_, err := pipeline.Parse("p.yaml", []byte(`
nodes:
  - {id: a, type: parameter, type_: nope}
  - {id: b, type: parameter}
  - {id: "c c", type: parameter, type_: int}
`))
	var errs pipeline.Errors
	if !errors.As(err, &errs) || len(errs) != 3 {
		t.Fatalf("errors = %v, want 3", err)
	}
	for i, line := range []int{3, 4, 5} {
		if errs[i].Line != line {
			t.Errorf("error %d at line %d, want %d: %v", i, errs[i].Line, line, errs[i])
		}
	}
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	path := pipeline.LockPath(filepath.Join(dir, "flow.yaml"))
	if filepath.Base(path) != "flow.lock" {
		t.Errorf("LockPath = %s", path)
	}
	if _, err := pipeline.ReadLock(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadLock of a missing file: %v", err)
	}
	d := cas.Sum([]byte("module bytes"))
	want := &pipeline.Lock{Entries: []pipeline.LockEntry{{Module: "arith", Digest: d, Path: "dir with space/a.wasm"}, {Module: "b", Digest: d, Path: "b.wasm"}}}
	if err := pipeline.WriteLock(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := pipeline.ReadLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lock round trip (-want +got):\n%s", diff)
	}
	if g, ok := got.Digest("arith"); !ok || g != d {
		t.Errorf("Digest(arith) = %v, %v", g, ok)
	}
}

func TestParseValue(t *testing.T) {
	for in, want := range map[string]any{
		"5": int64(5), "2.5": 2.5, "hi": "hi", "[1, a]": []any{int64(1), "a"}, "{a: {b: true}}": map[string]any{"a": map[string]any{"b": true}}, "": nil, "null": nil,
	} {
		got, err := pipeline.ParseValue(in)
		if err != nil {
			t.Errorf("ParseValue(%q): %v", in, err)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ParseValue(%q) (-want +got):\n%s", in, diff)
		}
	}
	if _, err := pipeline.ParseValue("[1,"); err == nil {
		t.Error("ParseValue of broken YAML succeeded")
	}
}

func TestParseLimits(t *testing.T) {
	s, err := pipeline.Parse("p.yaml", []byte(`name: limits
limits: {timeout: 2s, memory: 64MiB, max_input: 1MiB, max_depth: 8, max_log: 4KiB}
modules: {m: m.wasm}
nodes:
  - {id: a, type: knot, module: m, knot: k}
  - {id: b, type: knot, module: m, knot: k, limits: {timeout: none, max_depth: 2, max_output: 10KB, max_instances: 3, max_invocations: 1, high_water: 1MiB}}
`))
	if err != nil {
		t.Fatal(err)
	}
	a, b := s.Nodes[0].Limits, s.Nodes[1].Limits
	want := model.Limits{Timeout: 2e9, Memory: 64 << 20, MaxInput: 1 << 20, MaxDepth: 8, MaxLog: 4 << 10}
	if a != want {
		t.Errorf("a's limits = %+v, want %+v", a, want)
	}
	want = model.Limits{Timeout: -1, Memory: 64 << 20, MaxInput: 1 << 20, MaxDepth: 2, MaxLog: 4 << 10,
		MaxOutput: 10e3, MaxInstances: 3, MaxInvocations: 1, HighWater: 1 << 20}
	if b != want {
		t.Errorf("b's limits = %+v, want %+v", b, want)
	}
	_, err = pipeline.Parse("p.yaml", []byte(`name: limits
limits: {max_depth: 65, max_inputs: 1MiB, max_input: lots}
modules: {m: m.wasm}
nodes: [{id: a, type: knot, module: m, knot: k}]
`))
	for _, want := range []string{
		`p.yaml:2: pipeline: limits: max_depth "65": must be 1 to 64`,
		`p.yaml:2: pipeline: limits: unknown key "max_inputs"`,
		`did you mean "max_input"?`,
		`p.yaml:2: pipeline: limits: max_input "lots": want a byte count such as 1048576 or 64MiB`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// laughs is a YAML value of a few hundred bytes whose aliases expand to
// 10^9 scalars.
func laughs() string {
	s := "{l0: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"
	for i := 1; i < 9; i++ {
		s += fmt.Sprintf(", l%d: &l%d [", i, i)
		for j := range 10 {
			if j > 0 {
				s += ", "
			}
			s += fmt.Sprintf("*l%d", i-1)
		}
		s += "]"
	}
	return s + "}"
}

// TestAliasExpansionBounded parses a pipeline default and a -p value that
// expand to 10^9 elements: each is refused, naming the bound, before it
// takes much time or memory.
func TestAliasExpansionBounded(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err := pipeline.Parse("laughs.yaml", []byte("name: laughs\nnodes:\n  - {id: p, type: parameter, default: "+laughs()+"}\n"))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("expand to more than %d elements", pipeline.MaxValueNodes)) {
		t.Errorf("Parse: %v", err)
	}
	if _, err := pipeline.ParseValue(laughs()); err == nil || !strings.Contains(err.Error(), "expand to more than") {
		t.Errorf("ParseValue: %v", err)
	}
	runtime.ReadMemStats(&after)
	if d, alloc := time.Since(start), after.TotalAlloc-before.TotalAlloc; d > 5*time.Second || alloc > 256<<20 {
		t.Errorf("refusing took %v and %d MiB", d, alloc>>20)
	}
	// The bound is shared by the values of one file, not per value.
	var many strings.Builder
	many.WriteString("name: many\nnodes:\n")
	for i := range 3 {
		fmt.Fprintf(&many, "  - {id: p%d, type: parameter, default: [%s]}\n", i, strings.Repeat("0, ", pipeline.MaxValueNodes/3)+"0")
	}
	if _, err := pipeline.Parse("many.yaml", []byte(many.String())); err == nil || !strings.Contains(err.Error(), "expand to more than") {
		t.Errorf("three values of a third of the bound each: %v", err)
	}
}
