package dispatch

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/internal/pcbor"
	"github.com/pirn-wasm/pirn/scheduler"
)

// Executor runs one job whose inputs the worker has read: call holds them
// by name, canonical and sorted. A knot's failure is an err response; an
// error is a failure of the worker's infrastructure (the data store
// unreachable, say), after which the job is delivered again.
type Executor interface {
	Execute(ctx context.Context, job *Job, call *host.Call) (abi.Response, error)
}

// WorkerConfig configures a [Worker].
type WorkerConfig struct {
	// Pool is the pool whose jobs the worker takes ("" means "default").
	Pool string
	// Slots is the most jobs it runs at once (default GOMAXPROCS). It
	// pulls jobs only for free slots, so a job never waits in a worker
	// while its ack wait runs out.
	Slots int
	// AllowGrants lets the worker run knots that have grants (files,
	// environment, clock, randomness, HTTP). Without it such a job ends
	// as an err (ErrGrantRefused).
	AllowGrants bool
	// ID names the worker in pirn workers ("" means host-pid-random).
	ID string
	// Drain is how long a stopping worker lets its jobs in flight finish
	// before it hands them back to the broker (default 30s).
	Drain time.Duration
	// Logger receives a record per job at debug level and problems at
	// warn; nil discards.
	Logger *slog.Logger
}

// Worker pulls jobs of one pool and runs them.
type Worker struct {
	b     *Broker
	store cas.Store
	exec  Executor
	cfg   WorkerConfig
	info  WorkerInfo

	ackWait    time.Duration
	maxDeliver int

	busy, done, failed, redelivered atomic.Int64

	mu        sync.Mutex
	inflight  map[string]map[*flight]struct{} // by run token
	cancelled map[string]time.Time            // run tokens cancelled, and when
}

type flight struct{ cancel context.CancelCauseFunc }

var errRunCancelled = errors.New("the run was cancelled")
var errStopping = errors.New("the worker is stopping")

// NewWorker returns a worker that reads values from store and runs jobs
// with exec.
func NewWorker(b *Broker, store cas.Store, exec Executor, cfg WorkerConfig) (*Worker, error) {
	cfg.Pool = cmp.Or(cfg.Pool, DefaultPool)
	cfg.Slots = cmp.Or(cfg.Slots, runtime.GOMAXPROCS(0))
	cfg.Drain = cmp.Or(cfg.Drain, 30*time.Second)
	cfg.Logger = cmp.Or(cfg.Logger, b.cfg.Logger)
	switch {
	case !ValidName(cfg.Pool):
		return nil, fmt.Errorf("dispatch: pool %q is invalid (1 to 64 of A-Z a-z 0-9 _ -)", cfg.Pool)
	case cfg.Slots < 0 || cfg.Slots > 1024:
		return nil, fmt.Errorf("dispatch: %d slots; want 1 to 1024", cfg.Slots)
	case store == nil || exec == nil:
		return nil, errors.New("dispatch: a worker needs a data store and an executor")
	}
	hostname, _ := os.Hostname()
	if cfg.ID == "" {
		var r [4]byte
		rand.Read(r[:])
		cfg.ID = fmt.Sprintf("%s-%d-%s", hostname, os.Getpid(), hex.EncodeToString(r[:]))
	}
	cfg.ID = keySafe(cfg.ID)
	return &Worker{b: b, store: store, exec: exec, cfg: cfg,
		info: WorkerInfo{ID: cfg.ID, Host: hostname, PID: os.Getpid(), Pool: cfg.Pool, Slots: cfg.Slots,
			AllowGrants: cfg.AllowGrants, Started: time.Now().UnixNano(), Version: Version},
		inflight: map[string]map[*flight]struct{}{}, cancelled: map[string]time.Time{}}, nil
}

// keySafe keeps what a KV key allows.
func keySafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b[:min(len(b), 128)])
}

// ID returns the worker's id.
func (w *Worker) ID() string { return w.cfg.ID }

