package loom

import (
	"context"
	"fmt"
	"slices"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/expr"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/model"
	pdk "github.com/pirn-wasm/pirn/pdk/go"
	"github.com/pirn-wasm/pirn/scheduler"
)

// Fn is what a node runs, before it is placed: Resolve returns it as the
// scheduler runs it, with its signature, given what it may refer to
// where it is used. Resolving starts nothing: a module's knot is made
// ready by Loom.Prepare.
type Fn interface {
	Resolve(env Env) (scheduler.Fn, error)
}

// Env is what an expression may refer to where it is used.
type Env struct {
	Vars    expr.Vars         // by name: the inputs the node passes, with their types
	Aliases map[string]string // further variable name -> input name (a Gate's input under its parent's id)
	Inputs  bool              // also bind every input as the dict "inputs" (Aggregators)
	Want    abi.Type          // bool for a predicate, str for a selector
}

// Expr is an inline CEL expression (see package expr).
type Expr string

// Resolve compiles the expression against env.
func (e Expr) Resolve(env Env) (scheduler.Fn, error) {
	vars := expr.Vars{}
	for name, t := range env.Vars {
		vars[name] = t
	}
	for alias, input := range env.Aliases {
		if _, taken := vars[alias]; !taken && expr.IsIdent(alias) {
			vars[alias] = env.Vars[input]
		}
	}
	if env.Inputs {
		if _, taken := vars["inputs"]; !taken {
			vars["inputs"] = abi.DictOf(abi.Any)
		}
	}
	p, err := expr.Compile(string(e), vars, env.Want)
	if err != nil {
		return scheduler.Fn{}, err
	}
	k := &exprKnot{p: p, aliases: env.Aliases, inputs: env.Inputs}
	return scheduler.Fn{Invoker: k, Name: lineage.PrefixExpr + string(e), Output: p.Output()}, nil
}

// MaxExprItems bounds each value an expression reads, in data items (every
// scalar, list and dict in it): an expression decodes what it reads, and a
// decoded value takes up to 40 times its size.
const MaxExprItems = 1 << 20

// ErrExpression is the err type of a failed expression evaluation.
const ErrExpression = "ExpressionError"

// exprKnot evaluates a compiled expression on the host.
type exprKnot struct {
	p       *expr.Program
	aliases map[string]string
	inputs  bool
}

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

// GoFunc is a Go function run on the host (see pirn.Func).
type GoFunc struct {
	k    *pdk.Handler
	name string
	sig  *abi.Signature // coerces inputs as the host does for a module's knot
}

// NewGoFunc declares fn as a knot named name.
func NewGoFunc[In, Out any](name string, fn func(context.Context, In) (Out, error)) (*GoFunc, error) {
	k, err := pdk.New(name, "", fn)
	if err != nil {
		return nil, fmt.Errorf("func %q: %w", name, err)
	}
	spec := k.Spec()
	sig, err := abi.NewSignature(&spec)
	if err != nil {
		return nil, fmt.Errorf("func %q: %w", name, err)
	}
	return &GoFunc{k: k, name: name, sig: sig}, nil
}

// Resolve returns the function. It runs on the host, outside the
// sandbox: its lineage says so, and it is never hermetic.
func (f *GoFunc) Resolve(Env) (scheduler.Fn, error) {
	spec := f.k.Spec()
	return scheduler.Fn{Invoker: f, Name: lineage.PrefixHost + f.name, Grants: []string{GrantHost}, Spec: &spec}, nil
}

// Invoke calls the function.
func (f *GoFunc) Invoke(ctx context.Context, c *scheduler.Call) abi.Response {
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

// Broken is a function whose declaration failed: resolving it reports
// why.
type Broken struct{ Err error }

// Resolve returns b.Err.
func (b Broken) Resolve(Env) (scheduler.Fn, error) { return scheduler.Fn{}, b.Err }

// Collect is an Aggregator's combine when none is given: its parents'
// values as a dict by input name.
type Collect struct{}

// Resolve returns the builtin.
func (Collect) Resolve(Env) (scheduler.Fn, error) {
	return scheduler.Fn{Invoker: Collect{}, Name: lineage.PrefixBuiltin + "collect", Output: abi.DictOf(abi.Any)}, nil
}

// Invoke frames the inputs as one dict.
func (Collect) Invoke(_ context.Context, c *scheduler.Call) abi.Response {
	args := append(slices.Clone(c.Inputs), c.Config...)
	abi.SortArgs(args)
	return abi.OK(abi.AppendArgs(nil, args))
}

// ModuleKnot is a knot of a loaded WebAssembly module.
type ModuleKnot struct {
	Module *host.Module
	Config host.KnotConfig
	Cache  model.Cache // whether its results may be reused
}

// Resolve checks the knot's configuration; it starts nothing.
func (m ModuleKnot) Resolve(Env) (scheduler.Fn, error) {
	if m.Module == nil {
		return scheduler.Fn{}, fmt.Errorf("knot %q: no module", m.Config.Name)
	}
	k, err := m.Module.Knot(m.Config)
	if err != nil {
		return scheduler.Fn{}, err
	}
	settings, err := Settings(m.Module, k)
	if err != nil {
		return scheduler.Fn{}, fmt.Errorf("knot %q: %w", m.Config.Name, err)
	}
	return scheduler.Fn{Invoker: wasmKnot{k}, Module: m.Module.Digest().String(), Name: m.Config.Name, Grants: k.Lineage(), Spec: k.Spec(),
		Settings: settings, Cache: m.Cache}, nil
}

// Settings is the digest of what, beyond the module's bytes, the knot's
// configuration and its inputs, can change the outcome of invoking k (for
// scheduler.Fn.Settings, part of its cache key): how the host talks to
// the module (its ABI and document format), whether types are checked,
// and the limits an invocation can hit (time, memory, output, logs,
// input size and depth). Limits that only decide when an instance is
// replaced are left out: they change no output.
func Settings(m *host.Module, k *host.Knot) (cas.Digest, error) {
	l := k.Limits()
	return cas.Hash([]any{string(m.ABI()), string(m.Format()), k.TypeChecked(), int64(l.Timeout), l.Memory,
		l.MaxOutput, l.MaxLog, l.MaxLogRecords, l.MaxInput, l.MaxDepth})
}

// wasmKnot adapts a host knot to the scheduler.
type wasmKnot struct{ k *host.Knot }

func (w wasmKnot) Invoke(ctx context.Context, c *scheduler.Call) abi.Response {
	return w.k.Invoke(ctx, (*host.Call)(c))
}

func (w wasmKnot) Prepare(ctx context.Context) error { return w.k.Prepare(ctx) }

// HostKnot returns the knot, for a remote dispatcher to ship.
func (w wasmKnot) HostKnot() *host.Knot { return w.k }
