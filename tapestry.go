package pirn

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/internal/loom"
	"github.com/pirn-wasm/pirn/internal/suggest"
	"github.com/pirn-wasm/pirn/model"
	"github.com/pirn-wasm/pirn/scheduler"
)

// Tapestry is a DAG of parameters and knots built in Go (or loaded from
// YAML by [Engine.LoadPipeline]). Each method checks what it can before
// anything runs — inputs against the knot's manifest, the types flowing
// along each edge, expressions — and returns an error naming the node;
// the first error is also kept, and [Engine.Run] reports it. Building
// starts nothing: module knots are made ready by [Engine.Prepare] or the
// run.
type Tapestry struct {
	l   *loom.Loom
	err error
}

// NewTapestry returns an empty tapestry.
func NewTapestry() *Tapestry { return &Tapestry{l: loom.New()} }

// Node is a node of a tapestry. Passing a *Node as an input of another
// node makes it a parent.
type Node struct {
	n *scheduler.Node
	// A node that does not exist (BranchNode.Arm of an undeclared arm):
	// its would-be id, and why; using it as an input reports err.
	id  string
	err error
}

// ID returns the node's id.
func (n *Node) ID() string {
	if n.n == nil {
		return n.id
	}
	return n.n.ID()
}

// check reports why n cannot be a parent: nil, or a node that does not
// exist.
func (n *Node) check(what string) error {
	switch {
	case n == nil:
		return fmt.Errorf("%s is a nil *Node (a node whose Add returned an error?)", what)
	case n.err != nil:
		return fmt.Errorf("%s: %w", what, n.err)
	}
	return nil
}

// Err returns the first error recorded while building.
func (t *Tapestry) Err() error { return t.err }

// Warnings lists the edges whose types may not fit at run time (a str
// into an int: "5" converts, "x" does not). Edges that can never fit are
// errors instead.
func (t *Tapestry) Warnings() []string {
	var out []string
	for _, w := range t.l.T.Warnings() {
		out = append(out, w.Msg)
	}
	return out
}

// Scheduler returns the underlying scheduler tapestry (for tools such as
// graph rendering).
func (t *Tapestry) Scheduler() *scheduler.Tapestry { return t.l.T }

// OutputType returns the static type of a node's output (any when unknown).
func (t *Tapestry) OutputType(id string) abi.Type { return t.l.OutputType(id) }

func (t *Tapestry) node(n *scheduler.Node, err error) (*Node, error) {
	if err != nil {
		if t.err == nil && !errors.Is(err, scheduler.ErrTooLate) { // refused by a run, the tapestry is sound
			t.err = err
		}
		return nil, err
	}
	return &Node{n: n}, nil
}

// Param declares a parameter.
type Param struct {
	Name       string
	ID         string // "" means "param:" + Name
	Type       string // a type expression, e.g. "int" or "list[str]"; "" means any
	Default    any
	HasDefault bool
}

// Parameter adds a parameter.
func (t *Tapestry) Parameter(p Param) (*Node, error) {
	typ := abi.Any
	if p.Type != "" {
		var err error
		if typ, err = abi.ParseType(p.Type); err != nil {
			return t.node(nil, fmt.Errorf("parameter %q: %w", p.Name, err))
		}
	}
	return t.node(t.l.T.AddParameter(scheduler.ParamDecl{ID: p.ID, Name: p.Name, Type: typ, Default: p.Default, HasDefault: p.HasDefault}))
}

// In holds a node's inputs by name. A *Node value makes that node a
// parent; any other value is a constant (the original's "config").
type In map[string]any

// split returns the parents' ids and the constants.
func (in In) split() (parents map[string]string, consts map[string]any, err error) {
	parents, consts = map[string]string{}, map[string]any{}
	for name, v := range in {
		switch x := v.(type) {
		case *Node:
			if err := x.check(fmt.Sprintf("input %q", name)); err != nil {
				return nil, nil, err
			}
			parents[name] = x.ID()
		case *BranchNode:
			return nil, nil, fmt.Errorf("input %q is branch %q; pass one of its arms (Arm(name))", name, x.ID())
		default:
			consts[name] = v
		}
	}
	return parents, consts, nil
}

// Kinds of plain knots, for KnotDef.
const (
	KindKnot       = model.KindKnot
	KindSource     = model.KindSource
	KindSink       = model.KindSink
	KindAggregator = model.KindAggregator
)

// KnotDef declares a knot with every option.
type KnotDef struct {
	ID string
	// Kind is KindKnot (the zero value), KindSource (no parents), KindSink
	// (output recorded as null; nothing may consume it) or KindAggregator
	// (its Knot combines N parents; nil means their values as a dict).
	Kind     model.Kind
	Knot     Fn
	In       In
	Policy   model.Policy
	Optional bool // an err of this knot behaves like a skip downstream
}

// Knot adds a knot with the default policy.
func (t *Tapestry) Knot(id string, k Fn, in In) (*Node, error) {
	return t.Add(KnotDef{ID: id, Knot: k, In: in})
}

// Add adds a knot, Source, Sink or Aggregator.
func (t *Tapestry) Add(d KnotDef) (*Node, error) {
	parents, consts, err := d.In.split()
	if err != nil {
		kind := d.Kind
		if kind == model.KindParameter {
			kind = KindKnot
		}
		return t.node(nil, loom.NodeErr(kind, d.ID, err))
	}
	return t.node(t.l.Knot(scheduler.KnotDecl{ID: d.ID, Kind: d.Kind, Parents: parents, Config: consts, Policy: d.Policy, Optional: d.Optional}, fnOf(d.Knot)))
}

