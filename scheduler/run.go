package scheduler

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/internal/pcbor"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/model"
	"github.com/pirn-wasm/pirn/redact"
)

// Skip reasons the scheduler itself produces.
const (
	ReasonParentFailed = "parent_failed_or_skipped"
	ReasonCancelled    = "run_cancelled"
	// ReasonOptionalFailed is how an optional knot's err looks to a
	// receive_errors child.
	ReasonOptionalFailed = "optional_failed"
)

// Error types the scheduler itself produces.
const (
	ErrParents = "ParentFailed"    // RequireAllParents not satisfied
	ErrStore   = "StoreError"      // the data store refused an ok value
	ErrPanic   = "Panic"           // a knot's Invoke panicked
	ErrBranch  = "BranchError"     // a selector named no declared arm
	ErrElement = "ElementFailed"   // an element of a Map erred
	ErrType    = "TypeError"       // a Map or Reduce input is not a list
	ErrTooMany = "TooManyElements" // a Map's list is longer than its MaxElements
	// ErrStalled is a node the scheduler never made ready: an internal
	// error, reported rather than waited on forever.
	ErrStalled = "SchedulerStalled"
)

// Config configures a [Scheduler].
type Config struct {
	// Workers is the most knots run at once; 0 means GOMAXPROCS, or
	// RemoteWorkers with a Remote.
	Workers int
	// Dispatcher is the name recorded in lineage; "" means the Remote's
	// Name() if it has one, else "local".
	Dispatcher string
	// Logger receives a debug record per knot; nil discards.
	Logger *slog.Logger
	// Remote, when set, runs the invocations it accepts in other
	// processes (pirn worker over NATS, package dispatch) instead of on
	// this process's pool; Workers then bounds how many wait at once.
	Remote Remote
	// Redactor, when set, masks secrets in every error record (message,
	// trace and detail) before it is recorded, hashed or sent to an
	// observer; each run adds to it the values of the environment
	// variables granted to its knots.
	Redactor *redact.Redactor
	// StoreWriters, when positive, writes ok values to the data store from
	// that many background goroutines instead of from the worker that
	// produced them, so that a slow store (a disk) overlaps with execution.
	// The run waits for every write before it is recorded; a failed write
	// fails the run with a StoreError record for the knot. 0 writes
	// synchronously.
	StoreWriters int
	// CacheSalt is the operator's salt, part of every cache key: changing
	// it disowns every result recorded under another salt (say, after a
	// runtime change that could alter outputs). "" is a salt like any
	// other.
	CacheSalt string
}

// Remote runs invocations elsewhere. Everything else about a run (its
// policies, records, the values it stores) stays with the scheduler, so a
// run gives the same outcomes and digests whichever runs its knots.
type Remote interface {
	// StartRun prepares for a run's dispatches; the scheduler calls end
	// when the run's last invocation has returned. ctx is the run's: when
	// it ends, the remote cancels what it has queued and in flight.
	StartRun(ctx context.Context, runID string) (end func(), err error)
	// Dispatch runs one invocation of fn elsewhere and reports true, or
	// reports false, at once, for a function it cannot ship (an
	// expression, a host-native function), which then runs here. Like
	// Invoker.Invoke it must not panic, must not retain c, and must
	// return soon after ctx is done.
	Dispatch(ctx context.Context, fn *Fn, c *Call) (abi.Response, bool)
}

// RemoteWorkers is Config.Workers' default with a Remote: how many
// invocations a run keeps in flight on other processes.
const RemoteWorkers = 256

// Scheduler runs tapestries, storing values in a data store and runs in a
// history.
type Scheduler struct {
	cfg   Config
	store cas.Store
	hist  lineage.History
	host  string
}

// New returns a scheduler.
func New(cfg Config, store cas.Store, hist lineage.History) (*Scheduler, error) {
	if cfg.Workers < 0 || cfg.StoreWriters < 0 {
		return nil, fmt.Errorf("scheduler: Workers = %d, StoreWriters = %d, want >= 0", cfg.Workers, cfg.StoreWriters)
	}
	if store == nil || hist == nil {
		return nil, errors.New("scheduler: nil data store or history")
	}
	if cfg.Remote != nil {
		// Remote invocations wait on the network, not a CPU: many at once.
		cfg.Workers = cmp.Or(cfg.Workers, RemoteWorkers)
		if n, ok := cfg.Remote.(interface{ Name() string }); ok {
			cfg.Dispatcher = cmp.Or(cfg.Dispatcher, n.Name())
		}
	}
	cfg.Workers = cmp.Or(cfg.Workers, runtime.GOMAXPROCS(0))
	cfg.Dispatcher = cmp.Or(cfg.Dispatcher, "local")
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	host, _ := os.Hostname()
	return &Scheduler{cfg: cfg, store: store, hist: hist, host: host}, nil
}

