package emit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pirn-wasm/pirn/scheduler"
)

// Policy says what a Hub does when an emitter fails or misses an event.
type Policy string

// Policies.
const (
	// Warn logs the failure (rate-limited) and goes on: the default.
	Warn Policy = "warn"
	// Ignore only counts it.
	Ignore Policy = "ignore"
	// Fail counts and logs it, and Hub.Wait reports the run failed (after
	// the run is recorded: emitters never change the history).
	Fail Policy = "fail"
)

// Defaults and bounds of a Hub.
const (
	DefaultQueue   = 1024            // events queued per emitter
	DefaultTimeout = 5 * time.Second // per Emit call
	// DefaultLogInterval is how often, at most, a Hub logs one emitter's
	// drops, and (separately) its failures; the lines in between are
	// counted and the next line says how many were suppressed.
	DefaultLogInterval = 10 * time.Second
	// MaxFinishedRuns is how many finished runs a Hub remembers for Wait
	// when nobody waits for them; the oldest is forgotten first.
	MaxFinishedRuns = 1024
	// abandonGrace is how long past its Timeout (at most, and at most the
	// Timeout again) an Emit call may run before the Hub stops waiting for
	// it and drops the emitter's events until it returns.
	abandonGrace = time.Second
)

// HubEmitter is one emitter of a Hub and its isolation settings.
type HubEmitter struct {
	Emitter Emitter
	Policy  Policy        // "" means Warn
	Queue   int           // events queued; 0 means DefaultQueue
	Timeout time.Duration // bound of each Emit call; 0 means DefaultTimeout
}

// HubConfig configures a Hub.
type HubConfig struct {
	Emitters []HubEmitter
	// Redact, if set, is applied to every error message and trace, to the
	// run's own error and to the labels' values before an emitter sees
	// an event.
	Redact func(string) string
	// LogInterval bounds the Hub's log volume (0 means DefaultLogInterval).
	LogInterval time.Duration
	Logger      *slog.Logger // nil discards
}

// StatsUser is implemented by emitters that report the Hub's own figures
// (the OpenTelemetry emitter's queue-depth gauge): NewHub hands them
// Hub.Stats.
type StatsUser interface {
	UseStats(stats func() []EmitterStats)
}

// EmitterStats are one emitter's counts since the Hub started.
type EmitterStats struct {
	Name      string // the emitter's Name, with "#2", "#3"… for a second, third… of that name
	Policy    Policy
	Delivered uint64 // Emit returned nil
	Dropped   uint64 // never handed to Emit: the queue was full, the emitter hung, or the Hub closed
	Failed    uint64 // Emit returned an error or did not return in time
	Queued    int    // waiting in the queue now
}

// Hub is the scheduler.Observer that sends runs' events to emitters, each
// through a bounded queue and a goroutine of its own: Event never blocks,
// a full queue drops the event for that emitter only, and an emitter that
// hangs past its Timeout has its events dropped until it returns. Events
// of a run reach each emitter in order, numbered from 1. It is safe for
// concurrent use.
type Hub struct {
	cfg  HubConfig
	log  *slog.Logger
	outs []*outlet

	// sendMu is held for reading while Event queues, and for writing
	// while Close closes the queues.
	sendMu sync.RWMutex
	closed bool // under sendMu

	mu       sync.Mutex
	runs     map[string]*runState
	finished []*runState // done and not yet waited for, oldest first
	wg       sync.WaitGroup
}

var _ scheduler.Observer = (*Hub)(nil)

// NewHub starts a Hub's goroutines; Close stops them.
func NewHub(cfg HubConfig) (*Hub, error) {
	h := &Hub{cfg: cfg, runs: map[string]*runState{}}
	h.log = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	h.cfg.LogInterval = cmp.Or(cfg.LogInterval, DefaultLogInterval)
	if h.cfg.LogInterval < 0 {
		return nil, fmt.Errorf("emit: LogInterval = %v, want >= 0", cfg.LogInterval)
	}
	names := map[string]bool{}
	for i, he := range cfg.Emitters {
		if he.Emitter == nil {
			return nil, fmt.Errorf("emit: emitter %d is nil", i)
		}
		name := he.Emitter.Name()
		for n := 2; names[name]; n++ { // a second emitter of a type: "webhook#2"
			name = fmt.Sprintf("%s#%d", he.Emitter.Name(), n)
		}
		names[name] = true
		switch he.Policy {
		case "":
			he.Policy = Warn
		case Warn, Ignore, Fail:
		default:
			return nil, fmt.Errorf("emit: emitter %s: policy %q, want warn, ignore or fail", name, he.Policy)
		}
		if he.Queue < 0 || he.Timeout < 0 {
			return nil, fmt.Errorf("emit: emitter %s: queue %d, timeout %v, want >= 0", name, he.Queue, he.Timeout)
		}
		he.Queue = cmp.Or(he.Queue, DefaultQueue)
		he.Timeout = cmp.Or(he.Timeout, DefaultTimeout)
		h.outs = append(h.outs, &outlet{
			HubEmitter: he, name: name, index: i, hub: h,
			ch: make(chan item, he.Queue), resumed: make(chan struct{}, 1), quit: make(chan struct{}),
			dropLog: limiter{every: int64(h.cfg.LogInterval)}, failLog: limiter{every: int64(h.cfg.LogInterval)},
		})
	}
	for _, o := range h.outs {
		h.wg.Add(2)
		go o.loop()
		go o.watchdog()
		if u, ok := o.Emitter.(StatsUser); ok {
			u.UseStats(h.Stats)
		}
	}
	return h, nil
}

