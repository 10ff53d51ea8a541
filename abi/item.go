package abi

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
	"unsafe"

	"github.com/x448/float16"

	"github.com/pirn-wasm/pirn/internal/pcbor"
)

// This file frames CBOR without reflection. The request envelope is decoded
// inside the guest on every invocation, where the reflective decoder of the
// CBOR library costs ~11 µs under Go/wasm against ~1 µs here; values inside
// the envelope are left to the library unless they are simple scalars.

var errTruncated = pcbor.ErrTruncated

// head reads the head of the data item at the start of b (see
// pcbor.ReadHead).
func head(b []byte) (major, ai byte, arg uint64, n int, err error) { return pcbor.ReadHead(b) }

// itemLen returns the length of the well-formed data item at the start of
// b, descending at most depth levels. Tags are refused.
func itemLen(b []byte, depth int) (int, error) {
	if depth <= 0 {
		return 0, fmt.Errorf("nested deeper than %d levels", MaxNestedLevels)
	}
	major, ai, arg, n, err := head(b)
	if err != nil {
		return 0, err
	}
	switch major {
	case 0x00, 0x20: // integers
		return n, nil
	case 0x40, 0x60: // byte and text strings
		if ai == 31 {
			for {
				if n >= len(b) {
					return 0, errTruncated
				}
				if b[n] == 0xff {
					return n + 1, nil
				}
				if b[n]&0xe0 != major || b[n]&0x1f == 31 {
					return 0, errors.New("bad chunk in indefinite-length string")
				}
				m, err := itemLen(b[n:], depth-1)
				if err != nil {
					return 0, err
				}
				n += m
			}
		}
		if arg > uint64(len(b)-n) {
			return 0, errTruncated
		}
		return n + int(arg), nil
	case 0x80, 0xa0: // arrays and maps
		per := 1
		if major == 0xa0 {
			per = 2
		}
		if ai == 31 {
			for {
				if n >= len(b) {
					return 0, errTruncated
				}
				if b[n] == 0xff {
					return n + 1, nil
				}
				m, err := itemLen(b[n:], depth-1)
				if err != nil {
					return 0, err
				}
				n += m
			}
		}
		if arg > MaxElements {
			return 0, fmt.Errorf("%d elements exceed the limit of %d", arg, MaxElements)
		}
		if arg*uint64(per) > uint64(len(b)-n) { // each element needs at least one byte
			return 0, errTruncated
		}
		for i := 0; i < int(arg)*per; i++ {
			m, err := itemLen(b[n:], depth-1)
			if err != nil {
				return 0, err
			}
			n += m
		}
		return n, nil
	case 0xc0:
		return 0, errors.New("tags are not allowed")
	default: // simple values and floats
		if ai == 31 {
			return 0, errors.New("unexpected break")
		}
		if ai == 24 && arg < 32 {
			return 0, errors.New("malformed simple value")
		}
		return n, nil
	}
}

// readText reads a definite-length text string; with alias the string
// shares b's memory.
func readText(b []byte, alias bool) (string, int, error) {
	major, ai, arg, n, err := head(b)
	if err != nil {
		return "", 0, err
	}
	if major != 0x60 || ai == 31 {
		return "", 0, errors.New("want a definite-length text string")
	}
	if arg > uint64(len(b)-n) {
		return "", 0, errTruncated
	}
	s := b[n : n+int(arg)]
	if !utf8.Valid(s) {
		return "", 0, errors.New("text is not valid UTF-8")
	}
	if alias {
		return unsafe.String(unsafe.SliceData(s), len(s)), n + int(arg), nil
	}
	return string(s), n + int(arg), nil
}

// DecodeInt decodes a CBOR integer in the int64 range.
func DecodeInt(b []byte) (int64, error) {
	major, ai, arg, n, err := head(b)
	if err != nil {
		return 0, err
	}
	if (major != 0x00 && major != 0x20) || ai == 31 {
		return 0, errors.New("not an integer")
	}
	if n != len(b) {
		return 0, errors.New("trailing bytes")
	}
	if arg > math.MaxInt64 {
		return 0, errors.New("integer overflows int64")
	}
	if major == 0x20 {
		return -1 - int64(arg), nil
	}
	return int64(arg), nil
}

// DecodeFloat decodes a CBOR float (any width) or integer as a float64.
func DecodeFloat(b []byte) (float64, error) {
	major, ai, arg, n, err := head(b)
	if err != nil {
		return 0, err
	}
	if major == 0x00 || major == 0x20 {
		i, err := DecodeInt(b)
		return float64(i), err
	}
	if major != 0xe0 {
		return 0, errors.New("not a number")
	}
	if n != len(b) {
		return 0, errors.New("trailing bytes")
	}
	if major == 0xe0 {
		switch ai {
		case 25:
			return float64(float16.Frombits(uint16(arg)).Float32()), nil
		case 26:
			return float64(math.Float32frombits(uint32(arg))), nil
		case 27:
			return math.Float64frombits(arg), nil
		}
	}
	return 0, errors.New("not a number")
}

// DecodeText decodes a definite-length CBOR text string.
func DecodeText(b []byte) (string, error) {
	s, n, err := readText(b, false)
	if err == nil && n != len(b) {
		err = errors.New("trailing bytes")
	}
	return s, err
}

// DecodeBool decodes a CBOR boolean.
func DecodeBool(b []byte) (bool, error) {
	if len(b) == 1 && (b[0] == 0xf4 || b[0] == 0xf5) {
		return b[0] == 0xf5, nil
	}
	return false, errors.New("not a boolean")
}