// Request asks for one run.
type Request struct {
	RunID     string         // "" means a fresh "run-<32 hex>"
	Pipeline  string         // recorded with the run; "" means the tapestry's Origin's
	Params    map[string]any // by parameter name
	Terminals []string       // knot ids; nil means every terminal
	// Replace lets RunID name a run already recorded, which the new run
	// then replaces; otherwise that is a setup error wrapping
	// lineage.ErrRunExists.
	Replace bool
	// Observer, when set, receives the run's events (package emit sends
	// them on to logs, OpenTelemetry, OpenLineage and others).
	Observer Observer
	// Extensible lets nodes added to the tapestry while the run goes join
	// it (see AddKnot); only with Terminals nil, every terminal.
	Extensible bool
	// Labels say where the request came from (a trigger, a stream's
	// offset) and carry a caller's trace context ("traceparent"). They
	// are recorded with the run (lineage.Run.Labels, from its running
	// marker on) and go with the RunStarted event; no hash covers them.
	// Labels beyond lineage.CheckLabels' bounds are a setup error.
	Labels map[string]string
	// NoCache runs every knot, reusing no earlier result. The run still
	// records the cache keys of its executions, so later runs may reuse
	// them (as the latest for their keys).
	NoCache bool
}

// Skip describes a skipped knot.
type Skip struct {
	KnotID string
	Reason string
	Detail any // decoded detail, or nil
}

// MaxOutputItems bounds the values Result.Outputs holds decoded: a value
// of more data items (every scalar, list and dict in it) stays in
// Result.Values only, as canonical bytes. Decoded, a value takes up to 40
// times its size, and a knot may return 64 MiB.
const MaxOutputItems = 1 << 16

// Result is what a run produced. Its embedded Run is what the history
// stores.
type Result struct {
	lineage.Run
	// Outputs holds every ok value of at most MaxOutputItems items,
	// decoded, keyed by knot id (a parameter's id is "param:<name>" unless
	// given explicitly).
	Outputs map[string]any
	// Values holds the same values in canonical form with their digests.
	Values  map[string]cas.Value
	Skipped []Skip
}

// Succeeded reports whether no knot erred (optional knots aside).
func (r *Result) Succeeded() bool { return r.Status == lineage.Succeeded }

// NewRunID returns a fresh run id: "run-" and 32 hex digits, the first 12
// the current Unix time in milliseconds and the other 20 random (80 bits).
// Ids therefore sort by creation time, which also keeps each run's rows
// next to the previous run's in the history's indexes.
func NewRunID() string {
	var b [16]byte
	rand.Read(b[6:])
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	return "run-" + hex.EncodeToString(b[:])
}

