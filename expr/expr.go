// Package expr evaluates the inline expressions of a pipeline — Gate
// predicates, Branch selectors, Aggregator and Reduce combiners, Map
// bodies — with CEL (the Common Expression Language, cel-go). CEL is safe
// (no I/O, no loops beyond bounded comprehensions, no side effects),
// deterministic, and type-checked before it runs; evaluation is further
// bounded by a cost limit and by the caller's context.
//
// Variables hold values of pirn's data model (cas): int64, float64, string,
// []byte, bool, nil, []any and map[string]any. Besides standard CEL, the
// string, math, list and encoder extensions are available, plus sum(list)
// and sum(map) (the sum of its values).
package expr

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"

	"github.com/pirn-wasm/pirn/abi"
)

// DefaultCostLimit bounds one evaluation (CEL cost units: roughly one per
// operation and per list element or string byte touched).
const DefaultCostLimit = 10_000_000

// Vars declares an expression's variables and their types. A variable of
// type any is dynamically typed and checked when it is used.
type Vars map[string]abi.Type

// Program is a compiled, type-checked expression. It is safe for
// concurrent use.
type Program struct {
	src  string
	vars []string
	prg  cel.Program
	out  *cel.Type
	// loops: the expression has a comprehension (all, exists, map,
	// filter…), the only construct that can run long enough to need
	// the context's cancellation checks.
	loops bool
}

// CompileError is the error of an expression that does not compile.
type CompileError struct {
	Src string // the expression
	Err error
}

func (e *CompileError) Error() string { return e.Err.Error() }
func (e *CompileError) Unwrap() error { return e.Err }

// Compile parses and type-checks src. want constrains the result: bool for
// a predicate, str for a selector, any for no constraint. Its errors are
// *CompileError.
func Compile(src string, vars Vars, want abi.Type) (*Program, error) {
	p, err := compile(src, vars, want)
	if err != nil {
		return nil, &CompileError{Src: src, Err: err}
	}
	return p, nil
}

func compile(src string, vars Vars, want abi.Type) (*Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("empty expression")
	}
	base, err := baseEnv()
	if err != nil {
		return nil, err
	}
	var opts []cel.EnvOption
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		opts = append(opts, cel.Variable(name, celType(vars[name])))
	}
	env, err := base.Extend(opts...)
	if err != nil {
		return nil, fmt.Errorf("expression %q: %w", src, err)
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, fmt.Errorf("expression %q: %s (variables: %s)", src, strings.ReplaceAll(iss.Err().Error(), "\n", " "), strings.Join(names, ", "))
	}
	out := ast.OutputType()
	if wantT := celType(want); want.Kind != abi.KindAny && !out.IsAssignableType(wantT) && out != cel.DynType {
		return nil, fmt.Errorf("expression %q has type %s, want %s", src, out, want)
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(DefaultCostLimit), cel.InterruptCheckFrequency(1000))
	if err != nil {
		return nil, fmt.Errorf("expression %q: %w", src, err)
	}
	loops := false
	celast.PostOrderVisit(ast.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		loops = loops || e.Kind() == celast.ComprehensionKind
	}))
	return &Program{src: src, vars: names, prg: prg, out: out, loops: loops}, nil
}

// baseEnv is the environment every expression extends with its variables.
var baseEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		ext.Strings(), ext.Math(), ext.Lists(), ext.Encoders(),
		cel.Function("sum",
			cel.Overload("sum_list", []*cel.Type{cel.ListType(cel.DynType)}, cel.DynType, cel.UnaryBinding(sum)),
			cel.Overload("sum_map", []*cel.Type{cel.MapType(cel.StringType, cel.DynType)}, cel.DynType, cel.UnaryBinding(sum)),
		),
	)
})

// Source returns the expression's text.
func (p *Program) Source() string { return p.src }

// Vars returns the names of the declared variables, sorted.
func (p *Program) Vars() []string { return p.vars }

// Uses reports whether the expression refers to the variable name.
func (p *Program) Uses(name string) bool {
	return slices.Contains(referenced(p.src), name)
}

