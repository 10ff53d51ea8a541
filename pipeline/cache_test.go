package pipeline_test

import (
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn/model"
	"github.com/pirn-wasm/pirn/pipeline"
)

// TestParseCache reads cache: at the pipeline's top and on nodes, and
// reports a bad value or a node that runs no module at its line.
func TestParseCache(t *testing.T) {
	spec, err := pipeline.Parse("p.yaml", []byte(`
cache: false
modules: {m: m.wasm}
nodes:
  - {id: x, type: parameter, type_: int}
  - {id: a, type: knot, module: m, knot: k, parents: {x: x}}
  - {id: b, type: knot, module: m, knot: k, parents: {x: x}, cache: true}
  - {id: c, type: map, over: a, each: {module: m, knot: k}, cache: false}
`))
	if err != nil {
		t.Fatal(err)
	}
	if spec.Cache != model.CacheOff {
		t.Errorf("pipeline cache = %v, want off", spec.Cache)
	}
	want := map[string]model.Cache{"x": model.CacheDefault, "a": model.CacheDefault, "b": model.CacheOn, "c": model.CacheOff}
	for _, n := range spec.Nodes {
		if n.Cache != want[n.ID] {
			t.Errorf("node %s: cache = %v, want %v", n.ID, n.Cache, want[n.ID])
		}
	}

	for _, tc := range []struct{ name, yaml, want string }{
		{"not a bool", `
modules: {m: m.wasm}
nodes:
  - {id: a, type: knot, module: m, knot: k,
     cache: sometimes}
`, `p.yaml:5: knot "a": cache must be true or false`},
		{"pipeline not a bool", `
cache: [1]
nodes:
  - {id: x, type: parameter, type_: int}
`, `p.yaml:2: pipeline: cache must be true or false`},
		{"expression", `
nodes:
  - {id: x, type: parameter, type_: int}
  - id: g
    type: gate
    input: x
    predicate: "x > 1"
    cache: true
`, `p.yaml:8: gate "g": cache applies to a module's knot, and this node runs none`},
		{"parameter", `
nodes:
  - {id: x, type: parameter, type_: int, cache: false}
`, `p.yaml:3: parameter "x": unknown key "cache"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pipeline.Parse("p.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse error:\n%v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}
