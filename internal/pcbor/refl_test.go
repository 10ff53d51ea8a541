//go:build !wasip1

package pcbor

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// The reflective codec (what Go knot modules use) against the CBOR
// library (what the host uses): the same bytes for the same values, and
// the same values, or an error from both, for the same bytes.

type point struct {
	X, Y int
}

type tagged struct {
	A     int               `cbor:"a"`
	B     string            `json:"b"`
	C     []int             `cbor:"c,omitempty"`
	D     *int              `cbor:"d,omitempty"`
	E     map[string]any    `cbor:"e,omitzero"`
	F     time.Time         `cbor:"f,omitzero"`
	G     time.Time         `cbor:"g"`
	H     float32           `cbor:"h,omitempty"`
	I     any               `cbor:"i"`
	J     []byte            `cbor:"j"`
	K     [3]byte           `cbor:"k"`
	L     point             `cbor:"l,omitempty"`
	M     RawMessage        `cbor:"m,omitzero"`
	N     uint64            `cbor:"n"`
	Skip  int               `cbor:"-"`
	Long  string            `cbor:"a_rather_longer_name_than_twenty_four"`
	Ints  map[int]string    `cbor:"ints"`
	Ptrs  []*point          `cbor:"ptrs"`
	Bytes map[string][]byte `cbor:"bytes,omitempty"`
	hide  int
}

type Inner struct {
	X    int `cbor:"x"`
	Deep string
}

type Other struct {
	X int `cbor:"x"` // collides with Inner's x at the same depth: both dropped
	Y int
}

type embeds struct {
	Inner
	*Other
	Y    string // shallower than Other's Y: wins
	Name string `json:"name,omitempty"`
}

type asArray struct {
	_ struct{} `cbor:",toarray"`
	A int
	B string
	C []float64
}

type intKeys struct {
	A int    `cbor:"1,keyasint"`
	B string `cbor:"-2,keyasint"`
	C bool   `cbor:"c"`
}

type custom struct{ n int }

func (c custom) MarshalCBOR() ([]byte, error) { return []byte{0x82, 0x01, byte(c.n)}, nil }
func (c *custom) UnmarshalCBOR(b []byte) error {
	if len(b) != 3 || b[0] != 0x82 {
		return errors.New("custom: want a pair")
	}
	c.n = int(b[2])
	return nil
}

type binary [2]byte

func (b binary) MarshalBinary() ([]byte, error) { return []byte{b[1], b[0]}, nil }
func (b *binary) UnmarshalBinary(d []byte) error {
	if len(d) != 2 {
		return errors.New("binary: want 2 bytes")
	}
	b[0], b[1] = d[1], d[0]
	return nil
}

type zeroer struct{ V int }

func (z zeroer) IsZero() bool { return z.V < 0 }

type withCustom struct {
	C  custom  `cbor:"c"`
	P  *custom `cbor:"p"`
	B  binary  `cbor:"b"`
	BE binary  `cbor:"be,omitempty"`
	Z  zeroer  `cbor:"z,omitzero"`
	Z2 zeroer  `cbor:"z2,omitzero"`
}

