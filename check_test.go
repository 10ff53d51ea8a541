package pirn_test

import (
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/pipeline"
)

// TestCheck runs the static checker on a fixture with one of each class of
// problem and checks that each is reported with its line.
func TestCheck(t *testing.T) {
	t.Parallel()
	e := open(t, pirn.Config{})
	errs, warnings, err := e.Check(t.Context(), "testdata/pipelines/check/broken.yaml")
	if err != nil {
		t.Fatal(err)
	}
	has := func(es pipeline.Errors, line int, frag string) bool {
		for _, e := range es {
			if e.Line == line && strings.Contains(e.Msg, frag) {
				return true
			}
		}
		return false
	}
	for _, tc := range []struct {
		line int
		frag string
	}{
		{5, `module "gone": open`},
		{6, `module "bad" (testdata/hostile/badimport.wasm) is not pinned`},
		{6, "imports env.abort, which the host does not provide"},
		{12, `module "arith" has no knot "dbl"`},
		{13, `missing input "b" (int)`},
		{13, `unknown input "c"`},
		{14, `knot "mismatch": input "x" wants int, but "xs" produces list[int]`},
		{16, `expression "x + 1" has type int, want bool`},
		{17, `knot "lost" is unreachable: it contributes to none of the outputs (answer, listed)`},
	} {
		if !has(errs, tc.line, tc.frag) {
			t.Errorf("no error at line %d containing %q; errors:\n%v", tc.line, tc.frag, errs)
		}
	}
	if !has(warnings, 15, `input "x" wants int; "label" produces str, which may not convert`) {
		t.Errorf("warnings:\n%v", warnings)
	}
	if has(errs, 18, "") || has(errs, 19, "") {
		t.Errorf("answer and listed are fine, but errors name them:\n%v", errs)
	}

	// A type mismatch stops the pipeline before anything runs.
	if _, err := e.LoadPipeline(t.Context(), "testdata/pipelines/check/broken.yaml"); err == nil {
		t.Error("LoadPipeline accepted the broken pipeline")
	}

	// A clean pipeline: no issues.
	errs, warnings, err = e.Check(t.Context(), "examples/pipelines/map.yaml")
	if err != nil || len(errs) != 0 || len(warnings) != 0 {
		t.Errorf("map.yaml: %v %v %v", errs, warnings, err)
	}
	// A pipeline with a parse error reports it.
	errs, _, err = e.Check(t.Context(), "testdata/pipelines/check/broken.lock")
	if err != nil || len(errs) == 0 {
		t.Errorf("checking a non-pipeline: %v %v", errs, err)
	}
}
