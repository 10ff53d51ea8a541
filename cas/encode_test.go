package cas_test

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/cas"
)

// edgeValues are values whose encodings have their own rules: heads at
// each width boundary, floats that shrink to half or single precision or
// do not, NaN and the infinities, nil containers, keys that sort by length
// before bytes, long strings that a hashing encoder hashes in place.
func edgeValues() []any {
	vs := []any{nil, true, false, "", "héllo ✓ 𝄞", strings.Repeat("é", 400), []byte{}, []byte(nil),
		bytes.Repeat([]byte{9}, 5000), []any{}, []any(nil), map[string]any{}, map[string]any(nil)}
	for _, n := range []int64{0, 1, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, math.MaxInt64,
		-1, -24, -25, -256, -257, -65536, -65537, -1 << 32, -1<<32 - 1, math.MinInt64} {
		vs = append(vs, n, int(n), -n)
	}
	vs = append(vs, int8(-128), int16(-300), int32(-70000), uint8(255), uint16(65535), uint32(1<<32-1),
		uint(math.MaxInt64), uint64(math.MaxInt64), uint(math.MaxInt64)+1, uint64(math.MaxUint64))
	for _, f := range []float64{0, math.Copysign(0, -1), 0.5, 1.5, -2, 65504, 65505, 65520, 1e-8,
		5.960464477539063e-08, 6.103515625e-05, 1.0 / 3, float64(float32(1.0 / 3)), 1e38, 3.4028234663852886e38,
		1e39, math.MaxFloat64, math.SmallestNonzeroFloat64, math.NaN(), math.Float64frombits(0x7ff8000000000123),
		math.Float64frombits(0xfff0000000000001), math.Inf(1), math.Inf(-1), 100000, 1 << 24, 1<<24 + 1} {
		vs = append(vs, f, float32(f))
	}
	keys := map[string]any{"b": 1, "a": 2, "aa": 3, "": 4, "é": 5, "z": 6, strings.Repeat("k", 23): 7,
		strings.Repeat("k", 24): 8, strings.Repeat("a", 300): 9, "B": 10, "\x00": 11}
	many := map[string]any{} // sorted by the library's sort, not by insertion
	for i := range 60 {
		many[strings.Repeat(string(rune('a'+i%26)), 1+i%5)+fmt.Sprint(i%7)] = i
	}
	vs = append(vs, keys, many, []any{keys, keys}, map[string]any{"x": keys, "y": []any{nil, 1.5, "s"}})
	deep := any(1)
	for i := range 70 { // past the encoder's own depth, then past the decoders' limit
		if i%2 == 0 {
			deep = []any{deep}
		} else {
			deep = map[string]any{"d": deep}
		}
		vs = append(vs, deep)
	}
	// Outside the model or outside the encoder's types: the library's
	// path decides.
	vs = append(vs, "\xff", []any{"ok", "\xc3"}, map[string]any{"\xfe": 1}, []any{uint64(math.MaxUint64)},
		[]string{"a", "b"}, map[string]int{"b": 1, "a": 2}, map[int]any{1: 2}, struct{ A, B int }{1, 2},
		[]any{struct{ X string }{"x"}}, time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), map[string]any{"t": []int{1}})
	return vs
}

// randomValue builds a value of the data model's Go types.
func randomValue(r *rand.Rand, depth int) any {
	n := 12
	if depth > 4 {
		n = 9 // scalars only
	}
	switch r.IntN(n) {
	case 0:
		return nil
	case 1:
		return r.IntN(2) == 0
	case 2:
		return r.Int64() >> r.IntN(64)
	case 3:
		return -r.Int64() >> r.IntN(64)
	case 4:
		return math.Float64frombits(r.Uint64())
	case 5:
		return float64(float32(r.NormFloat64())) * float64(int(1)<<r.IntN(40))
	case 6:
		return float64(r.IntN(1 << 20))
	case 7:
		return randomText(r)
	case 8:
		b := make([]byte, r.IntN(40)+r.IntN(2)*r.IntN(2000))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	case 9, 10:
		l := make([]any, r.IntN(6))
		for i := range l {
			l[i] = randomValue(r, depth+1)
		}
		return l
	}
	m := map[string]any{}
	for range r.IntN(8) {
		m[randomText(r)] = randomValue(r, depth+1)
	}
	return m
}

func randomText(r *rand.Rand) string {
	const alphabet = "abAB_0é✓𝄞"
	runes := []rune(alphabet)
	var s strings.Builder
	for range r.IntN(6) + r.IntN(2)*r.IntN(30) {
		s.WriteRune(runes[r.IntN(len(runes))])
	}
	return s.String()
}

