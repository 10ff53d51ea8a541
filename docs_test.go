package pirn_test

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/lineage"
)

// docExpect is what each example pipeline in docs/pipelines.md produces.
var docExpect = map[string]struct {
	status  lineage.Status
	outputs map[string]any // a subset of the outputs
	skipped map[string]string
	errors  map[string]string // knot -> error type
}{
	"examples/quickstart/pipeline.yaml": {status: lineage.Succeeded, outputs: map[string]any{"x": int64(5), "d": int64(10), "answer": int64(15)}},
	"examples/pipelines/source_sink.yaml": {status: lineage.Succeeded,
		outputs: map[string]any{"numbers": []any{int64(0), int64(1), int64(2), int64(3), int64(4)}, "sum": int64(10), "report": nil}},
	"examples/pipelines/aggregator.yaml": {status: lineage.Succeeded,
		outputs: map[string]any{"both": int64(12), "total": int64(12), "summed": int64(12), "collected": map[string]any{"x": int64(3), "squared": int64(9)}}},
	"examples/pipelines/branch.yaml": {status: lineage.Succeeded,
		outputs: map[string]any{"route": "neg", "route.neg": int64(-4), "flipped": int64(-8), "parity": "even", "halved": int64(16)},
		skipped: map[string]string{"route.zero": "branch_not_selected", "route.pos": "branch_not_selected", "kept": "parent_failed_or_skipped", "parity.odd": "branch_not_selected"}},
	"examples/pipelines/gate.yaml": {status: lineage.Succeeded,
		outputs: map[string]any{"only_positive": int64(5), "doubled": int64(10)},
		skipped: map[string]string{"only_large": "gate_closed", "squared": "parent_failed_or_skipped"}},
	"examples/pipelines/map.yaml": {status: lineage.Succeeded,
		outputs: map[string]any{"squares": []any{int64(0), int64(1), int64(4), int64(9)}, "shifted": []any{int64(4), int64(5), int64(6), int64(7)},
			"halves": []any{int64(0), int64(0), int64(1), int64(1)}}},
	"examples/pipelines/reduce.yaml": {status: lineage.Succeeded,
		outputs: map[string]any{"total": int64(10), "total_expr": int64(10), "folded": int64(110), "digits": int64(1234)}},
	"examples/pipelines/memo.yaml": {status: lineage.Succeeded,
		outputs: map[string]any{"squares": []any{int64(0), int64(1), int64(4), int64(9)}, "total": int64(14), "fresh": int64(5)}},
	"examples/pipelines/policies.yaml": {status: lineage.Failed,
		outputs: map[string]any{"handled": int64(-1)},
		skipped: map[string]string{"skipped": "parent_failed_or_skipped", "after_maybe": "parent_failed_or_skipped"},
		errors:  map[string]string{"bad": "ValueError", "strict": "ParentFailed", "maybe": "ValueError"}},
}

// TestPipelinesDoc checks that every YAML block of docs/pipelines.md that
// names a file is that file, and runs each one.
func TestPipelinesDoc(t *testing.T) {
	t.Parallel()
	f, err := os.Open("docs/pipelines.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	blocks := map[string]string{}
	var cur *strings.Builder
	var name string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "```yaml":
			cur = &strings.Builder{}
		case line == "```" && cur != nil:
			if name != "" {
				blocks[name] = cur.String()
			}
			cur, name = nil, ""
		case cur != nil && cur.Len() == 0 && name == "" && strings.HasPrefix(line, "# file: "):
			name = strings.TrimPrefix(line, "# file: ")
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	if len(blocks) != len(docExpect) {
		t.Errorf("docs/pipelines.md has %d file blocks, the test expects %d", len(blocks), len(docExpect))
	}
	e := open(t, pirn.Config{})
	for file, block := range blocks {
		t.Run(file, func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != block {
				t.Errorf("the block in docs/pipelines.md differs from %s", file)
			}
			want, ok := docExpect[file]
			if !ok {
				t.Fatalf("no expectations for %s", file)
			}
			p, err := e.LoadPipeline(t.Context(), file)
			if err != nil {
				t.Fatal(err)
			}
			res, err := e.Run(t.Context(), p.Tapestry, pirn.RunRequest{Pipeline: p.Spec.Name})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != want.status {
				t.Errorf("status %s, want %s (errors %+v)", res.Status, want.status, res.Errors)
			}
			for id, v := range want.outputs {
				if diff := cmp.Diff(v, res.Outputs[id]); diff != "" {
					t.Errorf("output %s (-want +got):\n%s", id, diff)
				}
			}
			skips := map[string]string{}
			for _, s := range res.Skipped {
				skips[s.KnotID] = s.Reason
			}
			if diff := cmp.Diff(want.skipped, skips, cmpEmpty); diff != "" {
				t.Errorf("skipped (-want +got):\n%s", diff)
			}
			errs := map[string]string{}
			for _, er := range res.Errors {
				errs[er.KnotID] = er.Type
			}
			if diff := cmp.Diff(want.errors, errs, cmpEmpty); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

var cmpEmpty = cmp.FilterValues(func(a, b map[string]string) bool { return len(a) == 0 && len(b) == 0 }, cmp.Ignore())
