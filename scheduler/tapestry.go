package scheduler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/model"
)

// Invoker is what a node runs: a Wasm knot of package host (through an
// adapter), an expression, or a host-native function.
type Invoker interface {
	// Invoke runs the knot once. It must not panic; failures are err
	// responses. An ok Value must be canonical (cas.Canonicalize). The
	// scheduler reuses c after Invoke returns: do not retain it. Invoke
	// must return soon after ctx is done: a run whose context ends waits
	// only for the invocations in flight (a Wasm knot's instance is
	// closed at once), skips everything else, and is recorded cancelled.
	Invoke(ctx context.Context, c *Call) abi.Response
}

// Call is one invocation's arguments.
type Call struct {
	RunID  string
	KnotID string
	Inputs []abi.Arg // parent values by input name, canonical order
	Config []abi.Arg // constant inputs, canonical order
}

// ParamDecl declares a parameter.
type ParamDecl struct {
	ID         string // "" means "param:" + Name
	Name       string // the key a run request binds
	Type       abi.Type
	Default    any // used when HasDefault and the request has no value
	HasDefault bool
}

// recordKinds maps each node kind to the kind of its lineage records; a
// node kind's name is its record kind's.
var recordKinds = [...]lineage.Kind{
	model.KindParameter: lineage.KindParameter, model.KindKnot: lineage.KindKnot, model.KindSource: lineage.KindSource,
	model.KindSink: lineage.KindSink, model.KindAggregator: lineage.KindAggregator, model.KindBranch: lineage.KindBranch,
	model.KindArm: lineage.KindArm, model.KindGate: lineage.KindGate, model.KindMap: lineage.KindMap, model.KindReduce: lineage.KindReduce,
}

// recordKind returns the kind of the lineage records of a node of kind k.
// (A Map's elements have records of kind lineage.KindElement.)
func recordKind(k model.Kind) lineage.Kind {
	if int(k) < len(recordKinds) {
		return recordKinds[k]
	}
	return lineage.Kind(k.String())
}

// Fn is what a node invokes, and what lineage records it as.
type Fn struct {
	Invoker Invoker
	// Module is the digest of the knot's module; "" for host-native knots
	// and expressions.
	Module string
	// Name is the knot's name in its module or, when no module runs, a
	// name with a lineage prefix: "host:<name>" (lineage.PrefixHost) for a
	// host-native knot, "expr:<source>" (lineage.PrefixExpr) for an
	// expression.
	Name string
	// Grants lists the knot's capabilities for lineage (see
	// lineage.Record.Grants); they are part of the configuration hash.
	Grants []string
	// Spec is the knot's manifest entry, when it has one. The node's
	// inputs (parents and constants) are checked against it as the node
	// is added, parents by their output types; and it names the input a
	// Gate's, Branch's, Map's or Reduce's function takes its value under,
	// where the node leaves that unset. Nil for an expression (its
	// variables are checked when it compiles) and a builtin.
	Spec *abi.KnotSpec
	// Output is the type of what the function returns when Spec is nil
	// (the zero Type is any).
	Output abi.Type
	// Settings is the digest of what else about the invoker can change
	// an invocation's outcome beyond the node's configuration and
	// inputs (a Wasm knot's limits and type checking); zero for none.
	// It is part of the cache key (see memo.go).
	Settings cas.Digest
	// Cache says whether the function's results may be reused: by
	// default, those of a module's knot with no grants (see model.Cache).
	// Only a function with a Module and a Spec is ever reused.
	Cache model.Cache
}

// output is the type of what f returns.
func (f Fn) output() abi.Type {
	if f.Spec != nil {
		return abi.MustParseType(f.Spec.Output)
	}
	return f.Output
}

// Skip reasons the node kinds produce.
const (
	ReasonGateClosed        = "gate_closed"
	ReasonBranchNotSelected = "branch_not_selected"
	ReasonElementSkipped    = "element_skipped"
)

