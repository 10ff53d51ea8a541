package pipeline_test

import (
	"os"
	"path/filepath"
	"testing"

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
		if err != nil || len(s2.Nodes) != len(s.Nodes) {
			t.Fatalf("a second parse differs: %v", err)
		}
	})
}
