package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/scheduler"
)

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	// Name is the pipeline's name in serve.yaml (recorded with its runs).
	Name string
	// Concurrency is how many runs go at once (default 4); Queue how many
	// more wait for a slot before Submit blocks (0: default 64; negative:
	// none).
	Concurrency, Queue int
	// Observer receives every run's events (an emit.Hub); nil sends none.
	Observer scheduler.Observer
	// Waiter, if set, is waited on once a run is recorded (an emit.Hub's
	// Wait: until its emitters have handled the run's events); its error
	// (an emitter with policy fail that failed) becomes the run's.
	Waiter interface {
		Wait(ctx context.Context, runID string) error
	}
	Logger *slog.Logger
}

// Runner runs one pipeline's requests with bounded concurrency: the
// Submitter a Server gives each pipeline's triggers and streams. It is
// safe for concurrent use.
type Runner struct {
	e    *pirn.Engine
	p    *pirn.Pipeline
	cfg  RunnerConfig
	slot chan struct{} // Concurrency + Queue tokens
	run  chan struct{} // Concurrency tokens

	mu       sync.Mutex
	stopping bool
	inflight map[string]*Run // by run id: submitted and not yet recorded
	ctx      context.Context // the runs'; cancelled at the drain deadline
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

var _ Submitter = (*Runner)(nil)

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
		run: make(chan struct{}, cfg.Concurrency), inflight: map[string]*Run{}, ctx: ctx, cancel: cancel}
}

// Pipeline returns the runner's pipeline.
func (r *Runner) Pipeline() *pirn.Pipeline { return r.p }

// Submit starts a run of the pipeline, waiting for room in its queue
// until ctx ends (ErrBusy; a ctx already done takes room only if there is
// some at once). Parameters are checked first: a bad one returns an error
// wrapping ErrBadRequest and records nothing. A request whose RunID is in
// flight returns that run; one whose RunID is recorded as succeeded or
// failed returns the recorded run without running it again; one recorded
// as cancelled or interrupted runs again, replacing the record.
func (r *Runner) Submit(ctx context.Context, req Request) (*Run, error) {
	if req.RunID != "" && !abi.ValidKnotName(req.RunID) {
		return nil, fmt.Errorf("%w: run id %q is invalid (allowed: A-Z a-z 0-9 _ - . :, at most 256)", ErrBadRequest, req.RunID)
	}
	params, err := CheckParams(r.p, req.Params)
	if err != nil {
		return nil, fmt.Errorf("%w: pipeline %s: %w", ErrBadRequest, r.cfg.Name, err)
	}
	replace := false
	if req.RunID != "" {
		if run := r.running(req.RunID); run != nil {
			return run, nil
		}
		rec, err := r.e.History().Run(ctx, req.RunID)
		switch {
		case errors.Is(err, lineage.ErrNotFound):
		case err != nil:
			return nil, fmt.Errorf("look up run %s: %w", req.RunID, err)
		case rec.Status == lineage.Succeeded || rec.Status == lineage.Failed:
			return Finished(req.RunID, &pirn.RunResult{Run: *rec}, nil), nil
		case rec.Status == lineage.Running:
			return nil, fmt.Errorf("%w: run %s is running in another process", ErrBusy, req.RunID)
		default: // cancelled, interrupted: run it again
			replace = true
		}
	}
	if err := r.acquire(ctx); err != nil {
		return nil, err
	}
	id := req.RunID
	if id == "" {
		id = scheduler.NewRunID()
	}
	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		<-r.slot
		return nil, ErrStopping
	}
	if run := r.inflight[id]; run != nil { // a duplicate raced us here
		r.mu.Unlock()
		<-r.slot
		return run, nil
	}
	run := &Run{ID: id, done: make(chan struct{})}
	r.inflight[id] = run
	r.wg.Add(1)
	r.mu.Unlock()
	sreq := pirn.RunRequest{RunID: id, Pipeline: r.cfg.Name, Params: params, Replace: replace,
		Observer: r.cfg.Observer, Labels: req.Labels}
	go r.execute(run, sreq)
	return run, nil
}

// running returns the run in flight under id, if any.
func (r *Runner) running(id string) *Run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inflight[id]
}

// acquire takes a slot of the queue: at once if one is free, else
// waiting until ctx ends.
func (r *Runner) acquire(ctx context.Context) error {
	select {
	case r.slot <- struct{}{}:
		return nil
	default:
	}
	select {
	case r.slot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w (%s: %d running, %d queued): %w", ErrBusy, r.cfg.Name, r.cfg.Concurrency, r.cfg.Queue, context.Cause(ctx))
	}
}

