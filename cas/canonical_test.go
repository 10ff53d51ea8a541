package cas_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn/cas"
)

var update = flag.Bool("update", false, "rewrite digests in testdata/canonical.json")

type vectors struct {
	Canonical []struct {
		Name      string `json:"name"`
		Input     string `json:"input"`
		Canonical string `json:"canonical"`
		Digest    string `json:"digest"`
	} `json:"canonical"`
	Rejected []struct {
		Name  string `json:"name"`
		Input string `json:"input"`
		Error string `json:"error"`
	} `json:"rejected"`
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/canonical.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func writeVectors(t *testing.T, v vectors) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("testdata/canonical.json", append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func TestCanonicalizeVectors(t *testing.T) {
	v := loadVectors(t)
	if *update {
		t.Cleanup(func() { writeVectors(t, v) })
	}
	for i, tc := range v.Canonical {
		t.Run(tc.Name, func(t *testing.T) {
			got, err := cas.Canonicalize(unhex(t, tc.Input))
			if err != nil {
				t.Fatalf("Canonicalize(%s) error: %v", tc.Input, err)
			}
			if *update {
				v.Canonical[i].Digest = cas.Sum(got).String()
			} else if d := cas.Sum(got).String(); d != tc.Digest {
				t.Errorf("digest of %s = %s, want %s", tc.Canonical, d, tc.Digest)
			}
			if hex.EncodeToString(got) != tc.Canonical {
				t.Errorf("Canonicalize(%s) = %x, want %s", tc.Input, got, tc.Canonical)
			}
			again, err := cas.Canonicalize(got)
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("Canonicalize is not idempotent on %x: %x, %v", got, again, err)
			}
		})
	}
	for _, tc := range v.Rejected {
		t.Run(tc.Name, func(t *testing.T) {
			_, err := cas.Canonicalize(unhex(t, tc.Input))
			if err == nil {
				t.Fatalf("Canonicalize(%s) succeeded, want error containing %q", tc.Input, tc.Error)
			}
			if !errors.Is(err, cas.ErrNotCanonical) || !strings.Contains(err.Error(), tc.Error) {
				t.Errorf("Canonicalize(%s) error = %v, want ErrNotCanonical containing %q", tc.Input, err, tc.Error)
			}
		})
	}
}

func mustHash(t *testing.T, v any) cas.Digest {
	t.Helper()
	d, err := cas.Hash(v)
	if err != nil {
		t.Fatalf("Hash(%#v): %v", v, err)
	}
	return d
}

func TestHashRules(t *testing.T) {
	cases := []struct {
		name      string
		a, b      any
		wantEqual bool
	}{
		{"map key order irrelevant", map[string]any{"x": 1, "y": 2}, map[string]any{"y": 2, "x": 1}, true},
		{"list order relevant", []any{1, 2, 3}, []any{3, 2, 1}, false},
		{"5 != 5.0", 5, 5.0, false},
		{"bytes != text", []byte("hi"), "hi", false},
		{"int widths equal", int8(5), uint32(5), true},
		{"float widths equal", float32(1.5), 1.5, true},
		{"-0.0 != 0.0", math.Copysign(0, -1), 0.0, false},
		{"NaN == NaN", math.NaN(), math.Float64frombits(0x7ff8000000000001), true},
		{"null != false", nil, false, false},
		{"empty list != empty map", []any{}, map[string]any{}, false},
		{"struct is a map", struct {
			X int `cbor:"x"`
		}{1}, map[string]any{"x": 1}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := mustHash(t, tc.a), mustHash(t, tc.b)
			if (a == b) != tc.wantEqual {
				t.Errorf("Hash(%#v) = %s, Hash(%#v) = %s; equal = %v, want %v", tc.a, a, tc.b, b, a == b, tc.wantEqual)
			}
		})
	}
}

func TestHashFastPathsMatchEncode(t *testing.T) {
	for _, v := range []any{[]byte{}, []byte("hi"), bytes.Repeat([]byte{7}, 70000), "", "héllo", strings.Repeat("x", 300)} {
		b, err := cas.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := mustHash(t, v), cas.Sum(b); got != want {
			t.Errorf("Hash(%T len %d) = %s, want Sum(Encode) = %s", v, lenOf(v), got, want)
		}
	}
}

func lenOf(v any) int {
	switch x := v.(type) {
	case []byte:
		return len(x)
	case string:
		return len(x)
	}
	return -1
}

func TestEncodeRefusesOutsideModel(t *testing.T) {
	for _, v := range []any{
		map[int]string{1: "a"},
		uint64(math.MaxUint64),
		[]any{map[bool]int{true: 1}},
		"\xff",
		map[string]any{"k": []any{"ok", "\xfe"}},
		uint(math.MaxUint64),
	} {
		if _, err := cas.Encode(v); !errors.Is(err, cas.ErrNotCanonical) {
			t.Errorf("Encode(%#v) error = %v, want ErrNotCanonical", v, err)
		}
	}
}

func TestDecodeTypes(t *testing.T) {
	b, err := cas.Encode(map[string]any{"i": 5, "f": 2.5, "s": "x", "b": []byte{1}, "l": []any{true, nil}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := cas.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"i": int64(5), "f": 2.5, "s": "x", "b": []byte{1}, "l": []any{true, nil}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Decode mismatch (-want +got):\n%s", diff)
	}
}

func TestDecodeDepthLimit(t *testing.T) {
	deep := append(bytes.Repeat([]byte{0x81}, cas.MaxNestedLevels+1), 0x01)
	if _, err := cas.Decode(deep); err == nil {
		t.Errorf("Decode of %d nested arrays succeeded, want depth error", cas.MaxNestedLevels+1)
	}
	ok := append(bytes.Repeat([]byte{0x81}, cas.MaxNestedLevels-1), 0x01)
	if _, err := cas.Decode(ok); err != nil {
		t.Errorf("Decode of %d nested arrays: %v", cas.MaxNestedLevels-1, err)
	}
}

func TestDigestText(t *testing.T) {
	d := cas.Sum([]byte{0x05})
	s := d.String()
	if !strings.HasPrefix(s, "sha256:") || len(s) != 71 {
		t.Fatalf("String() = %q", s)
	}
	back, err := cas.ParseDigest(s)
	if err != nil || back != d {
		t.Errorf("ParseDigest(%q) = %v, %v; want %v", s, back, err, d)
	}
	for _, bad := range []string{"", "sha256:", "md5:" + d.Hex(), "sha256:" + strings.ToUpper(d.Hex()), "sha256:" + d.Hex()[:63] + "g"} {
		if _, err := cas.ParseDigest(bad); err == nil {
			t.Errorf("ParseDigest(%q) succeeded, want error", bad)
		}
	}
	if (cas.Digest{}).String() != "" {
		t.Errorf("zero Digest String() = %q, want empty", cas.Digest{}.String())
	}
}
