package cas

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/pirn-wasm/pirn/internal/pcbor"
)

// Limits applied when decoding bytes that did not come from pirn itself.
const (
	MaxNestedLevels = pcbor.MaxNestedLevels
	MaxElements     = pcbor.MaxElements // per array, and pairs per map
)

// ErrNotCanonical is wrapped by errors for values outside pirn's data model.
var ErrNotCanonical = errors.New("cas: value outside the data model")

// Encode returns the canonical encoding of v. v may be any Go value the
// CBOR library encodes (structs become maps keyed by field name, a
// time.Time RFC 3339 text with nanoseconds), in the one encoding that
// abi.Marshal writes too; the result is refused, wrapping
// [ErrNotCanonical], if it falls outside the data model (non-text map
// keys, integers beyond int64, ...).
func Encode(v any) ([]byte, error) {
	if b, ok := encodeFast(v); ok {
		return b, nil
	}
	return encodeByLibrary(v)
}

// encodeByLibrary is Encode for values encodeFast does not take.
func encodeByLibrary(v any) ([]byte, error) {
	b, err := pcbor.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotCanonical, err)
	}
	if needsCheck(v) {
		if _, err := pcbor.Decode(b, false); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotCanonical, err)
		}
	}
	return b, nil
}

// needsCheck reports whether an encoding of v could fall outside the data
// model and must be checked by decoding it. Values built from the data
// model's own Go types (maps with string keys, []any, scalars) are checked
// here by walking them, without allocating.
func needsCheck(v any) bool {
	ok, known := inModel(v, 0)
	return !ok || !known
}

// inModel walks v: ok is false if v is certainly outside the data model,
// known is false if v holds types this walk does not understand.
func inModel(v any, depth int) (ok, known bool) {
	if depth > MaxNestedLevels {
		return false, true
	}
	switch x := v.(type) {
	case nil, bool, []byte, int, int8, int16, int32, int64, uint8, uint16, uint32, float32, float64:
		return true, true
	case uint:
		return uint64(x) <= math.MaxInt64, true
	case uint64:
		return x <= math.MaxInt64, true
	case string:
		return utf8.ValidString(x), true
	case []any:
		for _, e := range x {
			if ok, known := inModel(e, depth+1); !ok || !known {
				return ok, known
			}
		}
		return true, true
	case map[string]any:
		for k, e := range x {
			if !utf8.ValidString(k) {
				return false, true
			}
			if ok, known := inModel(e, depth+1); !ok || !known {
				return ok, known
			}
		}
		return true, true
	}
	return true, false
}

// Canonicalize re-encodes b, which may be any well-formed CBOR inside the
// data model (for example a guest's output), in canonical form. It works
// on the bytes, never holding b as Go values, so its memory is about that
// of b and its result. Malformed input or input outside the data model
// gives an error wrapping [ErrNotCanonical]; nesting is bounded by
// [MaxNestedLevels] and each array or map by [MaxElements]. The result
// never aliases b.
func Canonicalize(b []byte) ([]byte, error) {
	if IsCanonical(b) {
		return slices.Clone(b), nil
	}
	return canonicalize(b)
}

// Decode decodes one CBOR data item in the data model into Go values: nil,
// bool, int64, float64, string, []byte, []any and map[string]any. Trailing
// bytes are an error.
func Decode(b []byte) (any, error) {
	if v, n, ok := decodeCanonical(b, 0); ok && n == len(b) {
		return v, nil // canonical input, decoded without reflection
	}
	v, err := pcbor.Decode(b, false)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotCanonical, err)
	}
	return v, nil
}

// ErrTooLarge is wrapped by DecodeBounded's error for a value of more
// elements than its bound.
var ErrTooLarge = errors.New("cas: value too large to decode")

// DecodeBounded is [Decode] of a value of at most max data items (every
// scalar, list and dict, nested ones included). Decoded, a value takes up
// to 40 times its encoded size (an empty list is one byte, and a boxed
// slice header in Go): bounding its items bounds that.
func DecodeBounded(b []byte, max int) (any, error) {
	v, err := pcbor.DecodeMax(b, false, max)
	switch {
	case errors.Is(err, pcbor.ErrTooMany):
		return nil, fmt.Errorf("%w: it has more than %d elements", ErrTooLarge, max)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrNotCanonical, err)
	}
	return v, nil
}

// Unmarshal decodes a canonical encoding into v with the same limits as
// [Decode].
func Unmarshal(b []byte, v any) error {
	if err := pcbor.UnmarshalModel(b, v); err != nil {
		return fmt.Errorf("%w: %w", ErrNotCanonical, err)
	}
	return nil
}

// Hash returns the digest of v's canonical encoding. A value of the data
// model's own Go types is hashed as it is encoded, in one walk that also
// checks it, its long byte and text strings where they lie, without
// holding its encoding.
func Hash(v any) (Digest, error) {
	if d, ok := hashFast(v); ok {
		return d, nil
	}
	b, err := encodeByLibrary(v)
	if err != nil {
		return Digest{}, err
	}
	return Sum(b), nil
}

// Value is one datum in canonical form together with its digest.
type Value struct {
	Digest Digest
	Bytes  []byte // canonical encoding; shared, never modify
}

// NewValue encodes v canonically and hashes it.
func NewValue(v any) (Value, error) {
	b, err := Encode(v)
	if err != nil {
		return Value{}, err
	}
	return Value{Digest: Sum(b), Bytes: b}, nil
}

// CanonicalValue wraps bytes that are already canonical (for example the
// output of [Canonicalize]) and hashes them.
func CanonicalValue(canonical []byte) Value {
	return Value{Digest: Sum(canonical), Bytes: canonical}
}

// Decode decodes the value into Go values as [Decode] does.
func (v Value) Decode() (any, error) { return Decode(v.Bytes) }
