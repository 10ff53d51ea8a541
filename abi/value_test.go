package abi_test

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
)

func TestDecodeValue(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want any
	}{
		{"small uint", []byte{0x05}, int64(5)},
		{"uint64 max int64", []byte{0x1b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, int64(math.MaxInt64)},
		{"uint above int64", []byte{0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint64(math.MaxUint64)},
		{"negative", []byte{0x38, 0x63}, int64(-100)},
		{"float16", []byte{0xf9, 0x3e, 0x00}, 1.5},
		{"float32", []byte{0xfa, 0x47, 0xc3, 0x50, 0x00}, 100000.0},
		{"float64", []byte{0xfb, 0x3f, 0xf1, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a}, 1.1},
		{"text", []byte{0x62, 'h', 'i'}, "hi"},
		{"bytes", []byte{0x42, 1, 2}, []byte{1, 2}},
		{"empty bytes", []byte{0x40}, []byte{}},
		{"null true false", []byte{0x83, 0xf6, 0xf5, 0xf4}, []any{nil, true, false}},
		{"nested map", []byte{0xa1, 0x61, 'm', 0xa1, 0x61, 'n', 0x01}, map[string]any{"m": map[string]any{"n": int64(1)}}},
		{"indefinite", []byte{0x9f, 0x7f, 0x61, 'a', 0x61, 'b', 0xff, 0xbf, 0x61, 'k', 0x02, 0xff, 0xff}, []any{"ab", map[string]any{"k": int64(2)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := abi.DecodeValue(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("DecodeValue(%x) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
	deep := make([]byte, 0, 70)
	for range 66 {
		deep = append(deep, 0x81)
	}
	deep = append(deep, 0x00)
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"tag", []byte{0xc1, 0x00}},
		{"int key", []byte{0xa1, 0x01, 0x02}},
		{"duplicate key", []byte{0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02}},
		{"undefined", []byte{0xf7}},
		{"trailing", []byte{0x01, 0x02}},
		{"truncated", []byte{0x82, 0x01}},
		{"huge count", []byte{0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00}},
		{"bad utf-8", []byte{0x61, 0xff}},
		{"below int64", []byte{0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"too deep", deep},
		{"stray break", []byte{0xff}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if v, err := abi.DecodeValue(tc.in); !errors.Is(err, abi.ErrMalformed) {
				t.Errorf("DecodeValue(%x) = %v, %v; want an error wrapping ErrMalformed", tc.in, v, err)
			}
		})
	}
}

func TestSignatureCoerceArgs(t *testing.T) {
	sig, err := abi.NewSignature(&abi.KnotSpec{Name: "add", Output: "int", Rest: "float",
		Inputs: []abi.InputSpec{{Name: "a", Type: "int"}, {Name: "b", Type: "list[int]"}}})
	if err != nil {
		t.Fatal(err)
	}
	enc := func(v any) []byte {
		b, err := cas.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	fits := []abi.Arg{{Name: "a", Value: enc(3)}, {Name: "b", Value: enc([]any{1})}, {Name: "c", Value: enc(1.5)}}
	got, err := sig.CoerceArgs(fits)
	if err != nil || &got[0] != &fits[0] {
		t.Errorf("CoerceArgs(values that fit) = %v, %v; want the same slice", got, err)
	}
	loose := []abi.Arg{{Name: "a", Value: enc("3")}, {Name: "b", Value: enc([]any{"4", 5.0})}, {Name: "c", Value: enc(2)}}
	before := append([]abi.Arg(nil), loose...)
	got, err = sig.CoerceArgs(loose)
	if err != nil {
		t.Fatal(err)
	}
	want := []abi.Arg{{Name: "a", Value: enc(3)}, {Name: "b", Value: enc([]any{4, 5})}, {Name: "c", Value: enc(2.0)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CoerceArgs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, loose); diff != "" {
		t.Errorf("CoerceArgs modified its argument:\n%s", diff)
	}
	_, err = sig.CoerceArgs([]abi.Arg{{Name: "a", Value: enc("x")}})
	var ae *abi.ArgError
	var ce *abi.CoerceError
	if !errors.As(err, &ae) || ae.Input != "a" || !errors.As(err, &ce) || err.Error() != `knot add: input "a": want int, got str "x" (not a decimal integer)` {
		t.Errorf("CoerceArgs(a: \"x\") error %v", err)
	}
	if out, err := sig.CoerceOutput(enc("7")); err != nil || !cmp.Equal(out, enc(7)) {
		t.Errorf("CoerceOutput(\"7\") = %x, %v", out, err)
	}
	if _, err := sig.CoerceOutput(enc(7.5)); err == nil || err.Error() != "knot add: output: want int, got float 7.5 (has a fractional part or is not finite)" {
		t.Errorf("CoerceOutput(7.5) error %v", err)
	}
}

// FuzzDecodeValue checks the reflection-free decoder against the CBOR
// library's (cas.Decode): whatever both accept decodes to the same value,
// and DecodeValue never accepts what is outside the data model except an
// integer above int64, which it returns as a uint64.
func FuzzDecodeValue(f *testing.F) {
	seedVectors(f)
	for _, b := range [][]byte{{0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0x9f, 0x01, 0xff}, {0xa1, 0x61, 'a', 0xf9, 0x7e, 0x00}} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := abi.DecodeValue(b)
		want, werr := cas.Decode(b)
		switch {
		case err == nil && werr == nil:
			if !sameValue(want, got) {
				t.Fatalf("DecodeValue(%x) = %#v, cas.Decode = %#v", b, got, want)
			}
		case err == nil:
			if !hasBigUint(got) {
				t.Fatalf("DecodeValue(%x) = %#v, but cas.Decode refuses it: %v", b, got, werr)
			}
		case werr == nil:
			t.Fatalf("DecodeValue(%x): %v, but cas.Decode accepts it: %#v", b, err, want)
		}
	})
}

// sameValue compares data-model values, NaN equal to NaN (cmp.Equal is
// exponential on deeply nested interfaces).
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || math.IsNaN(x) && math.IsNaN(y))
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !sameValue(v, w) {
				return false
			}
		}
		return true
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	}
	return a == b
}

func hasBigUint(v any) bool {
	switch x := v.(type) {
	case uint64:
		return true
	case []any:
		for _, e := range x {
			if hasBigUint(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if hasBigUint(e) {
				return true
			}
		}
	}
	return false
}
