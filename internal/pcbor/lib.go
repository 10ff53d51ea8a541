//go:build !wasip1

package pcbor

// This file is pcbor's configuration of the CBOR library, in every build
// but wasip1, where guest.go replaces it with refl.go's codec.

import (
	"reflect"

	"github.com/fxamacker/cbor/v2"
)

var (
	encMode     cbor.EncMode // deterministic: everything pirn writes
	messageMode cbor.DecMode // abi's messages: unknown keys are errors
	valueMode   cbor.DecMode // values into a knot's Go types
	modelMode   cbor.DecMode // values into the data model (cas)
)

func init() {
	var err error
	opts := cbor.CoreDetEncOptions()
	opts.Time = cbor.TimeRFC3339Nano // untagged text: time.Time values encode as text
	if encMode, err = opts.EncMode(); err != nil {
		panic(err)
	}

	msg := bounded()
	msg.ExtraReturnErrors = cbor.ExtraDecErrorUnknownField
	msg.FieldNameMatching = cbor.FieldNameMatchingCaseSensitive
	if messageMode, err = msg.DecMode(); err != nil {
		panic(err)
	}

	// Values decoded into a knot's own types ignore keys the type does not
	// have, as encoding/json does: a parent's output may carry more than a
	// knot reads. An any-typed field inside such a type holds the data
	// model's Go types, as Decode gives them: integers as int64 (one beyond
	// int64 is an error here), maps as map[string]any.
	val := bounded()
	val.IntDec = cbor.IntDecConvertSignedOrFail
	val.DefaultMapType = reflect.TypeFor[map[string]any]()
	if valueMode, err = val.DecMode(); err != nil {
		panic(err)
	}

	model := val
	if model.SimpleValues, err = onlyFalseTrueNull(); err != nil {
		panic(err)
	}
	if modelMode, err = model.DecMode(); err != nil {
		panic(err)
	}
}

// bounded returns the options every decoding mode shares: the limits,
// duplicate keys and invalid UTF-8 refused, tags forbidden, indefinite
// lengths accepted (and re-encoded definite).
func bounded() cbor.DecOptions {
	return cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  MaxNestedLevels,
		MaxArrayElements: MaxElements,
		MaxMapPairs:      MaxElements,
		IndefLength:      cbor.IndefLengthAllowed,
		TagsMd:           cbor.TagsForbidden,
		UTF8:             cbor.UTF8RejectInvalid,
	}
}

func onlyFalseTrueNull() (*cbor.SimpleValueRegistry, error) {
	var rejects []func(*cbor.SimpleValueRegistry) error
	for sv := range 256 {
		switch {
		case sv == 20 || sv == 21 || sv == 22: // false, true, null
		case sv >= 24 && sv <= 31: // reserved, never well-formed
		default:
			rejects = append(rejects, cbor.WithRejectedSimpleValue(cbor.SimpleValue(sv)))
		}
	}
	return cbor.NewSimpleValueRegistryFromDefaults(rejects...)
}

// Marshal encodes v deterministically: core deterministic CBOR (RFC 8949
// §4.2.1: shortest heads, definite lengths, map keys sorted by their
// encoding, floats in their shortest exact width), with a time.Time as
// untagged RFC 3339 text with nanoseconds. It does not check that the
// result is inside the data model. A value nested more than 10,000 steps
// deep (pointers, interfaces and containers each count one: a cyclic
// value, say) is an error: the library alone would recurse until the
// goroutine's stack overflowed, which ends the process.
func Marshal(v any) ([]byte, error) {
	if err := checkDepth(reflect.ValueOf(v)); err != nil {
		return nil, err
	}
	return encMode.Marshal(v)
}

// UnmarshalMessage decodes b into v strictly, for messages of a fixed
// shape: a key v's struct types do not have is an error, and keys match
// field names case-sensitively.
func UnmarshalMessage(b []byte, v any) error { return messageMode.Unmarshal(b, v) }

// UnmarshalValue decodes b into v, for values read into a knot's Go types:
// keys v's struct types do not have are ignored, and an any holds the data
// model's Go types (a positive integer beyond int64 is an error).
func UnmarshalValue(b []byte, v any) error { return valueMode.Unmarshal(b, v) }

// UnmarshalModel is [UnmarshalValue] that also refuses simple values other
// than false, true and null, which are outside the data model.
func UnmarshalModel(b []byte, v any) error { return modelMode.Unmarshal(b, v) }
