package pirn

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/internal/suggest"
	"github.com/pirn-wasm/pirn/model"
	"github.com/pirn-wasm/pirn/scheduler"
)

// Tapestry is a DAG of parameters and knots built in Go (or loaded from
// YAML by [Engine.LoadPipeline]). Each method checks what it can before
// anything runs — inputs against the knot's manifest, the types flowing
// along each edge, expressions — and returns an error naming the node;
// the first error is also kept, and [Engine.Run] reports it.
type Tapestry struct {
	t       *scheduler.Tapestry
	err     error
	prepare []preparer // the module knots, to make ready before a run
}

// preparer is a function that must be made ready (compiled, an instance
// started) before it runs.
type preparer interface {
	Prepare(ctx context.Context) error
}

// NewTapestry returns an empty tapestry.
func NewTapestry() *Tapestry {
	return &Tapestry{t: scheduler.NewTapestry()}
}

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

// aliases are the names an expression may use for this node's value, as
// the input of a Gate or Branch: its id, and a parameter's name.
func (n *Node) aliases() map[string]string {
	m := map[string]string{n.ID(): "input"}
	if name := n.n.ParamName(); name != "" {
		m[name] = "input"
	}
	return m
}

// Err returns the first error recorded while building.
func (t *Tapestry) Err() error { return t.err }

// Warnings lists the edges whose types may not fit at run time (a str
// into an int: "5" converts, "x" does not). Edges that can never fit are
// errors instead.
func (t *Tapestry) Warnings() []string {
	var out []string
	for _, w := range t.t.Warnings() {
		out = append(out, w.Msg)
	}
	return out
}

// Scheduler returns the underlying scheduler tapestry (for tools such as
// graph rendering).
func (t *Tapestry) Scheduler() *scheduler.Tapestry { return t.t }

// OutputType returns the static type of a node's output (any when unknown).
func (t *Tapestry) OutputType(id string) abi.Type {
	if n, ok := t.t.Node(id); ok {
		return n.OutputType()
	}
	return abi.Any
}

// nodeErr names the node in err, and in each error of a joined err, so
// that every problem reads on its own.
func nodeErr(kind model.Kind, id string, err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var errs []error
		for _, e := range j.Unwrap() {
			errs = append(errs, fmt.Errorf("%s %q: %w", kind, id, e))
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("%s %q: %w", kind, id, err)
}

func (t *Tapestry) fail(err error) error {
	if t.err == nil {
		t.err = err
	}
	return err
}

func (t *Tapestry) node(n *scheduler.Node, err error) (*Node, error) {
	if err != nil {
		return nil, t.fail(err)
	}
	return &Node{n: n}, nil
}

// resolve turns a Fn into the scheduler's, keeping a module's knot to
// prepare before a run.
func (t *Tapestry) resolve(f Fn, env exprEnv) (scheduler.Fn, error) {
	fn, err := f.resolve(env)
	if p, ok := fn.Invoker.(preparer); ok && err == nil {
		t.prepare = append(t.prepare, p)
	}
	return fn, err
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
			return nil, t.fail(fmt.Errorf("parameter %q: %w", p.Name, err))
		}
	}
	n, err := t.t.AddParameter(scheduler.ParamDecl{ID: p.ID, Name: p.Name, Type: typ, Default: p.Default, HasDefault: p.HasDefault})
	return t.node(n, err)
}

// In holds a node's inputs by name. A *Node value makes that node a
// parent; any other value is a constant (the original's "config").
type In map[string]any

func (in In) split() (parents map[string]*Node, consts map[string]any, err error) {
	parents, consts = map[string]*Node{}, map[string]any{}
	for name, v := range in {
		switch x := v.(type) {
		case *Node:
			if err := x.check(fmt.Sprintf("input %q", name)); err != nil {
				return nil, nil, err
			}
			parents[name] = x
		case *BranchNode:
			return nil, nil, fmt.Errorf("input %q is branch %q; pass one of its arms (Arm(name))", name, x.ID())
		default:
			consts[name] = v
		}
	}
	return parents, consts, nil
}

func ids(parents map[string]*Node) map[string]string {
	m := make(map[string]string, len(parents))
	for name, p := range parents {
		m[name] = p.ID()
	}
	return m
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
	kind := cmp.Or(d.Kind, KindKnot)
	parents, consts, err := d.In.split()
	if err != nil {
		return nil, t.fail(nodeErr(kind, d.ID, err))
	}
	k := d.Knot
	if k == nil && kind == KindAggregator {
		k = collect{}
	}
	if k == nil {
		return nil, t.fail(fmt.Errorf("%s %q: no knot", kind, d.ID))
	}
	vars := t.varTypes(parents, consts)
	if d.Policy == model.ReceiveErrors { // each input is the parent's result document
		for name := range parents {
			vars[name] = abi.DictOf(abi.Any)
		}
	}
	fn, err := t.resolve(k, exprEnv{vars: vars, inputs: kind == KindAggregator})
	if err != nil {
		return nil, t.fail(nodeErr(kind, d.ID, err))
	}
	n, err := t.t.AddKnot(scheduler.KnotDecl{ID: d.ID, Kind: kind, Fn: fn, Parents: ids(parents), Config: consts, Policy: d.Policy, Optional: d.Optional})
	return t.node(n, err)
}

