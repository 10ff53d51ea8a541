package scheduler

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

type constKnot []byte

func (k constKnot) Invoke(context.Context, *Call) abi.Response { return abi.OK(k) }

// TestStallEndsTheRun breaks the scheduler's own bookkeeping (a node waits
// for one parent more than it has) and checks that the run ends, naming
// the nodes that never became ready, rather than waiting forever.
func TestStallEndsTheRun(t *testing.T) {
	tp := NewTapestry()
	if _, err := tp.AddParameter(ParamDecl{Name: "x", Type: abi.Int}); err != nil {
		t.Fatal(err)
	}
	one := Fn{Invoker: constKnot{0x01}, Name: "host:one"}
	for _, k := range []KnotDecl{
		{ID: "a", Fn: one, Parents: map[string]string{"x": "param:x"}},
		{ID: "b", Fn: one, Parents: map[string]string{"a": "a"}},
		{ID: "c", Fn: one, Parents: map[string]string{"x": "param:x"}},
	} {
		if _, err := tp.AddKnot(k); err != nil {
			t.Fatal(err)
		}
	}
	for _, workers := range []int{1, 4} {
		s, err := New(Config{Workers: workers}, cas.NewMemory(), lineage.NewMemory())
		if err != nil {
			t.Fatal(err)
		}
		terminals, _ := tp.terminals(nil)
		e := &engine{s: s, ctx: t.Context(), runID: "stalled", started: time.Now(), states: make([]*state, len(tp.nodes)), states0: tp.nodes}
		e.collect(terminals)
		if err := e.bind(tp, map[string]any{"x": 1}); err != nil {
			t.Fatal(err)
		}
		e.states[tp.byID["a"].index].pending++ // the bug: a waits for a parent that is not there
		done := make(chan *Result)
		go func() {
			e.execute()
			res, _ := e.finish(Request{}, terminals)
			done <- res
		}()
		var res *Result
		select {
		case res = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("workers %d: the stalled run did not end", workers)
		}
		outcomes := map[string]lineage.Outcome{}
		for _, r := range res.Records {
			outcomes[r.KnotID] = r.Outcome
		}
		if outcomes["c"] != lineage.OK || outcomes["a"] != lineage.Err || outcomes["b"] != lineage.Err || res.Status != lineage.Failed {
			t.Errorf("workers %d: outcomes %v, status %s", workers, outcomes, res.Status)
		}
		for _, er := range res.Errors {
			if er.Type != ErrStalled || !strings.Contains(er.Message, "never became ready") {
				t.Errorf("workers %d: error %s: %s", workers, er.Type, er.Message)
			}
		}
		if len(res.Errors) != 2 {
			t.Errorf("workers %d: %d errors, want 2", workers, len(res.Errors))
		}
	}
}
