package pirn

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/model"
	"github.com/pirn-wasm/pirn/scheduler"
)

// Tapestry is a DAG of parameters and knots built in Go (or loaded from
// YAML by [Engine.LoadPipeline]). Each method checks what it can before
// anything runs — inputs against the knot's manifest, the types flowing
// along each edge, expressions — and returns an error naming the node;
// the first error is also kept, and [Engine.Run] reports it.
type Tapestry struct {
	t        *scheduler.Tapestry
	err      error
	types    map[string]abi.Type // output type by node id
	warnings []warning           // edges whose types may not fit
}

// NewTapestry returns an empty tapestry.
func NewTapestry() *Tapestry {
	return &Tapestry{t: scheduler.NewTapestry(), types: map[string]abi.Type{}}
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

type warning struct{ node, msg string }

// Warnings lists the edges whose types may not fit at run time (a str
// into an int: "5" converts, "x" does not). Edges that can never fit are
// errors instead.
func (t *Tapestry) Warnings() []string {
	out := make([]string, len(t.warnings))
	for i, w := range t.warnings {
		out[i] = w.msg
	}
	return out
}

// Scheduler returns the underlying scheduler tapestry (for tools such as
// graph rendering).
func (t *Tapestry) Scheduler() *scheduler.Tapestry { return t.t }

// OutputType returns the static type of a node's output (any when unknown).
func (t *Tapestry) OutputType(id string) abi.Type { return t.types[id] }

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

func (t *Tapestry) node(n *scheduler.Node, err error, out abi.Type) (*Node, error) {
	if err != nil {
		return nil, t.fail(err)
	}
	t.types[n.ID()] = out
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
			return nil, t.fail(fmt.Errorf("parameter %q: %w", p.Name, err))
		}
	}
	n, err := t.t.AddParameter(scheduler.ParamSpec{ID: p.ID, Name: p.Name, Type: typ, Default: p.Default, HasDefault: p.HasDefault})
	return t.node(n, err, typ)
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
	Knot     Knot
	In       In
	Policy   model.Policy
	Optional bool // an err of this knot behaves like a skip downstream
}

// Knot adds a knot with the default policy.
func (t *Tapestry) Knot(id string, k Knot, in In) (*Node, error) {
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
	receive := d.Policy == model.ReceiveErrors
	vars := t.varTypes(parents, consts)
	if receive { // each input is the parent's result document
		for name := range parents {
			vars[name] = abi.DictOf(abi.Any)
		}
	}
	env := exprEnv{vars: vars, inputs: kind == KindAggregator}
	r, err := k.resolve(context.Background(), env)
	if err != nil {
		return nil, t.fail(nodeErr(kind, d.ID, err))
	}
	if r.spec != nil {
		if err := t.checkInputs(d.ID, r.spec, parents, consts, "", receive); err != nil {
			return nil, t.fail(nodeErr(kind, d.ID, err))
		}
	}
	out := r.outType()
	if kind == KindSink {
		out = abi.Null
	}
	n, err := t.t.AddKnot(scheduler.KnotSpec{ID: d.ID, Kind: kind, Fn: r.fn, Parents: ids(parents), Config: consts, Policy: d.Policy, Optional: d.Optional})
	return t.node(n, err, out)
}

// varTypes gives an expression its variables: the node's inputs with the
// static types of what flows into them.
func (t *Tapestry) varTypes(parents map[string]*Node, consts map[string]any) map[string]abi.Type {
	vars := map[string]abi.Type{}
	for name, p := range parents {
		vars[name] = t.types[p.ID()]
	}
	for name := range consts {
		vars[name] = abi.Any
	}
	return vars
}

