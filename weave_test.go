package pirn_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/scheduler"
)

// graph is what a tapestry's nodes are, as the scheduler holds them.
type graphNode struct {
	ID, Kind, Module, Name, Hash, Out string
	Parents                           map[string]string
}

func graphOf(t *scheduler.Tapestry) []graphNode {
	var out []graphNode
	for _, n := range t.Nodes() {
		mod, name := n.What()
		out = append(out, graphNode{ID: n.ID(), Kind: n.Kind().String(), Module: mod, Name: name,
			Hash: n.ConfigHash().String(), Out: n.OutputType().String(), Parents: n.Parents()})
	}
	return out
}

// TestOneWeave: a pipeline file and the same tapestry written in Go are
// built by one path, so they are the same graph: the same nodes, kinds,
// functions, parents, output types and configuration hashes.
func TestOneWeave(t *testing.T) {
	t.Parallel()
	e := open(t, pirn.Config{})
	p, err := e.LoadPipeline(t.Context(), "examples/pipelines/branch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	arith := p.Modules["arith"]
	g := pirn.NewTapestry()
	x := must[*pirn.Node](t)(g.Parameter(pirn.Param{ID: "x", Name: "x", Type: "int", Default: -4, HasDefault: true}))
	route := must[*pirn.BranchNode](t)(g.Branch(pirn.BranchDef{ID: "route", Input: x, Selector: arith.Knot("sign"), Arms: []string{"neg", "zero", "pos"}}))
	must[*pirn.Node](t)(g.Knot("flipped", arith.Knot("double"), pirn.In{"x": route.Arm("neg")}))
	must[*pirn.Node](t)(g.Knot("kept", arith.Knot("inc"), pirn.In{"x": route.Arm("pos")}))
	parity := must[*pirn.BranchNode](t)(g.Branch(pirn.BranchDef{ID: "parity", Input: x, Selector: pirn.Expr("x % 2 == 0 ? 'even' : 'odd'"), Arms: []string{"even", "odd"}}))
	must[*pirn.Node](t)(g.Knot("halved", arith.Knot("square"), pirn.In{"x": parity.Arm("even")}))
	want, got := graphOf(p.Tapestry.Scheduler()), graphOf(g.Scheduler())
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the Go tapestry differs from the YAML one (-yaml +go):\n%s", diff)
	}
	if len(want) != 11 { // x, route and its 3 arms, flipped, kept, parity and its 2 arms, halved
		t.Errorf("%d nodes, want 11", len(want))
	}
}
