package dispatch_test

import (
	"context"
	"errors"
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
// stopped, and the worker takes the next run's jobs.
func TestCancelRun(t *testing.T) {
	c := startCluster(t, 1, 1)
	c.exec.started = make(chan *dispatch.Job, 8)
	p := load(t, c.e, "testdata/slow.yaml")
	s := c.scheduler(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type outcome struct {
		res *scheduler.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := s.Run(ctx, p.Tapestry.Scheduler(), pirn.RunRequest{Pipeline: p.Spec.Name})
		done <- outcome{res, err}
	}()
	var job *dispatch.Job
	select {
	case job = <-c.exec.started:
	case <-time.After(30 * time.Second):
		t.Fatal("no job started")
	}
	waitFor(t, 10*time.Second, "three jobs queued", func() bool { return c.pool(t).Queued == 3 })

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
	if n := c.messages(t, "JOBS", c.cfg.Prefix+".job.*."+dispatch.RunToken(o.res.ID)+".>"); n != 0 {
		t.Errorf("the jobs stream keeps %d jobs of the cancelled run", n)
	}
	if ran, _ := c.exec.total(); ran != 1 {
		t.Errorf("the worker ran %d jobs of the cancelled run, want 1 (%s)", ran, job.Knot)
	}

	ctx2, cancel2 := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel2()
	res, err := c.runRemote(t, ctx2, "../examples/quickstart/pipeline.yaml", pirn.RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Succeeded() || res.Outputs["answer"] != int64(15) {
		t.Errorf("the next run: status %s, outputs %v", res.Status, res.Outputs)
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
