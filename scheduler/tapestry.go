package scheduler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

// Knot is the executable part of a knot node: a Wasm knot of package host
// (through an adapter), or a host-native function.
type Knot interface {
	// Invoke runs the knot once. It must not panic; failures are err
	// responses. An ok Value must be canonical (cas.Canonicalize). The
	// scheduler reuses c after Invoke returns: do not retain it.
	Invoke(ctx context.Context, c *Call) abi.Response
}

// Call is one invocation's arguments.
type Call struct {
	RunID  string
	KnotID string
	Inputs []abi.Arg // parent values by input name, canonical order
	Config []abi.Arg // constant inputs, canonical order
}

// Policy is a knot's error policy: what happens when a parent did not end
// ok.
type Policy uint8

// Policies.
const (
	// SkipIfParentFailed skips the knot when any parent erred or skipped.
	SkipIfParentFailed Policy = iota
	// ReceiveErrors always runs the knot; each input is the parent's result
	// as a value: {"ok": v}, {"err": {...}} or {"skip": {...}}.
	ReceiveErrors
	// RequireAllParents makes the knot err when any parent erred or skipped.
	RequireAllParents
)

var policyNames = [...]string{"skip_if_parent_failed", "receive_errors", "require_all_parents"}

func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("Policy(%d)", p)
}

// ParsePolicy parses a policy name ("skip_if_parent_failed",
// "receive_errors", "require_all_parents"; "" is the default).
func ParsePolicy(s string) (Policy, error) {
	if s == "" {
		return SkipIfParentFailed, nil
	}
	for i, n := range policyNames {
		if s == n {
			return Policy(i), nil
		}
	}
	return 0, fmt.Errorf("unknown error policy %q (want one of %s)", s, strings.Join(policyNames[:], ", "))
}

// ParamSpec declares a parameter.
type ParamSpec struct {
	ID         string // "" means "param:" + Name
	Name       string // the key a run request binds
	Type       abi.Type
	Default    any // used when HasDefault and the request has no value
	HasDefault bool
}

// KnotSpec declares a knot.
type KnotSpec struct {
	ID   string
	Knot Knot
	// Module and Name identify what runs, for lineage: a module digest and
	// the knot's name in it, or "" and "host:<name>" for host-native knots.
	Module string
	Name   string
	// Parents maps input names to parent node ids.
	Parents map[string]string
	// Config maps input names to constant values (the original's "config").
	Config   map[string]any
	Policy   Policy
	Optional bool // an err of this knot behaves like a skip downstream
}

// Node is a parameter or knot of a tapestry. It is read-only.
type Node struct {
	id    string
	index int
	// parameter
	param *ParamSpec
	def   cas.Value // coerced default
	// knot
	knot       *KnotSpec
	parents    []edge    // in canonical input-name order (shorter names first)
	byName     []edge    // the same, sorted by name, for lineage
	config     []abi.Arg // in canonical order
	configHash cas.Digest
	children   []*Node
}

type edge struct {
	input  string
	parent *Node
}

// ID returns the node's id.
func (n *Node) ID() string { return n.id }

// IsParameter reports whether n is a parameter.
func (n *Node) IsParameter() bool { return n.param != nil }

// ParamName returns the parameter's name ("" for knots).
func (n *Node) ParamName() string {
	if n.param == nil {
		return ""
	}
	return n.param.Name
}

// optional reports whether the node is an optional knot.
func (n *Node) optional() bool { return n.knot != nil && n.knot.Optional }

// Parents returns a knot's parent ids by input name.
func (n *Node) Parents() map[string]string {
	m := make(map[string]string, len(n.parents))
	for _, e := range n.parents {
		m[e.input] = e.parent.id
	}
	return m
}

// Edges returns a knot's (input name, parent id) pairs in input-name order.
func (n *Node) Edges() [][2]string {
	out := make([][2]string, len(n.parents))
	for i, e := range n.parents {
		out[i] = [2]string{e.input, e.parent.id}
	}
	return out
}