// Stats returns each emitter's counts, in the order of HubConfig.Emitters.
func (h *Hub) Stats() []EmitterStats {
	st := make([]EmitterStats, len(h.outs))
	for i, o := range h.outs {
		st[i] = EmitterStats{Name: o.name, Policy: o.Policy, Delivered: o.delivered.Load(),
			Dropped: o.dropped.Load(), Failed: o.failed.Load(), Queued: len(o.ch)}
	}
	return st
}

// Event converts a scheduler event and queues it for every emitter. It
// never blocks on an emitter.
func (h *Hub) Event(sev scheduler.Event) {
	ev := h.convert(sev)
	h.sendMu.RLock()
	defer h.sendMu.RUnlock()
	if h.closed {
		for _, o := range h.outs {
			o.drop(ev, errHubClosed)
		}
		return
	}
	h.mu.Lock()
	rs := h.runs[sev.RunID]
	if rs == nil || rs.ended.Load() {
		rs = &runState{id: sev.RunID, pending: len(h.outs), done: make(chan struct{})}
		h.runs[sev.RunID] = rs
	}
	h.mu.Unlock()

	rs.mu.Lock() // one run's events are numbered and queued in one order
	if rs.ended.Load() {
		rs.mu.Unlock()
		return // an event after the run's end (a reused run id raced): nothing to number it in
	}
	if sev.Kind == scheduler.RunStarted && sev.Run != nil {
		rs.pipeline = sev.Run.Pipeline
	}
	rs.seq++
	ev.Seq = rs.seq
	if ev.Pipeline == "" {
		ev.Pipeline = rs.pipeline
	}
	last := ev.Kind == RunFinished
	rs.ended.Store(last)
	var buf [4]*outlet // no allocation for the usual few emitters
	full := buf[:0]
	for _, o := range h.outs {
		if !o.put(item{ev: ev, run: rs}) {
			full = append(full, o)
		}
	}
	rs.mu.Unlock()
	for _, o := range full {
		o.dropItem(item{ev: ev, run: rs}, errQueueFull)
	}
	if last && len(h.outs) == 0 {
		h.runDone(rs)
	}
}

// Wait waits until every emitter has handled or dropped the run's
// run_finished event, or ctx ends. It returns an error naming each
// "fail"-policy emitter that failed or missed an event of the run. A run
// the Hub does not know (never seen, already waited for, or forgotten
// among more than MaxFinishedRuns unawaited runs) returns nil.
func (h *Hub) Wait(ctx context.Context, runID string) error {
	h.mu.Lock()
	rs := h.runs[runID]
	h.mu.Unlock()
	if rs == nil {
		return nil
	}
	select {
	case <-rs.done:
	case <-ctx.Done():
		return fmt.Errorf("emit: wait for run %s: %w", runID, context.Cause(ctx))
	}
	h.mu.Lock()
	if h.runs[runID] == rs {
		delete(h.runs, runID)
	}
	h.mu.Unlock()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.failed) == 0 {
		return nil
	}
	return &FailedError{RunID: runID, Emitters: slices.Sorted(slices.Values(rs.failed))}
}

// FailedError is Wait's error: emitters of policy "fail" failed or missed
// events of the run.
type FailedError struct {
	RunID    string
	Emitters []string // sorted
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("emit: run %s: emitter %s failed (policy fail)", e.RunID, strings.Join(e.Emitters, ", "))
}

