//go:build wasip1

// Command bytes is a test module whose knots move large values: len
// returns the length of its bytes input, make returns n bytes, and
// retain keeps every input alive (a deliberate leak).
//
// Build (make wasm does this):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -ldflags=-w -o bytes.wasm .
package main

import pdk "github.com/pirn-wasm/pirn/pdk/go"

type data struct {
	Data []byte `pirn:"data"`
}

type size struct {
	N int64 `pirn:"n"`
}

var kept [][]byte

func init() {
	pdk.Register("len", "Returns the length of data.", func(in data) (int64, error) {
		var sum byte
		for _, b := range in.Data {
			sum += b
		}
		_ = sum
		return int64(len(in.Data)), nil
	})
	pdk.Register("make", "Returns n bytes of 0xab.", func(in size) ([]byte, error) {
		b := make([]byte, in.N)
		for i := range b {
			b[i] = 0xab
		}
		return b, nil
	})
	pdk.Register("retain", "Keeps data forever and returns how many inputs it holds.", func(in data) (int64, error) {
		kept = append(kept, in.Data)
		return int64(len(kept)), nil
	})
}

func main() {}
