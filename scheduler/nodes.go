package scheduler

import (
	"fmt"
	"strings"
	"time"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/model"
)

// The node kinds beyond plain knots. Each evaluates its Fn through the
// same Knot interface, so a predicate, selector or combiner may be a Wasm
// knot, a host-native function or an expression.

// call1 invokes n's Fn with one input.
func (e *engine) call1(n *Node, c *Call, name string, v []byte) abi.Response {
	c.RunID, c.KnotID, c.Config = e.runID, n.id, nil
	c.Inputs = append(c.Inputs[:0], abi.Arg{Name: name, Value: v})
	return e.invoke(&n.fn, c)
}

// input returns the value of the parent a gate, branch, map or reduce
// consumes.
func (e *engine) input(n *Node) cas.Value {
	return e.states[n.primary.index].res.value
}

// truthy reports the truth of a canonical value: false, null, 0, 0.0,
// -0.0, "", empty bytes, [] and {} are false; everything else is true.
func truthy(b []byte) bool {
	if len(b) != 1 && len(b) != 3 {
		return true
	}
	switch b[0] {
	case 0xf4, 0xf6, 0x00, 0x40, 0x60, 0x80, 0xa0:
		return len(b) != 1
	case 0xf9: // float16: ±0
		return b[1]&0x7f != 0 || b[2] != 0
	}
	return true
}

func (e *engine) gate(st *state, c *Call) result {
	n := st.n
	in := e.input(n)
	r := e.call1(n, c, n.fnInput, in.Bytes)
	if r.Outcome != abi.OutcomeOK {
		return e.response(n.id, r)
	}
	if !truthy(r.Value) {
		res := skipped(ReasonGateClosed, nil)
		res.logs = r.Logs
		return res
	}
	return result{outcome: lineage.OK, value: in, logs: r.Logs}
}

func (e *engine) branch(st *state, c *Call) result {
	n := st.n
	in := e.input(n)
	r := e.call1(n, c, n.fnInput, in.Bytes)
	if r.Outcome != abi.OutcomeOK {
		return e.response(n.id, r)
	}
	arm, err := abi.DecodeText(r.Value)
	if err != nil {
		v, _ := cas.Decode(r.Value)
		res := e.failure(n.id, ErrBranch, fmt.Sprintf("branch %q: the selector returned %v, not the name of an arm (declared: %s)", n.id, v, strings.Join(n.arms, ", ")), nil, "")
		res.logs = r.Logs
		return res
	}
	found := false
	for _, a := range n.arms {
		found = found || a == arm
	}
	if !found {
		res := e.failure(n.id, ErrBranch, fmt.Sprintf("branch %q: the selector returned %q, which is not a declared arm (declared: %s)", n.id, arm, strings.Join(n.arms, ", ")), nil, "")
		res.logs = r.Logs
		return res
	}
	st.through = in
	return result{outcome: lineage.OK, value: cas.CanonicalValue(r.Value), logs: r.Logs}
}

func (e *engine) arm(st *state) result {
	n := st.n
	b := e.states[n.branch.index]
	// The arm's second record input: the branch's own input.
	src := n.branch.primary
	st.rec.Inputs[len(st.rec.Inputs)-1] = lineage.Input{Name: "passthrough", Parent: src.id, Digest: e.states[src.index].res.value.Digest}
	chosen, _ := abi.DecodeText(b.res.value.Bytes)
	if chosen != n.armName {
		return skipped(ReasonBranchNotSelected, map[string]any{"branch_name": n.armName})
	}
	return result{outcome: lineage.OK, value: b.through}
}

// spawn prepares a Map's elements; the pool then runs them.
func (e *engine) spawn(st *state) (result, bool) {
	n := st.n
	over := e.input(n)
	count, ok := cas.ListLen(over.Bytes)
	if !ok {
		return e.failure(n.id, ErrType, fmt.Sprintf("map %q: over: want a list, got %s", n.id, describeValue(over)), nil, ""), false
	}
	if count > n.maxElements {
		return e.failure(n.id, ErrTooMany, fmt.Sprintf("map %q: over: a list of %d elements, over the limit max_elements=%d", n.id, count, n.maxElements), nil, ""), false
	}
	items, err := cas.Elements(over.Bytes)
	if err != nil {
		return e.failure(n.id, ErrType, fmt.Sprintf("map %q: over: %v", n.id, err), nil, ""), false
	}
	if len(items) == 0 {
		return result{outcome: lineage.OK, value: cas.CanonicalValue([]byte{0x80})}, false
	}
	st.items = items
	st.elems = make([]elemState, len(items))
	// One allocation for every element record's inputs.
	inputs := make([]lineage.Input, len(items)*len(n.byName))
	for i := range st.elems {
		st.elems[i].rec.Inputs = inputs[i*len(n.byName) : i*len(n.byName) : (i+1)*len(n.byName)]
	}
	st.elemsLeft.Store(int32(len(items)))
	return result{}, true
}

// describeValue names the kind of a value, for messages, without decoding
// it.
func describeValue(v cas.Value) string {
	if len(v.Bytes) == 0 {
		return "nothing"
	}
	switch v.Bytes[0] >> 5 {
	case 0, 1:
		return "an int"
	case 2:
		return "bytes"
	case 3:
		return "a str"
	case 4:
		return "a list"
	case 5:
		return "a dict"
	}
	switch v.Bytes[0] {
	case 0xf4, 0xf5:
		return "a bool"
	case 0xf6:
		return "null"
	}
	return "a float"
}

