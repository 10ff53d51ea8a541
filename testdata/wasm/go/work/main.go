//go:build wasip1

// Command work is a test module of CPU-bound knots, for the benchmarks and
// fault tests of remote dispatch: spin runs n rounds of a 64-bit linear
// congruential generator from seed and returns where it ends, so its
// output depends on its inputs alone and its cost on n alone.
//
// Build (make wasm does this):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -ldflags="-w -buildid=" -o work.wasm .
package main

import (
	pdk "github.com/pirn-wasm/pirn/pdk/go"
)

type spinIn struct {
	N    int64 `pirn:"n"`
	Seed int64 `pirn:"seed,optional"`
}

type seedIn struct {
	Seed int64 `pirn:"seed"`
	N    int64 `pirn:"n,optional"`
}

func spin(n, x int64) int64 {
	u := uint64(x)
	for range n {
		u = u*6364136223846793005 + 1442695040888963407
	}
	return int64(u >> 1)
}

func init() {
	pdk.Register("spin", "Runs n rounds of a linear congruential generator from seed; returns where it ends.", func(in spinIn) (int64, error) {
		return spin(in.N, in.Seed), nil
	})
	pdk.Register("spin_seed", "spin with the seed as its main input (for a Map over seeds); n defaults to 0.", func(in seedIn) (int64, error) {
		return spin(in.N, in.Seed), nil
	})
}

func main() {}
