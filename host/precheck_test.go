package host

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrecheckAcceptsEveryModule runs the structural check on every
// module the repository commits but the deliberately malformed ones: each
// passes, and the log shows how far each is from the bounds.
func TestPrecheckAcceptsEveryModule(t *testing.T) {
	var worst shape
	filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".wasm") || strings.Contains(p, "/target/") || strings.Contains(p, "node_modules") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		_, st, err := scan(b)
		if err != nil {
			if strings.Contains(p, "hostile/bad") {
				return nil
			}
			t.Errorf("%s: %v", p, err)
			return nil
		}
		t.Logf("%-60s %+v", p, st)
		worst = shape{max(worst.Functions, st.Functions), max(worst.Nesting, st.Nesting), max(worst.BranchTargets, st.BranchTargets),
			max(worst.FunctionBytes, st.FunctionBytes), max(worst.Cost, st.Cost)}
		return nil
	})
	t.Logf("largest of all: %+v", worst)
}
