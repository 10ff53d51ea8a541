package expr_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/expr"
)

func TestEval(t *testing.T) {
	for _, tc := range []struct {
		src  string
		vars expr.Vars
		want abi.Type
		in   map[string]any
		out  any
	}{
		{"m.type", expr.Vars{"m": abi.Any}, abi.Str, map[string]any{"m": map[string]any{"type": "tool"}}, "tool"},
		{"x.score > 0.5", expr.Vars{"x": abi.Any}, abi.Bool, map[string]any{"x": map[string]any{"score": 0.7}}, true},
		{"a + b", expr.Vars{"a": abi.Int, "b": abi.Int}, abi.Any, map[string]any{"a": int64(2), "b": int64(40)}, int64(42)},
		{"sum(items)", expr.Vars{"items": abi.ListOf(abi.Int)}, abi.Int, map[string]any{"items": []any{int64(1), int64(2), int64(3)}}, int64(6)},
		{"sum(items)", expr.Vars{"items": abi.Any}, abi.Any, map[string]any{"items": []any{int64(1), 2.5}}, 3.5},
		{"sum(inputs)", expr.Vars{"inputs": abi.Any}, abi.Any, map[string]any{"inputs": map[string]any{"a": int64(4), "b": int64(5)}}, int64(9)},
		{"sum(inputs)", expr.Vars{"inputs": abi.DictOf(abi.Any)}, abi.Any, map[string]any{"inputs": map[string]any{"a": 0.5, "b": int64(2)}}, 2.5},
		{"{'n': size(xs), 'first': xs[0]}", expr.Vars{"xs": abi.ListOf(abi.Str)}, abi.Any, map[string]any{"xs": []any{"a", "b"}}, map[string]any{"n": int64(2), "first": "a"}},
		{"xs.map(x, x * 2)", expr.Vars{"xs": abi.Any}, abi.Any, map[string]any{"xs": []any{int64(1), int64(2)}}, []any{int64(2), int64(4)}},
		{"s.upperAscii()", expr.Vars{"s": abi.Str}, abi.Str, map[string]any{"s": "hi"}, "HI"},
		{"b == b'hi'", expr.Vars{"b": abi.Bytes}, abi.Bool, map[string]any{"b": []byte("hi")}, true},
		{"n == null", expr.Vars{"n": abi.Any}, abi.Bool, map[string]any{"n": nil}, true},
	} {
		p, err := expr.Compile(tc.src, tc.vars, tc.want)
		if err != nil {
			t.Errorf("Compile(%q): %v", tc.src, err)
			continue
		}
		got, err := p.Eval(context.Background(), tc.in)
		if err != nil {
			t.Errorf("Eval(%q): %v", tc.src, err)
			continue
		}
		if diff := cmp.Diff(tc.out, got); diff != "" {
			t.Errorf("Eval(%q) (-want +got):\n%s", tc.src, diff)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		src  string
		vars expr.Vars
		want abi.Type
		msg  string
	}{
		{"y > 1", expr.Vars{"x": abi.Int}, abi.Bool, "undeclared reference to 'y'"},
		{"x +", expr.Vars{"x": abi.Int}, abi.Any, "Syntax error"},
		{"x + 1", expr.Vars{"x": abi.Int}, abi.Bool, "has type int, want bool"},
		{"x + 'a'", expr.Vars{"x": abi.Int}, abi.Any, "no matching overload"},
		{"", nil, abi.Any, "empty expression"},
	} {
		_, err := expr.Compile(tc.src, tc.vars, tc.want)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Compile(%q) error = %v, want one containing %q", tc.src, err, tc.msg)
		}
	}
}

func TestEvalErrorsAndLimits(t *testing.T) {
	p, _ := expr.Compile("x / y", expr.Vars{"x": abi.Int, "y": abi.Int}, abi.Any)
	if _, err := p.Eval(context.Background(), map[string]any{"x": int64(1), "y": int64(0)}); err == nil || !strings.Contains(err.Error(), "division by zero") {
		t.Errorf("1/0: %v", err)
	}
	// A comprehension over a large list is bounded by the cost limit.
	big, err := expr.Compile("xs.map(a, xs.map(b, a + b)).size()", expr.Vars{"xs": abi.Any}, abi.Any)
	if err != nil {
		t.Fatal(err)
	}
	xs := make([]any, 5000)
	for i := range xs {
		xs[i] = int64(i)
	}
	if _, err := big.Eval(context.Background(), map[string]any{"xs": xs}); err == nil || !strings.Contains(err.Error(), "cost") {
		t.Errorf("quadratic comprehension over 5000 elements: %v, want a cost limit error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := big.Eval(ctx, map[string]any{"xs": xs}); err == nil {
		t.Error("evaluation under a cancelled context succeeded")
	}
	// An expression without a comprehension does not watch the context,
	// but the cost limit still bounds it.
	cat, err := expr.Compile("(s + s + s + s + s + s + s + s).size()", expr.Vars{"s": abi.Str}, abi.Any)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cat.Eval(context.Background(), map[string]any{"s": strings.Repeat("a", 8<<20)}); err == nil || !strings.Contains(err.Error(), "cost limit") {
		t.Errorf("concatenating 8 MiB strings: %v, want a cost limit error", err)
	}
	m, err := expr.Compile("{1: 'a'}", nil, abi.Any)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Eval(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "keys must be strings") {
		t.Errorf("int-keyed map result: %v", err)
	}
	s, err := expr.Compile("sum(xs)", expr.Vars{"xs": abi.Any}, abi.Any)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Eval(context.Background(), map[string]any{"xs": []any{int64(1) << 62, int64(1) << 62}}); err == nil || !strings.Contains(err.Error(), "overflow") {
		t.Errorf("overflowing sum: %v", err)
	}
}

func BenchmarkEval(b *testing.B) {
	gate, err := expr.Compile("x.score > 0.5", expr.Vars{"x": abi.Any}, abi.Bool)
	if err != nil {
		b.Fatal(err)
	}
	branch, err := expr.Compile("m.type", expr.Vars{"m": abi.Any}, abi.Str)
	if err != nil {
		b.Fatal(err)
	}
	vars := map[string]any{"x": map[string]any{"score": 0.7, "id": int64(3)}, "m": map[string]any{"type": "tool", "body": "…"}}
	ctx := context.Background()
	b.Run("gate", func(b *testing.B) {
		for b.Loop() {
			if v, err := gate.Eval(ctx, vars); err != nil || v != true {
				b.Fatalf("gate: %v, %v", v, err)
			}
		}
	})
	b.Run("branch", func(b *testing.B) {
		for b.Loop() {
			if v, err := branch.Eval(ctx, vars); err != nil || v != "tool" {
				b.Fatalf("branch: %v, %v", v, err)
			}
		}
	})
}
