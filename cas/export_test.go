package cas

import "github.com/pirn-wasm/pirn/internal/pcbor"

// DecodeGeneral decodes with the CBOR library alone, for comparing the
// reflection-free decoder with it.
func DecodeGeneral(b []byte, v *any) error { return Unmarshal(b, v) }

// CanonicalizeByDecoding is what Canonicalize did before it worked on the
// bytes: decode into Go values, encode with the CBOR library.
func CanonicalizeByDecoding(b []byte) ([]byte, error) {
	v, err := Decode(b)
	if err != nil {
		return nil, err
	}
	return pcbor.Marshal(v)
}

// EncodeByLibrary is Encode as it was before encodeFast: the CBOR
// library's encoding, checked against the data model.
func EncodeByLibrary(v any) ([]byte, error) { return encodeByLibrary(v) }

// EncodeFast is the reflection-free encoder alone; ok is false for values
// it leaves to the library.
func EncodeFast(v any) (b []byte, ok bool) { return encodeFast(v) }

// HashCanonical is CanonicalizeValue's one pass alone; ok is false where
// it leaves the input to Canonicalize.
func HashCanonical(b []byte) (v Value, ok bool) { return hashCanonical(b) }