// KnotDecl declares a knot: a plain knot, a Source, a Sink or an
// Aggregator.
type KnotDecl struct {
	ID   string
	Kind model.Kind // KindKnot (the zero value is taken as KindKnot), KindSource, KindSink or KindAggregator
	Fn   Fn
	// Parents maps input names to parent node ids.
	Parents map[string]string
	// Config maps input names to constant values (the original's "config").
	Config   map[string]any
	Policy   model.Policy
	Optional bool // an err of this knot behaves like a skip downstream
}

// GateDecl declares a Gate: Fn receives the input under FnInput; a truthy
// result passes the input through, a falsy one skips with "gate_closed".
// Falsy: false, null, 0, 0.0, "", empty bytes, an empty list or map.
type GateDecl struct {
	ID       string
	Input    string // the parent id
	Fn       Fn
	FnInput  string       // the input name Fn receives the value under
	Policy   model.Policy // SkipIfParentFailed or RequireAllParents
	Optional bool
}

// BranchDecl declares a Branch and its arms. Fn receives the input under
// FnInput and must return the name of one of Arms. The Branch's output is
// that name; each arm is a node "<id>.<arm>" whose output is the input if
// its arm was selected, and which is skipped with "branch_not_selected"
// otherwise.
type BranchDecl struct {
	ID       string
	Input    string
	Fn       Fn
	FnInput  string
	Arms     []string
	Policy   model.Policy // SkipIfParentFailed or RequireAllParents
	Optional bool
}

// MapDecl declares a Map: Fn is invoked once per element of the list that
// Over produces, with the element under Bind, the shared Parents' values
// and the Config constants; the elements run in parallel on the worker
// pool, each with its own lineage record ("<id>:<index>"). The output is
// the list of the elements' outputs. If an element errs, the Map errs,
// naming the first failing index.
type MapDecl struct {
	ID      string
	Over    string // the parent producing the list
	Fn      Fn
	Bind    string            // the input name each element is passed under
	Parents map[string]string // shared parents, by input name
	Config  map[string]any    // shared constants, by input name
	OnSkip  model.OnSkip
	// MaxElements bounds the list: a longer one errs with ErrTooMany
	// before any element runs. 0 means DefaultMaxElements.
	MaxElements int
	Policy      model.Policy // SkipIfParentFailed or RequireAllParents
	Optional    bool
}

// DefaultMaxElements is a Map's default bound on its list. Each element
// costs the run a task, a result and a lineage record, about 1 KiB in all
// until the run is recorded.
const DefaultMaxElements = 100_000

// ReduceDecl declares a Reduce over the list Of produces. Whole-list: Fn
// receives the list under ItemsInput, once. Pairwise: Fn receives the
// accumulator under AccInput and each element under ItemInput, in order,
// starting from Initial; an empty list gives Initial.
type ReduceDecl struct {
	ID         string
	Of         string
	Fn         Fn
	Pairwise   bool
	ItemsInput string       // whole-list
	AccInput   string       // pairwise
	ItemInput  string       // pairwise
	Initial    any          // pairwise
	Policy     model.Policy // SkipIfParentFailed or RequireAllParents
	Optional   bool
}

// Node is a node of a tapestry. It is read-only.
type Node struct {
	id    string
	index int
	kind  model.Kind
	// parameter
	param *ParamDecl
	def   cas.Value // coerced default
	// everything else
	fn          Fn
	fnInput     string // gate, branch, map (bind), reduce (items or item)
	accInput    string // pairwise reduce
	parents     []edge // in canonical input-name order (shorter names first)
	byName      []edge // the same, sorted by name, for lineage
	config      []abi.Arg
	configHash  cas.Digest
	policy      model.Policy
	optional    bool
	children    []*Node
	primary     *Node    // gate, branch, map, reduce: the parent whose value the node consumes
	arms        []string // branch
	branch      *Node    // arm: its branch; arm name is armName
	armName     string
	onSkip      model.OnSkip // map
	maxElements int          // map
	pairwise    bool         // reduce
	initial     cas.Value    // reduce
	out         abi.Type     // the static type of its output
	// memoBase is the invocation-independent part of the cache key, if
	// memoOK: the node's results may be reused (see memo.go).
	memoBase cas.Digest
	memoOK   bool
}

