//go:build wasip1

// Command arith is a knot module of integer arithmetic: double, add, inc,
// square and sum.
//
// Build (make wasm does this):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -ldflags=-w -o arith.wasm .
package main

import pdk "github.com/pirn-wasm/pirn/pdk/go"

// X is the input of the one-argument knots.
type X struct {
	X int64 `pirn:"x" doc:"the operand"`
}

// AB is the input of add.
type AB struct {
	A int64 `pirn:"a" doc:"left operand"`
	B int64 `pirn:"b" doc:"right operand"`
}

// Terms is the input of sum: any number of named integers.
type Terms struct {
	Terms map[string]int64 `pirn:"*"`
}

func init() {
	pdk.Register("double", "Returns 2·x.", func(in X) (int64, error) { return 2 * in.X, nil })
	pdk.Register("add", "Returns a + b.", func(in AB) (int64, error) { return in.A + in.B, nil })
	pdk.Register("inc", "Returns x + 1.", func(in X) (int64, error) { return in.X + 1, nil })
	pdk.Register("square", "Returns x².", func(in X) (int64, error) { return in.X * in.X, nil })
	pdk.Register("sum", "Returns the sum of every input, whatever its name.", func(in Terms) (int64, error) {
		var s int64
		for _, v := range in.Terms {
			s += v
		}
		return s, nil
	})
}

func main() {}
