package emit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/scheduler"
)

type nop struct{}

func (nop) Name() string                       { return "nop" }
func (nop) Emit(context.Context, *Event) error { return nil }
func (nop) Close(context.Context) error        { return nil }

// TestHubBookkeepingBounded: runs nobody waits for are forgotten past
// MaxFinishedRuns; a waited run is freed at once.
func TestHubBookkeepingBounded(t *testing.T) {
	h, err := NewHub(HubConfig{Emitters: []HubEmitter{{Emitter: nop{}, Queue: 64}}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(t.Context())
	n := MaxFinishedRuns + 100
	for i := range n {
		id := fmt.Sprintf("run-%d", i)
		h.Event(scheduler.Event{Kind: scheduler.RunStarted, RunID: id, Run: &lineage.Run{ID: id}})
		h.Event(scheduler.Event{Kind: scheduler.RunFinished, RunID: id, Result: &scheduler.Result{Run: lineage.Run{ID: id, Status: lineage.Succeeded}}})
		if i%8 == 7 { // let the queue of 64 drain: every event delivered
			if err := h.Wait(t.Context(), id); err != nil {
				t.Fatal(err)
			}
		}
	}
	last := fmt.Sprintf("run-%d", n-1)
	if err := h.Wait(t.Context(), last); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	runs, finished := len(h.runs), len(h.finished)
	h.mu.Unlock()
	if runs > MaxFinishedRuns || finished > MaxFinishedRuns {
		t.Errorf("%d runs and %d finished kept, want at most %d", runs, finished, MaxFinishedRuns)
	}
	if st := h.Stats()[0]; st.Delivered != uint64(2*n) || st.Dropped != 0 {
		t.Errorf("stats %+v, want %d delivered", st, 2*n)
	}
}

func TestLimiter(t *testing.T) {
	l := limiter{every: int64(time.Minute)}
	t0 := time.Unix(0, 0)
	var logged int
	var suppressed uint64
	for i := range 1000 {
		if ok, s := l.allow(t0.Add(time.Duration(i) * time.Second)); ok {
			logged++
			suppressed += s
		}
	}
	// 1000 s: a line at 0, 60, …, 960 s, each after 59 suppressed.
	if logged != 17 || suppressed != 16*59 {
		t.Errorf("logged %d lines, %d suppressed", logged, suppressed)
	}
}
