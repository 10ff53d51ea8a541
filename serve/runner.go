package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/scheduler"
)

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	// Name is the pipeline's name in serve.yaml (recorded with its runs).
	Name string
	// Concurrency is how many runs go at once (default 4); Queue how many
	// more wait for a slot before Submit blocks (default 64).
	Concurrency, Queue int
	// Observer receives every run's events (an emit.Hub); nil sends none.
	Observer scheduler.Observer
	Logger   *slog.Logger
}

// Runner runs one pipeline's requests with bounded concurrency: the
// Submitter a Server gives each pipeline's triggers and streams.
type Runner struct {
	e    *pirn.Engine
	p    *pirn.Pipeline
	cfg  RunnerConfig
	slot chan struct{} // Concurrency + Queue tokens
	run  chan struct{} // Concurrency tokens

	mu       sync.Mutex
	stopping bool
	ctx      context.Context // the runs'; cancelled at the drain deadline
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// NewRunner returns a runner of p on e.
func NewRunner(e *pirn.Engine, p *pirn.Pipeline, cfg RunnerConfig) *Runner {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.Queue < 0 {
		cfg.Queue = 0
	} else if cfg.Queue == 0 {
		cfg.Queue = 64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Runner{e: e, p: p, cfg: cfg, slot: make(chan struct{}, cfg.Concurrency+cfg.Queue),
		run: make(chan struct{}, cfg.Concurrency), ctx: ctx, cancel: cancel}
}

// Submit starts a run of the pipeline, waiting for room in its queue
// until ctx ends (ErrBusy). A request whose RunID is already recorded
// returns that run, finished, without running it again.
func (r *Runner) Submit(ctx context.Context, req Request) (*Run, error) {
	if req.RunID != "" {
		if rec, err := r.e.History().Run(ctx, req.RunID); err == nil && rec.Status != lineage.Running {
			return Finished(req.RunID, &pirn.RunResult{Run: *rec}, nil), nil
		}
	}
	select {
	case r.slot <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w (%s): %w", ErrBusy, r.cfg.Name, context.Cause(ctx))
	}
	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		<-r.slot
		return nil, ErrStopping
	}
	r.wg.Add(1)
	r.mu.Unlock()
	id := req.RunID
	if id == "" {
		id = scheduler.NewRunID()
	}
	run := &Run{ID: id, done: make(chan struct{})}
	go func() {
		defer r.wg.Done()
		defer func() { <-r.slot }()
		defer close(run.done)
		select {
		case r.run <- struct{}{}:
		case <-r.ctx.Done():
			run.err = fmt.Errorf("run %s of %s: %w before it started", id, r.cfg.Name, ErrStopping)
			return
		}
		defer func() { <-r.run }()
		run.res, run.err = r.e.Run(r.ctx, r.p.Tapestry, pirn.RunRequest{RunID: id, Pipeline: r.cfg.Name, Params: req.Params,
			Replace: req.RunID != "", Observer: r.cfg.Observer, Labels: req.Labels})
		if run.res == nil && run.err != nil && !errors.Is(run.err, context.Canceled) {
			run.err = fmt.Errorf("%w: %w", ErrBadRequest, run.err)
		}
	}()
	return run, nil
}

// Close stops accepting runs and waits for those submitted until ctx
// ends; then it cancels the rest, which the scheduler records as
// cancelled, and waits for them to be recorded.
func (r *Runner) Close(ctx context.Context) error {
	r.mu.Lock()
	r.stopping = true
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		r.cancel()
		return nil
	case <-ctx.Done():
		r.cancel()
		<-done
		return fmt.Errorf("%s: runs still in flight at the drain deadline were cancelled: %w", r.cfg.Name, context.Cause(ctx))
	}
}
