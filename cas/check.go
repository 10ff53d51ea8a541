package cas

import (
	"bytes"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/x448/float16"

	"github.com/pirn-wasm/pirn/internal/pcbor"
)

// IsCanonical reports whether b is exactly one data item that is already
// in canonical form and inside the data model, so that Canonicalize would
// return it unchanged. It allocates nothing; Canonicalize uses it to skip
// the decode and re-encode of values that guests already wrote
// canonically (which every PDK does).
func IsCanonical(b []byte) bool {
	n, ok := canonItem(b, 0)
	return ok && n == len(b)
}

// ListLen returns the number of elements of the canonical list b, without
// reading them; ok is false if b does not start with a list's head.
func ListLen(b []byte) (n int, ok bool) {
	major, _, arg, _, ok := canonHead(b)
	if !ok || major != 4 || arg > MaxElements {
		return 0, false
	}
	return int(arg), true
}

// Elements splits the canonical encoding of an array into the canonical
// encodings of its elements (which alias b). It fails if b is not a
// canonical array.
func Elements(b []byte) ([][]byte, error) {
	if len(b) == 0 || b[0]>>5 != 4 || !IsCanonical(b) {
		return nil, fmt.Errorf("%w: not a canonical array", ErrNotCanonical)
	}
	_, _, arg, n, _ := canonHead(b)
	out := make([][]byte, 0, arg)
	for range arg {
		m, _ := canonItem(b[n:], 1)
		out = append(out, b[n:n+m])
		n += m
	}
	return out, nil
}

// AppendArray appends a canonical array of the given canonical elements.
func AppendArray(dst []byte, elems [][]byte) []byte {
	dst = pcbor.AppendHead(dst, pcbor.Array, uint64(len(elems)))
	for _, e := range elems {
		dst = append(dst, e...)
	}
	return dst
}

// canonHead reads a head and checks that its argument is in shortest form.
func canonHead(b []byte) (major, ai byte, arg uint64, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, 0, 0, false
	}
	major, ai = b[0]>>5, b[0]&0x1f
	switch {
	case ai < 24:
		return major, ai, uint64(ai), 1, true
	case ai <= 27:
		w := 1 << (ai - 24)
		if len(b) < 1+w {
			return 0, 0, 0, 0, false
		}
		for _, c := range b[1 : 1+w] {
			arg = arg<<8 | uint64(c)
		}
		if major == 7 { // floats and simple values have their own rules
			return major, ai, arg, 1 + w, true
		}
		min := [...]uint64{24, 1 << 8, 1 << 16, 1 << 32}[ai-24]
		return major, ai, arg, 1 + w, arg >= min
	}
	return 0, 0, 0, 0, false // indefinite lengths and reserved values
}

// canonItem reports the length of the canonical item at the start of b,
// depth arrays and maps inside the outermost (which may nest
// MaxNestedLevels deep, as the decoders allow).
func canonItem(b []byte, depth int) (int, bool) {
	major, ai, arg, n, ok := canonHead(b)
	if !ok || (major == 4 || major == 5) && depth >= MaxNestedLevels {
		return 0, false
	}
	switch major {
	case 0, 1: // integers must fit int64
		return n, arg <= math.MaxInt64
	case 2, 3: // bytes, text
		if arg > uint64(len(b)-n) {
			return 0, false
		}
		end := n + int(arg)
		if major == 3 && !utf8.Valid(b[n:end]) {
			return 0, false
		}
		return end, true
	case 4: // arrays
		if arg > MaxElements || arg > uint64(len(b)-n) {
			return 0, false
		}
		for range arg {
			m, ok := canonItem(b[n:], depth+1)
			if !ok {
				return 0, false
			}
			n += m
		}
		return n, true
	case 5: // maps: text keys, strictly increasing in encoded order
		if arg > MaxElements || arg > uint64(len(b)-n)/2 {
			return 0, false
		}
		var prev []byte
		for i := range arg {
			if n >= len(b) || b[n]>>5 != 3 {
				return 0, false
			}
			k, ok := canonItem(b[n:], depth+1)
			if !ok {
				return 0, false
			}
			key := b[n : n+k]
			if i > 0 && bytes.Compare(prev, key) >= 0 {
				return 0, false
			}
			prev = key
			n += k
			m, ok := canonItem(b[n:], depth+1)
			if !ok {
				return 0, false
			}
			n += m
		}
		return n, true
	case 7:
		switch ai {
		case 20, 21, 22: // false, true, null
			return n, true
		case 25, 26, 27:
			return n, canonFloat(ai, arg)
		}
	}
	return 0, false // tags, undefined, other simple values
}

