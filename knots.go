package pirn

import (
	"context"

	"github.com/pirn-wasm/pirn/internal/loom"
)

// Fn is what a tapestry node runs: a knot of a WebAssembly module
// ([Module.Knot]), an inline expression ([Expr]), or a Go function on the
// host ([Func]). Gates, Branches, Aggregators, Maps and Reduces take a Fn
// as their predicate, selector or combiner.
type Fn interface {
	loomFn() loom.Fn
}

// fnOf returns f as the loom places it (nil for nil).
func fnOf(f Fn) loom.Fn {
	if f == nil {
		return nil
	}
	return f.loomFn()
}

// Expr is an inline CEL expression used as a knot (see package expr). Its
// variables are the node's inputs by name: a Gate's or Branch's input is
// "input" and also its parent's id; an Aggregator's parents are their
// input names and "inputs" (all of them as a dict); a Map's element is its
// bind name ("item" by default) beside the shared inputs; a Reduce has
// "items" (whole list) or "acc" and "item" (pairwise).
type Expr string

func (e Expr) loomFn() loom.Fn { return loom.Expr(e) }

// MaxExprItems bounds each value an expression reads, in data items (every
// scalar, list and dict in it): an expression decodes what it reads, and a
// decoded value takes up to 40 times its size.
const MaxExprItems = loom.MaxExprItems

// ErrExpression is the err type of a failed expression evaluation.
const ErrExpression = loom.ErrExpression

// GrantHost is the grant lineage records for a host-native Go function:
// it runs outside the sandbox, with everything the host process can do.
const GrantHost = loom.GrantHost

// Func is a Go function run as a knot on the host, for trusted code in an
// embedding program. In is a struct of named inputs, as for the Go PDK
// (pdk.Register); lineage records it as "host:<name>". A malformed
// declaration is reported when the knot is added to a tapestry.
func Func[In, Out any](name string, fn func(context.Context, In) (Out, error)) Fn {
	f, err := loom.NewGoFunc(name, fn)
	if err != nil {
		return fnFunc{loom.Broken{Err: err}}
	}
	return fnFunc{f}
}

// fnFunc is a Fn the loom already holds.
type fnFunc struct{ f loom.Fn }

func (f fnFunc) loomFn() loom.Fn { return f.f }
