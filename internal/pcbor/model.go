package pcbor

// This file decodes one CBOR data item into pirn's data model without
// reflection: nil, bool, int64, float64, string, []byte, []any and
// map[string]any. It is the one decoder behind abi.DecodeValue (guests and
// host coercion) and cas.Decode (values of any provenance), so both accept
// and refuse the same bytes, but for integers above int64, which only the
// first accepts.

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"
)

// Decode decodes the single data item b. A positive integer above
// math.MaxInt64 is a uint64 if bigUint, an error otherwise. Map keys must
// be text, each once; indefinite lengths are accepted; tags, simple values
// other than false, true and null, trailing bytes, more than
// MaxNestedLevels of nesting and more than MaxElements elements are
// errors.
func Decode(b []byte, bigUint bool) (any, error) { return DecodeMax(b, bigUint, 0) }

// ErrTooMany is wrapped by DecodeMax's error for a value of more data
// items than its bound.
var ErrTooMany = errors.New("too many elements to decode")

// DecodeMax is Decode of a value of at most max data items (every scalar,
// array and map, nested ones included; 0 means no bound). A value held as
// Go values takes up to 40 times its encoded size, so a bound on items is
// a bound on memory.
func DecodeMax(b []byte, bigUint bool, max int) (any, error) {
	d := &decoder{bigUint: bigUint, left: max, max: max}
	if max <= 0 {
		d.left = -1
	}
	v, n, err := d.value(b, 0)
	if err == nil && n != len(b) {
		err = errors.New("extraneous data after the value (trailing bytes)")
	}
	return v, err
}

type decoder struct {
	bigUint bool
	left    int // data items still allowed; negative for no bound
	max     int
}

// read is ReadHead with ErrEOF for a head cut short.
func read(b []byte) (major, ai byte, arg uint64, n int, err error) {
	major, ai, arg, n, err = ReadHead(b)
	if errors.Is(err, ErrTruncated) {
		err = ErrEOF
	}
	return major, ai, arg, n, err
}

func (d *decoder) value(b []byte, level int) (any, int, error) {
	if d.left >= 0 {
		if d.left == 0 {
			return nil, 0, fmt.Errorf("%w: more than %d", ErrTooMany, d.max)
		}
		d.left--
	}
	major, ai, arg, n, err := read(b)
	if err != nil {
		return nil, 0, err
	}
	switch major {
	case Uint:
		if arg > math.MaxInt64 {
			if !d.bigUint {
				return nil, 0, fmt.Errorf("integer %d overflows int64", arg)
			}
			return arg, n, nil
		}
		return int64(arg), n, nil
	case Neg:
		if arg > math.MaxInt64 {
			return nil, 0, errors.New("negative integer overflows int64")
		}
		return -1 - int64(arg), n, nil
	case Bytes, Text:
		if ai == 31 { // chunks, concatenated
			var s []byte
			for {
				if n >= len(b) {
					return nil, 0, ErrEOF
				}
				if b[n] == 0xff {
					n++
					break
				}
				cm, cai, carg, cn, err := read(b[n:])
				if err != nil {
					return nil, 0, err
				}
				if cm != major || cai == 31 || carg > uint64(len(b)-n-cn) {
					return nil, 0, errors.New("bad chunk in indefinite-length string")
				}
				s = append(s, b[n+cn:n+cn+int(carg)]...)
				n += cn + int(carg)
			}
			return stringValue(major, s, n)
		}
		if arg > uint64(len(b)-n) {
			return nil, 0, ErrEOF
		}
		return stringValue(major, slices.Clone(b[n:n+int(arg)]), n+int(arg))
	case Array, Map:
		if level >= MaxNestedLevels {
			return nil, 0, fmt.Errorf("nested deeper than %d levels", MaxNestedLevels)
		}
		per := uint64(1) // data items per entry
		if major == Map {
			per = 2
		}
		if ai != 31 && arg > MaxElements {
			return nil, 0, fmt.Errorf("%d entries: more than %d", arg, MaxElements)
		}
		if ai != 31 && arg*per > uint64(len(b)-n) { // each data item takes a byte at least
			return nil, 0, fmt.Errorf("%w: %d entries in %d bytes", ErrEOF, arg, len(b)-n)
		}
		if major == Array {
			out := make([]any, 0, min(arg, 1024))
			n, err := entries(b, n, ai == 31, arg, func(n int) (int, error) {
				v, m, err := d.value(b[n:], level+1)
				out = append(out, v)
				return m, err
			})
			return out, n, err
		}
		out := make(map[string]any, min(arg, 1024))
		n, err := entries(b, n, ai == 31, arg, func(n int) (int, error) {
			k, m, err := d.value(b[n:], level+1)
			if err != nil {
				return 0, err
			}
			key, ok := k.(string)
			if !ok {
				return 0, fmt.Errorf("cannot unmarshal map key %v: keys must be text", k)
			}
			if _, dup := out[key]; dup {
				return 0, fmt.Errorf("duplicate map key %q", key)
			}
			v, mv, err := d.value(b[n+m:], level+1)
			if err != nil {
				return 0, fmt.Errorf("%q: %w", key, err)
			}
			out[key] = v
			return m + mv, nil
		})
		return out, n, err
	case Tag:
		return nil, 0, errors.New("tags are not allowed")
	}
	switch ai {
	case 20, 21:
		return ai == 21, n, nil
	case 22:
		return nil, n, nil
	case 25, 26, 27:
		return Float(ai, arg), n, nil
	case 31:
		return nil, 0, errors.New("unexpected break")
	}
	return nil, 0, fmt.Errorf("simple value %d is not in the data model", arg)
}

// entries calls entry for each entry of an array or map from b[n:] on,
// count of them or, if indefinite, up to the break code, at most
// MaxElements; entry reads the entry at b[n:] and returns its length. It
// returns the offset after the last entry.
func entries(b []byte, n int, indefinite bool, count uint64, entry func(n int) (int, error)) (int, error) {
	for i := uint64(0); indefinite || i < count; i++ {
		if indefinite {
			if n >= len(b) {
				return 0, ErrEOF
			}
			if b[n] == 0xff {
				return n + 1, nil
			}
			if i >= MaxElements {
				return 0, fmt.Errorf("more than %d entries", MaxElements)
			}
		}
		m, err := entry(n)
		if err != nil {
			return 0, err
		}
		n += m
	}
	return n, nil
}

func stringValue(major byte, s []byte, n int) (any, int, error) {
	if major == Bytes {
		if s == nil {
			s = []byte{}
		}
		return s, n, nil
	}
	if !utf8.Valid(s) {
		return nil, 0, errors.New("text is not valid UTF-8")
	}
	return string(s), n, nil
}
