// Package pdk is the Go plug-in development kit for pirn knots: ordinary Go
// functions become knots in a WebAssembly module that speaks pirn's ABI v1.
//
// A knot is a function from a struct of named inputs to a result:
//
//	type AddIn struct {
//		A int64 `pirn:"a" doc:"left operand"`
//		B int64 `pirn:"b"`
//	}
//
//	func add(in AddIn) (int64, error) { return in.A + in.B, nil }
//
//	func init() { pdk.Register("add", "Returns a+b.", add) }
//	func main() {}
//
// Build it as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o add.wasm .
//
// The module's manifest (knot names, input names and types, output type, doc
// lines) is derived from the registered functions' types. Returning an error
// makes the invocation err: a [*Error] keeps its Type and Detail, any other
// error has type "Error". [Skip] returns a skip with a reason. A panic is
// recovered and becomes an err of type "Panic" carrying the goroutine's
// stack. [Log] sends a line to the host, which records it as a structured
// log entry tagged with the run and knot.
//
// # Input fields
//
// Each exported field of the input struct is one input. Its name is the
// `pirn` tag, or else the field name in snake_case (UserID → user_id). Tag
// options: `pirn:"name,optional"` (may be unbound; pointer fields are
// optional too), `pirn:"-"` (ignored), and `pirn:"*"` on a map[string]T
// field, which collects every further named input (an aggregator). A `doc`
// tag documents the input in the manifest.
//
// Go types map to ABI types: integers → int, floats → float, string → str,
// bool, []byte → bytes, []T → list[T], map[string]T → dict[T], *T →
// optional[T], any → any, structs → dict, time.Time → str (RFC 3339).
// A struct, as an input's value or as a result, is a dict keyed by each
// field's `cbor` tag, else its `json` tag, else its name (a key matches a
// name in any case when no field has it exactly; keys the struct lacks are
// ignored), with the tag options omitempty, omitzero, keyasint and, on a
// `_ struct{}` field, toarray; embedded structs' fields are promoted. The
// module encodes and decodes with a codec of its own that writes the same
// bytes as the host's CBOR library (docs/rationale.md).
//
// # Memory
//
// The Go runtime only collects garbage while Go code runs, and a reactor's Go
// code runs only inside exported calls: a collection started by an
// allocation would never finish, and linear memory would grow without bound.
// The PDK yields to the runtime at the end of every invocation so that
// collections complete; memory stays bounded (10,000 calls with 1 MiB inputs
// peak at about 20 MiB; see host's TestGoGuestMemoryBounded).
//
// # Capabilities
//
// A knot sees files, environment variables, the real clock and randomness
// through the standard library (os, time, crypto/rand) only if its pipeline
// grants them (docs/security.md); otherwise it sees none, a fake clock and
// a deterministic random source. Outbound HTTP goes through package
// pdkhttp, which makes the module import pirn.http: every knot of such a
// module must be granted http.
package pdk
