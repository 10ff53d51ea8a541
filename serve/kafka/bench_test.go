package kafka

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/serve"
)

// recording counts the runs of a Submitter once they are recorded, and
// those it found recorded already (no outputs).
type recording struct {
	serve.Submitter
	mu     sync.Mutex
	done   int
	found  int
	failed error
	more   chan struct{}
}

func (r *recording) Submit(ctx context.Context, req serve.Request) (*serve.Run, error) {
	run, err := r.Submitter.Submit(ctx, req)
	if err != nil {
		return nil, err
	}
	go func() {
		res, err := run.Result()
		r.mu.Lock()
		defer r.mu.Unlock()
		switch {
		case err != nil:
		case res == nil:
			err = fmt.Errorf("run %s: no result", run.ID)
		case res.Outputs == nil:
			r.found++ // recorded before: the Runner returns the record
		case res.Outputs["d"] == nil:
			err = fmt.Errorf("run %s: no output d", run.ID)
		}
		if err != nil && r.failed == nil {
			r.failed = err
		}
		r.done++
		select {
		case r.more <- struct{}{}:
		default:
		}
	}()
	return run, nil
}

func (r *recording) wait(b testing.TB, n int) {
	for {
		r.mu.Lock()
		done, err := r.done, r.failed
		r.mu.Unlock()
		if err != nil {
			b.Fatal(err)
		}
		if done >= n {
			return
		}
		<-r.more
	}
}

// BenchmarkTrigger measures values per second from a topic of the
// in-process cluster through a one-knot pipeline (d = ident(x), the
// engine's memory store and history): consume, run, record, mark for
// commit. Each iteration produces 100 messages and waits for their runs.
func BenchmarkTrigger(b *testing.B) {
	brokers := cluster(b, "in")
	ctx := b.Context()
	e, err := pirn.Open(ctx, pirn.Config{CacheDir: "-", AllowUnpinned: true})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(context.Background())
	p, err := e.LoadPipeline(ctx, "testdata/ident.yaml")
	if err != nil {
		b.Fatal(err)
	}
	runner := serve.NewRunner(e, p, serve.RunnerConfig{Name: "ident"})
	defer runner.Close(context.Background())
	rec := &recording{Submitter: runner, more: make(chan struct{}, 1)}
	tr, err := OpenTrigger(TriggerConfig{SourceConfig: SourceConfig{Conn: Conn{Brokers: brokers}, Topic: "in", Group: "bench"}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- tr.Run(runCtx, rec) }()
	defer func() {
		stop()
		if err := <-errc; err != nil {
			b.Error(err)
		}
	}()
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()

	const batch = 100
	sent := 0
	start := time.Now()
	for b.Loop() {
		for range batch {
			prod.Produce(ctx, &kgo.Record{Topic: "in", Value: fmt.Appendf(nil, `{"x": %d}`, sent)}, nil)
			sent++
		}
		rec.wait(b, sent)
	}
	b.ReportMetric(float64(sent)/time.Since(start).Seconds(), "values/s")
	b.ReportMetric(0, "ns/op")
}