// TestEncoderMatchesLibrary checks that Encode and Hash give exactly the
// bytes and digest of the CBOR library's encoding, and refuse what it
// refuses, for edge values and many random ones.
func TestEncoderMatchesLibrary(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vs := edgeValues()
	for range 5000 {
		vs = append(vs, randomValue(r, 0))
	}
	big := make([]any, 5000) // more than the encoder holds before hashing
	for i := range big {
		big[i] = map[string]any{"id": i, "name": fmt.Sprintf("item-%d", i), "ok": true, "blob": bytes.Repeat([]byte{byte(i)}, i%700)}
	}
	vs = append(vs, big, map[string]any{"list": big, "also": big[:10]})
	fast := 0
	for i, v := range vs {
		want, wantErr := cas.EncodeByLibrary(v)
		got, gotErr := cas.Encode(v)
		d, hashErr := cas.Hash(v)
		if (gotErr != nil) != (wantErr != nil) || (hashErr != nil) != (wantErr != nil) {
			t.Fatalf("value %d (%T): Encode error %v, Hash error %v, library error %v", i, v, gotErr, hashErr, wantErr)
		}
		if wantErr != nil {
			continue
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("value %d (%T %.200v): Encode = %x, library = %x", i, v, v, got, want)
		}
		if d != cas.Sum(want) {
			t.Fatalf("value %d (%T %.200v): Hash = %s, Sum of the library's encoding = %s", i, v, v, d, cas.Sum(want))
		}
		if _, ok := cas.EncodeFast(v); ok {
			fast++
		}
	}
	if fast < len(vs)*9/10 {
		t.Errorf("the reflection-free encoder took %d of %d values, want most", fast, len(vs))
	}
}

// TestCanonicalizeValue checks the one-pass check and hash against
// Canonicalize and Sum, on inputs long enough to be hashed in many chunks:
// long text whose characters straddle the chunks, invalid UTF-8 at and
// around them, and inputs cut short or not canonical.
func TestCanonicalizeValue(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var ins [][]byte
	add := func(v any) {
		b, err := cas.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, b)
	}
	for range 300 {
		add(randomValue(r, 0))
	}
	records := make([]any, 3000)
	for i := range records {
		records[i] = map[string]any{"id": i, "name": fmt.Sprintf("item-%d", i), "ok": true}
	}
	add(records)
	for _, n := range []int{8190, 8191, 8192, 8193, 20000, 70001} {
		add(bytes.Repeat([]byte{1}, n))
		add(strings.Repeat("x", n))
		for _, c := range []string{"é", "✓", "𝄞"} { // 2, 3 and 4 bytes
			s := strings.Repeat("a", n%7) + strings.Repeat(c, n/len(c))
			add(s)
			add(map[string]any{s: []any{s, 1}})
		}
	}
	// Breaking them: invalid UTF-8 in long text at and around chunk
	// boundaries, cuts, and non-canonical inputs.
	long := []byte(strings.Repeat("𝄞", 9000))
	for _, at := range []int{0, 8191, 8192, 8193, 8194, 16384, 35999} {
		for _, bad := range []byte{0xff, 0x80, 0xf0} {
			s := bytes.Clone(long)
			s[at] = bad
			ins = append(ins, append(pcborText(len(s)), s...))
		}
	}
	n := len(ins)
	for _, in := range ins[:n] {
		ins = append(ins, in[:len(in)/2], append(bytes.Clone(in), 0))
	}
	ins = append(ins, []byte{0x9f, 0x01, 0xff}, []byte{0xa2, 0x61, 0x62, 0x01, 0x61, 0x61, 0x02}, []byte{0x19, 0x00, 0x01}, nil)

	for i, in := range ins {
		if v, ok := cas.HashCanonical(in); ok != cas.IsCanonical(in) || ok && (!bytes.Equal(v.Bytes, in) || v.Digest != cas.Sum(in)) {
			t.Fatalf("input %d (%d bytes): the one pass gives %.40x… %s, %v; IsCanonical %v", i, len(in), v.Bytes, v.Digest, ok, cas.IsCanonical(in))
		}
		v, err := cas.CanonicalizeValue(in)
		out, wantErr := cas.Canonicalize(in)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("input %d (%d bytes): CanonicalizeValue error %v, Canonicalize error %v", i, len(in), err, wantErr)
		}
		if err != nil {
			continue
		}
		if !bytes.Equal(v.Bytes, out) || v.Digest != cas.Sum(out) {
			t.Fatalf("input %d (%d bytes): CanonicalizeValue = %.40x… %s, want %.40x… %s", i, len(in), v.Bytes, v.Digest, out, cas.Sum(out))
		}
		if len(in) > 0 && len(v.Bytes) > 0 && &v.Bytes[0] == &in[0] {
			t.Fatalf("input %d: CanonicalizeValue returned its input's memory", i)
		}
	}
}

// pcborText is the head of a text string of n bytes, n < 2^32.
func pcborText(n int) []byte {
	return []byte{0x7a, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

// TestEncodeCyclic: a cyclic value (a parameter that holds itself, say) is
// an error from Encode and Hash, not a stack overflow that ends the
// process.
func TestEncodeCyclic(t *testing.T) {
	m := map[string]any{}
	m["self"] = []any{m}
	if _, err := cas.Encode(m); err == nil || !strings.Contains(err.Error(), "a cycle?") {
		t.Errorf("Encode: %v, want the cycle named", err)
	}
	if _, err := cas.Hash(m); err == nil {
		t.Error("Hash: no error")
	}
}
