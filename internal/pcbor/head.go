package pcbor

// This file reads data-item heads (RFC 8949 §3) and appends them in their
// shortest form, so that abi and cas can frame already-canonical bytes
// without a reflective encode on their hot paths.

import (
	"errors"
	"fmt"
	"math"

	"github.com/x448/float16"
)

// ErrTruncated is returned by [ReadHead] for a head cut short.
var ErrTruncated = errors.New("unexpected end of data")

// ErrEOF is the error of the data-model decoder and of cas's canonical
// re-encoding for data cut short (the wording follows the CBOR library's,
// which the PDKs' tests of cas/testdata/canonical.json match).
var ErrEOF = errors.New("unexpected EOF")

// ReadHead reads the head of the data item at the start of b: its major type
// (in the top 3 bits, as the constants below), additional information and
// argument, and the head's length. An indefinite length (ai 31, allowed
// for strings, arrays, maps and the break code) returns arg 0; reserved
// additional information (28-30) is an error.
func ReadHead(b []byte) (major, ai byte, arg uint64, n int, err error) {
	if len(b) == 0 {
		return 0, 0, 0, 0, ErrTruncated
	}
	major, ai = b[0]&0xe0, b[0]&0x1f
	switch {
	case ai < 24:
		return major, ai, uint64(ai), 1, nil
	case ai <= 27:
		w := 1 << (ai - 24)
		if len(b) < 1+w {
			return 0, 0, 0, 0, ErrTruncated
		}
		for _, c := range b[1 : 1+w] {
			arg = arg<<8 | uint64(c)
		}
		return major, ai, arg, 1 + w, nil
	case ai == 31 && (major == Bytes || major == Text || major == Array || major == Map || major == Simple):
		return major, ai, 0, 1, nil
	}
	return 0, 0, 0, 0, fmt.Errorf("malformed head byte 0x%02x", b[0])
}

// Major types.
const (
	Uint  byte = 0 << 5
	Neg   byte = 1 << 5
	Bytes byte = 2 << 5
	Text  byte = 3 << 5
	Array byte = 4 << 5
	Map   byte = 5 << 5
	Tag   byte = 6 << 5
	// Simple is major type 7: false, true, null, floats and the break code.
	Simple byte = 7 << 5
)

// AppendHead appends the head of a data item of the given major type and
// argument n, in the shortest encoding (as deterministic CBOR requires).
func AppendHead(dst []byte, major byte, n uint64) []byte {
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
	return append(AppendHead(dst, Text, uint64(len(s))), s...)
}

// AppendMap appends a definite-length map of len(entries) entries: for
// each, in the order given, the text key and the already-encoded value that
// kv returns, the value copied verbatim. For the result to be canonical the
// entries must be in canonical key order (shorter keys first, then
// bytewise), each key once, and every value canonical.
func AppendMap[E any](dst []byte, entries []E, kv func(E) (key string, value []byte)) []byte {
	dst = AppendHead(dst, Map, uint64(len(entries)))
	for _, e := range entries {
		k, v := kv(e)
		dst = append(AppendText(dst, k), v...)
	}
	return dst
}

// Float returns the value of a float head's argument: half (ai 25), single
// (ai 26) or double (ai 27) precision.
func Float(ai byte, arg uint64) float64 {
	switch ai {
	case 25:
		return float64(float16.Frombits(uint16(arg)).Float32())
	case 26:
		return float64(math.Float32frombits(uint32(arg)))
	}
	return math.Float64frombits(arg)
}