type edge struct {
	input  string
	parent *Node
}

// ID returns the node's id.
func (n *Node) ID() string { return n.id }

// Kind returns the node's kind.
func (n *Node) Kind() model.Kind { return n.kind }

// IsParameter reports whether n is a parameter.
func (n *Node) IsParameter() bool { return n.kind == model.KindParameter }

// ParamName returns the parameter's name ("" for knots).
func (n *Node) ParamName() string {
	if n.param == nil {
		return ""
	}
	return n.param.Name
}

// Parents returns a node's parent ids by input name.
func (n *Node) Parents() map[string]string {
	m := make(map[string]string, len(n.parents))
	for _, e := range n.parents {
		m[e.input] = e.parent.id
	}
	return m
}

// Edges returns a node's (input name, parent id) pairs sorted by name.
func (n *Node) Edges() [][2]string {
	out := make([][2]string, len(n.byName))
	for i, e := range n.byName {
		out[i] = [2]string{e.input, e.parent.id}
	}
	return out
}

// Children returns the ids of the nodes that consume n.
func (n *Node) Children() []string {
	out := make([]string, len(n.children))
	for i, c := range n.children {
		out[i] = c.id
	}
	return out
}

// Arms returns a Branch's arm names.
func (n *Node) Arms() []string { return slices.Clone(n.arms) }

// RecordKind returns the kind of the node's lineage records.
func (n *Node) RecordKind() lineage.Kind { return recordKind(n.kind) }

// What returns what runs, for lineage: (module digest, knot name).
func (n *Node) What() (module, name string) {
	if n.kind == model.KindParameter {
		return "", lineage.KnotParameter
	}
	if n.kind == model.KindArm {
		return "", lineage.PrefixArm + n.armName
	}
	return n.fn.Module, n.fn.Name
}

// OutputType returns the static type of the node's output (any when not
// known before it runs).
func (n *Node) OutputType() abi.Type { return n.out }

// ConfigHash returns the digest of the node's configuration.
func (n *Node) ConfigHash() cas.Digest { return n.configHash }

// Tapestry is a DAG of parameters and knots.
type Tapestry struct {
	// mu guards everything below: Add* and the setup of a run hold it,
	// so that nodes may be added while runs of the tapestry go.
	mu sync.Mutex
	// runs are the extensible runs in progress, which nodes added now
	// may join (extend.go); joined, what the current Add* call joined.
	runs     []*engine
	joined   []joined
	nodes    []*Node
	byID     map[string]*Node
	params   map[string]*Node // by parameter name
	warnings []Warning
	origin   Origin
}

// Origin says which pipeline a tapestry was built from: its name and
// the digest it is kept under in the data store (see
// lineage.Run.PipelineDigest). A tapestry built in Go has none.
type Origin struct {
	Pipeline string
	Digest   cas.Digest
}

// SetOrigin records which pipeline t was built from; its runs record it.
func (t *Tapestry) SetOrigin(o Origin) { t.origin = o }

// Origin returns what SetOrigin recorded.
func (t *Tapestry) Origin() Origin { return t.origin }

// NewTapestry returns an empty tapestry.
func NewTapestry() *Tapestry {
	return &Tapestry{byID: map[string]*Node{}, params: map[string]*Node{}}
}

// Node returns the node with the id.
func (t *Tapestry) Node(id string) (*Node, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, ok := t.byID[id]
	return n, ok
}

// Nodes returns every node in the order added (a topological order).
func (t *Tapestry) Nodes() []*Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.nodes)
}

// Terminals returns the nodes no other node consumes, in the order added.
func (t *Tapestry) Terminals() []*Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.leaves()
}

