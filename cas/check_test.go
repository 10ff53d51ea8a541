package cas_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/pirn-wasm/pirn/cas"
)

func TestIsCanonicalAgreesWithVectors(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.Canonical {
		in, canon := unhex(t, tc.Input), unhex(t, tc.Canonical)
		if !cas.IsCanonical(canon) {
			t.Errorf("IsCanonical(%x) = false for a canonical vector (%s)", canon, tc.Name)
		}
		if got := cas.IsCanonical(in); got != bytes.Equal(in, canon) {
			t.Errorf("IsCanonical(%x) = %v (%s)", in, got, tc.Name)
		}
	}
	for _, tc := range v.Rejected {
		if cas.IsCanonical(unhex(t, tc.Input)) {
			t.Errorf("IsCanonical(%s) = true for a rejected input (%s)", tc.Input, tc.Name)
		}
	}
}

// TestIsCanonicalFloats checks the float rule against the encoder on many
// floats, including float16 and float32 subnormals and boundaries.
func TestIsCanonicalFloats(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 65504, 65505, 1e-8, 5.960464477539063e-08, 6.1e-5,
		math.SmallestNonzeroFloat32, math.MaxFloat32, math.SmallestNonzeroFloat64, math.MaxFloat64, 1.0 / 3}
	for range 20000 {
		switch r.IntN(3) {
		case 0:
			floats = append(floats, math.Float64frombits(r.Uint64()))
		case 1:
			floats = append(floats, float64(math.Float32frombits(r.Uint32())))
		case 2:
			floats = append(floats, float64(r.IntN(1<<12))*math.Pow(2, float64(r.IntN(60)-40)))
		}
	}
	for _, f := range floats {
		enc, err := cas.Encode(f)
		if err != nil {
			t.Fatal(err)
		}
		if !cas.IsCanonical(enc) {
			t.Fatalf("IsCanonical(Encode(%v) = %x) = false", f, enc)
		}
		if math.IsNaN(f) {
			continue
		}
		wide := binary.BigEndian.AppendUint64([]byte{0xfb}, math.Float64bits(f))
		if want := len(enc) == 9; cas.IsCanonical(wide) != want {
			t.Fatalf("IsCanonical(float64 %v) = %v, want %v (encoder wrote %x)", f, !want, want, enc)
		}
	}
}

func TestCanonicalizeDoesNotAlias(t *testing.T) {
	in, _ := cas.Encode([]any{1, "x"})
	out, err := cas.Canonicalize(in)
	if err != nil {
		t.Fatal(err)
	}
	in[1] = 0xff
	if out[1] == 0xff {
		t.Error("Canonicalize returned its input's memory")
	}
}

func BenchmarkCanonicalize(b *testing.B) {
	for name, v := range map[string]any{
		"int":        42,
		"small-map":  map[string]any{"id": 1, "name": "alice", "tags": []any{"a", "b"}, "score": 0.5},
		"bytes-1MiB": bytes.Repeat([]byte{7}, 1<<20),
	} {
		enc, _ := cas.Encode(v)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				if _, err := cas.Canonicalize(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzCanonicalize checks that the fast canonical check and the decode and
// re-encode agree: what Canonicalize returns is canonical and fixed, and
// bytes IsCanonical accepts come back unchanged.
func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{"05", "f94500", "a2617801617902", "9f010203ff", "fb3fb999999999999a", "c11a514b67b0", "a10102"} {
		b := make([]byte, len(s)/2)
		for i := range b {
			var x byte
			for _, c := range s[2*i : 2*i+2] {
				x <<= 4
				if c >= 'a' {
					x |= byte(c-'a') + 10
				} else {
					x |= byte(c - '0')
				}
			}
			b[i] = x
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := cas.Canonicalize(b)
		// Working on the bytes gives what decoding and encoding gave.
		old, oldErr := cas.CanonicalizeByDecoding(b)
		if (err == nil) != (oldErr == nil) || err == nil && !bytes.Equal(out, old) {
			t.Fatalf("Canonicalize(%x) = %x, %v; by decoding: %x, %v", b, out, err, old, oldErr)
		}
		// The one-pass check and hash agrees with the two passes.
		if v, verr := cas.CanonicalizeValue(b); (verr == nil) != (err == nil) || err == nil && (!bytes.Equal(v.Bytes, out) || v.Digest != cas.Sum(out)) {
			t.Fatalf("CanonicalizeValue(%x) = %x %s, %v; Canonicalize: %x, %v", b, v.Bytes, v.Digest, verr, out, err)
		}
		if _, ok := cas.HashCanonical(b); ok != cas.IsCanonical(b) {
			t.Fatalf("HashCanonical(%x) ok = %v, IsCanonical %v", b, ok, !ok)
		}
		if cas.IsCanonical(b) {
			if err != nil || !bytes.Equal(out, b) {
				t.Fatalf("IsCanonical(%x) but Canonicalize = %x, %v", b, out, err)
			}
		}
		if err != nil {
			return
		}
		// The reflection-free decoder of canonical input agrees with the
		// general one.
		fast, err := cas.Decode(out)
		if err != nil {
			t.Fatalf("Decode(%x): %v", out, err)
		}
		var slow any
		if err := cas.DecodeGeneral(out, &slow); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fast, slow) && !hasNaN(slow) {
			t.Fatalf("Decode(%x) = %#v, the general decoder %#v", out, fast, slow)
		}
		if !cas.IsCanonical(out) {
			t.Fatalf("Canonicalize(%x) = %x, which IsCanonical rejects", b, out)
		}
		again, err := cas.Canonicalize(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("Canonicalize is not idempotent on %x: %x, %v", out, again, err)
		}
		// encode → decode → encode is stable.
		enc, err := cas.Encode(fast)
		if err != nil || !bytes.Equal(enc, out) {
			t.Fatalf("Encode(Decode(%x)) = %x, %v", out, enc, err)
		}
	})
}

func hasNaN(v any) bool {
	switch x := v.(type) {
	case float64:
		return math.IsNaN(x)
	case []any:
		for _, e := range x {
			if hasNaN(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if hasNaN(e) {
				return true
			}
		}
	}
	return false
}