// Run runs the tapestry. A setup error (unknown terminal or parameter, a
// missing or ill-typed parameter value, labels out of bounds, a RunID
// already recorded) returns
// a nil Result and records nothing. Otherwise every knot's outcome is in
// the Result and the run is recorded; the error is non-nil only if
// recording failed or ctx ended, in which case the Result (status
// cancelled) is still returned.
func (s *Scheduler) Run(ctx context.Context, t *Tapestry, req Request) (*Result, error) {
	runID := cmp.Or(req.RunID, NewRunID())
	if !abi.ValidKnotName(runID) {
		return nil, fmt.Errorf("run id %q is invalid (allowed: A-Z a-z 0-9 _ - . :, at most 256)", runID)
	}
	if err := lineage.CheckLabels(req.Labels); err != nil {
		return nil, err
	}
	req.Labels = maps.Clone(req.Labels) // the caller may change its map once Run returns, or during it
	t.mu.Lock()
	terminals, err := t.terminals(req.Terminals)
	if err != nil {
		t.mu.Unlock()
		return nil, err
	}
	req.Pipeline = cmp.Or(req.Pipeline, t.origin.Pipeline)
	size := len(t.nodes)
	if req.Extensible && req.Terminals == nil {
		size += MaxJoined // room for newcomers: the slice is never grown while workers read it
	}
	e := &engine{s: s, ctx: ctx, runID: runID, started: time.Now().UTC(), states: make([]*state, size), states0: t.nodes, collected: len(t.nodes),
		pipelineDigest: t.origin.Digest, obs: req.Observer, noCache: req.NoCache}
	e.memo, _ = s.hist.(lineage.Memo)
	e.cond.L = &e.mu
	e.collect(terminals)
	err = e.bind(t, req.Params)
	t.mu.Unlock()
	if err == nil {
		err = e.grantedSecrets()
	}
	if err != nil {
		return nil, err
	}
	if req.RunID != "" && !req.Replace { // fresh ids are unique by construction
		switch _, err := s.hist.Run(ctx, runID); {
		case err == nil:
			return nil, fmt.Errorf("run id %q: %w (choose another id, or replace the recorded run)", runID, lineage.ErrRunExists)
		case !errors.Is(err, lineage.ErrNotFound):
			return nil, fmt.Errorf("look up run %s: %w", runID, err)
		}
	}
	if r := s.cfg.Remote; r != nil { // before the running marker: a setup error records nothing
		end, err := r.StartRun(ctx, runID)
		if err != nil {
			return nil, fmt.Errorf("start run %s on the remote dispatcher: %w", runID, err)
		}
		defer end()
	}
	start := &lineage.Run{ID: runID, Pipeline: req.Pipeline, PipelineDigest: e.pipelineDigest, Status: lineage.Running, StartedAt: e.started,
		Dispatcher: cmp.Or(s.cfg.Dispatcher, "local"), Host: s.host, Labels: req.Labels}
	for _, n := range terminals {
		start.Terminals = append(start.Terminals, n.id)
	}
	if rs, ok := s.hist.(lineage.RunStarter); ok {
		if err := rs.StartRun(ctx, start); err != nil {
			return nil, fmt.Errorf("record the start of run %s: %w", runID, err)
		}
	}
	e.emit(Event{Kind: RunStarted, Run: start, Labels: req.Labels, Time: e.started})
	if req.Extensible && req.Terminals == nil {
		t.mu.Lock()
		t.register(e)
		t.mu.Unlock()
		e.execute()
		t.unregister(e)
		for _, st := range e.newcomers {
			if len(st.children) == 0 {
				terminals = append(terminals, st.n)
			}
		}
	} else {
		e.execute()
	}
	res, err := e.finish(req, terminals)
	e.emitRecorded(res, err)
	return res, err
}