// execute runs one request once a run slot is free.
func (r *Runner) execute(run *Run, req pirn.RunRequest) {
	defer r.wg.Done()
	defer func() { <-r.slot }()
	defer func() {
		r.mu.Lock()
		delete(r.inflight, run.ID)
		r.mu.Unlock()
		close(run.done)
	}()
	select {
	case r.run <- struct{}{}:
	case <-r.ctx.Done():
		run.res, run.err = r.recordUnstarted(req)
		return
	}
	defer func() { <-r.run }()
	run.res, run.err = r.e.Run(r.ctx, r.p.Tapestry, req)
	if w := r.cfg.Waiter; w != nil && run.res != nil {
		// Bounded by the drain: a stuck emitter is the Hub's to give up on.
		if err := w.Wait(r.ctx, run.ID); err != nil && r.ctx.Err() == nil {
			run.err = errors.Join(run.err, fmt.Errorf("run %s is recorded, but: %w", run.ID, err))
		}
	}
	switch {
	case run.err == nil:
		r.cfg.Logger.Debug("run recorded", "pipeline", r.cfg.Name, "run", run.ID, "status", run.res.Status)
	case run.res == nil && errors.Is(run.err, lineage.ErrRunExists):
		// Another process recorded the id between our look-up and the run.
		run.err = fmt.Errorf("%w: run %s: %w", ErrBadRequest, run.ID, run.err)
	case run.res == nil && (errors.Is(run.err, scheduler.ErrParams) || errors.Is(run.err, lineage.ErrLabel)):
		run.err = fmt.Errorf("%w: run %s: %w", ErrBadRequest, run.ID, run.err)
	case run.res == nil && !errors.Is(run.err, context.Canceled):
		r.cfg.Logger.Warn("run did not start", "pipeline", r.cfg.Name, "run", run.ID, "error", run.err)
	default:
		r.cfg.Logger.Warn("run ended with an error", "pipeline", r.cfg.Name, "run", run.ID, "error", run.err)
	}
}

// recordUnstarted records a queued run cancelled before it started, so
// that a run id handed out (a webhook's 202) is always found recorded.
func (r *Runner) recordUnstarted(req pirn.RunRequest) (*pirn.RunResult, error) {
	now := time.Now().UTC()
	rec := lineage.Run{ID: req.RunID, Pipeline: req.Pipeline, PipelineDigest: r.pipelineDigest(), Status: lineage.Cancelled,
		Dispatcher: "local", StartedAt: now, FinishedAt: now}
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	if err := r.e.History().RecordRun(ctx, &rec); err != nil {
		return nil, fmt.Errorf("record run %s, cancelled before it started: %w", req.RunID, err)
	}
	return &pirn.RunResult{Run: rec}, fmt.Errorf("run %s of %s: %w before it started", req.RunID, r.cfg.Name, ErrStopping)
}

// recordTimeout bounds recording a run cancelled before it started.
const recordTimeout = 10 * time.Second

func (r *Runner) pipelineDigest() (d cas.Digest) {
	if r.p.Tapestry != nil && r.p.Spec != nil {
		d = r.p.Digest()
	}
	return d
}

// Close stops accepting runs and waits for those submitted until ctx
// ends; then it cancels the rest, which the scheduler records as
// cancelled, and waits for them to be recorded. It returns an error if
// runs had to be cancelled.
func (r *Runner) Close(ctx context.Context) error {
	r.mu.Lock()
	r.stopping = true
	left := len(r.inflight)
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		r.cancel()
		return nil
	case <-ctx.Done():
		r.cfg.Logger.Warn("drain deadline: cancelling the runs still in flight", "pipeline", r.cfg.Name, "runs", left)
		r.cancel()
		<-done
		return fmt.Errorf("%s: runs still in flight at the drain deadline were cancelled: %w", r.cfg.Name, context.Cause(ctx))
	}
}

// CheckParams checks a request's parameters against p's, as the
// scheduler will, so that a bad request is refused before anything is
// recorded: every name must be a parameter of p, every value must have
// (or convert to) the parameter's type, and every parameter without a
// default must be given. It returns the converted values.
func CheckParams(p *pirn.Pipeline, params map[string]any) (map[string]any, error) {
	var errs []error
	var known []string
	if p.Spec == nil {
		return params, nil // a tapestry built in Go: the scheduler checks
	}
	for _, n := range p.Spec.Nodes {
		if _, ok := p.ParamType(n.ParamName); ok && n.ParamName != "" {
			known = append(known, n.ParamName)
		}
	}
	out := make(map[string]any, len(params))
	for _, name := range slices.Sorted(maps.Keys(params)) {
		t, ok := p.ParamType(name)
		if !ok {
			errs = append(errs, fmt.Errorf("unknown parameter %q (the pipeline has: %s)", name, strings.Join(known, ", ")))
			continue
		}
		v, err := t.Coerce(params[name])
		if err == nil {
			_, err = cas.NewValue(v)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("parameter %q: %w", name, err))
			continue
		}
		out[name] = v
	}
	for _, n := range p.Spec.Nodes {
		if _, given := params[n.ParamName]; n.ParamName != "" && !given && !n.HasDefault {
			if _, ok := p.ParamType(n.ParamName); ok {
				errs = append(errs, fmt.Errorf("parameter %q has no value and no default", n.ParamName))
			}
		}
	}
	return out, errors.Join(errs...)
}
