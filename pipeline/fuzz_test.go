package pipeline_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/pipeline"
)

// FuzzParse feeds the YAML pipeline loader arbitrary text: it must not
// panic, every error it reports names the file, and a pipeline it accepts
// parses the same way again.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"../examples/pipelines/*.yaml", "../examples/*/pipeline.yaml", "../testdata/pipelines/*.yaml", "../testdata/hostile/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte("name: x\nnodes: [{id: a, type: parameter, type_: \"list[int]\", default: [1]}]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := pipeline.Parse("fuzz.yaml", b)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error")
			}
			return
		}
		s2, err := pipeline.Parse("fuzz.yaml", b)
		if err != nil {
			t.Fatalf("a second parse fails: %v", err)
		}
		if !reflect.DeepEqual(s, s2) && !sameEncoding(s, s2) { // NaN != NaN to DeepEqual
			t.Fatalf("a second parse differs:\n%+v\n%+v", s, s2)
		}
	})
}

// sameEncoding compares two specs by their deterministic CBOR encoding,
// which (unlike reflect.DeepEqual) holds a NaN default equal to itself.
func sameEncoding(a, b *pipeline.Spec) bool {
	x, errX := abi.Marshal(a)
	y, errY := abi.Marshal(b)
	return errX == nil && errY == nil && bytes.Equal(x, y)
}