// varTypes gives an expression its variables: the node's inputs with the
// static types of what flows into them.
func (t *Tapestry) varTypes(parents map[string]*Node, consts map[string]any) map[string]abi.Type {
	vars := map[string]abi.Type{}
	for name, p := range parents {
		vars[name] = t.OutputType(p.ID())
	}
	for name := range consts {
		vars[name] = abi.Any
	}
	return vars
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
		return nil, t.fail(fmt.Errorf("gate %q: needs a predicate", d.ID))
	}
	if err := d.Input.check("input"); err != nil {
		return nil, t.fail(fmt.Errorf("gate %q: %w", d.ID, err))
	}
	fn, err := t.resolve(d.Predicate, exprEnv{vars: map[string]abi.Type{"input": t.OutputType(d.Input.ID())},
		aliases: d.Input.aliases(), want: abi.Bool})
	if err != nil {
		return nil, t.fail(fmt.Errorf("gate %q: predicate: %w", d.ID, err))
	}
	n, err := t.t.AddGate(scheduler.GateDecl{ID: d.ID, Input: d.Input.ID(), Fn: fn, Policy: d.Policy, Optional: d.Optional})
	return t.node(n, err)
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
		return nil, t.fail(fmt.Errorf("branch %q: needs a selector", d.ID))
	}
	if err := d.Input.check("input"); err != nil {
		return nil, t.fail(fmt.Errorf("branch %q: %w", d.ID, err))
	}
	fn, err := t.resolve(d.Selector, exprEnv{vars: map[string]abi.Type{"input": t.OutputType(d.Input.ID())},
		aliases: d.Input.aliases(), want: abi.Str})
	if err != nil {
		return nil, t.fail(fmt.Errorf("branch %q: selector: %w", d.ID, err))
	}
	n, err := t.t.AddBranch(scheduler.BranchDecl{ID: d.ID, Input: d.Input.ID(), Fn: fn, Arms: d.Arms, Policy: d.Policy, Optional: d.Optional})
	node, err := t.node(n, err)
	if err != nil {
		return nil, err
	}
	b := &BranchNode{Node: *node, arms: map[string]*Node{}, names: slices.Clone(d.Arms)}
	for _, a := range d.Arms {
		an, _ := t.t.Node(d.ID + "." + a)
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
		return nil, t.fail(fmt.Errorf("map %q: needs each", d.ID))
	}
	if err := d.Over.check("over"); err != nil {
		return nil, t.fail(fmt.Errorf("map %q: %w", d.ID, err))
	}
	parents, consts, err := d.In.split()
	if err != nil {
		return nil, t.fail(fmt.Errorf("map %q: %w", d.ID, err))
	}
	vars := t.varTypes(parents, consts)
	bind := d.Bind
	if _, isExpr := d.Each.(Expr); isExpr {
		bind = cmp.Or(bind, "item")
	}
	if bind != "" {
		vars[bind] = elemOf(t.OutputType(d.Over.ID()))
	}
	fn, err := t.resolve(d.Each, exprEnv{vars: vars})
	if err != nil {
		return nil, t.fail(fmt.Errorf("map %q: each: %w", d.ID, err))
	}
	n, err := t.t.AddMap(scheduler.MapDecl{ID: d.ID, Over: d.Over.ID(), Fn: fn, Bind: bind, Parents: ids(parents), Config: consts,
		OnSkip: d.OnSkip, MaxElements: d.MaxElements, Policy: d.Policy, Optional: d.Optional})
	return t.node(n, err)
}

// elemOf is the type of a list's elements: any if typ is not a list
// (which the scheduler reports).
func elemOf(typ abi.Type) abi.Type {
	if typ.Kind == abi.KindList && typ.Elem != nil {
		return *typ.Elem
	}
	return abi.Any
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
		return nil, t.fail(fmt.Errorf("reduce %q: needs combine", d.ID))
	}
	if err := d.Of.check("of"); err != nil {
		return nil, t.fail(fmt.Errorf("reduce %q: %w", d.ID, err))
	}
	of := t.OutputType(d.Of.ID())
	vars := map[string]abi.Type{"items": of}
	if d.Pairwise {
		vars = map[string]abi.Type{"acc": abi.Any, "item": elemOf(of)}
	}
	fn, err := t.resolve(d.Combine, exprEnv{vars: vars})
	if err != nil {
		return nil, t.fail(fmt.Errorf("reduce %q: combine: %w", d.ID, err))
	}
	n, err := t.t.AddReduce(scheduler.ReduceDecl{ID: d.ID, Of: d.Of.ID(), Fn: fn, Pairwise: d.Pairwise, Initial: d.Initial, Policy: d.Policy, Optional: d.Optional})
	return t.node(n, err)
}