// Close stops accepting events, lets each emitter handle what its queue
// holds until ctx ends (then drops the rest), and closes the emitters. It
// returns the emitters' Close errors and, if ctx ended first, an error
// naming the emitters still busy (a goroutine stuck in an Emit call that
// ignores its context cannot be stopped; it is left behind).
func (h *Hub) Close(ctx context.Context) error {
	h.sendMu.Lock()
	if h.closed {
		h.sendMu.Unlock()
		return nil
	}
	h.closed = true
	for _, o := range h.outs {
		o.closing.Store(ctx)
		close(o.ch)
	}
	h.sendMu.Unlock()
	drained := make(chan struct{})
	go func() { h.wg.Wait(); close(drained) }()
	var errs []error
	select {
	case <-drained:
	case <-ctx.Done():
		var busy []string
		for _, o := range h.outs {
			if !o.stopped.Load() {
				busy = append(busy, o.name)
			}
		}
		errs = append(errs, fmt.Errorf("emit: close: emitters %s still busy: %w", strings.Join(busy, ", "), context.Cause(ctx)))
	}
	for _, o := range h.outs {
		if o.stopped.Load() {
			if err := o.Emitter.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("emit: close %s: %w", o.name, err))
			}
		}
		o.summary()
	}
	return errors.Join(errs...)
}

// runDone notes that every emitter has handled the run's end.
func (h *Hub) runDone(rs *runState) {
	close(rs.done)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.finished = append(h.finished, rs)
	for len(h.finished) > MaxFinishedRuns {
		old := h.finished[0]
		h.finished = h.finished[1:]
		if h.runs[old.id] == old {
			delete(h.runs, old.id)
		}
	}
	if len(h.finished) == 0 {
		h.finished = nil
	}
}

// runState is a Hub's bookkeeping of one run: its sequence numbers, and
// for Wait the emitters yet to handle its end and those that failed.
type runState struct {
	id       string
	pipeline string
	done     chan struct{} // closed when pending reaches 0

	mu      sync.Mutex
	seq     uint64
	ended   atomic.Bool // run_finished queued (written under mu)
	pending int         // emitters yet to handle run_finished
	failed  []string    // "fail"-policy emitters that failed or dropped an event
}

// item is one queued event.
type item struct {
	ev  *Event
	run *runState
}

// outlet is one emitter of a Hub: its queue, counts and log limiters.
type outlet struct {
	HubEmitter
	name  string
	index int
	hub   *Hub
	ch    chan item // the bounded queue

	// The call loop is making, for watchdog: when it began (zero if
	// none), the event, and whether watchdog gave up on it.
	callMu    sync.Mutex
	callStart time.Time
	callItem  item
	abandoned bool
	resumed   chan struct{} // loop to watchdog: an abandoned call returned
	quit      chan struct{} // closed when loop returns

	delivered, dropped, failed atomic.Uint64
	closing                    atomic.Value // the Close ctx, once closing
	stopped                    atomic.Bool  // loop has returned

	dropLog, failLog limiter
}

// put queues it unless the queue is full.
func (o *outlet) put(it item) bool {
	select {
	case o.ch <- it:
		return true
	default:
		return false
	}
}

