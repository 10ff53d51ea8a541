package viz_test

import (
	"testing"

	"github.com/pirn-wasm/pirn/viz"
)

func TestLayout(t *testing.T) {
	// Two parents given in the order that crosses their children: a→d,
	// b→c with layer order (a, b) and (c, d). Barycentre ordering uncrosses
	// them. e hangs under both c and a: layer 2 (the longest path).
	g := viz.Graph{
		Nodes: []viz.GraphNode{{ID: "a"}, {ID: "b"}, {ID: "c"}, {ID: "d"}, {ID: "e"}},
		Edges: []viz.Edge{{From: "a", To: "d"}, {From: "b", To: "c"}, {From: "c", To: "e"}, {From: "a", To: "e"}, {From: "x", To: "a"}},
	}
	pos, layers, width := viz.Layout(g)
	if layers != 3 || width != 2 {
		t.Fatalf("Layout: %d layers, width %d; want 3, 2", layers, width)
	}
	wantLayer := map[string]int{"a": 0, "b": 0, "c": 1, "d": 1, "e": 2}
	for i, n := range g.Nodes {
		if pos[i].Layer != wantLayer[n.ID] {
			t.Errorf("node %s in layer %d, want %d", n.ID, pos[i].Layer, wantLayer[n.ID])
		}
	}
	if c := viz.Crossings(g, pos); c != 0 {
		t.Errorf("Layout leaves %d crossings, want 0 (positions %v)", c, pos)
	}
	// The same graph in the input order, uncrossed by nothing, crosses once.
	naive := []viz.Position{{0, 0}, {0, 1}, {1, 0}, {1, 1}, {2, 0}}
	if c := viz.Crossings(g, naive); c != 1 {
		t.Errorf("Crossings(naive) = %d, want 1", c)
	}
}
