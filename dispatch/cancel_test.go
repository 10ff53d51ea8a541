package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/dispatch"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/scheduler"
)

// TestCancelRun cancels a run while a knot that loops for a minute runs
// on the only worker's only slot and three more wait in the queue: the
// run ends at once as cancelled, its queued jobs are purged, the knot is
// stopped, and the worker takes the next run's jobs. So too when the run
// is cancelled while its coordinator lists the live workers (slowed down
// by many entries to list), twice, since then the run may end before the
// coordinator looks at its context again.
func TestCancelRun(t *testing.T) {
	c := startCluster(t, 1, 1)
	c.exec.started = make(chan *dispatch.Job, 8)
	cancelRunning(t, c, "run-cancel", 0)
	t.Run("while listing workers", func(t *testing.T) {
		for i := range 2 {
			cancelRunning(t, c, fmt.Sprintf("run-cancel-listing-%d", i), 10000)
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	res, err := c.runRemote(t, ctx, "../examples/quickstart/pipeline.yaml", pirn.RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Succeeded() || res.Outputs["answer"] != int64(15) {
		t.Errorf("the next run: status %s, outputs %v", res.Status, res.Outputs)
	}
	if strings.Contains(c.logs.String(), "no pirn worker") {
		t.Errorf("logs:\n%s\nwant no warning that no worker is alive", c.logs)
	}
}

// cancelRunning starts testdata/slow.yaml as run, cancels it once its
// first knot runs, and checks that the run and its jobs end. With junk,
// it first puts that many entries in the live workers' bucket.
func cancelRunning(t *testing.T, c *cluster, run string, junk int) {
	t.Helper()
	p := load(t, c.e, "testdata/slow.yaml")
	s := c.scheduler(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type outcome struct {
		res *scheduler.Result
		err error
	}
	done := make(chan outcome, 1)
	started := time.Now()
	go func() {
		res, err := s.Run(ctx, p.Tapestry.Scheduler(), pirn.RunRequest{RunID: run, Pipeline: p.Spec.Name})
		done <- outcome{res, err}
	}()
	select {
	case <-c.exec.started:
	case <-time.After(30 * time.Second):
		t.Fatal("no job started")
	}
	waitFor(t, 10*time.Second, "three jobs queued", func() bool { return c.pool(t).Queued == 3 })
	if junk > 0 {
		// In batches: the client refuses more than 4,000 unacknowledged
		// asynchronous publishes, and a loaded machine acknowledges slowly.
		for i := range junk {
			if _, err := c.js.PublishAsync(fmt.Sprintf("$KV.%s-workers.junk-%d", c.cfg.Prefix, i), []byte("junk")); err != nil {
				t.Fatal(err)
			}
			if (i+1)%1000 != 0 && i+1 != junk {
				continue
			}
			select {
			case <-c.js.PublishAsyncComplete():
			case <-time.After(10 * time.Second):
				t.Fatal("the junk entries were not stored")
			}
		}
		lists := time.Now()
		if _, err := c.b.Workers(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Logf("listing the workers takes %v", time.Since(lists))
		// The coordinator lists them each second from the run's start.
		time.Sleep(time.Until(started.Add(1200 * time.Millisecond)))
	}

	cancel()
	cancelled := time.Now()
	var o outcome
	select {
	case o = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the run did not end within 10s of its cancellation")
	}
	t.Logf("the run ended %v after its cancellation", time.Since(cancelled))
	if !errors.Is(o.err, context.Canceled) || o.res == nil || o.res.Status != lineage.Cancelled {
		t.Fatalf("Run() = %+v, %v; want status cancelled and context.Canceled", o.res, o.err)
	}
	waitFor(t, 10*time.Second, "the worker to stop the knot", func() bool {
		_, running := c.exec.total()
		return running == 0
	})
	t.Logf("the knot stopped within %v of the cancellation", time.Since(cancelled))
	c.drained(t)
	if n := c.messages(t, "JOBS", c.cfg.Prefix+".job.*."+dispatch.RunToken(run)+".>"); n != 0 {
		t.Errorf("the jobs stream keeps %d jobs of the cancelled run", n)
	}
	if n := c.exec.ofRun(run); n != 1 {
		t.Errorf("the worker ran %d jobs of the cancelled run, want 1", n)
	}
}

// TestNoWorkers runs with no worker alive: the coordinator warns that
// none is, and after WorkerWait the module knots err with NoWorkers and
// their jobs are purged, rather than the run waiting forever; so are the
// jobs of knots that run after that, given their parents' errors.
func TestNoWorkers(t *testing.T) {
	c := startCluster(t, 0, 1)
	b, err := dispatch.Connect(t.Context(), c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	coord, err := dispatch.NewCoordinator(b, c.store, dispatch.CoordinatorConfig{WorkerWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	start := time.Now()
	res, err := c.runWith(t, ctx, coord, "../examples/quickstart/pipeline.yaml", pirn.RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the run ended after %v", time.Since(start))
	if res.Status != lineage.Failed {
		t.Errorf("status %s, want failed", res.Status)
	}
	if len(res.Errors) != 1 || res.Errors[0].KnotID != "d" || res.Errors[0].Type != dispatch.ErrNoWorkers {
		t.Errorf("errors %+v, want one of knot d of type %s", res.Errors, dispatch.ErrNoWorkers)
	}
	if r := res.Records[2]; r.KnotID != "answer" || r.Outcome != lineage.Skipped {
		t.Errorf("answer's record %+v, want it skipped", r)
	}
	logs := c.logs.String()
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "no pirn worker of pool default is alive") || strings.Count(logs, "is alive") != 1 {
		t.Errorf("logs:\n%s\nwant one warning that no worker is alive", logs)
	}
	if n := c.messages(t, "JOBS", c.cfg.Prefix+".job.>"); n != 0 {
		t.Errorf("the jobs stream keeps %d jobs", n)
	}

	// Knots that receive their parents' errors are sent after WorkerWait
	// has passed: each fails at once, and its job is not left queued.
	res, err = c.runWith(t, ctx, coord, "testdata/errchain.yaml", pirn.RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 9 {
		t.Errorf("%d errors, want 9", len(res.Errors))
	}
	for _, e := range res.Errors {
		if e.Type != dispatch.ErrNoWorkers {
			t.Errorf("knot %s: error %s, want %s", e.KnotID, e.Type, dispatch.ErrNoWorkers)
		}
	}
	if n := c.messages(t, "JOBS", c.cfg.Prefix+".job.>"); n != 0 {
		t.Errorf("the jobs stream keeps %d jobs", n)
	}
}

// TestWorkerStopsWhileBusy stops a worker whose only slot runs a knot that
// loops for a minute: it returns after its Drain, having handed the job
// back to the broker and left the list of live workers, and another
// worker takes the job.
func TestWorkerStopsWhileBusy(t *testing.T) {
	c := startCluster(t, 0, 1)
	p := load(t, c.e, "testdata/slow.yaml")
	s := c.scheduler(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		s.Run(ctx, p.Tapestry.Scheduler(), pirn.RunRequest{Pipeline: p.Spec.Name})
	}()
	defer func() { cancel(); <-runDone }()

	first := &counter{next: dispatch.NewModules(newHost(t), c.store), started: make(chan *dispatch.Job, 8)}
	stop := startWorker(t, c, first, 1)
	var job *dispatch.Job
	select {
	case job = <-first.started:
	case <-time.After(30 * time.Second):
		t.Fatal("no job started")
	}
	stopping := time.Now()
	select {
	case <-stop():
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not stop within 10s (its Drain is 500ms)")
	}
	t.Logf("the worker stopped %v after it was told to", time.Since(stopping))
	if ws, err := c.b.Workers(t.Context()); err != nil || len(ws) != 0 {
		t.Errorf("Workers() = %+v, %v, want none", ws, err)
	}

	startWorker(t, c, c.exec, 4)
	waitFor(t, 10*time.Second, "another worker to take job "+job.Knot, func() bool { return len(c.exec.runs(job.Knot)) == 1 })
}

// startWorker starts a worker of slots slots with a Drain of 500ms; stop
// stops it and returns a channel closed when it has.
func startWorker(t *testing.T, c *cluster, exec dispatch.Executor, slots int) (stop func() <-chan struct{}) {
	t.Helper()
	b, err := dispatch.Connect(t.Context(), c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	w, err := dispatch.NewWorker(b, c.store, exec, dispatch.WorkerConfig{Slots: slots, Drain: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(ctx); err != nil {
			t.Errorf("worker: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done; b.Close() })
	return func() <-chan struct{} { cancel(); return done }
}