// checkInputs checks bound inputs against a knot's manifest: every
// required input bound, no undeclared input (unless the knot takes rest
// inputs), constants that fit their types, and parents whose output types
// can fit. skip names an input bound elsewhere (a Map's element).
func (t *Tapestry) checkInputs(id string, spec *abi.KnotSpec, parents map[string]*Node, consts map[string]any, skip string, receive bool) error {
	var errs []error
	declared := map[string]abi.Type{}
	var names []string
	for _, in := range spec.Inputs {
		declared[in.Name] = abi.MustParseType(in.Type)
		names = append(names, in.Name)
		_, p := parents[in.Name]
		_, c := consts[in.Name]
		if !in.Optional && !p && !c && in.Name != skip {
			errs = append(errs, fmt.Errorf("missing input %q (%s)", in.Name, in.Type))
		}
	}
	typeOf := func(name string) (abi.Type, bool) {
		if typ, ok := declared[name]; ok {
			return typ, true
		}
		if spec.Rest != "" {
			return abi.MustParseType(spec.Rest), true
		}
		return abi.Type{}, false
	}
	for _, name := range slices.Sorted(maps.Keys(parents)) {
		want, ok := typeOf(name)
		if !ok {
			errs = append(errs, fmt.Errorf("unknown input %q (knot %s takes: %s)%s", name, spec.Name, strings.Join(names, ", "), didYouMean(name, names)))
			continue
		}
		p := parents[name].ID()
		got := t.types[p]
		if receive {
			got = abi.DictOf(abi.Any) // {"ok": …}, {"err": …} or {"skip": …}
		}
		switch abi.Compatible(got, want) {
		case abi.Never:
			what := "produces"
			if receive {
				what = "hands a receive_errors knot its result document,"
			}
			errs = append(errs, fmt.Errorf("input %q wants %s, but %q %s %s", name, want, p, what, got))
		case abi.Maybe:
			if got.Kind != abi.KindAny {
				t.warnings = append(t.warnings, warning{id, fmt.Sprintf("%q: input %q wants %s; %q produces %s, which may not convert", id, name, want, p, got)})
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(consts)) {
		want, ok := typeOf(name)
		if !ok {
			errs = append(errs, fmt.Errorf("unknown input %q (knot %s takes: %s)%s", name, spec.Name, strings.Join(names, ", "), didYouMean(name, names)))
			continue
		}
		if _, err := want.Coerce(consts[name]); err != nil {
			errs = append(errs, fmt.Errorf("constant %q: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// oneInput returns the name of the only required input of a knot used as
// a predicate or selector, checking it can take a value of type in.
func (t *Tapestry) oneInput(r resolved, role string, in abi.Type) (string, error) {
	if r.spec == nil {
		return "input", nil
	}
	var req []abi.InputSpec
	for _, s := range r.spec.Inputs {
		if !s.Optional {
			req = append(req, s)
		}
	}
	if len(req) != 1 {
		return "", fmt.Errorf("%s knot %s must take exactly one required input, it takes %d", role, r.spec.Name, len(req))
	}
	want := abi.MustParseType(req[0].Type)
	if abi.Compatible(in, want) == abi.Never {
		return "", fmt.Errorf("%s knot %s wants %s, but its input produces %s", role, r.spec.Name, want, in)
	}
	return req[0].Name, nil
}

// GateDef declares a Gate: Predicate receives the input; a truthy result
// passes it through, a falsy one skips with reason gate_closed.
type GateDef struct {
	ID        string
	Input     *Node
	Predicate Knot
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
	in := t.types[d.Input.ID()]
	r, err := d.Predicate.resolve(context.Background(), exprEnv{vars: map[string]abi.Type{"input": in},
		aliases: d.Input.aliases(), want: abi.Bool})
	if err != nil {
		return nil, t.fail(fmt.Errorf("gate %q: predicate: %w", d.ID, err))
	}
	fnInput, err := t.oneInput(r, "predicate", in)
	if err != nil {
		return nil, t.fail(fmt.Errorf("gate %q: %w", d.ID, err))
	}
	n, err := t.t.AddGate(scheduler.GateSpec{ID: d.ID, Input: d.Input.ID(), Fn: r.fn, FnInput: fnInput, Policy: d.Policy, Optional: d.Optional})
	return t.node(n, err, in)
}

// BranchDef declares a Branch: Selector receives the input and returns the
// name of one of Arms.
type BranchDef struct {
	ID       string
	Input    *Node
	Selector Knot
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
		b.ID(), name, strings.Join(b.names, ", "), didYouMean(name, b.names))}
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
	in := t.types[d.Input.ID()]
	r, err := d.Selector.resolve(context.Background(), exprEnv{vars: map[string]abi.Type{"input": in},
		aliases: d.Input.aliases(), want: abi.Str})
	if err != nil {
		return nil, t.fail(fmt.Errorf("branch %q: selector: %w", d.ID, err))
	}
	fnInput, err := t.oneInput(r, "selector", in)
	if err == nil && abi.Compatible(r.outType(), abi.Str) == abi.Never {
		err = fmt.Errorf("selector returns %s; it must return the name of an arm (str)", r.outType())
	}
	if err != nil {
		return nil, t.fail(fmt.Errorf("branch %q: %w", d.ID, err))
	}
	n, err := t.t.AddBranch(scheduler.BranchSpec{ID: d.ID, Input: d.Input.ID(), Fn: r.fn, FnInput: fnInput, Arms: d.Arms, Policy: d.Policy, Optional: d.Optional})
	node, err := t.node(n, err, abi.Str)
	if err != nil {
		return nil, err
	}
	b := &BranchNode{Node: *node, arms: map[string]*Node{}, names: slices.Clone(d.Arms)}
	for _, a := range d.Arms {
		an, _ := t.t.Node(d.ID + "." + a)
		t.types[an.ID()] = in
		b.arms[a] = &Node{n: an}
	}
	return b, nil
}

// MapDef declares a Map: Each is invoked on every element of Over's list,
// with the element under Bind and the shared inputs In.
type MapDef struct {
	ID   string
	Over *Node
	Each Knot
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
	over := t.types[d.Over.ID()]
	elem := abi.Any
	switch {
	case over.Kind == abi.KindList && over.Elem != nil:
		elem = *over.Elem
	case over.Kind != abi.KindList && over.Kind != abi.KindAny:
		return nil, t.fail(fmt.Errorf("map %q: over: %q produces %s, not a list", d.ID, d.Over.ID(), over))
	}
	vars := t.varTypes(parents, consts)
	bind := d.Bind
	if _, isExpr := d.Each.(Expr); isExpr {
		bind = cmp.Or(bind, "item")
	}
	if bind != "" {
		vars[bind] = elem
	}
	r, err := d.Each.resolve(context.Background(), exprEnv{vars: vars})
	if err != nil {
		return nil, t.fail(fmt.Errorf("map %q: each: %w", d.ID, err))
	}
	if r.spec != nil {
		if bind == "" {
			var free []string
			for _, in := range r.spec.Inputs {
				_, p := parents[in.Name]
				_, c := consts[in.Name]
				if !in.Optional && !p && !c {
					free = append(free, in.Name)
				}
			}
			if len(free) != 1 {
				return nil, t.fail(fmt.Errorf("map %q: cannot tell which input of %s receives the elements (unbound: %s); set bind", d.ID, r.spec.Name, strings.Join(free, ", ")))
			}
			bind = free[0]
		}
		in, ok := r.spec.Input(bind)
		switch {
		case !ok:
			err = fmt.Errorf("bind %q is not an input of %s", bind, r.spec.Name)
		case abi.Compatible(elem, abi.MustParseType(in.Type)) == abi.Never:
			err = fmt.Errorf("input %q of %s wants %s, but the elements of %q are %s", bind, r.spec.Name, in.Type, d.Over.ID(), elem)
		default:
			err = t.checkInputs(d.ID, r.spec, parents, consts, bind, false)
		}
		if err != nil {
			return nil, t.fail(fmt.Errorf("map %q: %w", d.ID, err))
		}
	}
	n, err := t.t.AddMap(scheduler.MapSpec{ID: d.ID, Over: d.Over.ID(), Fn: r.fn, Bind: bind, Parents: ids(parents), Config: consts,
		OnSkip: d.OnSkip, MaxElements: d.MaxElements, Policy: d.Policy, Optional: d.Optional})
	return t.node(n, err, abi.ListOf(r.outType()))
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
	Combine  Knot
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
	of := t.types[d.Of.ID()]
	elem := abi.Any
	switch {
	case of.Kind == abi.KindList && of.Elem != nil:
		elem = *of.Elem
	case of.Kind != abi.KindList && of.Kind != abi.KindAny:
		return nil, t.fail(fmt.Errorf("reduce %q: of: %q produces %s, not a list", d.ID, d.Of.ID(), of))
	}
	vars := map[string]abi.Type{"items": of}
	if d.Pairwise {
		vars = map[string]abi.Type{"acc": abi.Any, "item": elem}
	}
	r, err := d.Combine.resolve(context.Background(), exprEnv{vars: vars})
	if err != nil {
		return nil, t.fail(fmt.Errorf("reduce %q: combine: %w", d.ID, err))
	}
	spec := scheduler.ReduceSpec{ID: d.ID, Of: d.Of.ID(), Fn: r.fn, Pairwise: d.Pairwise, Initial: d.Initial, Policy: d.Policy, Optional: d.Optional}
	if r.spec != nil {
		var req []abi.InputSpec
		for _, in := range r.spec.Inputs {
			if !in.Optional {
				req = append(req, in)
			}
		}
		switch {
		case !d.Pairwise && len(req) != 1:
			err = fmt.Errorf("a whole-list combine must take one required input; %s takes %d (give an initial value for a pairwise fold)", r.spec.Name, len(req))
		case d.Pairwise && len(req) != 2:
			err = fmt.Errorf("a pairwise combine must take two required inputs (accumulator, element); %s takes %d", r.spec.Name, len(req))
		case !d.Pairwise:
			spec.ItemsInput = req[0].Name
		default:
			spec.AccInput, spec.ItemInput = req[0].Name, req[1].Name
		}
		if err != nil {
			return nil, t.fail(fmt.Errorf("reduce %q: %w", d.ID, err))
		}
	}
	n, err := t.t.AddReduce(spec)
	return t.node(n, err, r.outType())
}

// didYouMean suggests the closest candidate within edit distance 2.
func didYouMean(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
