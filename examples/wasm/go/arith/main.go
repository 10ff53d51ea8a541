//go:build wasip1

// Command arith is a knot module of integer arithmetic: double, add, inc,
// square and sum; range (a source of 0..n-1), positive (a predicate),
// sign (a selector: "neg", "zero" or "pos") and total (a whole-list sum).
//
// Build (make wasm does this):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -ldflags="-w -buildid=" -o arith.wasm .
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

// N is the input of range.
type N struct {
	N int64 `pirn:"n" doc:"how many"`
}

// XS is the input of total.
type XS struct {
	XS []int64 `pirn:"xs" doc:"the numbers"`
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

func init() {
	pdk.Register("range", "Returns [0, 1, …, n-1].", func(in N) ([]int64, error) {
		if in.N < 0 || in.N > 1<<20 {
			return nil, pdk.Fail("ValueError", "n = %d, want 0..%d", in.N, 1<<20)
		}
		out := make([]int64, in.N)
		for i := range out {
			out[i] = int64(i)
		}
		return out, nil
	})
	pdk.Register("positive", "Reports whether x > 0.", func(in X) (bool, error) { return in.X > 0, nil })
	pdk.Register("sign", `Returns "neg", "zero" or "pos".`, func(in X) (string, error) {
		switch {
		case in.X < 0:
			return "neg", nil
		case in.X == 0:
			return "zero", nil
		}
		return "pos", nil
	})
	pdk.Register("total", "Returns the sum of xs.", func(in XS) (int64, error) {
		var s int64
		for _, x := range in.XS {
			s += x
		}
		return s, nil
	})
}

func main() {}