// leaves returns the nodes no other node consumes; t.mu is held.
func (t *Tapestry) leaves() []*Node {
	var out []*Node
	for _, n := range t.nodes {
		if len(n.children) == 0 {
			out = append(out, n)
		}
	}
	return out
}

func (t *Tapestry) checkID(id string) error {
	if !abi.ValidKnotName(id) {
		return fmt.Errorf("knot id %q contains invalid characters or is too long (allowed: A-Z a-z 0-9 _ - . :, at most 256)", id)
	}
	if _, dup := t.byID[id]; dup {
		return fmt.Errorf("knot id %q is already used in this tapestry", id)
	}
	return nil
}

func (t *Tapestry) add(n *Node) {
	n.index = len(t.nodes)
	t.nodes = append(t.nodes, n)
	t.byID[n.id] = n
	for _, e := range n.parents {
		if !slices.Contains(e.parent.children, n) {
			e.parent.children = append(e.parent.children, n)
		}
	}
}

// AddParameter adds a parameter. Its default, if any, is coerced to its
// type now.
func (t *Tapestry) addParameter(p ParamDecl) (*Node, error) {
	if !abi.ValidKnotName(p.Name) {
		return nil, fmt.Errorf("parameter name %q is invalid (allowed: A-Z a-z 0-9 _ - . :)", p.Name)
	}
	p.ID = cmp.Or(p.ID, "param:"+p.Name)
	if err := t.checkID(p.ID); err != nil {
		return nil, err
	}
	if other, dup := t.params[p.Name]; dup {
		return nil, fmt.Errorf("parameter %q: name already used by %q", p.ID, other.id)
	}
	n := &Node{id: p.ID, kind: model.KindParameter, param: &p, out: p.Type}
	if p.HasDefault {
		v, err := p.Type.Coerce(p.Default)
		if err != nil {
			return nil, fmt.Errorf("parameter %q: default: %w", p.Name, err)
		}
		if n.def, err = cas.NewValue(v); err != nil {
			return nil, fmt.Errorf("parameter %q: default: %w", p.Name, err)
		}
	}
	h, err := cas.Hash(map[string]any{"id": p.ID, "name": p.Name, "type": p.Type.String(), "has_default": p.HasDefault, "default": n.def.Digest.String()})
	if err != nil {
		return nil, err
	}
	n.configHash = h
	if err := t.admit(n); err != nil {
		return nil, err
	}
	t.add(n)
	t.params[p.Name] = n
	t.join(n)
	return n, nil
}

// builder accumulates a node's parents and constants, and its problems.
type builder struct {
	t        *Tapestry
	n        *Node
	errs     []error
	cfg      map[string]any // for the config hash
	consts   map[string]any // the constant inputs, as given
	warnings []Warning
}

func (t *Tapestry) newNode(id string, kind model.Kind, fn Fn, policy model.Policy, optional bool) (*builder, error) {
	if err := t.checkID(id); err != nil {
		return nil, err
	}
	b := &builder{t: t, n: &Node{id: id, kind: kind, fn: fn, policy: policy, optional: optional}, cfg: map[string]any{}}
	if len(fn.Grants) > 0 { // absent when none, so hermetic knots keep their hashes
		b.cfg["grants"] = anySlice(fn.Grants)
	}
	if kind != model.KindArm && fn.Invoker == nil {
		b.errorf("no knot or expression to run")
	}
	if policy > model.RequireAllParents {
		b.errorf("unknown policy %d", policy)
	}
	return b, nil
}

func (b *builder) errorf(format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf(format, args...))
}

func (b *builder) parent(input, id string) {
	if !abi.ValidInputName(input) {
		b.errorf("input name %q is not an identifier", input)
		return
	}
	p, ok := b.t.byID[id]
	switch {
	case !ok:
		b.errorf("input %q: unknown parent %q", input, id)
		return
	case p.kind == model.KindSink:
		b.errorf("input %q: %q is a sink, which nothing may consume", input, id)
		return
	case p.kind == model.KindBranch && b.n.kind != model.KindArm:
		b.errorf("input %q: %q is a branch; consume one of its arms (%s) instead", input, id, armIDs(p))
		return
	}
	for _, e := range b.n.parents {
		if e.input == input {
			b.errorf("input %q bound twice", input)
			return
		}
	}
	b.n.parents = append(b.n.parents, edge{input: input, parent: p})
}