func encodeCases() []any {
	seven := 7
	tm := time.Date(2026, 12, 4, 13, 4, 5, 123456789, time.FixedZone("x", 5*3600+30*60))
	return []any{
		nil, true, false,
		0, 1, 23, 24, 255, 256, 65535, 65536, 1 << 32, math.MaxInt64, math.MinInt64, -1, -24, -25, -256, -257,
		int8(-128), int16(300), int32(-70000), uint8(200), uint16(65535), uint32(1 << 31), uint64(math.MaxUint64), uint(9),
		0.0, math.Copysign(0, -1), 1.0, 1.5, 65504.0, 65505.0, 1e300, 3.4028234663852886e38, 1e-7, 5.960464477539063e-8,
		float32(0.1), float32(1.5), float32(math.Inf(-1)), math.Inf(1), math.NaN(), math.SmallestNonzeroFloat64,
		"", "a", "héllo", strings.Repeat("x", 300), "\xff\xfe",
		[]byte(nil), []byte{}, []byte{1, 2, 3}, [4]byte{9, 8, 7, 6}, [0]int{},
		[]int(nil), []int{}, []int{1, -2, 3}, [2]string{"a", "b"}, []any{1, "two", 3.5, nil, []any{true}},
		map[string]int(nil), map[string]int{}, map[string]int{"b": 1, "a": 2, "aa": 3, "": 4},
		map[int]string{10: "x", -1: "y", 1000: "z"}, map[any]any{"k": 1, 2: "v", false: nil},
		map[string]any{"nested": map[string]any{"list": []any{1, 2}, "m": map[string]any{}}},
		&seven, (*int)(nil), []*int{&seven, nil},
		tm, tm.UTC(), time.Time{}, time.Unix(0, 0).UTC(), []time.Time{tm, {}},
		point{1, 2}, &point{3, 4},
		tagged{A: 1, B: "b", G: tm, I: map[string]any{"z": 1}, K: [3]byte{1, 2, 3}, Ints: map[int]string{3: "c", 1: "a"}, Ptrs: []*point{{1, 1}, nil}, hide: 9},
		tagged{C: []int{}, D: &seven, E: map[string]any{}, F: tm, H: 2.5, M: RawMessage{0x83, 1, 2, 3}, N: math.MaxUint64, Long: "l", Bytes: map[string][]byte{"x": nil}},
		embeds{Inner: Inner{X: 1, Deep: "d"}, Other: &Other{X: 2, Y: 3}, Y: "top"},
		embeds{Inner: Inner{X: 1, Deep: "d"}},
		asArray{A: 1, B: "b", C: []float64{1.1, 2}},
		[]asArray{{}, {A: -5}},
		intKeys{A: 1, B: "two", C: true},
		withCustom{C: custom{5}, P: &custom{6}, B: binary{1, 2}, Z: zeroer{-1}, Z2: zeroer{3}},
		withCustom{},
		big.NewInt(-42), *big.NewInt(1 << 40), new(big.Int).SetUint64(math.MaxUint64),
		struct {
			Anon  map[string][]map[string]int
			Iface any
		}{map[string][]map[string]int{"a": {{"b": 1}}}, []byte("x")},
	}
}

func TestMarshalReflectMatchesLibrary(t *testing.T) {
	for i, v := range encodeCases() {
		want, werr := Marshal(v)
		got, gerr := MarshalReflect(v)
		if (werr != nil) != (gerr != nil) {
			t.Errorf("case %d (%T %v): library error %v, reflective error %v", i, v, v, werr, gerr)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("case %d (%T %+v):\n got %x\nwant %x", i, v, v, got, want)
		}
	}
}

func TestMarshalReflectRefuses(t *testing.T) {
	type cyclic struct{ Next any }
	c := &cyclic{}
	c.Next = c
	m := map[string]any{}
	m["self"] = m
	type list []list
	l := list{nil}
	l[0] = l
	for _, v := range []any{
		make(chan int), func() {}, complex(1, 2), uintptr(1), c, m, l,
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		new(big.Int).Lsh(big.NewInt(1), 70),
		custom{n: 300}, // MarshalCBOR writes a malformed item (byte(300) truncates, the pair is still whole)
	} {
		_, rerr := MarshalReflect(v)
		_, lerr := Marshal(v)
		if _, ok := v.(*big.Int); !ok && rerr != nil && lerr == nil { // a bignum tag is outside the data model
			t.Errorf("%T: the reflective encoder refuses (%v), the library does not", v, rerr)
		}
		if rerr == nil && lerr != nil {
			t.Errorf("%T: the library refuses (%v), the reflective encoder does not", v, lerr)
		}
		if _, ok := v.(custom); ok {
			continue
		}
		if rerr == nil {
			t.Errorf("%T: no error", v)
		}
	}
}

