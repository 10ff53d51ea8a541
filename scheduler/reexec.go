package scheduler

import (
	"context"
	"errors"
	"fmt"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/internal/pcbor"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/model"
)

// ErrNotReexecutable is wrapped by Reexecute's error for a record it
// cannot invoke again: a node the tapestry lacks, a kind whose output is
// not its function's (a gate, branch, arm, reduce, a Map's own record),
// or an input the record names that the caller did not give.
var ErrNotReexecutable = errors.New("scheduler: not re-executable")

// Reexecute invokes once more the function that produced rec, a record
// of a run of t (or of a tapestry built from the same pipeline): a
// plain knot, source, sink or aggregator, or one element of a Map. The
// invocation is the one the run made: the node's constants, its
// parents' values as inputs (wrapped as {"ok": value} under the
// ReceiveErrors policy), an element's value under the Map's bind name,
// and the knot's own limits. inputs are the values rec's inputs
// consumed, by name; each must be the value of an ok parent. It
// returns what the run would record: the outcome and, for an ok one,
// the output (null for a sink). It does not touch the store or the
// history. It is safe for concurrent use.
func (t *Tapestry) Reexecute(ctx context.Context, rec *lineage.Record, inputs map[string]cas.Value) (Reexecution, error) {
	id := rec.KnotID
	if rec.Kind == lineage.KindElement {
		id = rec.Map
	}
	n, ok := t.Node(id)
	if !ok {
		return Reexecution{}, fmt.Errorf("%w: the tapestry has no node %q", ErrNotReexecutable, id)
	}
	if want := n.RecordKind(); rec.Kind != want && (rec.Kind != lineage.KindElement || n.kind != model.KindMap) {
		return Reexecution{}, fmt.Errorf("%w: record of kind %s, node %q is a %s", ErrNotReexecutable, rec.Kind, id, want)
	}
	value := func(name string) ([]byte, error) {
		v, ok := inputs[name]
		if !ok {
			return nil, fmt.Errorf("%w: no value for input %q", ErrNotReexecutable, name)
		}
		return v.Bytes, nil
	}
	c := &Call{RunID: rec.RunID, KnotID: rec.KnotID, Config: n.config}
	switch {
	case rec.Kind == lineage.KindElement:
		for _, ed := range n.parents {
			if ed.input == "over" {
				continue
			}
			b, err := value(ed.input)
			if err != nil {
				return Reexecution{}, err
			}
			c.Inputs = append(c.Inputs, abi.Arg{Name: ed.input, Value: b})
		}
		b, err := value(n.fnInput)
		if err != nil {
			return Reexecution{}, err
		}
		c.Inputs = append(c.Inputs, abi.Arg{Name: n.fnInput, Value: b})
		abi.SortArgs(c.Inputs)
	case n.kind == model.KindKnot, n.kind == model.KindSource, n.kind == model.KindSink, n.kind == model.KindAggregator:
		for _, ed := range n.parents {
			b, err := value(ed.input)
			if err != nil {
				return Reexecution{}, err
			}
			if n.policy == model.ReceiveErrors {
				b = wrapOK(b)
			}
			c.Inputs = append(c.Inputs, abi.Arg{Name: ed.input, Value: b})
		}
	default:
		return Reexecution{}, fmt.Errorf("%w: a %s's output is not its function's alone", ErrNotReexecutable, n.RecordKind())
	}
	r := invoke(ctx, n.fn.Invoker, c)
	r.Clip()
	switch r.Outcome {
	case abi.OutcomeOK:
		v := cas.CanonicalValue(r.Value)
		if n.kind == model.KindSink {
			v = nullValue
		}
		return Reexecution{Outcome: lineage.OK, Output: v.Digest}, nil
	case abi.OutcomeSkip:
		return Reexecution{Outcome: lineage.Skipped, Reason: r.Skip.Reason}, nil
	case abi.OutcomeErr:
		return Reexecution{Outcome: lineage.Err, Reason: r.Error.Type + ": " + r.Error.Message}, nil
	}
	return Reexecution{Outcome: lineage.Err, Reason: fmt.Sprintf("InternalError: knot returned %v", r.Outcome)}, nil
}

// Reexecution is what Reexecute's invocation produced.
type Reexecution struct {
	Outcome lineage.Outcome
	// Output is the digest of the value the run would record, when
	// Outcome is ok.
	Output cas.Digest
	// Reason is the skip reason, or the error's type and message.
	Reason string
}

// wrapOK wraps an ok parent's value as a ReceiveErrors input: {"ok": v}.
func wrapOK(v []byte) []byte {
	b := pcbor.AppendHead(make([]byte, 0, len(v)+4), pcbor.Map, 1)
	b = pcbor.AppendText(b, "ok")
	return append(b, v...)
}
