package host

import (
	"testing"

	"github.com/pirn-wasm/pirn/cas"
)

// FuzzDecodeDocument feeds the decoder of the documents Extism plugins and
// WASI commands write (JSON or CBOR, untrusted) arbitrary bytes: no panic,
// and what it accepts is a canonical value.
func FuzzDecodeDocument(f *testing.F) {
	for _, s := range []string{`{"a": [1, 2.5, "x", null, true]}`, `12345678901234567890`, `"text"`, `[[[[]]]]`, ` `, "\xa1\x61\x61\x01", `{"a":1,"a":2}`} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, json bool) {
		format := FormatCBOR
		if json {
			format = FormatJSON
		}
		v, err := decodeDocument(format, b)
		if err != nil {
			return
		}
		if !cas.IsCanonical(v) {
			t.Fatalf("decodeDocument(%s, %q) = %x, not canonical", format, b, v)
		}
	})
}
