package cas

// DecodeGeneral decodes with the CBOR library alone, for comparing the
// reflection-free decoder with it.
func DecodeGeneral(b []byte, v *any) error { return Unmarshal(b, v) }
