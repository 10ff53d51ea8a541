package pirn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/scheduler"
)

// Tapestry is a DAG of parameters and knots built in Go. Methods record
// the first error; Run reports it.
type Tapestry struct {
	t   *scheduler.Tapestry
	err error
}

// NewTapestry returns an empty tapestry.
func NewTapestry() *Tapestry { return &Tapestry{t: scheduler.NewTapestry()} }

// Node is a parameter or knot of a tapestry. Passing a *Node as an input
// of another knot makes it a parent.
type Node struct {
	n *scheduler.Node
}

// ID returns the node's id.
func (n *Node) ID() string { return n.n.ID() }

// Err returns the first error recorded while building.
func (t *Tapestry) Err() error { return t.err }

func (t *Tapestry) fail(err error) (*Node, error) {
	if t.err == nil {
		t.err = err
	}
	return nil, err
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
			return t.fail(fmt.Errorf("parameter %q: %w", p.Name, err))
		}
	}
	n, err := t.t.AddParameter(scheduler.ParamSpec{ID: p.ID, Name: p.Name, Type: typ, Default: p.Default, HasDefault: p.HasDefault})
	if err != nil {
		return t.fail(err)
	}
	return &Node{n: n}, nil
}

// In holds a knot's inputs by name. A *Node value makes that node a
// parent; any other value is a constant (the original's "config").
type In map[string]any

// KnotDef declares a knot with every option.
type KnotDef struct {
	ID       string
	Knot     Knot
	In       In
	Policy   scheduler.Policy
	Optional bool // an err of this knot behaves like a skip downstream
}

// Knot adds a knot with the default policy.
func (t *Tapestry) Knot(id string, k Knot, in In) (*Node, error) {
	return t.Add(KnotDef{ID: id, Knot: k, In: in})
}

// Add adds a knot.
func (t *Tapestry) Add(d KnotDef) (*Node, error) {
	if d.Knot == nil {
		return t.fail(fmt.Errorf("knot %q: no knot", d.ID))
	}
	k, module, name, spec, err := d.Knot.resolve(context.Background())
	if err != nil {
		return t.fail(fmt.Errorf("knot %q: %w", d.ID, err))
	}
	parents, config := map[string]string{}, map[string]any{}
	for input, v := range d.In {
		if n, ok := v.(*Node); ok {
			if n == nil {
				return t.fail(fmt.Errorf("knot %q: input %q is a nil *Node", d.ID, input))
			}
			parents[input] = n.ID()
		} else {
			config[input] = v
		}
	}
	if spec != nil {
		if err := checkInputs(spec, parents, config); err != nil {
			return t.fail(fmt.Errorf("knot %q: %w", d.ID, err))
		}
	}
	n, err := t.t.AddKnot(scheduler.KnotSpec{ID: d.ID, Knot: k, Module: module, Name: name,
		Parents: parents, Config: config, Policy: d.Policy, Optional: d.Optional})
	if err != nil {
		return t.fail(err)
	}
	return &Node{n: n}, nil
}

// checkInputs checks the bound input names against the knot's manifest.
func checkInputs(spec *abi.KnotSpec, parents map[string]string, config map[string]any) error {
	var errs []error
	bound := func(name string) bool {
		_, p := parents[name]
		_, c := config[name]
		return p || c
	}
	for _, in := range spec.Inputs {
		if !in.Optional && !bound(in.Name) {
			errs = append(errs, fmt.Errorf("missing input %q (%s)", in.Name, in.Type))
		}
	}
	if spec.Rest == "" {
		var declared []string
		for _, in := range spec.Inputs {
			declared = append(declared, in.Name)
		}
		for _, m := range []map[string]bool{keys(parents), keys(config)} {
			for name := range m {
				if !slices.Contains(declared, name) {
					errs = append(errs, fmt.Errorf("unknown input %q (knot %s takes: %s)", name, spec.Name, strings.Join(declared, ", ")))
				}
			}
		}
	}
	return errors.Join(errs...)
}

func keys[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}
