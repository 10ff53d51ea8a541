//go:build wasip1

// Command testknots is a test module: len returns the length of its bytes
// input, make returns n bytes, retain keeps every input alive (a deliberate
// leak), ambient reports what the sandbox lets a knot see of the outside
// world, types names the Go types an any-typed input decodes to, and
// shapes decodes and encodes structs of many field kinds (values_test.go
// runs the same function on the host, which encodes with the CBOR library,
// and compares).
//
// Build (make wasm does this):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -ldflags="-w -buildid=" -o testknots.wasm .
package main

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"sort"
	"time"

	pdk "github.com/pirn-wasm/pirn/pdk/go"
)

type none struct{}

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

func init() {
	pdk.Register("ambient", "Reports the files, environment, arguments, clock and randomness the knot can see.", func(none) (map[string]any, error) {
		out := map[string]any{}
		errString := func(err error) string {
			if err == nil {
				return ""
			}
			return err.Error()
		}
		_, err := os.ReadFile("/etc/passwd")
		out["read_passwd"] = errString(err)
		_, err = os.ReadDir(".")
		out["read_cwd"] = errString(err)
		err = os.WriteFile("/tmp/pirn-escape", []byte("x"), 0o644)
		out["write_tmp"] = errString(err)
		_, err = net.Dial("tcp", "127.0.0.1:22")
		out["dial"] = errString(err)
		out["env"] = len(os.Environ())
		out["args"] = len(os.Args)
		out["year"] = time.Now().Year()
		var b [8]byte
		rand.Read(b[:])
		out["random"] = fmt.Sprintf("%x", b)
		return out, nil
	})
}

type anything struct {
	V    any             `pirn:"v"`
	Held struct{ X any } `pirn:"held,optional"`
}

func init() {
	pdk.Register("types", "Names the Go types v decodes to, and those of held.X.", func(in anything) (string, error) {
		return typesOf(in.V) + " " + typesOf(in.Held.X), nil
	})
}

// typesOf names the dynamic types in v, recursively.
func typesOf(v any) string {
	switch x := v.(type) {
	case []any:
		s := "[]any{"
		for i, e := range x {
			if i > 0 {
				s += ","
			}
			s += typesOf(e)
		}
		return s + "}"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		s := "map[string]any{"
		for i, k := range keys {
			if i > 0 {
				s += ","
			}
			s += k + ":" + typesOf(x[k])
		}
		return s + "}"
	case nil:
		return "nil"
	}
	return fmt.Sprintf("%T", v)
}

// Shape and what it holds exercise the PDK's codec: tags of both kinds,
// omitempty and omitzero, times, pointers, nested and embedded structs, a
// toarray struct, maps of structs.
type Shape struct {
	Name    string          `json:"name"`
	Tags    []string        `cbor:"tags,omitempty"`
	When    time.Time       `cbor:"when"`
	Size    *float64        `cbor:"size,omitempty"`
	Parts   []Part          `cbor:"parts"`
	ByName  map[string]Part `cbor:"by_name"`
	Extra   map[string]any  `cbor:"extra,omitzero"`
	Raw     []byte          `cbor:"raw"`
	Pair    Pair            `cbor:"pair"`
	Meta                    // embedded: its fields are Shape's
	skipped int
}

// Part is an element of Shape.
type Part struct {
	ID     int     `cbor:"id"`
	Weight float32 `cbor:"weight"`
	Note   string  `cbor:"note,omitempty"`
}

// Pair encodes as a two-element array.
type Pair struct {
	_ struct{} `cbor:",toarray"`
	A int
	B string
}

// Meta is embedded in Shape.
type Meta struct {
	Version int `cbor:"version"`
	Owner   string
}

// ShapeIn is the input of shapes.
type ShapeIn struct {
	S    Shape `pirn:"s"`
	Fail bool  `pirn:"fail,optional"`
}

// Reshape is the shapes knot's function: values_test.go has a copy.
func Reshape(in ShapeIn) (Shape, error) {
	s := in.S
	if in.Fail {
		return Shape{}, &pdk.Error{Type: "ShapeError", Message: "asked to fail", Detail: s}
	}
	s.Parts = append(s.Parts, Part{ID: len(s.Parts), Weight: 0.5})
	if s.ByName == nil {
		s.ByName = map[string]Part{}
	}
	for _, p := range s.Parts {
		s.ByName[fmt.Sprint("p", p.ID)] = p
	}
	s.When = s.When.Add(90 * time.Minute)
	s.Version++
	s.Pair.A, s.Pair.B = s.Pair.A+1, s.Pair.B+"!"
	return s, nil
}

func init() {
	pdk.Register("shapes", "Reshapes a Shape (see Reshape), or fails with it as the error's detail.", Reshape)
}

func main() {}