// GateDef declares a Gate: Predicate receives the input; a truthy result
// passes it through, a falsy one skips with reason gate_closed.
type GateDef struct {
	ID        string
	Input     *Node
	Predicate Fn
	Policy    model.Policy
	Optional  bool
}

// Gate adds a Gate.
func (t *Tapestry) Gate(d GateDef) (*Node, error) {
	if d.Predicate == nil {
		return t.node(nil, fmt.Errorf("gate %q: needs a predicate", d.ID))
	}
	if err := d.Input.check("input"); err != nil {
		return t.node(nil, fmt.Errorf("gate %q: %w", d.ID, err))
	}
	return t.node(t.l.Gate(scheduler.GateDecl{ID: d.ID, Input: d.Input.ID(), Policy: d.Policy, Optional: d.Optional}, fnOf(d.Predicate)))
}

// BranchDef declares a Branch: Selector receives the input and returns the
// name of one of Arms.
type BranchDef struct {
	ID       string
	Input    *Node
	Selector Fn
	Arms     []string
	Policy   model.Policy
	Optional bool
}

// BranchNode is a Branch; its arms are nodes too.
type BranchNode struct {
	Node
	arms  map[string]*Node
	names []string // in the order declared
}

// Arm returns the arm with the name: the node that carries the input on
// when the selector picks this arm. For a name the branch does not
// declare it returns a node that is not in the tapestry: using it as an
// input is an error naming the branch and its arms.
func (b *BranchNode) Arm(name string) *Node {
	if a, ok := b.arms[name]; ok {
		return a
	}
	return &Node{id: b.ID() + "." + name, err: fmt.Errorf("branch %q has no arm %q (its arms: %s)%s",
		b.ID(), name, strings.Join(b.names, ", "), suggest.DidYouMean(name, b.names))}
}

// Arms returns the names of the branch's arms, in the order declared.
func (b *BranchNode) Arms() []string { return slices.Clone(b.names) }

// Branch adds a Branch and its arms "<id>.<arm>".
func (t *Tapestry) Branch(d BranchDef) (*BranchNode, error) {
	if d.Selector == nil {
		_, err := t.node(nil, fmt.Errorf("branch %q: needs a selector", d.ID))
		return nil, err
	}
	if err := d.Input.check("input"); err != nil {
		_, err = t.node(nil, fmt.Errorf("branch %q: %w", d.ID, err))
		return nil, err
	}
	node, err := t.node(t.l.Branch(scheduler.BranchDecl{ID: d.ID, Input: d.Input.ID(), Arms: d.Arms, Policy: d.Policy, Optional: d.Optional}, fnOf(d.Selector)))
	if err != nil {
		return nil, err
	}
	b := &BranchNode{Node: *node, arms: map[string]*Node{}, names: slices.Clone(d.Arms)}
	for _, a := range d.Arms {
		an, _ := t.l.T.Node(d.ID + "." + a)
		b.arms[a] = &Node{n: an}
	}
	return b, nil
}

// MapDef declares a Map: Each is invoked on every element of Over's list,
// with the element under Bind and the shared inputs In.
type MapDef struct {
	ID   string
	Over *Node
	Each Fn
	// Bind is the input that receives each element. For a module's knot,
	// "" means its only required input not given in In; for an expression,
	// "" means "item".
	Bind   string
	In     In
	OnSkip model.OnSkip
	// MaxElements bounds the list; 0 means scheduler.DefaultMaxElements.
	MaxElements int
	Policy      model.Policy
	Optional    bool
}

// Map adds a Map.
func (t *Tapestry) Map(d MapDef) (*Node, error) {
	if d.Each == nil {
		return t.node(nil, fmt.Errorf("map %q: needs each", d.ID))
	}
	if err := d.Over.check("over"); err != nil {
		return t.node(nil, fmt.Errorf("map %q: %w", d.ID, err))
	}
	parents, consts, err := d.In.split()
	if err != nil {
		return t.node(nil, fmt.Errorf("map %q: %w", d.ID, err))
	}
	return t.node(t.l.Map(scheduler.MapDecl{ID: d.ID, Over: d.Over.ID(), Bind: d.Bind, Parents: parents, Config: consts,
		OnSkip: d.OnSkip, MaxElements: d.MaxElements, Policy: d.Policy, Optional: d.Optional}, fnOf(d.Each)))
}

// ReduceDef declares a Reduce over Of's list. Whole-list: Combine receives
// the list once (an expression sees it as "items"; a module's knot must
// take one required input). Pairwise, when Initial is set: Combine receives
// the accumulator and each element in turn (an expression sees "acc" and
// "item"; a module's knot must take two required inputs, the accumulator
// first).
type ReduceDef struct {
	ID       string
	Of       *Node
	Combine  Fn
	Pairwise bool
	Initial  any // pairwise: the starting accumulator, and the result for []
	Policy   model.Policy
	Optional bool
}

// Reduce adds a Reduce.
func (t *Tapestry) Reduce(d ReduceDef) (*Node, error) {
	if d.Combine == nil {
		return t.node(nil, fmt.Errorf("reduce %q: needs combine", d.ID))
	}
	if err := d.Of.check("of"); err != nil {
		return t.node(nil, fmt.Errorf("reduce %q: %w", d.ID, err))
	}
	return t.node(t.l.Reduce(scheduler.ReduceDecl{ID: d.ID, Of: d.Of.ID(), Pairwise: d.Pairwise, Initial: d.Initial, Policy: d.Policy, Optional: d.Optional}, fnOf(d.Combine)))
}
