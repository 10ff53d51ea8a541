package scheduler_test

import (
	"slices"
	"sync"
	"testing"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/scheduler"
)

// events is an Observer that keeps what it receives.
type events struct {
	mu  sync.Mutex
	evs []scheduler.Event
}

func (o *events) Event(e scheduler.Event) {
	o.mu.Lock()
	o.evs = append(o.evs, e)
	o.mu.Unlock()
}

// TestEvents runs a tapestry with a Map (one element errs) and a knot
// that errs, and checks the events: RunStarted first with the request's
// labels, a KnotStarted before each KnotFinished, a parent's finish
// before its child's start, one Recorded per record in the history's
// order after every KnotFinished, then RunFinished with the result.
func TestEvents(t *testing.T) {
	e := newEnv(t, scheduler.Config{})
	tp := scheduler.NewTapestry()
	node := must[*scheduler.Node](t)
	node(tp.AddParameter(scheduler.ParamDecl{Name: "xs", Type: abi.Type{Kind: abi.KindList, Elem: &abi.Int}}))
	node(tp.AddMap(scheduler.MapDecl{ID: "m", Over: "param:xs", Fn: scheduler.Fn{Invoker: double, Name: "host:double"}, Bind: "x", Optional: true}))
	node(tp.AddKnot(scheduler.KnotDecl{ID: "b", Fn: scheduler.Fn{Invoker: boom, Name: "host:boom"}, Parents: map[string]string{"x": "param:xs"}, Optional: true}))
	obs := &events{}
	labels := map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	res, err := e.s.Run(t.Context(), tp, scheduler.Request{Params: map[string]any{"xs": []any{1, 2, "three"}}, Observer: obs, Labels: labels})
	if err == nil {
		// "three" is not an int: a setup error, no events.
		t.Fatalf("Run = %v, want a parameter error", res.Status)
	}
	if len(obs.evs) != 0 {
		t.Fatalf("a setup error sent %d events, want none", len(obs.evs))
	}
	res, err = e.s.Run(t.Context(), tp, scheduler.Request{Params: map[string]any{"xs": []any{1, 2, 3}}, Observer: obs, Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	evs := obs.evs
	if len(evs) < 2 || evs[0].Kind != scheduler.RunStarted || evs[len(evs)-1].Kind != scheduler.RunFinished {
		t.Fatalf("first and last events: %v, %v", evs[0].Kind, evs[len(evs)-1].Kind)
	}
	if evs[0].Run == nil || evs[0].Run.ID != res.ID || evs[0].Run.Status != lineage.Running || evs[0].Labels["traceparent"] != labels["traceparent"] {
		t.Errorf("RunStarted = %+v", evs[0])
	}
	if last := evs[len(evs)-1]; last.Result != res || last.Err != nil {
		t.Errorf("RunFinished = %+v", last)
	}
	started, finished := map[string]int{}, map[string]int{}
	var recorded []lineage.Record
	lastFinished := 0
	for i, ev := range evs {
		if ev.RunID != res.ID || ev.Time.IsZero() {
			t.Errorf("event %d (%v): run %q, time %v", i, ev.Kind, ev.RunID, ev.Time)
		}
		switch ev.Kind {
		case scheduler.KnotStarted:
			started[ev.Record.KnotID] = i
		case scheduler.KnotFinished:
			finished[ev.Record.KnotID] = i
			lastFinished = i
			if s, ok := started[ev.Record.KnotID]; !ok || s > i {
				t.Errorf("%s finished at %d, started at %d (%v)", ev.Record.KnotID, i, s, ok)
			}
			if (ev.Record.Outcome == lineage.Err) != (ev.Error != nil) {
				t.Errorf("%s: outcome %s, error %v", ev.Record.KnotID, ev.Record.Outcome, ev.Error)
			}
		case scheduler.Recorded:
			if i < lastFinished {
				t.Errorf("a record at %d before the last KnotFinished at %d", i, lastFinished)
			}
			recorded = append(recorded, ev.Record)
			if ev.Record.Outcome == lineage.Err && (ev.Error == nil || ev.Error.ID != ev.Record.ErrorID) {
				t.Errorf("record %s: error %+v", ev.Record.KnotID, ev.Error)
			}
		}
	}
	for _, id := range []string{"param:xs", "m", "m:0", "m:2", "b"} {
		if _, ok := finished[id]; !ok {
			t.Errorf("no KnotFinished for %s (finished: %v)", id, finished)
		}
	}
	if finished["param:xs"] > started["m"] || finished["param:xs"] > started["b"] || finished["m:1"] > finished["m"] {
		t.Errorf("order: started %v, finished %v", started, finished)
	}
	if !slices.EqualFunc(recorded, res.Records, func(a, b lineage.Record) bool { return a.KnotID == b.KnotID && a.Outcome == b.Outcome }) {
		t.Errorf("Recorded events: %d, records %d", len(recorded), len(res.Records))
	}
}
