package pirn

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/pirn-wasm/pirn/model"
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
	consumers := map[string][]string{}
	byID := map[string]*pipeline.Node{}
	for i := range spec.Nodes {
		n := &spec.Nodes[i]
		byID[n.ID] = n
		for _, r := range n.Refs() {
			target := r.ID
			if b, _, ok := strings.Cut(r.ID, "."); ok && byID[r.ID] == nil {
				if _, isBranch := byID[b]; isBranch {
					target = b // an arm belongs to its branch
				}
			}
			consumers[target] = append(consumers[target], n.ID)
		}
	}
	if len(spec.Outputs) > 0 {
		needed := map[string]bool{}
		var visit func(id string)
		visit = func(id string) {
			if b, _, ok := strings.Cut(id, "."); ok && byID[id] == nil {
				id = b
			}
			if needed[id] || byID[id] == nil {
				return
			}
			needed[id] = true
			for _, r := range byID[id].Refs() {
				visit(r.ID)
			}
		}
		for _, o := range spec.Outputs {
			visit(o)
		}
		for _, n := range spec.Nodes {
			if !needed[n.ID] {
				errs = append(errs, &pipeline.Error{File: spec.File, Line: n.Line,
					Msg: fmt.Sprintf("%s %q is unreachable: it contributes to none of the outputs (%s)", n.Kind, n.ID, strings.Join(spec.Outputs, ", "))})
			}
		}
	} else {
		for _, n := range spec.Nodes {
			if n.Kind == model.KindParameter && len(consumers[n.ID]) == 0 {
				warnings = append(warnings, &pipeline.Error{File: spec.File, Line: n.Line,
					Msg: fmt.Sprintf("parameter %q is not used by any node", n.ID)})
			}
		}
	}
	sortIssues(errs)
	sortIssues(warnings)
	return errs, warnings, nil
}

func sortIssues(es pipeline.Errors) {
	slices.SortStableFunc(es, func(a, b *pipeline.Error) int { return a.Line - b.Line })
}