func armIDs(branch *Node) string {
	ids := make([]string, len(branch.arms))
	for i, a := range branch.arms {
		ids[i] = branch.id + "." + a
	}
	return strings.Join(ids, ", ")
}

func (b *builder) parents(m map[string]string) {
	for _, input := range slices.Sorted(maps.Keys(m)) {
		b.parent(input, m[input])
	}
}

func (b *builder) constants(m map[string]any) {
	config := map[string]any{}
	for _, input := range slices.Sorted(maps.Keys(m)) {
		v := m[input]
		if !abi.ValidInputName(input) {
			b.errorf("config name %q is not an identifier", input)
			continue
		}
		for _, e := range b.n.parents {
			if e.input == input {
				b.errorf("input %q is given both a parent and a constant", input)
			}
		}
		enc, err := cas.Encode(v)
		if err != nil {
			b.errorf("config %q: %w", input, err)
			continue
		}
		b.n.config = append(b.n.config, abi.Arg{Name: input, Value: enc})
		config[input] = v
	}
	abi.SortArgs(b.n.config)
	b.cfg["config"] = config
	b.consts = config
}

// done checks the node, computes its configuration hash and adds it.
func (b *builder) done() (*Node, error) {
	n := b.n
	if len(b.errs) > 0 { // each problem reads on its own
		errs := make([]error, len(b.errs))
		for i, err := range b.errs {
			errs[i] = fmt.Errorf("%s %q: %w", n.kind, n.id, err)
		}
		return nil, errors.Join(errs...)
	}
	slices.SortFunc(n.parents, func(a, b edge) int { return compareKeys(a.input, b.input) })
	n.byName = slices.Clone(n.parents)
	slices.SortFunc(n.byName, func(a, b edge) int { return strings.Compare(a.input, b.input) })
	b.cfg["id"] = n.id
	b.cfg["kind"] = n.kind.String()
	b.cfg["error_policy"] = n.policy.String()
	b.cfg["optional"] = n.optional
	h, err := cas.Hash(b.cfg)
	if err != nil {
		return nil, fmt.Errorf("%s %q: config: %w", n.kind, n.id, err)
	}
	n.configHash = h
	switch n.kind {
	case model.KindKnot, model.KindSource, model.KindSink, model.KindAggregator:
		n.memoBase, n.memoOK = memoBase(n, recordKind(n.kind))
	case model.KindMap:
		n.memoBase, n.memoOK = memoBase(n, lineage.KindElement)
	}
	if err := b.t.admit(n); err != nil {
		return nil, err
	}
	b.t.add(n)
	b.t.join(n)
	b.t.warnings = append(b.t.warnings, b.warnings...)
	return n, nil
}

// AddKnot adds a knot, Source, Sink or Aggregator. Its parents must
// already be in the tapestry.
func (t *Tapestry) addKnot(k KnotDecl) (*Node, error) {
	kind := k.Kind
	if kind == model.KindParameter {
		kind = model.KindKnot
	}
	if kind != model.KindKnot && kind != model.KindSource && kind != model.KindSink && kind != model.KindAggregator {
		return nil, fmt.Errorf("knot %q: AddKnot cannot add a %s", k.ID, kind)
	}
	b, err := t.newNode(k.ID, kind, k.Fn, k.Policy, k.Optional)
	if err != nil {
		return nil, err
	}
	b.parents(k.Parents)
	b.constants(k.Config)
	switch {
	case kind == model.KindSource && len(k.Parents) > 0:
		b.errorf("a source takes no parents (got %d)", len(k.Parents))
	case kind == model.KindAggregator && len(k.Parents) == 0:
		b.errorf("an aggregator needs at least one parent")
	}
	b.checkInputs(b.n.parents, "")
	b.n.out = k.Fn.output()
	if kind == model.KindSink {
		b.n.out = abi.Null
	}
	return b.done()
}

