package dispatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/scheduler"
)

// CoordinatorConfig configures a [Coordinator].
type CoordinatorConfig struct {
	// Pool is the worker pool that runs the jobs ("" means "default").
	Pool string
	// WorkerWait is how long a run waits with jobs pending while no
	// worker of its pool is alive before those jobs fail with
	// ErrNoWorkers (default 1m). The run warns at once that none is.
	WorkerWait time.Duration
	// Ship, when set, decides which functions run remotely and how,
	// instead of the default: a module knot ships as its host.Knot's
	// Spec; anything else runs locally. Tests use it to ship host-native
	// functions to in-process workers.
	Ship func(fn *scheduler.Fn) (Spec, bool)
	// Logger receives warnings; nil discards.
	Logger *slog.Logger
}

// Coordinator sends a run's module knots to workers. It implements
// scheduler.Remote; one Coordinator serves any number of runs at once.
type Coordinator struct {
	b     *Broker
	store cas.Store
	cfg   CoordinatorConfig

	mu   sync.Mutex
	runs map[string]*runState
}

var _ scheduler.Remote = (*Coordinator)(nil)

// NewCoordinator returns a coordinator that publishes jobs on b and whose
// workers share store.
func NewCoordinator(b *Broker, store cas.Store, cfg CoordinatorConfig) (*Coordinator, error) {
	cfg.Pool = cmp.Or(cfg.Pool, DefaultPool)
	cfg.WorkerWait = cmp.Or(cfg.WorkerWait, time.Minute)
	cfg.Logger = cmp.Or(cfg.Logger, b.cfg.Logger)
	if !ValidName(cfg.Pool) {
		return nil, fmt.Errorf("dispatch: pool %q is invalid (1 to 64 of A-Z a-z 0-9 _ -)", cfg.Pool)
	}
	if store == nil {
		return nil, errors.New("dispatch: no data store")
	}
	return &Coordinator{b: b, store: store, cfg: cfg, runs: map[string]*runState{}}, nil
}

// runState is one run's dispatches.
type runState struct {
	c      *Coordinator
	id     string
	tok    string
	ctx    context.Context
	resume bool

	mu      sync.Mutex
	waiting map[string]chan *Result // by key
	early   map[string]*Result      // results no dispatch waited for yet
	done    map[string]bool         // keys whose result was taken
	pending atomic.Int64            // dispatches waiting for a result

	stored    sync.Map      // digests known to be in the store
	noWorkers chan struct{} // closed when WorkerWait passed with no worker
	stop      func()
}

// Name returns "nats", the dispatcher lineage records.
func (c *Coordinator) Name() string { return "nats" }

// HostKnot is implemented by the scheduler functions that are a module's
// knot: what a coordinator ships by default.
type HostKnot interface{ HostKnot() *host.Knot }

// StartRun implements scheduler.Remote: it subscribes to the run's results
// (those already published too, for a resumed run) and watches for the
// run's end, on which it purges the run's queued jobs and cancels those
// in flight.
func (c *Coordinator) StartRun(ctx context.Context, runID string) (func(), error) {
	return c.startRun(ctx, runID, false)
}

// ResumeRun is StartRun for a run started before, by this or another
// coordinator: a job whose result was already published is not sent
// again.
func (c *Coordinator) ResumeRun(ctx context.Context, runID string) (func(), error) {
	return c.startRun(ctx, runID, true)
}

// Resuming wraps c so that its runs resume: see ResumeRun.
func (c *Coordinator) Resuming() scheduler.Remote { return resuming{c} }

type resuming struct{ *Coordinator }

func (r resuming) StartRun(ctx context.Context, runID string) (func(), error) {
	return r.startRun(ctx, runID, true)
}

