//go:build wasip1

package pcbor

// In wasip1 builds (Go knot modules) pcbor encodes and decodes with
// refl.go's codec rather than the CBOR library, which a module would
// otherwise link: see refl.go. The functions' contracts are lib.go's.

// Marshal encodes v deterministically (see lib.go).
func Marshal(v any) ([]byte, error) { return MarshalReflect(v) }

// UnmarshalMessage decodes b into v strictly (see lib.go).
func UnmarshalMessage(b []byte, v any) error { return UnmarshalReflect(b, v, true) }

// UnmarshalValue decodes b into v (see lib.go).
func UnmarshalValue(b []byte, v any) error { return UnmarshalReflect(b, v, false) }

// UnmarshalModel is UnmarshalValue; the data model's simple values are
// the only ones the reflective decoder accepts into an any.
func UnmarshalModel(b []byte, v any) error { return UnmarshalReflect(b, v, false) }
