package pcbor_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn/internal/pcbor"
)

func TestHeadRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n    uint64
		size int // shortest head
	}{
		{0, 1}, {23, 1}, {24, 2}, {0xff, 2}, {0x100, 3}, {0xffff, 3}, {0x10000, 5},
		{math.MaxUint32, 5}, {math.MaxUint32 + 1, 9}, {math.MaxUint64, 9},
	}
	for _, major := range []byte{pcbor.Uint, pcbor.Neg, pcbor.Bytes, pcbor.Text, pcbor.Array, pcbor.Map, pcbor.Tag} {
		for _, tc := range tests {
			b := pcbor.AppendHead(nil, major, tc.n)
			if len(b) != tc.size {
				t.Errorf("AppendHead(nil, %#x, %d) = %x, want %d bytes", major, tc.n, b, tc.size)
			}
			m, _, arg, n, err := pcbor.ReadHead(b)
			if err != nil || m != major || arg != tc.n || n != len(b) {
				t.Errorf("ReadHead(%x) = %#x, %d, %d, %v; want %#x, %d, %d, nil", b, m, arg, n, err, major, tc.n, len(b))
			}
			if _, _, _, _, err := pcbor.ReadHead(b[:len(b)-1]); len(b) > 1 && !errors.Is(err, pcbor.ErrTruncated) {
				t.Errorf("ReadHead(%x) = %v, want ErrTruncated", b[:len(b)-1], err)
			}
		}
	}
}

// TestAppendMap checks the framing of already-encoded values against the
// encoder's own encoding of the same map.
func TestAppendMap(t *testing.T) {
	t.Parallel()
	type entry struct {
		k string
		v any
	}
	for _, entries := range [][]entry{
		nil,
		{{"a", int64(1)}},
		{{"x", "y"}, {"aa", []any{1.5, nil}}, {strings.Repeat("k", 30), map[string]any{"n": true}}},
	} {
		want := make(map[string]any, len(entries))
		for _, e := range entries {
			want[e.k] = e.v
		}
		wantB, err := pcbor.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		// Canonical key order: shorter first, then bytewise (the entries
		// above are already so).
		got := pcbor.AppendMap([]byte("prefix"), entries, func(e entry) (string, []byte) {
			b, err := pcbor.Marshal(e.v)
			if err != nil {
				t.Fatal(err)
			}
			return e.k, b
		})
		if !bytes.Equal(got, append([]byte("prefix"), wantB...)) {
			t.Errorf("AppendMap(%v) = %x, want prefix and %x", entries, got, wantB)
		}
	}
}

// TestDecodeModes checks what tells the three decoding modes apart.
func TestDecodeModes(t *testing.T) {
	t.Parallel()
	type knot struct {
		A int64 `cbor:"a"`
	}
	unknownKey := []byte{0xa2, 0x61, 'a', 0x01, 0x61, 'b', 0x02} // {"a": 1, "b": 2}
	if err := pcbor.UnmarshalMessage(unknownKey, new(knot)); err == nil {
		t.Error("UnmarshalMessage of an unknown key = nil, want an error")
	}
	var k knot
	if err := pcbor.UnmarshalValue(unknownKey, &k); err != nil || k.A != 1 {
		t.Errorf("UnmarshalValue of an unknown key = %+v, %v; want {A:1}, nil", k, err)
	}

	simple := []byte{0xe0} // simple value 0: outside the data model
	var v any
	if err := pcbor.UnmarshalValue(simple, &v); err != nil {
		t.Errorf("UnmarshalValue(simple 0) = %v, want nil", err)
	}
	if err := pcbor.UnmarshalModel(simple, &v); err == nil {
		t.Error("UnmarshalModel(simple 0) = nil, want an error")
	}

	var m any
	if err := pcbor.UnmarshalModel([]byte{0xa1, 0x61, 'a', 0x01}, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.(map[string]any)["a"].(int64); !ok {
		t.Errorf("UnmarshalModel into any = %#v, want map[string]any of int64", m)
	}

	for name, dec := range map[string]func([]byte, any) error{
		"UnmarshalMessage": pcbor.UnmarshalMessage, "UnmarshalValue": pcbor.UnmarshalValue, "UnmarshalModel": pcbor.UnmarshalModel,
	} {
		deep := append(bytes.Repeat([]byte{0x81}, pcbor.MaxNestedLevels+1), 0x00)
		if err := dec(deep, new(any)); err == nil {
			t.Errorf("%s of %d nested arrays = nil, want an error", name, pcbor.MaxNestedLevels+1)
		}
		if err := dec([]byte{0xc1, 0x00}, new(any)); err == nil {
			t.Errorf("%s of a tag = nil, want an error", name)
		}
		if err := dec([]byte{0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02}, new(any)); err == nil {
			t.Errorf("%s of a duplicate key = nil, want an error", name)
		}
	}
}
