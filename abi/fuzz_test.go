package abi_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
)

// seedVectors adds every golden vector to a fuzz corpus.
func seedVectors(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.cbor"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

// FuzzDecodeResponse feeds the decoder of guest responses (bytes a knot
// hands the host) arbitrary input: it must not panic, and what it accepts
// must encode back to a response it accepts with the same meaning.
func FuzzDecodeResponse(f *testing.F) {
	seedVectors(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := abi.DecodeResponse(b)
		if err != nil {
			return
		}
		enc, err := abi.AppendResponse(nil, &r)
		if err != nil {
			return // a value outside the data model, refused on encoding
		}
		r2, err := abi.DecodeResponse(enc)
		if err != nil {
			t.Fatalf("re-encoded response %x does not decode: %v", enc, err)
		}
		if r.Outcome != r2.Outcome {
			t.Fatalf("outcome %v became %v", r.Outcome, r2.Outcome)
		}
		if r.Outcome == abi.OutcomeOK {
			a, errA := cas.Canonicalize(r.Value)
			b, errB := cas.Canonicalize(r2.Value)
			if (errA == nil) != (errB == nil) || !bytes.Equal(a, b) {
				t.Fatalf("value %x became %x", r.Value, r2.Value)
			}
		}
	})
}

// FuzzDecodeManifest feeds the manifest decoder (bytes a module hands the
// host at load) arbitrary input: no panic, and an accepted manifest is
// valid and round-trips.
func FuzzDecodeManifest(f *testing.F) {
	seedVectors(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := abi.DecodeManifest(b)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("DecodeManifest accepted an invalid manifest: %v", err)
		}
		enc, err := abi.EncodeManifest(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := abi.DecodeManifest(enc)
		if err != nil {
			t.Fatalf("re-encoded manifest does not decode: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("the manifest changed in a round trip:\n%+v\n%+v", m, m2)
		}
	})
}

// FuzzDecodeRequest feeds the guest-side request decoder arbitrary input.
func FuzzDecodeRequest(f *testing.F) {
	seedVectors(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := abi.DecodeRequest(b)
		if err != nil {
			return
		}
		r2, err := abi.DecodeRequest(abi.AppendRequest(nil, r))
		if err != nil {
			t.Fatalf("re-encoded request does not decode: %v", err)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("the request changed in a round trip:\n%+v\n%+v", r, r2)
		}
	})
}