// Run pulls and runs jobs until ctx ends; then it stops pulling, lets the
// jobs in flight finish for up to Drain, hands back the rest, and
// returns nil.
func (w *Worker) Run(ctx context.Context) error {
	cons, err := w.b.consumer(ctx, w.cfg.Pool)
	if err != nil {
		return err
	}
	ci := cons.CachedInfo().Config
	w.ackWait, w.maxDeliver = ci.AckWait, ci.MaxDeliver
	sub, err := w.b.nc.Subscribe(w.b.cfg.Prefix+".cancel.*", func(m *nats.Msg) { w.cancelRun(lastToken(m.Subject)) })
	if err != nil {
		return fmt.Errorf("dispatch: subscribe to cancellations: %w", err)
	}
	defer sub.Unsubscribe()
	regCtx, stopReg := context.WithCancel(context.WithoutCancel(ctx))
	var reg sync.WaitGroup
	reg.Go(func() { w.register(regCtx) })
	defer func() {
		stopReg()
		reg.Wait()
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = w.b.workers.Delete(dctx, w.cfg.ID)
		cancel()
	}()
	w.cfg.Logger.Info("worker started", "id", w.cfg.ID, "pool", w.cfg.Pool, "slots", w.cfg.Slots, "ack_wait", w.ackWait,
		"max_deliver", w.maxDeliver, "allow_grants", w.cfg.AllowGrants)

	jobs, stopJobs := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopJobs(errStopping)
	slots := make(chan struct{}, w.cfg.Slots)
	var wg sync.WaitGroup
	for ctx.Err() == nil {
		select { // one free slot at least
		case slots <- struct{}{}:
		case <-ctx.Done(): // every slot busy: drain them
			continue
		}
		free := 1
	more:
		for free < w.cfg.Slots {
			select {
			case slots <- struct{}{}:
				free++
			default:
				break more
			}
		}
		batch, err := cons.Fetch(free, jetstream.FetchMaxWait(time.Second))
		got := 0
		if err == nil {
		recv:
			for {
				select {
				case m, ok := <-batch.Messages():
					if !ok {
						break recv
					}
					got++
					w.busy.Add(1)
					wg.Go(func() {
						// The slot is free once the knot has run: its
						// result is published while the next job runs.
						var once sync.Once
						release := func() { once.Do(func() { <-slots; w.busy.Add(-1) }) }
						defer release()
						w.handle(jobs, m, release)
					})
				case <-ctx.Done():
					// Stopping: what the pull still brings goes back to
					// the broker at once, for another worker.
					go func() {
						for m := range batch.Messages() {
							_ = m.Nak()
						}
					}()
					break recv
				}
			}
			err = batch.Error()
		}
		for range free - got {
			<-slots
		}
		if err != nil && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			w.cfg.Logger.Debug("fetch", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	w.cfg.Logger.Info("worker stopping", "id", w.cfg.ID, "in_flight", w.busy.Load(), "drain", w.cfg.Drain)
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(w.cfg.Drain):
		stopJobs(errStopping)
		<-finished
	}
	return nil
}

// register publishes the worker's entry each second.
func (w *Worker) register(ctx context.Context) {
	t := time.NewTicker(workerRefresh)
	defer t.Stop()
	for {
		info := w.info
		info.Busy, info.Done, info.Failed, info.Redelivered = int(w.busy.Load()), w.done.Load(), w.failed.Load(), w.redelivered.Load()
		if v, err := pcbor.Marshal(&info); err == nil {
			if _, err := w.b.workers.Put(ctx, w.cfg.ID, v); err != nil && ctx.Err() == nil {
				w.cfg.Logger.Debug("refresh the worker's entry", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// cancelRun stops a run's jobs in flight and refuses its queued ones.
func (w *Worker) cancelRun(tok string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	for t, at := range w.cancelled { // remembered for an hour: bounded
		if now.Sub(at) > time.Hour {
			delete(w.cancelled, t)
		}
	}
	if len(w.cancelled) < 1<<16 {
		w.cancelled[tok] = now
	}
	for f := range w.inflight[tok] {
		f.cancel(errRunCancelled)
	}
}

// handle runs one delivered job to its ack, calling release once the
// knot no longer runs.
func (w *Worker) handle(ctx context.Context, m jetstream.Msg, release func()) {
	lg := w.cfg.Logger
	meta, err := m.Metadata()
	if err != nil {
		lg.Warn("a job without metadata", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	stop := w.heartbeat(m)
	defer stop()
	attempt := int(meta.NumDelivered)
	if attempt > 1 {
		w.redelivered.Add(1)
	}
	subject := m.Subject()
	tokens := strings.Split(subject, ".")
	if len(tokens) != 5 {
		lg.Warn("a job on an unexpected subject", "subject", subject)
		_ = m.Term()
		return
	}
	tok, key := tokens[3], tokens[4]
	res := &Result{V: Version, Key: key, Worker: w.cfg.ID, Attempt: attempt, Started: time.Now().UnixNano()}
	publish := func() {
		res.Finished = time.Now().UnixNano()
		if res.Outcome == Err {
			w.failed.Add(1)
		}
		if err := w.publish(ctx, tok, res); err != nil {
			lg.Warn("cannot publish a result; the job will be delivered again", "key", key, "err", err)
			_ = m.Nak()
			return
		}
		w.done.Add(1)
		lg.Debug("result published")
		// A plain ack, not awaited: if it is lost, the job comes back
		// after the ack wait and is found in the results (below).
		if err := m.Ack(); err != nil {
			lg.Debug("ack", "key", key, "err", err)
		}
	}
	fail := func(typ, msg string) {
		res.Outcome, res.Error = Err, &abi.Error{Type: typ, Message: msg}
		publish()
	}
	sum := sha256.Sum256(m.Data())
	if hex.EncodeToString(sum[:]) != key {
		fail(ErrBadJob, "the job's bytes do not hash to the key its subject names")
		return
	}
	job, err := DecodeJob(m.Data())
	if err != nil {
		fail(ErrBadJob, err.Error())
		return
	}
	if RunToken(job.Run) != tok {
		fail(ErrBadJob, fmt.Sprintf("the job is of run %.64q, its subject of %s", job.Run, tok))
		return
	}
	lg = lg.With("run", job.Run, "knot", job.Knot, "key", key[:16], "attempt", attempt)
	// Idempotency: a job delivered again after its result was published
	// (its worker died before the ack, the ack was lost, or the job was
	// published again after a broker restart, a first delivery then) is
	// not run again.
	if _, done := w.b.published(ctx, tok, key); done {
		lg.Debug("job already done")
		_ = m.Ack()
		return
	}
	w.mu.Lock()
	_, cancelled := w.cancelled[tok]
	w.mu.Unlock()
	if cancelled {
		_ = m.Term()
		return
	}
	switch {
	case attempt >= w.maxDeliver:
		fail(ErrWorkerLost, fmt.Sprintf("knot %s: its job was delivered %d times and each worker that took it stopped before finishing it (the knot may crash or exhaust its worker); not run again",
			job.Knot, attempt-1))
		return
	case !job.Spec.Grants.Empty() && !w.cfg.AllowGrants:
		fail(ErrGrantRefused, fmt.Sprintf("knot %s has grants (%s) and worker %s allows none (start it with --allow-grants)",
			job.Knot, strings.Join(job.Spec.Grants.Describe(), ", "), w.cfg.ID))
		return
	}
	lg.Debug("job started", "module", job.Spec.Module, "name", job.Spec.Knot)
	call, err := w.inputs(ctx, job)
	if err != nil {
		var u unavailable
		if errors.As(err, &u) {
			fail(ErrUnavailable, err.Error())
			return
		}
		w.retry(m, attempt, lg, err, fail)
		return
	}
	jctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	f := &flight{cancel: cancel}
	w.track(tok, f, true)
	defer w.track(tok, f, false)
	resp, err := w.execute(jctx, job, call)
	release()
	if cause := context.Cause(jctx); cause != nil {
		if errors.Is(cause, errRunCancelled) {
			lg.Debug("job cancelled with its run")
			_ = m.Term()
		} else {
			lg.Debug("job handed back", "cause", cause)
			_ = m.Nak()
		}
		return
	}
	if err != nil {
		w.retry(m, attempt, lg, err, fail)
		return
	}
	resp.Clip()
	res.Logs = wireLogs(resp.Logs)
	switch resp.Outcome {
	case abi.OutcomeOK:
		d := cas.Sum(resp.Value)
		if err := w.store.Put(ctx, d, resp.Value); err != nil {
			w.retry(m, attempt, lg, fmt.Errorf("store the output: %w", err), fail)
			return
		}
		res.Outcome, res.Value = OK, &Ref{Name: "output", Digest: d.String(), Size: len(resp.Value)}
	case abi.OutcomeSkip:
		res.Outcome, res.Skip = Skip, resp.Skip
	default:
		res.Outcome, res.Error = Err, resp.Error
		if res.Error == nil {
			res.Error = &abi.Error{Type: "InternalError", Message: fmt.Sprintf("knot returned %v", resp.Outcome)}
		}
	}
	lg.Debug("job finished", "outcome", res.Outcome)
	publish()
}

// execute runs the job, turning a panic (a bug in an executor or a
// host-native function) into an err as the scheduler does locally.
func (w *Worker) execute(ctx context.Context, job *Job, call *host.Call) (r abi.Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = abi.Response{Outcome: abi.OutcomeErr, Error: &abi.Error{Type: scheduler.ErrPanic, Message: fmt.Sprint(p), Trace: string(debug.Stack())}}, nil
		}
	}()
	return w.exec.Execute(ctx, job, call)
}

// retry hands a job back after an infrastructure error, later each time;
// on its last delivery the job ends as an err naming the error.
func (w *Worker) retry(m jetstream.Msg, attempt int, lg *slog.Logger, err error, fail func(typ, msg string)) {
	if attempt >= w.maxDeliver-1 {
		fail(ErrWorkerLost, fmt.Sprintf("delivered %d times; the last worker failed with: %v", attempt, err))
		return
	}
	lg.Warn("job failed on this worker; it will be delivered again", "err", err)
	_ = m.NakWithDelay(min(time.Duration(attempt)*time.Second, 10*time.Second))
}

// heartbeat tells the broker the job is in progress every third of the
// ack wait, from its receipt until stop.
func (w *Worker) heartbeat(m jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(max(w.ackWait/3, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func (w *Worker) track(tok string, f *flight, add bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if add {
		if w.inflight[tok] == nil {
			w.inflight[tok] = map[*flight]struct{}{}
		}
		w.inflight[tok][f] = struct{}{}
		return
	}
	delete(w.inflight[tok], f)
	if len(w.inflight[tok]) == 0 {
		delete(w.inflight, tok)
	}
}

// unavailable is a value the store does not have, or has wrong: the job
// cannot run anywhere.
type unavailable struct{ error }

// inputs reads a job's inputs and configuration from the store, each
// checked against its digest, within the knot's MaxInput.
func (w *Worker) inputs(ctx context.Context, job *Job) (*host.Call, error) {
	total, limit := 0, job.Spec.Limits.MaxInput
	if limit <= 0 {
		limit = 64 << 20
	}
	for _, refs := range [][]Ref{job.Inputs, job.Config} {
		for _, r := range refs {
			total += r.Size
		}
	}
	if total > limit {
		return nil, unavailable{fmt.Errorf("the job's inputs are %d bytes, over the knot's MaxInput of %d", total, limit)}
	}
	call := &host.Call{RunID: job.Run, KnotID: job.Knot}
	read := func(refs []Ref) ([]abi.Arg, error) {
		args := make([]abi.Arg, len(refs))
		for i, r := range refs {
			d, _ := cas.ParseDigest(r.Digest) // checked by DecodeJob
			b, err := w.store.Get(ctx, d)
			switch {
			case errors.Is(err, cas.ErrNotFound), errors.Is(err, cas.ErrCorrupt):
				return nil, unavailable{fmt.Errorf("input %s (%s): %w", r.Name, d, err)}
			case err != nil:
				return nil, fmt.Errorf("input %s (%s): %w", r.Name, d, err)
			case cas.Sum(b) != d:
				return nil, unavailable{fmt.Errorf("input %s: the data store's bytes for %s do not match the digest", r.Name, d)}
			}
			args[i] = abi.Arg{Name: r.Name, Value: b}
		}
		abi.SortArgs(args)
		return args, nil
	}
	var err error
	if call.Inputs, err = read(job.Inputs); err != nil {
		return nil, err
	}
	if call.Config, err = read(job.Config); err != nil {
		return nil, err
	}
	return call, nil
}

// publish publishes a result, retrying for up to the ack wait while the
// broker is unreachable.
func (w *Worker) publish(ctx context.Context, tok string, r *Result) error {
	b, err := r.encode()
	if err != nil { // too long: keep the outcome, drop the text
		r.Error = &abi.Error{Type: ErrBadResult, Message: "the knot's result was too large to publish: " + err.Error()}
		r.Outcome, r.Value, r.Skip = Err, nil, nil
		if b, err = r.encode(); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(w.ackWait)
	delay := 50 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, err := w.b.js.Publish(pctx, w.b.resultSubject(tok, r.Key), b, jetstream.WithMsgID(r.Key))
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(delay)
		delay = min(2*delay, time.Second)
	}
}