// TestMarshalDepth: values nested 4,000 lists deep (8,000 steps: an
// interface and a slice each) encode with both encoders; 6,000 lists deep
// is an error from both, as a cycle is (the library alone would overflow
// the stack on a cycle). Values of types that cannot nest are not walked.
func TestMarshalDepth(t *testing.T) {
	nest := func(n int) any {
		var v any = 1
		for range n {
			v = []any{v}
		}
		return v
	}
	for _, enc := range []func(any) ([]byte, error){Marshal, MarshalReflect} {
		if _, err := enc(nest(4000)); err != nil {
			t.Errorf("4,000 levels: %v", err)
		}
		if _, err := enc(nest(6000)); !errors.Is(err, errTooDeep) {
			t.Errorf("6,000 levels: %v, want errTooDeep", err)
		}
	}
	type shallow struct {
		A []map[string][]int
		B *point
	}
	for typ, want := range map[reflect.Type]bool{
		reflect.TypeFor[shallow]():        true,
		reflect.TypeFor[map[string]any](): false,
		reflect.TypeFor[tagged]():         false, // its I is an any
		reflect.TypeFor[[][]byte]():       true,
	} {
		if got := flat(typ); got != want {
			t.Errorf("flat(%v) = %v, want %v", typ, got, want)
		}
	}
}

// decodeTargets returns fresh pointers to values of the types decoding is
// compared on.
func decodeTargets() []func() any {
	return []func() any{
		func() any { return new(any) },
		func() any { return new(int) },
		func() any { return new(int8) },
		func() any { return new(uint16) },
		func() any { return new(float32) },
		func() any { return new(float64) },
		func() any { return new(string) },
		func() any { return new(bool) },
		func() any { return new([]byte) },
		func() any { return new([2]byte) },
		func() any { return new([]int) },
		func() any { return new([2]int) },
		func() any { return new([]any) },
		func() any { return new(map[string]int) },
		func() any { return new(map[string]any) },
		func() any { return new(map[int]string) },
		func() any { return new(*int) },
		func() any { return new(time.Time) },
		func() any { return new(point) },
		func() any { return new(tagged) },
		func() any { return new(embeds) },
		func() any { return new(asArray) },
		func() any { return new(intKeys) },
		func() any { return new(withCustom) },
	}
}

func decodeInputs() [][]byte {
	var in [][]byte
	for _, v := range encodeCases() {
		if b, err := Marshal(v); err == nil {
			in = append(in, b)
		}
	}
	for _, h := range []string{
		"a2617801617902",       // {"x": 1, "y": 2}
		"a2615801617902",       // {"X": 1, "y": 2}: case-insensitive match
		"a3617801617902617a03", // an unknown key
		"a2617801617801",       // a duplicate key
		"a2617801615801",       // x and X: the same field twice
		"bf6178016179ff",       // indefinite-length map
		"9f0102ff",             // indefinite-length array
		"7f6161626263ff",       // indefinite-length text
		"5f4101420203ff",       // indefinite-length bytes
		"83010203",             // three items into [2]int
		"81f6",                 // [null]
		"f6", "f7", "f4", "f5", // null, undefined, false, true
		"1bffffffffffffffff", // 2^64-1
		"3bffffffffffffffff", // -2^64
		"3b7fffffffffffffff", // math.MinInt64
		"fb7ff0000000000000", // +Inf
		"fbc7efffffffffffff", // overflows float32
		"f97e00",             // NaN
		"c11a514b67b0",       // a tag
		"74323032362d31322d30345431333a30343a30355a", // "2026-12-04T13:04:05Z"
		"6a6e6f7420612074696d65",                     // "not a time"
		"1a514b67b0",                                 // seconds
		"fb41d4524d9f0c000000",                       // float seconds
		"a16161a0",                                   // {"a": {}}
		"a1016161",                                   // {1: "a"}
		"a1a0016161",                                 // a map key that is a map
		"62c328",                                     // invalid UTF-8
		"8301",                                       // truncated
		"0102",                                       // trailing bytes
		"f0",                                         // simple value 16
		"f820",                                       // simple value 32
		"830102",                                     // an array cut short
		"a1616c8201f6",                               // "l": [1, null] into a struct (not toarray)
		"83016162f6",                                 // toarray with null
		"a2613102622d326174",                         // keyasint as text keys
		"a201010061",                                 // int keys
		"a3010121627477636301f5",                     // int keys, one of each
	} {
		b, err := hex.DecodeString(h)
		if err != nil {
			panic(h)
		}
		in = append(in, b)
	}
	return in
}