// loop makes the emitter's Emit calls, one event at a time, in order.
func (o *outlet) loop() {
	defer o.hub.wg.Done()
	defer close(o.quit)
	defer o.stopped.Store(true)
	for it := range o.ch {
		if ctx, ok := o.closing.Load().(context.Context); ok && ctx.Err() != nil {
			o.dropItem(it, errClosedFirst)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
		o.callMu.Lock()
		o.callStart, o.callItem = time.Now(), it
		o.callMu.Unlock()
		err := o.Emitter.Emit(ctx, it.ev)
		cancel()
		o.callMu.Lock()
		abandoned := o.abandoned
		o.callStart, o.callItem, o.abandoned = time.Time{}, item{}, false
		o.callMu.Unlock()
		switch {
		case abandoned: // counted by watchdog, which is dropping what comes
			o.resumed <- struct{}{}
		case err != nil:
			o.fail(it, err)
		default:
			o.delivered.Add(1)
		}
		if !abandoned {
			o.handled(it)
		}
	}
}

// watchdog gives up on an Emit call that outlives its Timeout by
// min(Timeout, abandonGrace) (it ignores its context): it counts the
// call as failed and drops the emitter's events, so that neither the
// queue nor Wait waits for it, until the call returns.
func (o *outlet) watchdog() {
	defer o.hub.wg.Done()
	grace := min(o.Timeout, abandonGrace)
	tick := time.NewTicker(max(grace/2, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-o.quit:
			return
		case <-tick.C:
		}
		o.callMu.Lock()
		overdue := !o.callStart.IsZero() && !o.abandoned && time.Since(o.callStart) > o.Timeout+grace
		it := o.callItem
		if overdue {
			o.abandoned = true
		}
		o.callMu.Unlock()
		if !overdue {
			continue
		}
		o.fail(it, fmt.Errorf("emit did not return within %v and ignored its context", o.Timeout+grace))
		o.handled(it)
		if !o.drain() {
			return
		}
	}
}

// drain drops queued events until the abandoned call returns; false
// means the queue is closed and empty.
func (o *outlet) drain() bool {
	for {
		select {
		case <-o.resumed:
			return true
		case it, ok := <-o.ch:
			if !ok {
				return false
			}
			o.dropItem(it, errStillBusy)
		}
	}
}

// handled notes that the emitter is done with it.
func (o *outlet) handled(it item) {
	if it.ev.Kind != RunFinished {
		return
	}
	rs := it.run
	rs.mu.Lock()
	rs.pending--
	last := rs.pending == 0
	rs.mu.Unlock()
	if last {
		o.hub.runDone(rs)
	}
}

// Why events are dropped. Static, so that dropping (what a hung
// emitter's events all come to) allocates nothing on the run's path.
var (
	errHubClosed   = errors.New("the hub is closed")
	errQueueFull   = errors.New("the queue is full")
	errClosedFirst = errors.New("the hub closed before the emitter could take it")
	errStillBusy   = errors.New("the emitter is still in an earlier call")
)

// dropItem counts and logs a dropped event.
func (o *outlet) dropItem(it item, why error) {
	o.dropped.Add(1)
	o.blame(it.run)
	o.note(&o.dropLog, "emitter dropped an event", it.ev, why)
	o.handled(it)
}

// drop counts an event dropped before it had a run (the hub is closed).
func (o *outlet) drop(ev *Event, why error) {
	o.dropped.Add(1)
	o.note(&o.dropLog, "emitter dropped an event", ev, why)
}

// fail counts and logs a failed Emit call.
func (o *outlet) fail(it item, err error) {
	o.failed.Add(1)
	o.blame(it.run)
	o.note(&o.failLog, "emitter failed", it.ev, err)
}

// blame notes a "fail"-policy emitter's miss in the run's bookkeeping.
func (o *outlet) blame(rs *runState) {
	if o.Policy != Fail || rs == nil {
		return
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, n := range rs.failed {
		if n == o.name {
			return
		}
	}
	rs.failed = append(rs.failed, o.name)
}

// note logs a drop or failure unless the policy is Ignore or the limiter
// says the emitter has logged one recently.
func (o *outlet) note(l *limiter, msg string, ev *Event, err error) {
	if o.Policy == Ignore {
		return
	}
	ok, suppressed := l.allow(time.Now())
	if !ok {
		return
	}
	text := err.Error()
	if o.hub.cfg.Redact != nil {
		text = o.hub.cfg.Redact(text)
	}
	o.hub.log.LogAttrs(context.Background(), slog.LevelWarn, msg,
		slog.String("emitter", o.name), slog.String("run", ev.RunID), slog.Uint64("seq", ev.Seq),
		slog.String("event", string(ev.Kind)), slog.String("error", text),
		slog.Uint64("suppressed", suppressed), slog.Uint64("dropped", o.dropped.Load()), slog.Uint64("failed", o.failed.Load()))
}

// summary logs the emitter's totals at Close if it missed anything.
func (o *outlet) summary() {
	d, f := o.dropped.Load(), o.failed.Load()
	if o.Policy == Ignore || d+f == 0 {
		return
	}
	o.hub.log.LogAttrs(context.Background(), slog.LevelWarn, "emitter missed events",
		slog.String("emitter", o.name), slog.Uint64("delivered", o.delivered.Load()),
		slog.Uint64("dropped", d), slog.Uint64("failed", f))
}

// limiter allows one log line per interval and counts the rest. It takes
// no lock: a refused line (what a flood of drops mostly is) costs two
// atomic operations.
type limiter struct {
	every      int64        // nanoseconds
	last       atomic.Int64 // UnixNano+1 of the last line allowed; 0 for none
	suppressed atomic.Uint64
}

// allow reports whether a line may be logged now, and how many were
// suppressed since the last one.
func (l *limiter) allow(now time.Time) (bool, uint64) {
	n := now.UnixNano() + 1
	last := l.last.Load()
	if (last != 0 && n-last < l.every) || !l.last.CompareAndSwap(last, n) {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}
