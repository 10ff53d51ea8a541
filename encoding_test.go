package pirn_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
)

// TestMarshalAndEncodeAgree encodes each kind of Go value through abi (what
// a Go knot and a host-native Func write) and through cas (what constants,
// parameters and expressions are written with): the bytes must be the
// same, so that one value has one digest whoever encodes it. A value
// outside the data model is refused by cas.Encode alone.
func TestMarshalAndEncodeAgree(t *testing.T) {
	t.Parallel()
	type inner struct {
		N int `cbor:"n"`
	}
	type Embedded struct {
		E string `cbor:"e"`
	}
	type tagged struct {
		Embedded
		Name    string         `cbor:"name"`
		Age     int            `cbor:"age,omitempty"`
		Hidden  string         `cbor:"-"`
		Inner   *inner         `cbor:"inner"`
		Missing *inner         `cbor:"missing"`
		When    time.Time      `cbor:"when"`
		Extra   map[string]any `cbor:"extra,omitempty"`
		Plain   float32
	}
	seven := 7
	zone := time.FixedZone("IST", 5*3600+30*60)
	stamp := time.Date(2026, 12, 3, 14, 6, 7, 123456789, zone)
	huge, _ := new(big.Int).SetString("18446744073709551616", 10) // 2^64

	tests := []struct {
		name    string
		v       any
		want    string // hex of the encoding, if given
		outside bool   // outside the data model: cas.Encode refuses it
	}{
		{name: "nil", v: nil, want: "f6"},
		{name: "false", v: false, want: "f4"},
		{name: "true", v: true, want: "f5"},
		{name: "int 0", v: 0, want: "00"},
		{name: "int 23", v: 23, want: "17"},
		{name: "int 24", v: 24, want: "1818"},
		{name: "int -1", v: -1, want: "20"},
		{name: "int 1<<32", v: 1 << 32, want: "1b0000000100000000"},
		{name: "int8", v: int8(math.MinInt8), want: "387f"},
		{name: "int16", v: int16(math.MinInt16), want: "397fff"},
		{name: "int32", v: int32(math.MinInt32), want: "3a7fffffff"},
		{name: "int64 min", v: int64(math.MinInt64), want: "3b7fffffffffffffff"},
		{name: "int64 max", v: int64(math.MaxInt64), want: "1b7fffffffffffffff"},
		{name: "uint", v: uint(500), want: "1901f4"},
		{name: "uint8", v: uint8(math.MaxUint8), want: "18ff"},
		{name: "uint16", v: uint16(math.MaxUint16), want: "19ffff"},
		{name: "uint32", v: uint32(math.MaxUint32), want: "1affffffff"},
		{name: "uint64 within int64", v: uint64(math.MaxInt64), want: "1b7fffffffffffffff"},
		{name: "uint64 beyond int64", v: uint64(math.MaxInt64 + 1), want: "1b8000000000000000", outside: true},
		{name: "uint beyond int64", v: uint(math.MaxUint64), want: "1bffffffffffffffff", outside: true},
		{name: "float64 1", v: 1.0, want: "f93c00"},
		{name: "float64 0.1", v: 0.1, want: "fb3fb999999999999a"},
		{name: "float64 1e300", v: 1e300},
		{name: "float64 subnormal", v: 5e-324, want: "fb0000000000000001"},
		{name: "float64 max half", v: 65504.0, want: "f97bff"},
		{name: "float64 NaN", v: math.NaN(), want: "f97e00"},
		{name: "float64 +Inf", v: math.Inf(1), want: "f97c00"},
		{name: "float64 -Inf", v: math.Inf(-1), want: "f9fc00"},
		{name: "float64 -0", v: math.Copysign(0, -1), want: "f98000"},
		{name: "float32 1.5", v: float32(1.5), want: "f93e00"},
		{name: "float32 0.1", v: float32(0.1), want: "fa3dcccccd"},
		{name: "float32 NaN", v: float32(math.NaN()), want: "f97e00"},
		{name: "float32 -Inf", v: float32(math.Inf(-1)), want: "f9fc00"},
		{name: "float32 -0", v: float32(math.Copysign(0, -1)), want: "f98000"},
		{name: "empty string", v: "", want: "60"},
		{name: "string", v: "héllo", want: "6668c3a96c6c6f"},
		{name: "long string", v: strings.Repeat("x", 300)},
		{name: "invalid UTF-8", v: "\xff", want: "61ff", outside: true},
		{name: "bytes", v: []byte{1, 2, 3}, want: "43010203"},
		{name: "empty bytes", v: []byte{}, want: "40"},
		{name: "nil bytes", v: []byte(nil), want: "f6"},
		{name: "byte array", v: [2]byte{1, 2}, want: "420102"},
		{name: "list", v: []any{int64(1), "a", nil, 2.5}, want: "84016161f6f94100"},
		{name: "empty list", v: []any{}, want: "80"},
		{name: "nil list", v: []any(nil), want: "f6"},
		{name: "list of str", v: []string{"a", "b"}, want: "8261616162"},
		{name: "int array", v: [3]int{1, 2, 3}, want: "83010203"},
		{name: "dict", v: map[string]any{"b": 1, "a": 2, "aa": 3}, want: "a3616102616201626161" + "03"},
		{name: "empty dict", v: map[string]any{}, want: "a0"},
		{name: "nil dict", v: map[string]any(nil), want: "f6"},
		{name: "dict of int", v: map[string]int{"z": 1, "y": 2}, want: "a2617902617a01"},
		{name: "int-keyed dict", v: map[int]any{1: 2}, want: "a10102", outside: true},
		{name: "nested", v: map[string]any{"l": []any{map[string]any{"m": []byte("x"), "t": stamp}}, "n": nil}},
		{name: "pointer", v: &seven, want: "07"},
		{name: "nil pointer", v: (*int)(nil), want: "f6"},
		{name: "struct with cbor tags", v: tagged{
			Embedded: Embedded{E: "e"}, Name: "n", Hidden: "h", Inner: &inner{N: 1}, When: stamp, Plain: 0.5,
		}},
		{name: "struct, omitempty set", v: tagged{Age: 3, Extra: map[string]any{"k": []any{}}}},
		{name: "time with nanoseconds, non-UTC zone", v: stamp,
			want: "78" + "23" + hex.EncodeToString([]byte("2026-12-03T14:06:07.123456789+05:30"))},
		{name: "time in UTC", v: stamp.UTC(),
			want: "78" + "1e" + hex.EncodeToString([]byte("2026-12-03T08:36:07.123456789Z"))},
		{name: "time, whole seconds", v: time.Date(2000, 1, 2, 3, 4, 5, 0, time.UTC),
			want: "74" + hex.EncodeToString([]byte("2000-01-02T03:04:05Z"))},
		{name: "zero time", v: time.Time{}, want: "f6"},
		{name: "time pointer", v: &stamp},
		{name: "duration", v: 1500 * time.Millisecond, want: "1a59682f00"},
		{name: "big int within int64", v: big.NewInt(-5), want: "24"},
		{name: "big int beyond uint64", v: huge, want: "c249010000000000000000", outside: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := abi.Marshal(tc.v)
			if err != nil {
				t.Fatalf("abi.Marshal(%v) = %v", tc.v, err)
			}
			if tc.want != "" {
				if got := hex.EncodeToString(m); got != tc.want {
					t.Errorf("abi.Marshal(%v) = %s, want %s", tc.v, got, tc.want)
				}
			}
			e, err := cas.Encode(tc.v)
			if tc.outside {
				if !errors.Is(err, cas.ErrNotCanonical) {
					t.Errorf("cas.Encode(%v) = %x, %v; want an error wrapping ErrNotCanonical", tc.v, e, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("cas.Encode(%v) = %v", tc.v, err)
			}
			if !bytes.Equal(e, m) {
				t.Errorf("cas.Encode(%v) = %x, want abi.Marshal's %x", tc.v, e, m)
			}
			if !cas.IsCanonical(m) {
				t.Errorf("abi.Marshal(%v) = %x is not canonical", tc.v, m)
			}
		})
	}
}

// TestFuncTimeHashesAsConstant is issue 10's case end to end: a time
// returned by a host-native Func (encoded through abi, as a Go knot's
// output is) and the same time given as a constant (encoded by cas) reach
// an expression as the same text and hash the same.
func TestFuncTimeHashesAsConstant(t *testing.T) {
	t.Parallel()
	stamp := time.Date(2026, 12, 3, 14, 6, 7, 123456789, time.FixedZone("", -7*3600))
	type out struct {
		At time.Time `cbor:"at"`
	}
	fn := pirn.Func("stamp", func(context.Context, struct{}) (out, error) { return out{At: stamp}, nil })

	tp := pirn.NewTapestry()
	f, err := tp.Knot("fn", fn, pirn.In{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Knot("same", pirn.Expr(`fn.at == t && t == "2026-12-03T14:06:07.123456789-07:00"`), pirn.In{"fn": f, "t": stamp}); err != nil {
		t.Fatal(err)
	}
	res, err := open(t, pirn.Config{}).Run(t.Context(), tp, pirn.RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Outputs["same"]; got != true {
		t.Errorf("the Func's time equals the constant's: %v, want true", got)
	}
	if got, want := res.Values["fn"].Digest, digest(t, map[string]any{"at": stamp}); got != want {
		t.Errorf("the Func's output hashes to %v, want cas.Hash's %v", got, want)
	}
}