func (c *Coordinator) startRun(ctx context.Context, runID string, resume bool) (func(), error) {
	rs := &runState{c: c, id: runID, tok: RunToken(runID), ctx: ctx, resume: resume,
		waiting: map[string]chan *Result{}, early: map[string]*Result{}, done: map[string]bool{}, noWorkers: make(chan struct{})}
	c.mu.Lock()
	if _, dup := c.runs[runID]; dup {
		c.mu.Unlock()
		return nil, fmt.Errorf("run %s is already dispatching", runID)
	}
	c.runs[runID] = rs
	c.mu.Unlock()
	fail := func(err error) (func(), error) {
		c.mu.Lock()
		delete(c.runs, runID)
		c.mu.Unlock()
		return nil, err
	}
	cons, err := c.b.js.OrderedConsumer(ctx, c.b.results.CachedInfo().Config.Name, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{c.b.resultSubject(rs.tok, "*")}, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fail(fmt.Errorf("subscribe to the results of run %s: %w", runID, err))
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { rs.deliver(m) }, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		c.cfg.Logger.Debug("results consumer", "run", runID, "err", err)
	}))
	if err != nil {
		return fail(fmt.Errorf("subscribe to the results of run %s: %w", runID, err))
	}
	watch, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { rs.watch(watch) })
	var once sync.Once
	rs.stop = func() {
		once.Do(func() {
			stopWatch()
			wg.Wait()
			cc.Stop()
			select {
			case <-rs.noWorkers: // jobs sent after the purge (knots given their parents' errors) wait for no one
				pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				rs.purge(pctx)
				cancel()
			default:
			}
			c.mu.Lock()
			delete(c.runs, runID)
			c.mu.Unlock()
		})
	}
	return rs.stop, nil
}

// deliver takes a result from the run's results consumer.
func (rs *runState) deliver(m message) {
	r, err := decodeResult(m.Data())
	key := lastToken(m.Subject())
	if err != nil || r.Key != key {
		rs.c.cfg.Logger.Warn("ignoring an unreadable result", "run", rs.id, "subject", m.Subject(), "err", err)
		return
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.done[key] {
		return // a second result for a job that ran twice: the first won
	}
	if ch, ok := rs.waiting[key]; ok {
		delete(rs.waiting, key)
		rs.done[key] = true
		ch <- r
		return
	}
	if len(rs.early) < 1<<16 { // bounded: a hostile publisher cannot fill the coordinator
		rs.early[key] = r
	}
}

func lastToken(subject string) string {
	for i := len(subject) - 1; i >= 0; i-- {
		if subject[i] == '.' {
			return subject[i+1:]
		}
	}
	return subject
}

// watch cancels the run's jobs when its context ends and watches for
// live workers while jobs are pending.
func (rs *runState) watch(stop context.Context) {
	c := rs.c
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var since time.Time // when jobs were first seen pending with no worker
	warned := false
	for {
		select {
		case <-stop.Done():
			// The run's end and its cancellation may both be here when
			// the loop looks again after listing the workers.
			if rs.ctx.Err() != nil {
				rs.cancel()
			}
			return
		case <-rs.ctx.Done():
			rs.cancel()
			<-stop.Done()
			return
		case <-tick.C:
		}
		if rs.pending.Load() == 0 {
			since, warned = time.Time{}, false
			continue
		}
		n, err := c.b.liveWorkers(stop, c.cfg.Pool)
		if stop.Err() != nil {
			continue // the run ended while the workers were listed: none were counted
		}
		if err != nil || n > 0 {
			if err != nil {
				c.cfg.Logger.Warn("cannot list live workers", "err", err)
			}
			since, warned = time.Time{}, false
			continue
		}
		if since.IsZero() {
			since = time.Now()
		}
		if !warned {
			c.cfg.Logger.Warn(fmt.Sprintf("no pirn worker of pool %s is alive; jobs wait up to %v for one (start one with: pirn worker --nats URL --store URL --pool %s)",
				c.cfg.Pool, c.cfg.WorkerWait, c.cfg.Pool), "run", rs.id, "pending", rs.pending.Load())
			warned = true
		}
		if time.Since(since) >= c.cfg.WorkerWait {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			rs.purge(ctx) // before the run ends: nothing of it stays queued
			cancel()
			close(rs.noWorkers)
			return
		}
	}
}

// cancel purges the run's queued jobs, marks it cancelled and tells the
// workers to stop its jobs in flight.
func (rs *runState) cancel() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rs.purge(ctx)
	c := rs.c
	if err := c.b.setRunState(ctx, rs.tok, RunCancelled); err != nil && !errors.Is(err, errNotRecorded) {
		c.cfg.Logger.Warn("cannot mark the run cancelled", "run", rs.id, "err", err)
	}
	if err := c.b.nc.Publish(c.b.cancelSubject(rs.tok), nil); err != nil {
		c.cfg.Logger.Warn("cannot broadcast the run's cancellation", "run", rs.id, "err", err)
	}
	_ = c.b.nc.FlushTimeout(5 * time.Second)
}