// referenced returns the identifiers in src (a cheap scan: it only needs
// to tell which of a few declared variables appear).
func referenced(src string) []string {
	return strings.FieldsFunc(src, func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
}

// Eval evaluates the expression. vars must hold every declared variable.
// The result is in the data model.
func (p *Program) Eval(ctx context.Context, vars map[string]any) (any, error) {
	return p.EvalWith(ctx, Lookup(func(name string) (any, bool) {
		v, ok := vars[name]
		return v, ok
	}))
}

// Lookup resolves a variable by name; it lets a caller decode variables
// only when the expression reads them.
type Lookup func(name string) (any, bool)

func (l Lookup) ResolveName(name string) (any, bool) { return l(name) }
func (l Lookup) Parent() interpreter.Activation      { return nil }

// EvalWith evaluates the expression, resolving its variables with vars.
//
// Only an expression with a comprehension watches ctx: one without runs
// in time bounded by its size and its inputs' (and its cost limit), and
// skipping the watch saves about a tenth of a gate's evaluation.
func (p *Program) EvalWith(ctx context.Context, vars Lookup) (any, error) {
	var v ref.Val
	var err error
	if p.loops {
		v, _, err = p.prg.ContextEval(ctx, interpreter.Activation(vars))
	} else {
		v, _, err = p.prg.Eval(interpreter.Activation(vars))
	}
	if err != nil {
		return nil, err
	}
	return native(v)
}

func celType(t abi.Type) *cel.Type {
	elem := func() *cel.Type {
		if t.Elem == nil {
			return cel.DynType
		}
		return celType(*t.Elem)
	}
	switch t.Kind {
	case abi.KindInt:
		return cel.IntType
	case abi.KindFloat:
		return cel.DoubleType
	case abi.KindStr:
		return cel.StringType
	case abi.KindBool:
		return cel.BoolType
	case abi.KindBytes:
		return cel.BytesType
	case abi.KindNull:
		return cel.NullType
	case abi.KindList:
		return cel.ListType(elem())
	case abi.KindDict:
		return cel.MapType(cel.StringType, elem())
	}
	return cel.DynType
}

// sum adds a list of numbers, or the values of a map (an Aggregator's
// inputs); ints sum to an int (checked for overflow), anything with a
// double to a double.
func sum(v ref.Val) ref.Val {
	next := func(it traits.Iterator) ref.Val { return it.Next() }
	var it traits.Iterator
	switch c := v.(type) {
	case traits.Lister:
		it = c.Iterator()
	case traits.Mapper:
		it = c.Iterator()
		next = func(it traits.Iterator) ref.Val { return c.Get(it.Next()) }
	default:
		return types.NewErr("sum: %s is neither a list nor a map", v.Type())
	}
	var i int64
	var f float64
	isFloat := false
	for it.HasNext() == types.True {
		switch x := next(it).(type) {
		case types.Int:
			if (x > 0 && i > math.MaxInt64-int64(x)) || (x < 0 && i < math.MinInt64-int64(x)) {
				return types.NewErr("sum: integer overflow")
			}
			i += int64(x)
		case types.Double:
			isFloat = true
			f += float64(x)
		default:
			return types.NewErr("sum: %s is not a number", x.Type())
		}
	}
	if isFloat {
		return types.Double(f + float64(i))
	}
	return types.Int(i)
}

var (
	anyList = reflect.TypeFor[[]any]()
)

// native converts a CEL value to the data model.
func native(v ref.Val) (any, error) {
	switch x := v.(type) {
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(x), nil
	case types.Int:
		return int64(x), nil
	case types.Uint:
		if uint64(x) > math.MaxInt64 {
			return nil, fmt.Errorf("result %d exceeds int64", uint64(x))
		}
		return int64(x), nil
	case types.Double:
		return float64(x), nil
	case types.String:
		return string(x), nil
	case types.Bytes:
		return []byte(x), nil
	case traits.Mapper:
		out := map[string]any{}
		it := x.Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			ks, ok := k.(types.String)
			if !ok {
				return nil, fmt.Errorf("result map has a %s key; keys must be strings", k.Type())
			}
			e, err := native(x.Get(k))
			if err != nil {
				return nil, err
			}
			out[string(ks)] = e
		}
		return out, nil
	case traits.Lister:
		n, ok := x.Size().(types.Int)
		if !ok {
			return nil, errors.New("result list has no size")
		}
		out := make([]any, 0, int(n))
		it := x.Iterator()
		for it.HasNext() == types.True {
			e, err := native(it.Next())
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, nil
	}
	if x, err := v.ConvertToNative(anyList); err == nil {
		return x, nil
	}
	return nil, fmt.Errorf("result of type %s is not in the data model", v.Type())
}

// Output returns the expression's checked result type, as far as the ABI's
// type grammar can say (any when CEL says dyn or something finer).
func (p *Program) Output() abi.Type { return abiType(p.out) }

func abiType(t *cel.Type) abi.Type {
	switch t.Kind() {
	case types.IntKind:
		return abi.Int
	case types.DoubleKind:
		return abi.Float
	case types.StringKind:
		return abi.Str
	case types.BoolKind:
		return abi.Bool
	case types.BytesKind:
		return abi.Bytes
	case types.NullTypeKind:
		return abi.Null
	case types.ListKind:
		return abi.ListOf(abiType(t.Parameters()[0]))
	case types.MapKind:
		if ps := t.Parameters(); len(ps) == 2 && ps[0].Kind() == types.StringKind {
			return abi.DictOf(abiType(ps[1]))
		}
	}
	return abi.Any
}

// reserved are CEL's reserved words, which cannot name a variable.
var reserved = []string{"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if",
	"import", "let", "loop", "package", "namespace", "return", "var", "void", "while"}

// IsIdent reports whether s can name a variable of an expression.
func IsIdent(s string) bool {
	if s == "" || slices.Contains(reserved, s) || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, c := range []byte(s) {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
