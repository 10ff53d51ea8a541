package scheduler

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/internal/suggest"
	"github.com/pirn-wasm/pirn/model"
)

// Warning is an edge whose types may not fit at run time (a str into an
// int: "5" converts, "x" does not). Edges that can never fit are errors.
type Warning struct {
	Node string // the consuming node's id
	Msg  string
}

// Warnings lists the warnings of the nodes added so far.
func (t *Tapestry) Warnings() []Warning { return slices.Clone(t.warnings) }

// required returns the inputs of spec that must be bound.
func required(spec *abi.KnotSpec) []abi.InputSpec {
	var req []abi.InputSpec
	for _, in := range spec.Inputs {
		if !in.Optional {
			req = append(req, in)
		}
	}
	return req
}

// inputType is the output type of the node's primary parent (any if it
// has none, which is already an error).
func (b *builder) inputType() abi.Type {
	if b.n.primary == nil {
		return abi.Any
	}
	return b.n.primary.out
}

// elemType is the element type of the primary parent's list, reporting a
// parent that cannot produce a list.
func (b *builder) elemType(role string) abi.Type {
	p := b.n.primary
	if p == nil {
		return abi.Any
	}
	switch {
	case p.out.Kind == abi.KindList && p.out.Elem != nil:
		return *p.out.Elem
	case p.out.Kind != abi.KindList && p.out.Kind != abi.KindAny:
		b.errorf("%s: %q produces %s, not a list", role, p.id, p.out)
	}
	return abi.Any
}

// fnInput returns the input a Gate's predicate or a Branch's selector
// takes its value under: given, or the only required input of the
// function's spec, which must be able to take the node's input.
func (b *builder) fnInput(given, role string) string {
	spec := b.n.fn.Spec
	if given != "" || spec == nil {
		return cmpOr(given, "input")
	}
	req := required(spec)
	if len(req) != 1 {
		b.errorf("%s knot %s must take exactly one required input, it takes %d", role, spec.Name, len(req))
		return "input"
	}
	want, in := abi.MustParseType(req[0].Type), b.inputType()
	if abi.Compatible(in, want) == abi.Never {
		b.errorf("%s knot %s wants %s, but its input produces %s", role, spec.Name, want, in)
	}
	return req[0].Name
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// freeInput returns the one required input of a Map's function that
// neither a shared parent nor a constant binds: the one its elements go
// to.
func (b *builder) freeInput(shared []edge) string {
	spec := b.n.fn.Spec
	var free []string
	for _, in := range spec.Inputs {
		_, c := b.consts[in.Name]
		if !in.Optional && !c && !slices.ContainsFunc(shared, func(e edge) bool { return e.input == in.Name }) {
			free = append(free, in.Name)
		}
	}
	if len(free) != 1 {
		b.errorf("cannot tell which input of %s receives the elements (unbound: %s); set bind", spec.Name, strings.Join(free, ", "))
		return ""
	}
	return free[0]
}

// checkInputs checks the node's bound inputs against its function's
// spec, if it has one: every required input bound (but skip, bound
// elsewhere: a Map's element), no undeclared input (unless the knot takes
// rest inputs), constants that fit their types, and parents whose output
// types can fit (a receive_errors node's parents hand it their result
// documents).
func (b *builder) checkInputs(parents []edge, skip string) {
	spec := b.n.fn.Spec
	if spec == nil {
		return
	}
	receive := b.n.policy == model.ReceiveErrors
	bound := func(name string) bool {
		_, c := b.consts[name]
		return c || slices.ContainsFunc(parents, func(e edge) bool { return e.input == name })
	}
	declared := map[string]abi.Type{}
	var names []string
	for _, in := range spec.Inputs {
		declared[in.Name] = abi.MustParseType(in.Type)
		names = append(names, in.Name)
		if !in.Optional && !bound(in.Name) && in.Name != skip {
			b.errorf("missing input %q (%s)", in.Name, in.Type)
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
	unknown := func(name string) {
		b.errorf("unknown input %q (knot %s takes: %s)%s", name, spec.Name, strings.Join(names, ", "), suggest.DidYouMean(name, names))
	}
	sorted := slices.Clone(parents)
	slices.SortFunc(sorted, func(x, y edge) int { return strings.Compare(x.input, y.input) })
	for _, e := range sorted {
		want, ok := typeOf(e.input)
		if !ok {
			unknown(e.input)
			continue
		}
		got := e.parent.out
		if receive {
			got = abi.DictOf(abi.Any) // {"ok": …}, {"err": …} or {"skip": …}
		}
		switch abi.Compatible(got, want) {
		case abi.Never:
			what := "produces"
			if receive {
				what = "hands a receive_errors knot its result document,"
			}
			b.errorf("input %q wants %s, but %q %s %s", e.input, want, e.parent.id, what, got)
		case abi.Maybe:
			if got.Kind != abi.KindAny {
				b.warnings = append(b.warnings, Warning{b.n.id, fmt.Sprintf("%q: input %q wants %s; %q produces %s, which may not convert",
					b.n.id, e.input, want, e.parent.id, got)})
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(b.consts)) {
		want, ok := typeOf(name)
		if !ok {
			unknown(name)
			continue
		}
		if _, err := want.Coerce(b.consts[name]); err != nil {
			b.errorf("constant %q: %w", name, err)
		}
	}
}
