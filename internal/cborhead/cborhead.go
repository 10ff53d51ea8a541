// Package cborhead appends CBOR data-item heads (RFC 8949 §3) in their
// shortest form. It exists so that abi and cas can frame already-canonical
// bytes without a reflective encode on their hot paths.
package cborhead

// Major types.
const (
	Uint  byte = 0 << 5
	Neg   byte = 1 << 5
	Bytes byte = 2 << 5
	Text  byte = 3 << 5
	Array byte = 4 << 5
	Map   byte = 5 << 5
)

// Append appends the head of a data item of the given major type and
// argument n, in the shortest encoding (as deterministic CBOR requires).
func Append(dst []byte, major byte, n uint64) []byte {
	switch {
	case n < 24:
		return append(dst, major|byte(n))
	case n <= 0xff:
		return append(dst, major|24, byte(n))
	case n <= 0xffff:
		return append(dst, major|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(dst, major|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	default:
		return append(dst, major|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
			byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// AppendText appends s as a CBOR text string.
func AppendText(dst []byte, s string) []byte {
	return append(Append(dst, Text, uint64(len(s))), s...)
}