func (rs *runState) purge(ctx context.Context) {
	c := rs.c
	if err := c.b.jobs.Purge(ctx, jetstream.WithPurgeSubject(c.b.cfg.Prefix+".job.*."+rs.tok+".>")); err != nil {
		c.cfg.Logger.Warn("cannot purge the run's queued jobs", "run", rs.id, "err", err)
	}
}

// Dispatch implements scheduler.Remote.
func (c *Coordinator) Dispatch(ctx context.Context, fn *scheduler.Fn, call *scheduler.Call) (abi.Response, bool) {
	spec, ok := c.ship(fn)
	if !ok {
		return abi.Response{}, false
	}
	c.mu.Lock()
	rs := c.runs[call.RunID]
	c.mu.Unlock()
	if rs == nil {
		return abi.Fail(ErrDispatch, fmt.Sprintf("run %s was not started on the dispatcher", call.RunID)), true
	}
	r := rs.dispatch(ctx, spec, call)
	r.Clip()
	return r, true
}

// ship returns how fn runs remotely, if it does.
func (c *Coordinator) ship(fn *scheduler.Fn) (Spec, bool) {
	if c.cfg.Ship != nil {
		return c.cfg.Ship(fn)
	}
	hk, ok := fn.Invoker.(HostKnot)
	if !ok {
		return Spec{}, false
	}
	k := hk.HostKnot()
	m := k.Module()
	return Spec{Module: m.Digest().String(), ABI: string(m.ABI()), Format: string(m.Format()), Knot: k.Spec().Name,
		Limits: k.Limits(), NoTypeCheck: !k.TypeChecked(), Grants: k.Grants(), State: k.State()}, true
}

func (rs *runState) dispatch(ctx context.Context, spec Spec, call *scheduler.Call) abi.Response {
	if err := ctx.Err(); err != nil {
		return abi.Fail(errCancelled, "cancelled before the job was sent: "+context.Cause(ctx).Error())
	}
	job := Job{V: Version, Run: call.RunID, Knot: call.KnotID, Spec: spec}
	var err error
	if job.Inputs, err = rs.refs(ctx, call.Inputs); err == nil {
		job.Config, err = rs.refs(ctx, call.Config)
	}
	if err != nil {
		return abi.Fail(ErrDispatch, "put the job's inputs in the data store: "+err.Error())
	}
	b, key, err := job.Encode()
	if err != nil {
		return abi.Fail(ErrDispatch, err.Error())
	}
	ch := make(chan *Result, 1)
	rs.mu.Lock()
	if r, ok := rs.early[key]; ok {
		delete(rs.early, key)
		rs.done[key] = true
		ch <- r
	} else if rs.done[key] { // the same invocation twice in one run: one job
		rs.mu.Unlock()
		return abi.Fail(ErrDispatch, fmt.Sprintf("knot %s: the same job was dispatched twice in run %s", call.KnotID, call.RunID))
	} else {
		rs.waiting[key] = ch
	}
	rs.mu.Unlock()
	rs.pending.Add(1)
	defer rs.pending.Add(-1)
	if len(ch) == 0 {
		if err := rs.publish(ctx, key, b); err != nil {
			rs.forget(key)
			if ctx.Err() != nil {
				return abi.Fail(errCancelled, "cancelled before the job was sent: "+context.Cause(ctx).Error())
			}
			return abi.Fail(ErrDispatch, err.Error())
		}
	}
	select {
	case r := <-ch:
		return rs.c.response(ctx, r)
	case <-ctx.Done():
		rs.forget(key)
		return abi.Fail(errCancelled, "cancelled while the job ran on a worker: "+context.Cause(ctx).Error())
	case <-rs.noWorkers:
		rs.forget(key)
		return abi.Fail(ErrNoWorkers, fmt.Sprintf("no pirn worker of pool %s was alive for %v", rs.c.cfg.Pool, rs.c.cfg.WorkerWait))
	}
}

