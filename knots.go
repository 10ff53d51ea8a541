package pirn

import (
	"context"
	"fmt"
	"slices"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/expr"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/lineage"
	pdk "github.com/pirn-wasm/pirn/pdk/go"
	"github.com/pirn-wasm/pirn/scheduler"
)

// Fn is what a tapestry node runs: a knot of a WebAssembly module
// ([Module.Knot]), an inline expression ([Expr]), or a Go function on the
// host ([Func]). Gates, Branches, Aggregators, Maps and Reduces take a Fn
// as their predicate, selector or combiner.
type Fn interface {
	// resolve returns the function as the scheduler runs it, with its
	// signature. It starts nothing: a module's knot is made ready when a
	// run starts (Engine.Prepare).
	resolve(env exprEnv) (scheduler.Fn, error)
}

// exprEnv is what an expression may refer to where it is used.
type exprEnv struct {
	vars    expr.Vars         // by name: the inputs the node passes, with their types
	aliases map[string]string // further variable name -> input name (a Gate's input under its parent's id)
	inputs  bool              // also bind every input as the dict "inputs" (Aggregators)
	want    abi.Type          // bool for a predicate, str for a selector
}

// Expr is an inline CEL expression used as a knot (see package expr). Its
// variables are the node's inputs by name: a Gate's or Branch's input is
// "input" and also its parent's id; an Aggregator's parents are their
// input names and "inputs" (all of them as a dict); a Map's element is its
// bind name ("item" by default) beside the shared inputs; a Reduce has
// "items" (whole list) or "acc" and "item" (pairwise).
type Expr string

func (e Expr) resolve(env exprEnv) (scheduler.Fn, error) {
	vars := expr.Vars{}
	for name, t := range env.vars {
		vars[name] = t
	}
	for alias, input := range env.aliases {
		if _, taken := vars[alias]; !taken && expr.IsIdent(alias) {
			vars[alias] = env.vars[input]
		}
	}
	if env.inputs {
		if _, taken := vars["inputs"]; !taken {
			vars["inputs"] = abi.DictOf(abi.Any)
		}
	}
	p, err := expr.Compile(string(e), vars, env.want)
	if err != nil {
		return scheduler.Fn{}, err
	}
	k := &exprKnot{p: p, aliases: env.aliases, inputs: env.inputs}
	return scheduler.Fn{Invoker: k, Name: lineage.PrefixExpr + string(e), Output: p.Output()}, nil
}

// MaxExprItems bounds each value an expression reads, in data items (every
// scalar, list and dict in it): an expression decodes what it reads, and a
// decoded value takes up to 40 times its size.
const MaxExprItems = 1 << 20

// exprKnot evaluates a compiled expression on the host.
type exprKnot struct {
	p       *expr.Program
	aliases map[string]string
	inputs  bool
}

// ErrExpression is the err type of a failed expression evaluation.
const ErrExpression = "ExpressionError"

func (k *exprKnot) Invoke(ctx context.Context, c *scheduler.Call) abi.Response {
	// Variables are decoded when the expression first reads them.
	var decodeErr error
	var cache map[string]any
	arg := func(name string) ([]byte, bool) {
		for _, args := range [2][]abi.Arg{c.Inputs, c.Config} {
			for _, a := range args {
				if a.Name == name {
					return a.Value, true
				}
			}
		}
		return nil, false
	}
	var lookup expr.Lookup
	lookup = func(name string) (any, bool) {
		if v, ok := cache[name]; ok {
			return v, true
		}
		b, ok := arg(name)
		if !ok {
			if input, isAlias := k.aliases[name]; isAlias {
				return lookup(input)
			}
			if name == "inputs" && k.inputs {
				// Built once per call: CEL resolves the name on every reference.
				all := make(map[string]any, len(c.Inputs)+len(c.Config))
				for _, args := range [2][]abi.Arg{c.Inputs, c.Config} {
					for _, a := range args {
						all[a.Name], _ = lookup(a.Name)
					}
				}
				if cache == nil {
					cache = make(map[string]any, 2)
				}
				cache["inputs"] = all
				return all, true
			}
			return nil, false
		}
		v, err := cas.DecodeBounded(b, MaxExprItems)
		if err != nil {
			decodeErr = fmt.Errorf("%s: %w", name, err)
			return nil, false
		}
		if cache == nil {
			cache = make(map[string]any, 2)
		}
		cache[name] = v
		return v, true
	}
	out, err := k.p.EvalWith(ctx, lookup)
	if decodeErr != nil {
		err = decodeErr
	}
	if err != nil {
		return abi.Fail(ErrExpression, fmt.Sprintf("%s: %v", k.p.Source(), err))
	}
	b, err := cas.Encode(out)
	if err != nil {
		return abi.Fail(ErrExpression, fmt.Sprintf("%s: result: %v", k.p.Source(), err))
	}
	return abi.OK(b)
}

// GrantHost is the grant lineage records for a host-native Go function:
// it runs outside the sandbox, with everything the host process can do.
const GrantHost = "host"

// Func is a Go function run as a knot on the host, for trusted code in an
// embedding program. In is a struct of named inputs, as for the Go PDK
// (pdk.Register); lineage records it as "host:<name>". A malformed
// declaration is reported when the knot is added to a tapestry.
func Func[In, Out any](name string, fn func(context.Context, In) (Out, error)) Fn {
	k, err := pdk.New(name, "", fn)
	if err != nil {
		return badKnot{fmt.Errorf("func %q: %w", name, err)}
	}
	spec := k.Spec()
	sig, err := abi.NewSignature(&spec)
	if err != nil {
		return badKnot{fmt.Errorf("func %q: %w", name, err)}
	}
	return funcKnot{k: k, name: name, sig: sig}
}

type badKnot struct{ err error }

func (b badKnot) resolve(exprEnv) (scheduler.Fn, error) { return scheduler.Fn{}, b.err }

type funcKnot struct {
	k    *pdk.Knot
	name string
	sig  *abi.Signature // coerces inputs as the host does for a module's knot
}

func (f funcKnot) resolve(exprEnv) (scheduler.Fn, error) {
	spec := f.k.Spec()
	// A Go function runs on the host, outside the sandbox: its lineage
	// says so, and it is never hermetic.
	return scheduler.Fn{Invoker: f, Name: lineage.PrefixHost + f.name, Grants: []string{GrantHost}, Spec: &spec}, nil
}

func (f funcKnot) Invoke(ctx context.Context, c *scheduler.Call) abi.Response {
	inputs, config, err := f.sig.CoerceRequest(c.Inputs, c.Config)
	if err != nil {
		return abi.Fail(host.ErrType, err.Error())
	}
	r := f.k.Respond(ctx, &abi.Request{Knot: f.name, Inputs: inputs, Config: config})
	if r.Outcome == abi.OutcomeOK {
		v, err := cas.Canonicalize(r.Value)
		if err != nil {
			return abi.Fail("OutputError", fmt.Sprintf("func %q: %v", f.name, err))
		}
		r.Value = v
	}
	return r
}

// collect is an Aggregator's combine when none is given: its parents'
// values as a dict by input name.
type collect struct{}

func (collect) resolve(exprEnv) (scheduler.Fn, error) {
	return scheduler.Fn{Invoker: collect{}, Name: lineage.PrefixBuiltin + "collect", Output: abi.DictOf(abi.Any)}, nil
}

func (collect) Invoke(_ context.Context, c *scheduler.Call) abi.Response {
	args := append(slices.Clone(c.Inputs), c.Config...)
	abi.SortArgs(args)
	return abi.OK(abi.AppendArgs(nil, args))
}
