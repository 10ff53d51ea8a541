package serve

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/lineage"
)

// fakeSubmitter records requests and hands out runs the test finishes.
type fakeSubmitter struct {
	mu   sync.Mutex
	reqs []Request
	runs []*Run
}

func (f *fakeSubmitter) Submit(_ context.Context, req Request) (*Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := &Run{ID: req.RunID, done: make(chan struct{})}
	f.reqs = append(f.reqs, req)
	f.runs = append(f.runs, r)
	return r, nil
}

func (f *fakeSubmitter) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

// snapshot returns the requests and runs so far.
func (f *fakeSubmitter) snapshot() ([]Request, []*Run) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.reqs...), append([]*Run(nil), f.runs...)
}

func newCron(t *testing.T, fields map[string]any) *Cron {
	t.Helper()
	tr, err := NewCron(emit.Spec{Type: "cron", Fields: fields})
	if err != nil {
		t.Fatal(err)
	}
	return tr.(*Cron)
}

func TestCronNoOverlap(t *testing.T) {
	for _, overlap := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			c := newCron(t, map[string]any{"pipeline": "p", "every": "10s", "overlap": overlap, "params": map[string]any{"x": 1}})
			f := &fakeSubmitter{}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error)
			go func() { done <- c.Run(ctx, f) }()
			time.Sleep(35 * time.Second) // ticks at 10s, 20s, 30s; the first run never ends
			synctest.Wait()
			want := 1
			if overlap {
				want = 3
			}
			if n := f.count(); n != want {
				t.Errorf("overlap %v: %d runs submitted in three ticks while the first runs, want %d", overlap, n, want)
			}
			_, runs := f.snapshot()
			close(runs[0].done) // the first run ends: the next tick runs
			time.Sleep(10 * time.Second)
			synctest.Wait()
			if n := f.count(); n != want+1 {
				t.Errorf("overlap %v: %d runs after the first ended and a tick, want %d", overlap, n, want+1)
			}
			cancel()
			<-done
			reqs, _ := f.snapshot()
			r := reqs[0]
			if r.Labels["trigger"] != "cron" || r.Labels["schedule"] != "every 10s" || r.Labels["tick"] == "" || r.Params["x"] != int64(1) && r.Params["x"] != 1.0 {
				t.Errorf("request = %+v, want cron labels and x=1", r)
			}
			if reqs[0].RunID == reqs[1].RunID {
				t.Errorf("two ticks share run id %s", reqs[0].RunID)
			}
		})
	}
}

func TestCronSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// synctest's clock starts at 2000-01-01 00:00 UTC: 01:00 in Berlin.
		c := newCron(t, map[string]any{"pipeline": "p", "schedule": "30 1 * * *", "timezone": "Europe/Berlin"})
		f := &fakeSubmitter{}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- c.Run(ctx, f) }()
		time.Sleep(29 * time.Minute)
		synctest.Wait()
		if f.count() != 0 {
			t.Errorf("a run before 01:30 Berlin")
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if f.count() != 1 {
			t.Fatalf("%d runs by 01:31 Berlin, want 1", f.count())
		}
		reqs, _ := f.snapshot()
		if tick := reqs[0].Labels["tick"]; tick != "2000-01-01T00:30:00Z" {
			t.Errorf("tick label %s, want 2000-01-01T00:30:00Z", tick)
		}
		cancel()
		<-done
	})
}

// TestCronEvery runs the quickstart a few times from a real server.
func TestCronEvery(t *testing.T) {
	ts := startServer(t, serveYAML(quickPipeline, "  - {type: cron, pipeline: quick, every: 100ms, params: {x: 3}}\n"))
	want, _ := hashOf(int64(9))
	for range 3 {
		ev := <-ts.ev.finished
		if ev.Result.Status != lineage.Succeeded {
			t.Fatalf("cron run %s: %s", ev.RunID, ev.Result.Status)
		}
		if got := outputOf(t, ts.eng.History(), ev.RunID, "answer"); got != want {
			t.Errorf("answer of x=3 = %s, want 9", got)
		}
		if l := ts.ev.labels(ev.RunID); l["trigger"] != "cron" {
			t.Errorf("labels %v, want trigger=cron", l)
		}
	}
}

func hashOf(v any) (cas.Digest, error) { return cas.Hash(v) }