// runElement invokes a Map's Fn on element i.
func (e *engine) runElement(st *state, i int, c *Call) {
	n := st.n
	el := &st.elems[i]
	rec := &el.rec
	id := lineage.ElementID(n.id, i)
	rec.RunID, rec.KnotID, rec.Kind, rec.ConfigHash, rec.Dispatcher = e.runID, id, lineage.KindElement, n.configHash, e.s.cfg.Dispatcher
	rec.Map, rec.Index = n.id, i
	rec.Module, rec.Knot, rec.Grants = n.fn.Module, n.fn.Name, n.fn.Grants
	rec.StartedAt = time.Now().UTC()
	e.emit(Event{Kind: KnotStarted, Record: *rec, Time: rec.StartedAt})
	item := cas.CanonicalValue(st.items[i])
	over := n.primary
	c.RunID, c.KnotID, c.Config, c.Inputs = e.runID, id, n.config, c.Inputs[:0]
	for _, ed := range n.byName {
		if ed.input == "over" {
			rec.Inputs = append(rec.Inputs, lineage.Input{Name: n.fnInput, Parent: over.id, Digest: item.Digest})
			continue
		}
		v := e.states[ed.parent.index].res.value
		rec.Inputs = append(rec.Inputs, lineage.Input{Name: ed.input, Parent: ed.parent.id, Digest: v.Digest})
	}
	sortInputs(rec.Inputs)
	for _, ed := range n.parents {
		if ed.input != "over" {
			c.Inputs = append(c.Inputs, abi.Arg{Name: ed.input, Value: e.states[ed.parent.index].res.value.Bytes})
		}
	}
	c.Inputs = append(c.Inputs, abi.Arg{Name: n.fnInput, Value: item.Bytes})
	abi.SortArgs(c.Inputs)
	key, keyed := e.elementKey(n, rec.Inputs)
	switch {
	case e.ctx.Err() != nil:
		el.res = skipped(ReasonCancelled, nil)
	case keyed && e.reuse(&el.res, rec, key):
	default:
		el.res = e.response(id, e.invoke(&n.fn, c))
		if keyed && el.res.outcome == lineage.OK {
			rec.CacheKey = key
		}
	}
	e.settle(id, &el.res, rec)
	rec.FinishedAt = time.Now().UTC()
	e.emitFinished(rec, &el.res)
}

func sortInputs(ins []lineage.Input) {
	for i := 1; i < len(ins); i++ { // few inputs: insertion sort
		for j := i; j > 0 && ins[j].Name < ins[j-1].Name; j-- {
			ins[j], ins[j-1] = ins[j-1], ins[j]
		}
	}
}

// finishMap assembles a Map's output from its elements.
func (e *engine) finishMap(st *state) {
	n := st.n
	outs := make([][]byte, 0, len(st.elems))
	st.res = result{}
	for i := range st.elems {
		el := &st.elems[i].res
		switch el.outcome {
		case lineage.Err:
			detail, _ := cas.Encode(map[string]any{"index": i, "error_id": el.err.ID.String()})
			st.res = e.failure(n.id, ErrElement, fmt.Sprintf("map %q: element %d failed: %s: %s", n.id, i, el.err.Type, el.err.Message), detail, "")
		case lineage.Skipped:
			switch n.onSkip {
			case model.OnSkipNull:
				outs = append(outs, []byte{0xf6})
			case model.OnSkipSkip:
				if st.res.outcome == "" {
					st.res = skipped(ReasonElementSkipped, map[string]any{"index": i, "reason": el.skip})
				}
			}
		case lineage.OK:
			outs = append(outs, el.value.Bytes)
		}
		if st.res.outcome == lineage.Err {
			break
		}
	}
	if st.res.outcome == "" {
		st.res = result{outcome: lineage.OK, value: cas.CanonicalValue(cas.AppendArray(nil, outs))}
	}
	st.items = nil
	e.complete(st)
}

func (e *engine) reduce(st *state, c *Call) result {
	n := st.n
	of := e.input(n)
	items, err := cas.Elements(of.Bytes)
	if err != nil {
		return e.failure(n.id, ErrType, fmt.Sprintf("reduce %q: of: want a list, got %s", n.id, describeValue(of)), nil, "")
	}
	if !n.pairwise {
		return e.response(n.id, e.call1(n, c, n.fnInput, of.Bytes))
	}
	acc := n.initial
	var logs abi.Log // the steps' lines, within one invocation's bounds
	for i, item := range items {
		if e.ctx.Err() != nil {
			res := skipped(ReasonCancelled, nil)
			res.logs = logs.Take()
			return res
		}
		c.RunID, c.KnotID, c.Config = e.runID, n.id, nil
		c.Inputs = append(c.Inputs[:0], abi.Arg{Name: n.accInput, Value: acc.Bytes}, abi.Arg{Name: n.fnInput, Value: item})
		abi.SortArgs(c.Inputs)
		r := e.invoke(&n.fn, c)
		for _, l := range r.Logs {
			logs.Add(l.Level, l.Msg)
		}
		if r.Outcome != abi.OutcomeOK {
			res := e.outcome(n.id, r)
			if res.outcome == lineage.Err {
				res = e.failure(n.id, res.err.Type, fmt.Sprintf("reduce %q: step %d: %s", n.id, i, res.err.Message), res.err.Detail, res.err.Trace)
			}
			res.logs = logs.Take()
			return res
		}
		acc = cas.CanonicalValue(r.Value)
	}
	return result{outcome: lineage.OK, value: acc, logs: logs.Take()}
}