// DecodeBytes decodes a definite-length CBOR byte string, copying it.
func DecodeBytes(b []byte) ([]byte, error) {
	major, ai, arg, n, err := head(b)
	if err != nil {
		return nil, err
	}
	if major != 0x40 || ai == 31 {
		return nil, errors.New("not a definite-length byte string")
	}
	if arg != uint64(len(b)-n) {
		return nil, errors.New("length mismatch")
	}
	return append([]byte(nil), b[n:]...), nil
}

// readArgs reads a map of text keys to data items, appending to args.
func readArgs(args []Arg, b []byte, alias bool) ([]Arg, int, error) {
	major, ai, arg, n, err := head(b)
	if err != nil {
		return nil, 0, err
	}
	if major != 0xa0 || ai == 31 {
		return nil, 0, errors.New("want a definite-length map")
	}
	if arg > uint64(len(b)-n)/2 {
		return nil, 0, errTruncated
	}
	for range arg {
		k, m, err := readText(b[n:], alias)
		if err != nil {
			return nil, 0, fmt.Errorf("key: %w", err)
		}
		n += m
		m, err = itemLen(b[n:], MaxNestedLevels)
		if err != nil {
			return nil, 0, fmt.Errorf("value of %q: %w", k, err)
		}
		args = append(args, Arg{Name: k, Value: b[n : n+m]})
		n += m
	}
	return args, n, nil
}

// AppendInt appends i as a CBOR integer.
func AppendInt(dst []byte, i int64) []byte {
	if i < 0 {
		return pcbor.AppendHead(dst, pcbor.Neg, uint64(-1-i))
	}
	return pcbor.AppendHead(dst, pcbor.Uint, uint64(i))
}

// AppendText appends s as a CBOR text string.
func AppendText(dst []byte, s string) []byte { return pcbor.AppendText(dst, s) }

// AppendBytes appends b as a CBOR byte string.
func AppendBytes(dst, b []byte) []byte {
	return append(pcbor.AppendHead(dst, pcbor.Bytes, uint64(len(b))), b...)
}

// DecodeArray decodes a definite-length array: it calls start with the
// number of elements, then elem with the encoding of each.
func DecodeArray(b []byte, start func(n int), elem func(i int, item []byte) error) error {
	major, ai, arg, n, err := head(b)
	if err != nil {
		return err
	}
	if major != 0x80 || ai == 31 {
		return errors.New("not a definite-length array")
	}
	if arg > MaxElements || arg > uint64(len(b)-n) {
		return fmt.Errorf("array of %d elements in %d bytes", arg, len(b)-n)
	}
	start(int(arg))
	b = b[n:]
	for i := range int(arg) {
		l, err := itemLen(b, MaxNestedLevels)
		if err != nil {
			return fmt.Errorf("element %d: %w", i, err)
		}
		if err := elem(i, b[:l]); err != nil {
			return fmt.Errorf("element %d: %w", i, err)
		}
		b = b[l:]
	}
	if len(b) != 0 {
		return errors.New("trailing bytes")
	}
	return nil
}

// DecodeMap decodes a definite-length map with text keys: it calls start
// with the number of entries, then entry with each key and the encoding
// of its value.
func DecodeMap(b []byte, start func(n int), entry func(key string, item []byte) error) error {
	major, ai, arg, n, err := head(b)
	if err != nil {
		return err
	}
	if major != 0xa0 || ai == 31 {
		return errors.New("not a definite-length map")
	}
	if arg > MaxElements || arg > uint64(len(b)-n)/2 {
		return fmt.Errorf("map of %d entries in %d bytes", arg, len(b)-n)
	}
	start(int(arg))
	b = b[n:]
	for range int(arg) {
		key, kn, err := readText(b, false)
		if err != nil {
			return fmt.Errorf("map key: %w", err)
		}
		b = b[kn:]
		l, err := itemLen(b, MaxNestedLevels)
		if err != nil {
			return fmt.Errorf("%q: %w", key, err)
		}
		if err := entry(key, b[:l]); err != nil {
			return fmt.Errorf("%q: %w", key, err)
		}
		b = b[l:]
	}
	if len(b) != 0 {
		return errors.New("trailing bytes")
	}
	return nil
}

// Depth returns the nesting depth of the well-formed value b: 0 for a
// scalar, 1 for an array or map of scalars, and so on. It does not
// validate b; a malformed item counts as deep as far as it could be read.
func Depth(b []byte) int {
	d, _ := depth(b)
	return d
}

// depth returns the depth of the item at the start of b and its length.
func depth(b []byte) (int, int) {
	major, ai, arg, n, err := head(b)
	if err != nil {
		return 0, len(b)
	}
	switch major {
	case 0x40, 0x60: // strings
		if ai == 31 {
			l, err := itemLen(b, MaxNestedLevels+1)
			if err != nil {
				return 0, len(b)
			}
			return 0, l
		}
		return 0, min(n+int(min(arg, uint64(len(b)))), len(b))
	case 0x80, 0xa0:
		items := arg
		if major == 0xa0 {
			items *= 2
		}
		deepest, off := 0, n
		for i := uint64(0); (ai == 31 || i < items) && off < len(b); i++ {
			if ai == 31 && b[off] == 0xff {
				off++
				break
			}
			d, l := depth(b[off:])
			deepest = max(deepest, d)
			off += l
		}
		return deepest + 1, off
	case 0xc0: // a tag: its content
		d, l := depth(b[n:])
		return d, n + l
	}
	return 0, n
}
