package host

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPrecheckAcceptsEveryModule runs the structural check on every
// module the repository commits but the deliberately malformed ones: each
// passes, and the log shows how far each is from the bounds.
func TestPrecheckAcceptsEveryModule(t *testing.T) {
	t.Parallel()
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
		t.Logf("%-60s %d functions, nesting %d, br_table targets %d, largest function %d bytes, cost %v; %d mutable globals; stateful: %q",
			p, st.Functions, st.Nesting, st.BranchTargets, st.FunctionBytes, st.Cost.Round(time.Millisecond), len(st.Globals), st.Stateful)
		worst = shape{Functions: max(worst.Functions, st.Functions), Nesting: max(worst.Nesting, st.Nesting),
			BranchTargets: max(worst.BranchTargets, st.BranchTargets), FunctionBytes: max(worst.FunctionBytes, st.FunctionBytes),
			Cost: max(worst.Cost, st.Cost)}
		return nil
	})
	t.Logf("largest of all: %+v", worst)
}
