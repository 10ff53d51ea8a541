package scheduler

import (
	"errors"
	"fmt"
	"slices"

	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/model"
)

// Mid-run extension. A run requested with Extensible and no Terminals
// (every terminal) takes in the nodes added to its tapestry while it
// goes: a newcomer whose parents have not finished in the run joins it
// and runs there; one whose parent has already finished is refused — the
// Add call returns an error naming the run and the parent, and the node
// is not added. A run asked for given terminals takes in nothing: no
// newcomer is needed for them. Newcomers added by one Add call (a branch
// and its arms) join together: none starts before the call returns.

// ErrTooLate is wrapped by the error of an Add call refused because an
// extensible run in progress could not take the node in; the tapestry is
// as it was.
var ErrTooLate = errors.New("arrived too late for a run in progress")

// MaxJoined bounds the nodes that may join one run mid-run; past it an
// Add call is refused with ErrTooLate.
const MaxJoined = 4096

// joined is a node the current Add call joined to a run.
type joined struct {
	e  *engine
	st *state
}

// AddParameter adds a parameter. Its default, if any, is coerced to its
// type now. During an extensible run a parameter without a default is
// refused: the run was started without a value for it.
func (t *Tapestry) AddParameter(p ParamDecl) (*Node, error) {
	t.mu.Lock()
	defer t.release()
	return t.addParameter(p)
}

// AddKnot adds a knot, Source, Sink or Aggregator. Its parents must
// already be in the tapestry.
func (t *Tapestry) AddKnot(k KnotDecl) (*Node, error) {
	t.mu.Lock()
	defer t.release()
	return t.addKnot(k)
}

// AddGate adds a Gate.
func (t *Tapestry) AddGate(g GateDecl) (*Node, error) {
	t.mu.Lock()
	defer t.release()
	return t.addGate(g)
}

// AddBranch adds a Branch and its arms.
func (t *Tapestry) AddBranch(s BranchDecl) (*Node, error) {
	t.mu.Lock()
	defer t.release()
	return t.addBranch(s)
}

// AddMap adds a Map.
func (t *Tapestry) AddMap(m MapDecl) (*Node, error) {
	t.mu.Lock()
	defer t.release()
	return t.addMap(m)
}

// AddReduce adds a Reduce.
func (t *Tapestry) AddReduce(r ReduceDecl) (*Node, error) {
	t.mu.Lock()
	defer t.release()
	return t.addReduce(r)
}

// admit checks that n may join every extensible run in progress: each of
// its parents must be unfinished in the run. t.mu is held.
func (t *Tapestry) admit(n *Node) error {
	for _, e := range t.runs {
		e.mu.Lock()
		err := e.admit(n)
		e.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// join adds n, which admit accepted, to every extensible run in progress,
// held until release. t.mu is held.
func (t *Tapestry) join(n *Node) {
	for _, e := range t.runs {
		e.mu.Lock()
		if st := e.join(n); st != nil {
			e.holds++
			t.joined = append(t.joined, joined{e, st})
		}
		e.mu.Unlock()
	}
}

// release lets the nodes the current Add call joined run, and unlocks t.
func (t *Tapestry) release() {
	for _, j := range t.joined {
		j.e.mu.Lock()
		j.e.holds--
		// Before execute, execute queues it.
		if j.st.pending--; j.st.pending == 0 && j.e.executing {
			j.e.ready = append(j.e.ready, task{j.st, -1})
		}
		j.e.cond.Broadcast() // a waiter may now take it, or see the stall
		j.e.mu.Unlock()
	}
	t.joined = t.joined[:0]
	t.mu.Unlock()
}

// admit checks n against the run; e.mu is held.
func (e *engine) admit(n *Node) error {
	if n.index >= len(e.states) {
		return fmt.Errorf("%w: run %s has taken in %d nodes, the most one run takes mid-run", ErrTooLate, e.runID, MaxJoined)
	}
	if n.kind == model.KindParameter && !n.param.HasDefault {
		return fmt.Errorf("%w: parameter %q arrived while run %s was in progress, which started without a value for it: give it a default, or add it before the run",
			ErrTooLate, n.param.Name, e.runID)
	}
	for _, ed := range n.parents {
		p := e.state(ed.parent)
		switch {
		case p == nil:
			return fmt.Errorf("%w: knot %q arrived mid-run but its parent %q is not part of run %s", ErrTooLate, n.id, ed.parent.id, e.runID)
		case p.done:
			return fmt.Errorf("%w: knot %q arrived mid-run but its parent %q has already finished in run %s: add dependent knots before their parents run",
				ErrTooLate, n.id, ed.parent.id, e.runID)
		}
	}
	return nil
}

// state returns n's state in the run, or nil.
func (e *engine) state(n *Node) *state {
	if n.index < len(e.states) {
		return e.states[n.index]
	}
	return nil
}

// join adds n to the run, with one pending count more than its parents
// (released at the end of the Add call), and returns its state; nil when
// the run has finished (n has no parents to wait for, and so nothing to
// join). e.mu is held.
func (e *engine) join(n *Node) *state {
	if e.ended {
		return nil
	}
	st := &state{n: n, pending: 1} // the hold, released at the end of the Add call
	k := len(n.parents)
	if n.kind == model.KindArm {
		k++
	}
	st.rec.Inputs = make([]lineage.Input, k)
	if n.kind == model.KindParameter {
		st.param = n.def
	}
	e.states[n.index] = st // admit checked the room
	for i, ed := range n.parents {
		if !slices.ContainsFunc(n.parents[:i], func(o edge) bool { return o.parent == ed.parent }) {
			// A parent may have finished since admit looked (e.mu was
			// let go while the node was added): then its value is there
			// already, and there is nothing to wait for.
			if p := e.states[ed.parent.index]; !p.done {
				p.children = append(p.children, st)
				st.pending++
			}
		}
	}
	e.shed = append(e.shed, st)
	e.remaining++
	e.newcomers = append(e.newcomers, st)
	return st
}

// register makes e an extensible run of t, joining first the nodes added
// to t since the run collected its shed. t.mu is held; no worker runs.
func (t *Tapestry) register(e *engine) {
	for _, n := range t.nodes[e.collected:] {
		if e.admit(n) == nil {
			st := e.join(n)
			st.pending-- // nothing to release: the run has not started
		}
	}
	e.t = t
	t.runs = append(t.runs, e)
}

// unregister ends e's extension. Called once its workers have stopped.
func (t *Tapestry) unregister(e *engine) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e.mu.Lock()
	e.ended = true
	e.mu.Unlock()
	t.runs = slices.DeleteFunc(t.runs, func(o *engine) bool { return o == e })
}
