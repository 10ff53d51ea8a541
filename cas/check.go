package cas

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"math"
	"slices"
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
	c := checker{b: b}
	n, ok := c.item(0, 0)
	return ok && n == len(b)
}

// CanonicalizeValue is [Canonicalize] followed by [CanonicalValue]. For
// input that is already canonical, as every PDK writes it, the check and
// the hash are one pass over b. The Value's Bytes never alias b.
func CanonicalizeValue(b []byte) (Value, error) {
	if v, ok := hashCanonical(b); ok {
		return v, nil
	}
	out, err := canonicalize(b)
	if err != nil {
		return Value{}, err
	}
	return CanonicalValue(out), nil
}

// hashCanonical checks and hashes b in one pass, and copies it; ok is
// false if b is not canonical.
func hashCanonical(b []byte) (v Value, ok bool) {
	c := checker{b: b, h: sha256.New()}
	if n, ok := c.item(0, 0); !ok || n != len(b) {
		return Value{}, false
	}
	c.emit(len(b))
	c.h.Sum(v.Digest[:0])
	v.Bytes = slices.Clone(b)
	return v, true
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
	c := checker{b: b}
	for range arg {
		m, _ := c.item(n, 1)
		out = append(out, b[n:m])
		n = m
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

// checker walks canonical input. With h set it also hashes what it has
// checked as it goes, a chunk at a time while the chunk is still in cache,
// so that the check and the hash are one pass over the input.
type checker struct {
	b    []byte
	h    hash.Hash // nil to check only
	done int       // b[:done] is hashed
}

// item reports the end of the canonical item at b[off:], depth arrays and
// maps inside the outermost (which may nest MaxNestedLevels deep, as the
// decoders allow).
func (c *checker) item(off, depth int) (int, bool) {
	major, ai, arg, n, ok := canonHead(c.b[off:])
	if !ok || (major == 4 || major == 5) && depth >= MaxNestedLevels {
		return 0, false
	}
	n += off
	switch major {
	case 0, 1: // integers must fit int64
		return n, arg <= math.MaxInt64
	case 2, 3: // bytes, text
		if arg > uint64(len(c.b)-n) {
			return 0, false
		}
		end := n + int(arg)
		if major == 3 {
			return end, c.text(n, end)
		}
		c.advance(end)
		return end, true
	case 4: // arrays
		if arg > MaxElements || arg > uint64(len(c.b)-n) {
			return 0, false
		}
		for range arg {
			if m := c.small(n); m > 0 {
				n = m
			} else if n, ok = c.item(n, depth+1); !ok {
				return 0, false
			}
			c.advance(n)
		}
		return n, true
	case 5: // maps: text keys, strictly increasing in encoded order
		if arg > MaxElements || arg > uint64(len(c.b)-n)/2 {
			return 0, false
		}
		var prev []byte
		for i := range arg {
			if n >= len(c.b) || c.b[n]>>5 != 3 {
				return 0, false
			}
			k := c.small(n)
			if k == 0 {
				if k, ok = c.item(n, depth+1); !ok {
					return 0, false
				}
			}
			key := c.b[n:k]
			if i > 0 && bytes.Compare(prev, key) >= 0 {
				return 0, false
			}
			prev = key
			if m := c.small(k); m > 0 {
				n = m
			} else if n, ok = c.item(k, depth+1); !ok {
				return 0, false
			}
			c.advance(n)
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

// small is item for the commonest items, inline: integers, byte strings
// and ASCII text of up to 23, false, true and null. It returns 0 for
// anything else, which item reads.
func (c *checker) small(off int) int {
	if off >= len(c.b) {
		return 0
	}
	h := c.b[off]
	switch {
	case h < 0x38 && h&0x1f < 24, h >= 0xf4 && h <= 0xf6: // integers, false, true, null
		return off + 1
	case h >= 0x40 && h < 0x58, h >= 0x60 && h < 0x78: // short byte and text strings
		end := off + 1 + int(h&0x1f)
		if end > len(c.b) {
			return 0
		}
		if h >= 0x60 {
			for _, ch := range c.b[off+1 : end] {
				if ch >= utf8.RuneSelf {
					return 0
				}
			}
		}
		return end
	}
	return 0
}

// text checks that b[start:end] is UTF-8, a long text a chunk at a time
// (each ending before a byte that starts a character, so that the chunks
// are valid exactly when the whole is), hashing each once checked.
func (c *checker) text(start, end int) bool {
	if end-start <= 16 {
		for _, ch := range c.b[start:end] {
			if ch >= utf8.RuneSelf {
				return utf8.Valid(c.b[start:end])
			}
		}
		return true
	}
	if c.h == nil || end-start <= flushAt {
		return utf8.Valid(c.b[start:end])
	}
	for p := start; p < end; {
		q := min(p+flushAt, end)
		for q < end && q > p && !utf8.RuneStart(c.b[q]) {
			q--
		}
		if q == p || !utf8.Valid(c.b[p:q]) {
			return false // flushAt bytes that start no character are not UTF-8
		}
		p = q
		c.advance(p)
	}
	return true
}

// advance hashes the checked input up to end once flushAt bytes or more
// are waiting.
func (c *checker) advance(end int) {
	if c.h != nil && end-c.done >= flushAt {
		c.emit(end)
	}
}

// emit hashes b[done:end].
func (c *checker) emit(end int) {
	c.h.Write(c.b[c.done:end])
	c.done = end
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
