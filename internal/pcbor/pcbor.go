// Package pcbor is pirn's one configuration of CBOR: the deterministic
// encoding that everything hashed or handed to a knot is written in, the
// bounded decoding modes, their limits, the reading and appending of data
// item heads, the framing of a map of already-encoded values, and the
// reflection-free decoder into the data model (nil, bool, int64, float64,
// string, []byte, []any and map[string]any).
//
// abi (host and guests alike) and cas both go through it, so a Go value
// encodes to the same bytes, and hashes to the same digest, whichever of
// them encodes it. On the host it uses the CBOR library (lib.go); built for
// wasip1, where a Go knot module would otherwise link the library, it uses
// a reflective codec of its own that writes the same bytes (refl.go,
// refldec.go; refl_test.go compares the two). It depends on nothing else
// but the float16 package. Everything in it is safe for concurrent use.
package pcbor

// Limits on what any decoder of this package reads.
const (
	MaxNestedLevels = 64      // arrays and maps within one another
	MaxElements     = 1 << 24 // per array, and pairs per map
)