// What returns what runs, for lineage: (module digest, knot name).
func (n *Node) What() (module, name string) {
	if n.param != nil {
		return "", lineage.KnotParameter
	}
	return n.knot.Module, n.knot.Name
}

// ConfigHash returns the digest of the node's configuration.
func (n *Node) ConfigHash() cas.Digest { return n.configHash }

// Tapestry is a DAG of parameters and knots.
type Tapestry struct {
	nodes  []*Node
	byID   map[string]*Node
	params map[string]*Node // by parameter name
}

// NewTapestry returns an empty tapestry.
func NewTapestry() *Tapestry {
	return &Tapestry{byID: map[string]*Node{}, params: map[string]*Node{}}
}

// Node returns the node with the id.
func (t *Tapestry) Node(id string) (*Node, bool) {
	n, ok := t.byID[id]
	return n, ok
}

// Nodes returns every node in the order added (a topological order).
func (t *Tapestry) Nodes() []*Node { return slices.Clone(t.nodes) }

// Terminals returns the nodes no other node consumes, in the order added.
func (t *Tapestry) Terminals() []*Node {
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
}

// AddParameter adds a parameter. Its default, if any, is coerced to its
// type now.
func (t *Tapestry) AddParameter(p ParamSpec) (*Node, error) {
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
	n := &Node{id: p.ID, param: &p}
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
	t.add(n)
	t.params[p.Name] = n
	return n, nil
}

// AddKnot adds a knot. Its parents must already be in the tapestry.
func (t *Tapestry) AddKnot(k KnotSpec) (*Node, error) {
	if err := t.checkID(k.ID); err != nil {
		return nil, err
	}
	if k.Knot == nil {
		return nil, fmt.Errorf("knot %q: nil Knot", k.ID)
	}
	if k.Policy > RequireAllParents {
		return nil, fmt.Errorf("knot %q: unknown policy %d", k.ID, k.Policy)
	}
	n := &Node{id: k.ID, knot: &k}
	defer func() { k.Parents, k.Config = nil, nil }() // kept as parents and config
	var errs []error
	for input, pid := range k.Parents {
		if !abi.ValidInputName(input) {
			errs = append(errs, fmt.Errorf("input name %q is not an identifier", input))
			continue
		}
		p, ok := t.byID[pid]
		if !ok {
			errs = append(errs, fmt.Errorf("input %q: unknown parent %q", input, pid))
			continue
		}
		if _, both := k.Config[input]; both {
			errs = append(errs, fmt.Errorf("input %q is given both a parent and a constant", input))
		}
		n.parents = append(n.parents, edge{input: input, parent: p})
	}
	slices.SortFunc(n.parents, func(a, b edge) int { return compareKeys(a.input, b.input) })
	n.byName = slices.Clone(n.parents)
	slices.SortFunc(n.byName, func(a, b edge) int { return strings.Compare(a.input, b.input) })
	config := map[string]any{}
	for input, v := range k.Config {
		if !abi.ValidInputName(input) {
			errs = append(errs, fmt.Errorf("config name %q is not an identifier", input))
			continue
		}
		b, err := cas.Encode(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("config %q: %w", input, err))
			continue
		}
		n.config = append(n.config, abi.Arg{Name: input, Value: b})
		config[input] = v
	}
	abi.SortArgs(n.config)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("knot %q: %w", k.ID, err)
	}
	h, err := cas.Hash(map[string]any{"id": k.ID, "config": config, "error_policy": k.Policy.String(), "optional": k.Optional})
	if err != nil {
		return nil, fmt.Errorf("knot %q: config: %w", k.ID, err)
	}
	n.configHash = h
	for _, e := range n.parents {
		if !slices.Contains(e.parent.children, n) {
			e.parent.children = append(e.parent.children, n)
		}
	}
	t.add(n)
	return n, nil
}

// compareKeys orders names as canonical CBOR orders text keys.
func compareKeys(a, b string) int {
	return cmp.Or(cmp.Compare(len(a), len(b)), cmp.Compare(a, b))
}
