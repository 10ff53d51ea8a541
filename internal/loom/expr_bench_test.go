package loom

import (
	"context"
	"testing"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/scheduler"
)

// BenchmarkExpressionKnot measures one Gate predicate and one Branch
// selector evaluation as the scheduler makes it: decode the input's
// canonical CBOR, evaluate the CEL program, encode the result.
func BenchmarkExpressionKnot(b *testing.B) {
	v, err := cas.Encode(map[string]any{"score": 0.7, "type": "tool", "id": 3})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name, src string
		want      abi.Type
	}{{"gate", "x.score > 0.5", abi.Bool}, {"branch", "x.type", abi.Str}} {
		r, err := Expr(tc.src).Resolve(Env{Vars: map[string]abi.Type{"input": abi.Any},
			Aliases: map[string]string{"x": "input"}, Want: tc.want})
		if err != nil {
			b.Fatal(err)
		}
		c := &scheduler.Call{Inputs: []abi.Arg{{Name: "input", Value: v}}}
		ctx := context.Background()
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if resp := r.Invoker.Invoke(ctx, c); resp.Outcome != abi.OutcomeOK {
					b.Fatal(resp.Error)
				}
			}
		})
	}
}
