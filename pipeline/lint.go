package pipeline

import (
	"fmt"
	"strings"

	"github.com/pirn-wasm/pirn/model"
)

// Lint checks the graph of a parsed pipeline beyond what makes it
// runnable: with outputs declared, a node that contributes to none of
// them is an error; without, a parameter nothing consumes is a warning.
func Lint(spec *Spec) (errs, warnings Errors) {
	consumers := map[string][]string{}
	byID := map[string]*Node{}
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
	if len(spec.Outputs) == 0 {
		for _, n := range spec.Nodes {
			if n.Kind == model.KindParameter && len(consumers[n.ID]) == 0 {
				warnings = append(warnings, &Error{File: spec.File, Line: n.Line, Msg: fmt.Sprintf("parameter %q is not used by any node", n.ID)})
			}
		}
		return nil, warnings
	}
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
			errs = append(errs, &Error{File: spec.File, Line: n.Line,
				Msg: fmt.Sprintf("%s %q is unreachable: it contributes to none of the outputs (%s)", n.Kind, n.ID, strings.Join(spec.Outputs, ", "))})
		}
	}
	return errs, nil
}