func (t *Tapestry) terminals(ids []string) ([]*Node, error) {
	if ids == nil {
		ts := t.leaves()
		if len(ts) == 0 {
			return nil, errors.New("tapestry has no knots to run")
		}
		return ts, nil
	}
	if len(ids) == 0 {
		return nil, errors.New("no terminals requested")
	}
	var out []*Node
	for _, id := range ids {
		n, ok := t.byID[id]
		if !ok {
			return nil, fmt.Errorf("unknown terminal %q", id)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// state is one node's execution state within a run.
type state struct {
	n        *Node
	pending  int
	children []*state
	res      result
	rec      lineage.Record
	// A Map's elements; the worker that finishes the last one finishes
	// the Map.
	elems     []elemState
	elemsLeft atomic.Int32
	items     [][]byte // canonical element values
	// A Branch's input, passed to the selected arm.
	through cas.Value
	param   cas.Value // a parameter's bound value
	done    bool      // finished, its children told (under engine.mu)
}

type elemState struct {
	res result
	rec lineage.Record
}

type result struct {
	outcome lineage.Outcome
	value   cas.Value            // ok
	err     *lineage.ErrorRecord // err
	skip    string               // skipped: reason
	detail  []byte               // skipped: canonical detail, may be nil
	// doc is the canonical {"err": ...} or {"skip": ...} document that
	// stands for a non-ok result as a child's input.
	doc cas.Value
	// reused: the ok value is an earlier execution's, already in the
	// data store.
	reused bool
	// logs are the lines the invocations behind the result logged.
	logs []abi.LogLine
}

// task is a unit of work for the pool: a node, or one element of a Map.
type task struct {
	st   *state
	elem int // -1 for the node itself
}

// put is a value for the data store, and the knot it belongs to.
type put struct {
	v    cas.Value
	knot string
}

type engine struct {
	s       *Scheduler
	ctx     context.Context
	runID   string
	started time.Time
	states  []*state // by node index; nil outside the shed
	states0 []*Node  // the tapestry's nodes, by index
	// pipelineDigest is the tapestry's Origin's, recorded with the run.
	pipelineDigest cas.Digest
	obs            Observer     // the request's, or nil
	memo           lineage.Memo // the history's, if it finds records by cache key
	noCache        bool         // the request's NoCache
	ended          bool         // every node finished: nothing may join (under mu)
	holds          int          // newcomers an Add call holds back (under mu)
	executing      bool         // execute has queued the ready nodes (under mu)
	newcomers      []*state     // the nodes that joined mid-run
	t              *Tapestry    // set while the run is extensible
	collected      int          // how many of the tapestry's nodes there were at the start
	shed           []*state     // in topological order

	mu        sync.Mutex
	cond      sync.Cond
	ready     []task
	remaining int // nodes not yet finished
	running   int // tasks taken by a worker and not yet finished

	bg     context.Context // ctx without its cancellation, for storing and recording
	puts   chan put        // to the store writers, if any
	putWG  sync.WaitGroup
	putMu  sync.Mutex
	putErr map[string]error // by knot id
}

// collect builds the shed: the terminals and everything they need.
func (e *engine) collect(terminals []*Node) {
	var visit func(n *Node)
	in := make([]bool, len(e.states))
	size := 0
	visit = func(n *Node) {
		if in[n.index] {
			return
		}
		in[n.index] = true
		size++
		for _, p := range n.parents {
			visit(p.parent)
		}
	}
	for _, n := range terminals {
		visit(n)
	}
	states := make([]state, size) // one allocation for the whole shed
	edges, i := 0, 0
	for idx, ok := range in {
		if ok {
			states[i].n = e.states0[idx]
			e.states[idx] = &states[i]
			edges += len(states[i].n.parents)
			if states[i].n.kind == model.KindArm {
				edges++ // an arm also records the value it passes through
			}
			i++
		}
	}
	inputs := make([]lineage.Input, edges) // one allocation for every record's inputs
	for _, st := range e.states {
		if st == nil {
			continue
		}
		e.shed = append(e.shed, st)
		// A node waits for each distinct parent once: a parent bound under
		// two input names (a: x, b: x) finishes once and lists the child
		// once among its children.
		st.pending = distinctParents(st.n)
		k := len(st.n.parents)
		if st.n.kind == model.KindArm {
			k++ // an arm also records the value it passes through
		}
		st.rec.Inputs, inputs = inputs[:k:k], inputs[k:]
		for _, c := range st.n.children {
			if cs := e.states[c.index]; cs != nil {
				st.children = append(st.children, cs)
			}
		}
	}
}

// distinctParents counts n's parents, each node once however many inputs
// it feeds.
func distinctParents(n *Node) int {
	count := 0
	for i, ed := range n.parents {
		if !slices.ContainsFunc(n.parents[:i], func(o edge) bool { return o.parent == ed.parent }) {
			count++
		}
	}
	return count
}

// bind resolves the shed's parameters from the request.
func (e *engine) bind(t *Tapestry, values map[string]any) error {
	var unknown []string
	for name := range values {
		if _, ok := t.params[name]; !ok {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		known := make([]string, 0, len(t.params))
		for name := range t.params {
			known = append(known, name)
		}
		slices.Sort(known)
		return paramError{fmt.Errorf("unknown parameter(s) %s (the pipeline has: %s)", strings.Join(unknown, ", "), strings.Join(known, ", "))}
	}
	var errs []error
	for _, st := range e.shed {
		p := st.n.param
		if p == nil {
			continue
		}
		raw, ok := values[p.Name]
		switch {
		case ok:
			v, err := p.Type.Coerce(raw)
			if err != nil {
				errs = append(errs, fmt.Errorf("parameter %q: %w", p.Name, err))
				continue
			}
			cv, err := cas.NewValue(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("parameter %q: %w", p.Name, err))
				continue
			}
			st.param = cv
		case p.HasDefault:
			st.param = st.n.def
		default:
			errs = append(errs, fmt.Errorf("parameter %q has no value supplied and no default", p.Name))
		}
	}
	if len(errs) > 0 {
		return paramError{errors.Join(errs...)}
	}
	return nil
}

// ErrParams is matched (errors.Is) by Run's error for parameters that do
// not fit the tapestry: unknown names, missing values, values of the
// wrong type. The message is the problems', unprefixed.
var ErrParams = errors.New("scheduler: bad parameters")

type paramError struct{ error }

func (paramError) Is(target error) bool { return target == ErrParams }
func (e paramError) Unwrap() error      { return e.error }

// execute runs the shed on the worker pool.
func (e *engine) execute() {
	e.bg = context.WithoutCancel(e.ctx)
	if n := e.s.cfg.StoreWriters; n > 0 {
		e.puts = make(chan put, 4*n)
		for range n {
			e.putWG.Go(func() {
				for p := range e.puts {
					if err := e.s.store.Put(e.bg, p.v.Digest, p.v.Bytes); err != nil {
						e.putMu.Lock()
						if e.putErr == nil {
							e.putErr = map[string]error{}
						}
						e.putErr[p.knot] = err
						e.putMu.Unlock()
					}
				}
			})
		}
		defer func() {
			close(e.puts)
			e.putWG.Wait()
		}()
	}
	e.mu.Lock() // a node may be joining the run (extend.go)
	e.cond.L = &e.mu
	e.executing = true
	e.remaining = len(e.shed)
	for i := len(e.shed) - 1; i >= 0; i-- { // LIFO: pop in topological order
		if e.shed[i].pending == 0 {
			e.ready = append(e.ready, task{e.shed[i], -1})
		}
	}
	workers := min(e.s.cfg.Workers, len(e.shed))
	if e.t != nil { // newcomers may come
		workers = e.s.cfg.Workers
	}
	e.mu.Unlock()
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Go(e.worker)
	}
	wg.Wait()
}

func (e *engine) worker() {
	var call Call // reused: Knot.Invoke must not retain it
	e.mu.Lock()
	for {
		for len(e.ready) == 0 && e.remaining > 0 {
			if e.running == 0 && e.holds == 0 {
				// Nothing is ready and nothing runs that could make
				// anything ready: waiting would never end. This is a bug
				// in the scheduler, not in the tapestry; end the run
				// with the nodes left over marked, rather than hang.
				e.stall()
				break
			}
			e.cond.Wait()
		}
		if e.remaining == 0 {
			e.ended = true
			e.mu.Unlock()
			return
		}
		t := e.ready[len(e.ready)-1]
		e.ready = e.ready[:len(e.ready)-1]
		e.running++
		e.mu.Unlock()

		var done *state // a node that finished
		switch {
		case t.elem >= 0:
			e.runElement(t.st, t.elem, &call)
			if t.st.elemsLeft.Add(-1) == 0 {
				e.finishMap(t.st)
				done = t.st
			}
		case e.run(t.st, &call):
			done = t.st
		}

		e.mu.Lock()
		e.running--
		woken := 0
		if done == nil && t.elem < 0 { // a Map handing out its elements
			for i := len(t.st.elems) - 1; i >= 0; i-- {
				e.ready = append(e.ready, task{t.st, i})
			}
			woken = len(t.st.elems)
		}
		if done != nil {
			done.done = true
			e.remaining--
			for _, c := range done.children {
				if c.pending--; c.pending == 0 {
					e.ready = append(e.ready, task{c, -1})
					woken++
				}
			}
		}
		switch {
		case e.remaining == 0 || (len(e.ready) == 0 && e.running == 0):
			e.cond.Broadcast() // the run is over, or stalled: every waiter must see it
		case woken > 1: // this worker takes one; wake others for the rest
			for range min(woken-1, e.s.cfg.Workers) {
				e.cond.Signal()
			}
		}
	}
}

// stall ends a run in which no node is ready and none runs although some
// have not finished, which only a scheduler bug can cause: each unfinished
// node errs with ErrStalled. Called with e.mu held and no task running.
func (e *engine) stall() {
	for _, st := range e.shed {
		if st.res.outcome != "" {
			continue
		}
		e.begin(st)
		st.rec.Inputs = st.rec.Inputs[:len(st.n.byName)] // an arm's passthrough never came
		e.recordInputs(st)
		st.elems = nil // a Map's elements were never handed out
		st.res = e.failure(st.n.id, ErrStalled, fmt.Sprintf("internal error: node %q never became ready (%d parents unfinished); please report it", st.n.id, st.pending), nil, "")
		e.settle(st.n.id, &st.res, &st.rec)
		st.rec.FinishedAt = st.rec.StartedAt
		st.done = true
		e.emitFinished(&st.rec, &st.res)
	}
	e.remaining = 0
}

// run decides and, if needed, invokes one node, then fills its record. It
// reports false for a Map that has handed out its elements instead.
func (e *engine) run(st *state, call *Call) bool {
	n := st.n
	e.begin(st)
	if n.kind == model.KindParameter {
		st.res = result{outcome: lineage.OK, value: st.param}
	} else {
		res, spawned := e.decide(st, call)
		if spawned {
			return false
		}
		st.res = res
	}
	e.complete(st)
	return true
}

// begin opens a node's record.
func (e *engine) begin(st *state) {
	n, rec := st.n, &st.rec
	rec.RunID, rec.KnotID, rec.Kind, rec.ConfigHash, rec.Dispatcher = e.runID, n.id, recordKind(n.kind), n.configHash, e.s.cfg.Dispatcher
	rec.Module, rec.Knot = n.What()
	rec.Grants = n.fn.Grants
	rec.StartedAt = time.Now().UTC()
	e.emit(Event{Kind: KnotStarted, Record: *rec, Time: rec.StartedAt})
}

// complete stores a node's value and closes its record.
func (e *engine) complete(st *state) {
	e.settle(st.n.id, &st.res, &st.rec)
	st.rec.FinishedAt = time.Now().UTC()
	e.emitFinished(&st.rec, &st.res)
	if e.s.cfg.Logger.Enabled(e.ctx, slog.LevelDebug) {
		e.s.cfg.Logger.LogAttrs(e.ctx, slog.LevelDebug, "knot finished", slog.String("run", e.runID),
			slog.String("knot", st.n.id), slog.String("outcome", string(st.res.outcome)), slog.Duration("duration", st.rec.Duration()))
	}
}

// seen returns the parent's result as its children see it: an err of an
// optional knot is seen as a skip.
func seen(p *state) lineage.Outcome {
	if p.res.outcome == lineage.Err && p.n.optional {
		return lineage.Skipped
	}
	return p.res.outcome
}

// decide applies the node's policy to its parents' results and, if it
// runs, runs it. spawned is true for a Map whose elements were handed out.
func (e *engine) decide(st *state, c *Call) (res result, spawned bool) {
	n := st.n
	var failed []string
	anyErr, anySkip := false, false
	for i, ed := range n.parents {
		p := e.states[ed.parent.index]
		if slices.ContainsFunc(n.parents[:i], func(o edge) bool { return o.parent == ed.parent }) {
			continue // a parent bound under several inputs is named once
		}
		switch seen(p) {
		case lineage.Err:
			anyErr = true
			failed = append(failed, fmt.Sprintf("%s (err)", p.n.id))
		case lineage.Skipped:
			anySkip = true
			failed = append(failed, fmt.Sprintf("%s (skipped)", p.n.id))
		}
	}
	e.recordInputs(st)
	if len(failed) > 0 {
		switch n.policy {
		case model.SkipIfParentFailed:
			return skipped(ReasonParentFailed, map[string]any{"any_err": anyErr, "any_skipped": anySkip}), false
		case model.RequireAllParents:
			return e.failure(n.id, ErrParents, fmt.Sprintf("knot %q: require_all_parents not satisfied: %s", n.id, strings.Join(failed, ", ")), nil, ""), false
		}
	}
	if e.ctx.Err() != nil {
		return skipped(ReasonCancelled, nil), false
	}
	switch n.kind {
	case model.KindGate:
		return e.gate(st, c), false
	case model.KindBranch:
		return e.branch(st, c), false
	case model.KindArm:
		return e.arm(st), false
	case model.KindMap:
		return e.spawn(st)
	case model.KindReduce:
		return e.reduce(st, c), false
	}
	c.RunID, c.KnotID, c.Config, c.Inputs = e.runID, n.id, n.config, c.Inputs[:0]
	for _, ed := range n.parents {
		p := e.states[ed.parent.index]
		v := p.res.value.Bytes
		if n.policy == model.ReceiveErrors {
			v = wrap(p)
		}
		c.Inputs = append(c.Inputs, abi.Arg{Name: ed.input, Value: v})
	}
	key, keyed := e.callKey(n, c)
	if keyed && e.reuse(&res, &st.rec, key) {
		return res, false
	}
	res = e.response(n.id, e.invoke(&n.fn, c))
	if n.kind == model.KindSink && res.outcome == lineage.OK {
		res.value = nullValue
	}
	if keyed && res.outcome == lineage.OK {
		st.rec.CacheKey = key
	}
	return res, false
}

var nullValue = cas.CanonicalValue([]byte{0xf6})

// response turns a knot's response into a result, its text clipped to
// abi's bounds (whatever kind of knot made it).
func (e *engine) response(knotID string, r abi.Response) result {
	res := e.outcome(knotID, r)
	res.logs = r.Logs
	return res
}

func (e *engine) outcome(knotID string, r abi.Response) result {
	r.Clip()
	switch r.Outcome {
	case abi.OutcomeOK:
		return result{outcome: lineage.OK, value: cas.CanonicalValue(r.Value)}
	case abi.OutcomeSkip:
		res := result{outcome: lineage.Skipped, skip: r.Skip.Reason, detail: r.Skip.Detail}
		res.doc = skipDoc(res.skip, res.detail)
		return res
	case abi.OutcomeErr:
		return e.failure(knotID, r.Error.Type, r.Error.Message, r.Error.Detail, r.Error.Trace)
	}
	return e.failure(knotID, "InternalError", fmt.Sprintf("knot returned %v", r.Outcome), nil, "")
}

// recordInputs fills the record's inputs, by name: the digest of each
// parent's value, or of the document that stands for its err or skip.
func (e *engine) recordInputs(st *state) {
	for i, ed := range st.n.byName {
		p := e.states[ed.parent.index]
		d := p.asInput().Digest
		if p.res.outcome == lineage.OK {
			d = p.res.value.Digest
		}
		st.rec.Inputs[i] = lineage.Input{Name: ed.input, Parent: ed.parent.id, Digest: d}
	}
}

// invoke runs an invocation of fn, on the remote dispatcher if there is
// one and it takes fn, else here.
func (e *engine) invoke(fn *Fn, c *Call) abi.Response {
	if r := e.s.cfg.Remote; r != nil {
		if resp, ok := r.Dispatch(e.ctx, fn, c); ok {
			return resp
		}
	}
	return invoke(e.ctx, fn.Invoker, c)
}

// invoke calls a knot, turning a panic (a bug in a host-native knot) into
// an err so that it fails alone.
func invoke(ctx context.Context, k Invoker, c *Call) (r abi.Response) {
	defer func() {
		if p := recover(); p != nil {
			r = abi.Response{Outcome: abi.OutcomeErr, Error: &abi.Error{Type: ErrPanic, Message: fmt.Sprint(p), Trace: string(debug.Stack())}}
		}
	}()
	return k.Invoke(ctx, c)
}

// settle stores an ok value and fills the record's outcome.
func (e *engine) settle(knotID string, res *result, rec *lineage.Record) {
	if res.outcome == lineage.OK && !res.reused {
		if e.puts != nil {
			e.puts <- put{res.value, knotID}
		} else if err := e.s.store.Put(e.bg, res.value.Digest, res.value.Bytes); err != nil {
			*res = e.failure(knotID, ErrStore, "store the output: "+err.Error(), nil, "")
		}
	}
	if len(res.logs) > 0 && !res.reused {
		if d, err := e.storeLogs(res.logs); err != nil {
			*res = e.failure(knotID, ErrStore, "store the logs: "+err.Error(), nil, "")
		} else {
			rec.Logs = d
		}
	}
	rec.Outcome = res.outcome
	switch res.outcome {
	case lineage.OK:
		rec.Output = res.value.Digest
	case lineage.Err:
		rec.ErrorID = res.err.ID
	case lineage.Skipped:
		rec.SkipReason, rec.SkipDetail = res.skip, res.detail
	}
}

func skipped(reason string, detail any) result {
	res := result{outcome: lineage.Skipped, skip: reason}
	if detail != nil {
		res.detail, _ = cas.Encode(detail)
	}
	res.doc = skipDoc(reason, res.detail)
	return res
}

// failure builds an err result with a stable error record, its text
// redacted.
func (e *engine) failure(knotID, typ, msg string, detail []byte, trace string) result {
	if r := e.s.cfg.Redactor; r != nil {
		msg, trace, detail = r.String(msg), r.String(trace), redactDetail(r, detail)
	}
	idDoc := map[string]any{"knot": knotID, "type": typ, "message": msg}
	if detail != nil {
		idDoc["detail"] = raw(detail)
	}
	id, err := cas.Hash(idDoc)
	if err != nil { // detail is canonical, so this cannot happen; keep the id stable anyway
		id, _ = cas.Hash(map[string]any{"knot": knotID, "type": typ, "message": msg})
	}
	rec := &lineage.ErrorRecord{ID: id, RunID: e.runID, KnotID: knotID, Type: typ, Message: msg,
		Detail: detail, Trace: trace, OccurredAt: time.Now().UTC()}
	doc := map[string]any{"id": id.String(), "type": typ, "message": msg}
	if detail != nil {
		doc["detail"] = raw(detail)
	}
	v, _ := cas.NewValue(map[string]any{"err": doc})
	return result{outcome: lineage.Err, err: rec, doc: v}
}

func skipDoc(reason string, detail []byte) cas.Value {
	doc := map[string]any{"reason": reason}
	if detail != nil {
		doc["detail"] = raw(detail)
	}
	v, _ := cas.NewValue(map[string]any{"skip": doc})
	return v
}

// raw embeds canonical CBOR in a value being encoded.
type raw []byte

func (r raw) MarshalCBOR() ([]byte, error) { return r, nil }

// asInput returns the document that stands for a non-ok result as a
// child's input. An optional knot's err is seen as a skip, with reason
// optional_failed and the error in its detail.
func (st *state) asInput() cas.Value {
	if st.res.outcome == lineage.Err && st.n.optional {
		detail, _ := cas.Encode(map[string]any{"error_id": st.res.err.ID.String(), "type": st.res.err.Type, "message": st.res.err.Message})
		return skipDoc(ReasonOptionalFailed, detail)
	}
	return st.res.doc
}

// wrap returns a parent's result as a ReceiveErrors input.
func wrap(p *state) []byte {
	if p.res.outcome != lineage.OK {
		return p.asInput().Bytes
	}
	b := pcbor.AppendHead(nil, pcbor.Map, 1)
	b = pcbor.AppendText(b, "ok")
	return append(b, p.res.value.Bytes...)
}

// finish assembles the result and records the run.
func (e *engine) finish(req Request, terminals []*Node) (*Result, error) {
	records := len(e.shed)
	for _, st := range e.shed {
		records += len(st.elems) // a Map's elements: one record each
	}
	res := &Result{
		Run: lineage.Run{ID: e.runID, Pipeline: req.Pipeline, PipelineDigest: e.pipelineDigest, Dispatcher: e.s.cfg.Dispatcher, Host: e.s.host,
			StartedAt: e.started, Records: make([]lineage.Record, 0, records), Labels: req.Labels},
		Outputs: make(map[string]any, len(e.shed)),
		Values:  make(map[string]cas.Value, len(e.shed)),
	}
	for _, n := range terminals {
		res.Terminals = append(res.Terminals, n.id)
	}
	failed := false
	for _, st := range e.shed {
		for i := range st.elems {
			el := &st.elems[i]
			res.Records = append(res.Records, el.rec)
			if el.res.outcome == lineage.Err {
				res.Errors = append(res.Errors, *el.res.err)
			}
		}
		res.Records = append(res.Records, st.rec)
		switch st.res.outcome {
		case lineage.OK:
			if v, err := cas.DecodeBounded(st.res.value.Bytes, MaxOutputItems); err == nil {
				res.Outputs[st.n.id] = v
			}
			res.Values[st.n.id] = st.res.value
		case lineage.Err:
			res.Errors = append(res.Errors, *st.res.err)
			failed = failed || !st.n.optional
		case lineage.Skipped:
			var detail any
			if st.res.detail != nil {
				detail, _ = cas.Decode(st.res.detail)
			}
			res.Skipped = append(res.Skipped, Skip{KnotID: st.n.id, Reason: st.res.skip, Detail: detail})
		}
	}
	// Values written in the background: the knot computed its value, but
	// the run cannot be replayed from the store, so it fails.
	for _, knot := range slices.Sorted(maps.Keys(e.putErr)) {
		f := e.failure(knot, ErrStore, "store the output: "+e.putErr[knot].Error(), nil, "")
		res.Errors = append(res.Errors, *f.err)
		failed = true
	}
	switch {
	case e.ctx.Err() != nil:
		res.Status = lineage.Cancelled
	case failed:
		res.Status = lineage.Failed
	default:
		res.Status = lineage.Succeeded
	}
	res.FinishedAt = time.Now().UTC()
	var errs []error
	if err := e.s.hist.RecordRun(e.bg, &res.Run); err != nil {
		errs = append(errs, fmt.Errorf("record run %s: %w", e.runID, err))
	}
	if err := e.ctx.Err(); err != nil {
		errs = append(errs, fmt.Errorf("run %s: %w", e.runID, context.Cause(e.ctx)))
	}
	return res, errors.Join(errs...)
}
