package viz

import (
	"cmp"
	"slices"

	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/scheduler"
)

// Graph is the structure of a tapestry or of a recorded run, as drawn:
// one node per parameter and knot (a Map's element records are summed up
// on the Map's node), one edge per parent link. Nodes are in the
// tapestry's topological order.
type Graph struct {
	Nodes []GraphNode
	Edges []Edge
}

// GraphNode is one node of a Graph. Record is the node's lineage record
// for a run's graph, nil for a tapestry's.
type GraphNode struct {
	ID     string
	Kind   lineage.Kind
	Module string // digest of the module that runs, or empty
	Knot   string // the knot's name, or what runs (lineage.Record.Knot)
	Record *lineage.Record
	// Elements counts a Map's element records by outcome (a run's Map
	// nodes only).
	Elements *lineage.ElementCount
}

// Edge is a parent link: the output of From feeds input Input of To.
type Edge struct {
	From, To, Input string
}

// TapestryGraph returns the graph of a tapestry: its nodes and parent
// links.
func TapestryGraph(t *scheduler.Tapestry) Graph {
	var g Graph
	for _, n := range t.Nodes() {
		module, name := n.What()
		g.Nodes = append(g.Nodes, GraphNode{ID: n.ID(), Kind: n.RecordKind(), Module: module, Knot: name})
		for _, e := range n.Edges() {
			g.Edges = append(g.Edges, Edge{From: e[1], To: n.ID(), Input: e[0]})
		}
	}
	return g
}

// RunGraph returns the graph of a recorded run: a node per record other
// than a Map's elements, and an edge per input's recorded parent (never
// inferred from equal digests). The nodes' Record fields point into
// run.Records.
func RunGraph(run *lineage.Run) Graph {
	var g Graph
	elems := lineage.CountElements(run.Records)
	seen := map[Edge]bool{}
	for i := range run.Records {
		r := &run.Records[i]
		if r.Kind == lineage.KindElement {
			continue
		}
		n := GraphNode{ID: r.KnotID, Kind: r.Kind, Module: r.Module, Knot: r.Knot, Record: r}
		if c, ok := elems[r.KnotID]; ok && r.Kind == lineage.KindMap {
			n.Elements = &c
		}
		g.Nodes = append(g.Nodes, n)
		for _, in := range r.Inputs {
			if in.Parent == "" || in.Name == "passthrough" && r.Kind == lineage.KindArm {
				continue
			}
			e := Edge{From: in.Parent, To: r.KnotID, Input: in.Name}
			if !seen[e] {
				seen[e] = true
				g.Edges = append(g.Edges, e)
			}
		}
	}
	return g
}

// Position is where Layout places a node: its layer (0 for nodes with no
// parents in the graph) and its rank within the layer, from 0.
type Position struct{ Layer, Rank int }

// Layout places the graph's nodes in layers, parents above children: a
// node's layer is the length of the longest path to it from a node with
// no parents (longest-path layering), and the nodes of each layer are
// ordered to reduce edge crossings by the barycentre heuristic (a few
// sweeps down and up, each node moved towards the mean rank of its
// neighbours in the layer before). Edges naming a node not in the graph
// are ignored. The result is indexed like g.Nodes; width is the number
// of nodes in the widest layer.
func Layout(g Graph) (pos []Position, layers int, width int) {
	index := make(map[string]int, len(g.Nodes))
	for i, n := range g.Nodes {
		index[n.ID] = i
	}
	parents := make([][]int, len(g.Nodes))
	children := make([][]int, len(g.Nodes))
	for _, e := range g.Edges {
		f, ok1 := index[e.From]
		t, ok2 := index[e.To]
		if !ok1 || !ok2 || f == t {
			continue
		}
		parents[t] = append(parents[t], f)
		children[f] = append(children[f], t)
	}
	// Longest-path layering, over a topological order (Kahn's), so that
	// it also holds for nodes given out of order; a cycle's nodes (not
	// possible in a tapestry) keep layer 0.
	layer := make([]int, len(g.Nodes))
	indeg := make([]int, len(g.Nodes))
	for i := range parents {
		indeg[i] = len(parents[i])
	}
	queue := make([]int, 0, len(g.Nodes))
	for i, d := range indeg {
		if d == 0 {
			queue = append(queue, i)
		}
	}
	for q := 0; q < len(queue); q++ {
		n := queue[q]
		for _, c := range children[n] {
			layer[c] = max(layer[c], layer[n]+1)
			if indeg[c]--; indeg[c] == 0 {
				queue = append(queue, c)
			}
		}
	}
	for _, l := range layer {
		layers = max(layers, l+1)
	}
	byLayer := make([][]int, layers)
	for i, l := range layer {
		byLayer[l] = append(byLayer[l], i)
	}
	pos = make([]Position, len(g.Nodes))
	setRanks := func() {
		for _, nodes := range byLayer {
			for r, n := range nodes {
				pos[n].Rank = r
			}
		}
	}
	for l, nodes := range byLayer {
		for _, n := range nodes {
			pos[n].Layer = l
		}
		width = max(width, len(nodes))
	}
	setRanks()
	// Barycentre sweeps: down (by parents' ranks), then up (by
	// children's). A node with no neighbours on that side keeps its rank.
	bary := make([]float64, len(g.Nodes))
	order := func(nodes []int, nb [][]int) {
		for _, n := range nodes {
			bary[n] = float64(pos[n].Rank)
			if len(nb[n]) > 0 {
				s := 0.0
				for _, m := range nb[n] {
					s += float64(pos[m].Rank)
				}
				bary[n] = s / float64(len(nb[n]))
			}
		}
		slices.SortStableFunc(nodes, func(a, b int) int { return cmp.Compare(bary[a], bary[b]) })
		for r, n := range nodes {
			pos[n].Rank = r
		}
	}
	for range 4 {
		for l := 1; l < layers; l++ {
			order(byLayer[l], parents)
		}
		for l := layers - 2; l >= 0; l-- {
			order(byLayer[l], children)
		}
	}
	return pos, layers, width
}

// Crossings counts the pairs of edges between adjacent layers that cross
// in a layout; for tests and for comparing orderings.
func Crossings(g Graph, pos []Position) int {
	index := make(map[string]int, len(g.Nodes))
	for i, n := range g.Nodes {
		index[n.ID] = i
	}
	type seg struct{ layer, a, b int }
	var segs []seg
	for _, e := range g.Edges {
		f, ok1 := index[e.From]
		t, ok2 := index[e.To]
		if !ok1 || !ok2 || pos[t].Layer != pos[f].Layer+1 {
			continue
		}
		segs = append(segs, seg{pos[f].Layer, pos[f].Rank, pos[t].Rank})
	}
	n := 0
	for i := range segs {
		for j := i + 1; j < len(segs); j++ {
			s, u := segs[i], segs[j]
			if s.layer == u.layer && (s.a < u.a && s.b > u.b || s.a > u.a && s.b < u.b) {
				n++
			}
		}
	}
	return n
}
