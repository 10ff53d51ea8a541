// Package loom places functions in a tapestry: it resolves each node's
// function (a module's knot, an expression, a Go function) against what
// the node feeds it, and adds the node to the scheduler's tapestry, which
// checks the graph and the types. The embedding API's typed builder
// (pirn.Tapestry) and pipeline files (Build) both weave through it, so a
// node is built one way whatever it came from.
package loom

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/model"
	"github.com/pirn-wasm/pirn/scheduler"
)

// Loom is a tapestry being built, and the module knots to prepare before
// it runs.
type Loom struct {
	T       *scheduler.Tapestry
	prepare []preparer
}

// preparer is a function that must be made ready (compiled, an instance
// started) before it runs.
type preparer interface {
	Prepare(ctx context.Context) error
}

// New returns an empty loom.
func New() *Loom { return &Loom{T: scheduler.NewTapestry()} }

// Prepare makes the module knots ready to run.
func (l *Loom) Prepare(ctx context.Context) error {
	for _, p := range l.prepare {
		if err := p.Prepare(ctx); err != nil {
			return err
		}
	}
	return nil
}

// OutputType is the static type of a node's output (any if unknown).
func (l *Loom) OutputType(id string) abi.Type {
	if n, ok := l.T.Node(id); ok {
		return n.OutputType()
	}
	return abi.Any
}

func (l *Loom) resolve(f Fn, env Env) (scheduler.Fn, error) {
	fn, err := f.Resolve(env)
	if p, ok := fn.Invoker.(preparer); ok && err == nil {
		l.prepare = append(l.prepare, p)
	}
	return fn, err
}

// NodeErr names the node in err, and in each error of a joined err, so
// that every problem reads on its own.
func NodeErr(kind model.Kind, id string, err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var errs []error
		for _, e := range j.Unwrap() {
			errs = append(errs, fmt.Errorf("%s %q: %w", kind, id, e))
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("%s %q: %w", kind, id, err)
}

// varTypes gives an expression its variables: the node's inputs with the
// static types of what flows into them.
func (l *Loom) varTypes(parents map[string]string, consts map[string]any) map[string]abi.Type {
	vars := map[string]abi.Type{}
	for name, p := range parents {
		vars[name] = l.OutputType(p)
	}
	for name := range consts {
		vars[name] = abi.Any
	}
	return vars
}

// aliases are the names an expression may use for a Gate's or Branch's
// input: its parent's id, and a parameter's name.
func (l *Loom) aliases(input string) map[string]string {
	m := map[string]string{input: "input"}
	if n, ok := l.T.Node(input); ok && n.ParamName() != "" {
		m[n.ParamName()] = "input"
	}
	return m
}

// Knot adds a knot, Source, Sink or Aggregator running f (nil for an
// Aggregator: its parents' values as a dict).
func (l *Loom) Knot(d scheduler.KnotDecl, f Fn) (*scheduler.Node, error) {
	kind := cmp.Or(d.Kind, model.KindKnot)
	if f == nil && kind == model.KindAggregator {
		f = Collect{}
	}
	if f == nil {
		return nil, fmt.Errorf("%s %q: no knot", kind, d.ID)
	}
	vars := l.varTypes(d.Parents, d.Config)
	if d.Policy == model.ReceiveErrors { // each input is the parent's result document
		for name := range d.Parents {
			vars[name] = abi.DictOf(abi.Any)
		}
	}
	fn, err := l.resolve(f, Env{Vars: vars, Inputs: kind == model.KindAggregator})
	if err != nil {
		return nil, NodeErr(kind, d.ID, err)
	}
	d.Kind, d.Fn = kind, fn
	return l.T.AddKnot(d)
}

// Gate adds a Gate whose predicate is f.
func (l *Loom) Gate(d scheduler.GateDecl, f Fn) (*scheduler.Node, error) {
	if f == nil {
		return nil, fmt.Errorf("gate %q: needs a predicate", d.ID)
	}
	fn, err := l.resolve(f, Env{Vars: map[string]abi.Type{"input": l.OutputType(d.Input)}, Aliases: l.aliases(d.Input), Want: abi.Bool})
	if err != nil {
		return nil, fmt.Errorf("gate %q: predicate: %w", d.ID, err)
	}
	d.Fn = fn
	return l.T.AddGate(d)
}

// Branch adds a Branch whose selector is f, and its arms.
func (l *Loom) Branch(d scheduler.BranchDecl, f Fn) (*scheduler.Node, error) {
	if f == nil {
		return nil, fmt.Errorf("branch %q: needs a selector", d.ID)
	}
	fn, err := l.resolve(f, Env{Vars: map[string]abi.Type{"input": l.OutputType(d.Input)}, Aliases: l.aliases(d.Input), Want: abi.Str})
	if err != nil {
		return nil, fmt.Errorf("branch %q: selector: %w", d.ID, err)
	}
	d.Fn = fn
	return l.T.AddBranch(d)
}

// Map adds a Map whose each is f. For an expression, the element is
// "item" unless d.Bind names it; for a knot with a manifest, the
// scheduler finds the input it goes to.
func (l *Loom) Map(d scheduler.MapDecl, f Fn) (*scheduler.Node, error) {
	if f == nil {
		return nil, fmt.Errorf("map %q: needs each", d.ID)
	}
	vars := l.varTypes(d.Parents, d.Config)
	if _, isExpr := f.(Expr); isExpr {
		d.Bind = cmp.Or(d.Bind, "item")
	}
	if d.Bind != "" {
		vars[d.Bind] = elemOf(l.OutputType(d.Over))
	}
	fn, err := l.resolve(f, Env{Vars: vars})
	if err != nil {
		return nil, fmt.Errorf("map %q: each: %w", d.ID, err)
	}
	d.Fn = fn
	return l.T.AddMap(d)
}

// Reduce adds a Reduce whose combine is f.
func (l *Loom) Reduce(d scheduler.ReduceDecl, f Fn) (*scheduler.Node, error) {
	if f == nil {
		return nil, fmt.Errorf("reduce %q: needs combine", d.ID)
	}
	of := l.OutputType(d.Of)
	vars := map[string]abi.Type{"items": of}
	if d.Pairwise {
		vars = map[string]abi.Type{"acc": abi.Any, "item": elemOf(of)}
	}
	fn, err := l.resolve(f, Env{Vars: vars})
	if err != nil {
		return nil, fmt.Errorf("reduce %q: combine: %w", d.ID, err)
	}
	d.Fn = fn
	return l.T.AddReduce(d)
}

// elemOf is the type of a list's elements: any if typ is not a list
// (which the scheduler reports).
func elemOf(typ abi.Type) abi.Type {
	if typ.Kind == abi.KindList && typ.Elem != nil {
		return *typ.Elem
	}
	return abi.Any
}
