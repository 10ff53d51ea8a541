//go:build wasip1

// Command outcomes is a knot module showing the two outcomes besides ok:
// fail always errs, skip_odd skips odd numbers, and panic shows a recovered
// panic; noisy writes to stdout and stderr, which the host logs; recover
// handles its parent's failure itself (with error_policy: receive_errors).
//
// Build (make wasm does this):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -ldflags="-w -buildid=" -o outcomes.wasm .
package main

import (
	"fmt"
	"os"

	pdk "github.com/pirn-wasm/pirn/pdk/go"
)

// X is the input of every knot here.
type X struct {
	X int64 `pirn:"x"`
}

// Result is a parent's result as a receive_errors knot sees it.
type Result struct {
	X struct {
		OK  *int64 `cbor:"ok"`
		Err *struct {
			ID      string `cbor:"id"`
			Type    string `cbor:"type"`
			Message string `cbor:"message"`
		} `cbor:"err"`
		Skip *struct {
			Reason string `cbor:"reason"`
		} `cbor:"skip"`
	} `pirn:"x"`
}

func init() {
	pdk.Register("fail", "Always errs with a ValueError naming x.", func(in X) (int64, error) {
		pdk.Logf(pdk.LevelWarn, "about to fail on x=%d", in.X)
		return 0, &pdk.Error{Type: "ValueError", Message: "fail was asked to fail", Detail: map[string]any{"x": in.X}}
	})
	pdk.Register("skip_odd", "Returns x when it is even and skips when it is odd.", func(in X) (int64, error) {
		if in.X%2 != 0 {
			return 0, pdk.Skip("x is odd")
		}
		return in.X, nil
	})
	pdk.Register("noisy", "Prints a line to stdout and one to stderr, then returns x.", func(in X) (int64, error) {
		fmt.Printf("noisy got x=%d\n", in.X)
		fmt.Fprintf(os.Stderr, "noisy warns about x=%d\n", in.X)
		return in.X, nil
	})
	pdk.Register("recover", "With error_policy receive_errors: returns the parent's value, -1 if it erred, 0 if it skipped.",
		func(in Result) (int64, error) {
			switch {
			case in.X.OK != nil:
				return *in.X.OK, nil
			case in.X.Err != nil:
				pdk.Logf(pdk.LevelInfo, "recovering from %s: %s", in.X.Err.Type, in.X.Err.Message)
				return -1, nil
			}
			return 0, nil
		})
	pdk.Register("panic", "Panics: the PDK turns the panic into an err with a trace.", func(in X) (int64, error) {
		var m map[string]int
		m["boom"] = int(in.X) // nil map write
		return 0, nil
	})
}

func main() {}