// canonFloat reports whether a float of the given width is the shortest
// exact encoding of its value, as the deterministic encoder writes it.
func canonFloat(ai byte, bits uint64) bool {
	var f float64
	switch ai {
	case 25:
		h := float16.Frombits(uint16(bits))
		if h.IsNaN() {
			return bits == 0x7e00
		}
		return true
	case 26:
		f = float64(math.Float32frombits(uint32(bits)))
	case 27:
		f = math.Float64frombits(bits)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return false // NaN is 0xf97e00 and infinities are float16
	}
	if float64(float32(f)) != f {
		return ai == 27 // needs float64
	}
	if ai == 27 {
		return false // fits float32 or shorter
	}
	f32 := float32(f)
	switch float16.PrecisionFromfloat32(f32) {
	case float16.PrecisionExact:
		return false
	case float16.PrecisionUnknown:
		if float16.Fromfloat32(f32).Float32() == f32 {
			return false
		}
	}
	return true
}

// decodeCanonical decodes one item of canonical input without reflection.
// It reports ok=false for anything not canonical (the caller falls back to
// the general decoder, which says what is wrong).
func decodeCanonical(b []byte, depth int) (v any, n int, ok bool) {
	if depth >= MaxNestedLevels {
		return nil, 0, false
	}
	major, ai, arg, n, ok := canonHead(b)
	if !ok {
		return nil, 0, false
	}
	switch major {
	case 0:
		return int64(arg), n, arg <= math.MaxInt64
	case 1:
		return -1 - int64(arg), n, arg <= math.MaxInt64
	case 2, 3:
		if arg > uint64(len(b)-n) {
			return nil, 0, false
		}
		s := b[n : n+int(arg)]
		if major == 2 {
			return bytes.Clone(s), n + int(arg), true
		}
		if !utf8.Valid(s) {
			return nil, 0, false
		}
		return string(s), n + int(arg), true
	case 4:
		if arg > MaxElements || arg > uint64(len(b)-n) {
			return nil, 0, false
		}
		out := make([]any, arg)
		for i := range out {
			e, m, ok := decodeCanonical(b[n:], depth+1)
			if !ok {
				return nil, 0, false
			}
			out[i] = e
			n += m
		}
		return out, n, true
	case 5:
		if arg > MaxElements || arg > uint64(len(b)-n)/2 {
			return nil, 0, false
		}
		out := make(map[string]any, arg)
		var prev []byte
		for i := range arg {
			if n >= len(b) || b[n]>>5 != 3 {
				return nil, 0, false
			}
			k, m, ok := decodeCanonical(b[n:], depth+1)
			if !ok || (i > 0 && bytes.Compare(prev, b[n:n+m]) >= 0) {
				return nil, 0, false
			}
			prev = b[n : n+m]
			n += m
			e, m, ok := decodeCanonical(b[n:], depth+1)
			if !ok {
				return nil, 0, false
			}
			out[k.(string)] = e
			n += m
		}
		return out, n, true
	case 7:
		switch ai {
		case 20:
			return false, n, true
		case 21:
			return true, n, true
		case 22:
			return nil, n, true
		case 25:
			if !canonFloat(ai, arg) {
				return nil, 0, false
			}
			return float64(float16.Frombits(uint16(arg)).Float32()), n, true
		case 26:
			return float64(math.Float32frombits(uint32(arg))), n, canonFloat(ai, arg)
		case 27:
			return math.Float64frombits(arg), n, canonFloat(ai, arg)
		}
	}
	return nil, 0, false
}
