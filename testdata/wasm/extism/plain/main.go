//go:build wasip1

// Command plain is an Extism plugin with no pirn manifest, for the host's
// tests: pirn sees each exported function as a knot taking any inputs and
// returning its output document as the value.
//
// Build (make wasm does this):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -ldflags="-w -buildid=" -o plain.wasm .
package main

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/extism/go-pdk"
)

func main() {}

// greet reads {"name": text} (JSON) and returns "Hello, <name>!"; without
// a name it sets an error.
//
//go:wasmexport greet
func greet() int32 {
	var in struct {
		Name string `json:"name"`
	}
	if err := pdk.InputJSON(&in); err != nil {
		pdk.SetError(err)
		return 1
	}
	if in.Name == "" {
		pdk.SetError(errors.New("greet: no name given"))
		return 1
	}
	b, _ := json.Marshal("Hello, " + in.Name + "!")
	pdk.Output(b)
	return 0
}

// size returns the length of its input document as a CBOR unsigned
// integer.
//
//go:wasmexport size
func size() int32 {
	n := uint64(len(pdk.Input()))
	var b []byte
	switch {
	case n < 24:
		b = []byte{byte(n)}
	case n < 256:
		b = []byte{24, byte(n)}
	case n < 65536:
		b = []byte{25, byte(n >> 8), byte(n)}
	default:
		b = []byte{26, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}
	pdk.Output(b)
	return 0
}

// spin never returns.
//
//go:wasmexport spin
func spin() int32 {
	for {
	}
}

// crash panics, which ends the Go runtime.
//
//go:wasmexport crash
func crash() int32 {
	var m map[string]int
	m["x"] = 1
	return 0
}

// chatter logs 2 MiB.
//
//go:wasmexport chatter
func chatter() int32 {
	line := strings.Repeat("x", 1023)
	for range 2048 {
		pdk.Log(pdk.LogInfo, line)
	}
	return 0
}

// remember keeps a counter in a plugin variable, which pirn does not
// allow: state would leak from one invocation to the next.
//
//go:wasmexport remember
func remember() int32 {
	n := pdk.GetVarInt("n") + 1
	pdk.SetVarInt("n", n)
	b, _ := json.Marshal(n)
	pdk.Output(b)
	return 0
}

// grow allocates until memory runs out.
//
//go:wasmexport grow
func grow() int32 {
	var keep [][]byte
	for {
		keep = append(keep, make([]byte, 1<<20))
	}
}

// flood logs empty messages forever.
//
//go:wasmexport flood
func flood() int32 {
	for {
		pdk.Log(pdk.LogInfo, "")
	}
}