// single checks the one-input node kinds' shared rules.
func (t *Tapestry) single(id string, kind model.Kind, input, parentEdge string, fn Fn, policy model.Policy, optional bool) (*builder, error) {
	b, err := t.newNode(id, kind, fn, policy, optional)
	if err != nil {
		return nil, err
	}
	if policy == model.ReceiveErrors {
		b.errorf("a %s cannot use receive_errors (it needs its input's value)", kind)
	}
	b.parent(parentEdge, input)
	if len(b.n.parents) == 1 {
		b.n.primary = b.n.parents[0].parent
	}
	return b, nil
}

// AddGate adds a Gate.
func (t *Tapestry) addGate(g GateDecl) (*Node, error) {
	b, err := t.single(g.ID, model.KindGate, g.Input, "input", g.Fn, g.Policy, g.Optional)
	if err != nil {
		return nil, err
	}
	b.n.fnInput = b.fnInput(g.FnInput, "predicate")
	b.n.out = b.inputType()
	b.cfg["predicate"] = []any{g.Fn.Module, g.Fn.Name, b.n.fnInput}
	return b.done()
}

// AddBranch adds a Branch and its arms; it returns the Branch. The arms
// are nodes "<id>.<arm>".
func (t *Tapestry) addBranch(s BranchDecl) (*Node, error) {
	b, err := t.single(s.ID, model.KindBranch, s.Input, "input", s.Fn, s.Policy, s.Optional)
	if err != nil {
		return nil, err
	}
	b.n.fnInput = b.fnInput(s.FnInput, "selector")
	if out := s.Fn.output(); len(b.errs) == 0 && abi.Compatible(out, abi.Str) == abi.Never {
		b.errorf("selector returns %s; it must return the name of an arm (str)", out)
	}
	b.n.out = abi.Str
	in := b.inputType()
	if len(s.Arms) == 0 {
		b.errorf("a branch needs at least one arm")
	}
	seen := map[string]bool{}
	for _, a := range s.Arms {
		switch {
		case seen[a]:
			b.errorf("arm %q declared twice", a)
		case !abi.ValidInputName(a):
			b.errorf("arm name %q is not an identifier", a)
		default:
			if err := t.checkID(s.ID + "." + a); err != nil {
				b.errorf("arm %q: %w", a, err)
			}
		}
		seen[a] = true
	}
	b.n.arms = slices.Clone(s.Arms)
	b.cfg["selector"] = []any{s.Fn.Module, s.Fn.Name, b.n.fnInput}
	b.cfg["arms"] = anySlice(s.Arms)
	branch, err := b.done()
	if err != nil {
		return nil, err
	}
	for _, a := range s.Arms {
		ab, err := t.newNode(s.ID+"."+a, model.KindArm, Fn{}, model.SkipIfParentFailed, false)
		if err != nil {
			return nil, err
		}
		ab.n.branch, ab.n.armName, ab.n.out = branch, a, in
		ab.parent("chosen", branch.id)
		ab.cfg["arm"] = a
		if _, err := ab.done(); err != nil {
			return nil, err
		}
	}
	return branch, nil
}