func TestUnmarshalReflectMatchesLibrary(t *testing.T) {
	for _, strict := range []bool{false, true} {
		lib := UnmarshalValue
		if strict {
			lib = UnmarshalMessage
		}
		for _, in := range decodeInputs() {
			for _, target := range decodeTargets() {
				want, got := target(), target()
				if strict && hasAny(want) {
					continue // the strict mode decodes messages, whose types hold no any
				}
				werr := lib(in, want)
				gerr := UnmarshalReflect(in, got, strict)
				if werr == nil && gerr != nil && stricter(gerr) {
					continue
				}
				if (werr != nil) != (gerr != nil) {
					t.Errorf("strict %v, %x into %T: library error %v, reflective error %v", strict, in, want, werr, gerr)
					continue
				}
				if werr == nil && !equalValues(want, got) {
					t.Errorf("strict %v, %x into %T:\n got %#v\nwant %#v", strict, in, want, deref(got), deref(want))
				}
			}
		}
	}
}

// stricter reports whether err is one of the reflective decoder's refusals
// of what the library lets through and pirn never sends: simple values
// other than false, true, null and undefined (the library hands them over
// as numbers), invalid UTF-8 in a value it skips (it checks text only
// where it decodes it), and map keys other than text in an any (the data
// model's maps have text keys).
func stricter(err error) bool {
	for _, s := range []string{"not in the data model", "invalid UTF-8", "keys must be text"} {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}

// hasAny reports whether the value p points to has an any in its type.
func hasAny(p any) bool {
	switch p.(type) {
	case *any, *[]any, *map[string]any, *tagged:
		return true
	}
	return false
}

func deref(p any) any { return reflect.ValueOf(p).Elem().Interface() }

// equalValues compares decoded values, with NaNs equal and times by instant
// and offset.
func equalValues(a, b any) bool {
	ab, err1 := Marshal(a)
	bb, err2 := Marshal(b)
	if err1 != nil || err2 != nil {
		return reflect.DeepEqual(a, b)
	}
	return bytes.Equal(ab, bb)
}

// FuzzUnmarshalReflect decodes arbitrary bytes into a few types with both
// decoders and compares the outcome; what decodes re-encodes alike.
func FuzzUnmarshalReflect(f *testing.F) {
	for _, in := range decodeInputs() {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, target := range []func() any{
			func() any { return new(any) },
			func() any { return new(tagged) },
			func() any { return new(embeds) },
			func() any { return new(map[string][]int) },
			func() any { return new(asArray) },
		} {
			want, got := target(), target()
			werr := UnmarshalValue(in, want)
			gerr := UnmarshalReflect(in, got, false)
			if werr == nil && gerr != nil && stricter(gerr) {
				continue
			}
			if (werr != nil) != (gerr != nil) {
				t.Fatalf("%x into %T: library error %v, reflective error %v", in, want, werr, gerr)
			}
			if werr != nil {
				continue
			}
			if !equalValues(want, got) {
				t.Fatalf("%x into %T:\n got %#v\nwant %#v", in, want, deref(got), deref(want))
			}
			lb, lerr := Marshal(want)
			rb, rerr := MarshalReflect(got)
			if (lerr != nil) != (rerr != nil) || !bytes.Equal(lb, rb) {
				t.Fatalf("%x into %T re-encodes as %x (%v) and %x (%v)", in, want, lb, lerr, rb, rerr)
			}
		}
	})
}

// TestRawMessage checks abi's message type against the library's own: it
// encodes and decodes alike inside a struct, omitzero leaving it out when
// empty.
func TestRawMessage(t *testing.T) {
	type theirs struct {
		D cbor.RawMessage `cbor:"d,omitempty"`
	}
	type ours struct {
		D RawMessage `cbor:"d,omitzero"`
	}
	for _, d := range [][]byte{nil, {0x01}, {0x82, 0x01, 0x02}} {
		want, _ := Marshal(theirs{D: d})
		for name, enc := range map[string]func(any) ([]byte, error){"library": Marshal, "reflective": MarshalReflect} {
			got, err := enc(ours{D: d})
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %x encodes as %x (%v), want %x", name, d, got, err, want)
			}
		}
		var o ours
		if err := UnmarshalReflect(want, &o, true); err != nil || !bytes.Equal(o.D, d) {
			t.Errorf("decode %x: %x (%v), want %x", want, o.D, err, d)
		}
	}
}
