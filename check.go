package pirn

import (
	"context"
	"fmt"
	"slices"

	"github.com/pirn-wasm/pirn/pipeline"
)

// Check validates the pipeline at path without running it, reporting as
// much as it can find: YAML and schema errors, missing, unpinned or
// mismatched modules, unknown knots, missing and unknown inputs, cycles,
// type mismatches between connected knots, expressions that do not
// compile, and nodes that contribute to none of the declared outputs.
// Errors would stop the pipeline from running; warnings would not (an
// edge whose type may not convert, an unused parameter). Every issue names
// the file and line.
func (e *Engine) Check(ctx context.Context, path string) (errs, warnings pipeline.Errors, err error) {
	p, errs, warnings, err := e.load(ctx, path, e.cfg.AllowUnpinned, true)
	if err != nil || p == nil {
		return errs, warnings, err
	}
	spec := p.Spec
	for _, m := range spec.Modules {
		if slices.Contains(p.Unpinned, m.Name) {
			warnings = append(warnings, &pipeline.Error{File: spec.File, Line: m.Line,
				Msg: fmt.Sprintf("module %q is not pinned by a lock file: run `pirn lock %s`", m.Name, path)})
		}
	}
	lerrs, lwarnings := pipeline.Lint(spec)
	errs, warnings = append(errs, lerrs...), append(warnings, lwarnings...)
	sortIssues(errs)
	sortIssues(warnings)
	return errs, warnings, nil
}

func sortIssues(es pipeline.Errors) {
	slices.SortStableFunc(es, func(a, b *pipeline.Error) int { return a.Line - b.Line })
}