func anySlice(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

// AddMap adds a Map.
func (t *Tapestry) addMap(m MapDecl) (*Node, error) {
	b, err := t.single(m.ID, model.KindMap, m.Over, "over", m.Fn, m.Policy, m.Optional)
	if err != nil {
		return nil, err
	}
	elem := b.elemType("over")
	b.parents(m.Parents)
	b.constants(m.Config)
	var shared []edge // the parents but the list's
	for _, e := range b.n.parents {
		if e.input != "over" {
			shared = append(shared, e)
		}
	}
	if m.Bind == "" && m.Fn.Spec != nil {
		m.Bind = b.freeInput(shared)
	}
	if !abi.ValidInputName(m.Bind) {
		b.errorf("bind %q is not an identifier", m.Bind)
	}
	b.n.fnInput = m.Bind
	b.n.out = abi.ListOf(m.Fn.output())
	if spec := m.Fn.Spec; spec != nil && m.Bind != "" {
		in, ok := spec.Input(m.Bind)
		switch {
		case !ok:
			b.errorf("bind %q is not an input of %s", m.Bind, spec.Name)
		case abi.Compatible(elem, abi.MustParseType(in.Type)) == abi.Never:
			b.errorf("input %q of %s wants %s, but the elements of %q are %s", m.Bind, spec.Name, in.Type, m.Over, elem)
		default:
			b.checkInputs(shared, m.Bind)
		}
	}
	for _, e := range b.n.parents {
		if e.input == m.Bind {
			b.errorf("input %q is both the element (bind) and a shared input", m.Bind)
		}
	}
	if _, ok := m.Config[m.Bind]; ok {
		b.errorf("input %q is both the element (bind) and a constant", m.Bind)
	}
	if m.OnSkip > model.OnSkipSkip {
		b.errorf("unknown on_skip %d", m.OnSkip)
	}
	b.n.onSkip = m.OnSkip
	if m.MaxElements < 0 {
		b.errorf("max_elements %d is negative", m.MaxElements)
	}
	b.n.maxElements = cmp.Or(m.MaxElements, DefaultMaxElements)
	if m.MaxElements != 0 { // absent by default, so that existing hashes stay
		b.cfg["max_elements"] = m.MaxElements
	}
	b.cfg["each"] = []any{m.Fn.Module, m.Fn.Name, m.Bind}
	b.cfg["on_skip"] = m.OnSkip.String()
	return b.done()
}

// AddReduce adds a Reduce.
func (t *Tapestry) addReduce(r ReduceDecl) (*Node, error) {
	b, err := t.single(r.ID, model.KindReduce, r.Of, "of", r.Fn, r.Policy, r.Optional)
	if err != nil {
		return nil, err
	}
	b.n.pairwise = r.Pairwise
	b.elemType("of")
	b.n.out = r.Fn.output()
	if spec := r.Fn.Spec; spec != nil {
		req := required(spec)
		switch {
		case !r.Pairwise && len(req) != 1:
			b.errorf("a whole-list combine must take one required input; %s takes %d (give an initial value for a pairwise fold)", spec.Name, len(req))
		case r.Pairwise && len(req) != 2:
			b.errorf("a pairwise combine must take two required inputs (accumulator, element); %s takes %d", spec.Name, len(req))
		case !r.Pairwise:
			r.ItemsInput = cmp.Or(r.ItemsInput, req[0].Name)
		default:
			r.AccInput, r.ItemInput = cmp.Or(r.AccInput, req[0].Name), cmp.Or(r.ItemInput, req[1].Name)
		}
	}
	if r.Pairwise {
		b.n.accInput, b.n.fnInput = cmp.Or(r.AccInput, "acc"), cmp.Or(r.ItemInput, "item")
		if b.n.accInput == b.n.fnInput {
			b.errorf("the accumulator and the element need different input names")
		}
		v, err := cas.NewValue(r.Initial)
		if err != nil {
			b.errorf("initial: %w", err)
		}
		b.n.initial = v
		b.cfg["initial"] = v.Digest.String()
	} else {
		b.n.fnInput = cmp.Or(r.ItemsInput, "items")
	}
	b.cfg["combine"] = []any{r.Fn.Module, r.Fn.Name, b.n.accInput, b.n.fnInput}
	b.cfg["pairwise"] = r.Pairwise
	return b.done()
}

// compareKeys orders names as canonical CBOR orders text keys.
func compareKeys(a, b string) int {
	return cmp.Or(cmp.Compare(len(a), len(b)), cmp.Compare(a, b))
}