func (rs *runState) forget(key string) {
	rs.mu.Lock()
	delete(rs.waiting, key)
	rs.mu.Unlock()
}

// refs puts values in the store (once per run) and names them.
func (rs *runState) refs(ctx context.Context, args []abi.Arg) ([]Ref, error) {
	refs := make([]Ref, len(args))
	for i, a := range args {
		d := cas.Sum(a.Value)
		if _, ok := rs.stored.Load(d); !ok {
			if err := rs.c.store.Put(ctx, d, a.Value); err != nil {
				return nil, fmt.Errorf("input %s: %w", a.Name, err)
			}
			rs.stored.Store(d, struct{}{})
		}
		refs[i] = Ref{Name: a.Name, Digest: d.String(), Size: len(a.Value)}
	}
	return refs, nil
}

// publish sends a job, retrying while the stream is full or the broker
// unreachable, for up to WorkerWait. A resumed run first looks for the
// job's result.
func (rs *runState) publish(ctx context.Context, key string, b []byte) error {
	c := rs.c
	if rs.resume {
		if m, done := c.b.published(ctx, rs.tok, key); done {
			rs.deliver(rawMsg{m})
			return nil
		}
	}
	subject := c.b.jobSubject(c.cfg.Pool, rs.tok, key)
	deadline := time.Now().Add(c.cfg.WorkerWait)
	delay := 50 * time.Millisecond
	for {
		_, err := c.b.js.Publish(ctx, subject, b, jetstream.WithMsgID(key))
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("publish the job: %w", err)
		}
		c.cfg.Logger.Debug("publish failed; retrying", "run", rs.id, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// response turns a result into the knot's response, reading an ok value
// from the store and checking it against its digest.
func (c *Coordinator) response(ctx context.Context, r *Result) abi.Response {
	resp := c.outcome(ctx, r)
	resp.Logs = r.logLines()
	return resp
}

func (c *Coordinator) outcome(ctx context.Context, r *Result) abi.Response {
	if r.Outcome != OK {
		resp := r.response()
		if resp.Error != nil && resp.Error.Detail != nil && !cas.IsCanonical(resp.Error.Detail) {
			resp.Error.Detail = nil
		}
		if resp.Skip != nil && resp.Skip.Detail != nil && !cas.IsCanonical(resp.Skip.Detail) {
			resp.Skip.Detail = nil
		}
		return resp
	}
	d, _ := cas.ParseDigest(r.Value.Digest) // checked by decodeResult
	b, err := c.store.Get(context.WithoutCancel(ctx), d)
	if err != nil {
		return abi.Fail(ErrBadResult, fmt.Sprintf("read the output %s from the data store: %v", d, err))
	}
	if cas.Sum(b) != d || !cas.IsCanonical(b) {
		return abi.Fail(ErrBadResult, fmt.Sprintf("the data store's value for %s does not match its digest or is not canonical", d))
	}
	return abi.OK(b)
}

// message is what deliver reads of a result message.
type message interface {
	Data() []byte
	Subject() string
}

// rawMsg adapts a message read by sequence to deliver.
type rawMsg struct{ m *jetstream.RawStreamMsg }

func (r rawMsg) Data() []byte    { return r.m.Data }
func (r rawMsg) Subject() string { return r.m.Subject }

// SaveRun keeps a run's request for pirn resume.
func (c *Coordinator) SaveRun(ctx context.Context, r RunRecord) error {
	r.Pool, r.State = cmp.Or(r.Pool, c.cfg.Pool), cmp.Or(r.State, RunRunning)
	return c.b.putRun(ctx, &r)
}

// FinishRun marks a run finished: pirn resume then refuses it.
func (c *Coordinator) FinishRun(ctx context.Context, runID string) error {
	return c.b.setRunState(ctx, RunToken(runID), RunFinished)
}
