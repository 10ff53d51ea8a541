package scheduler

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/internal/cborhead"
	"github.com/pirn-wasm/pirn/lineage"
)

// Skip reasons the scheduler itself produces.
const (
	ReasonParentFailed = "parent_failed_or_skipped"
	ReasonCancelled    = "run_cancelled"
)

// Error types the scheduler itself produces.
const (
	ErrParents = "ParentFailed" // RequireAllParents not satisfied
	ErrStore   = "StoreError"   // the data store refused an ok value
	ErrPanic   = "Panic"        // a knot's Invoke panicked
)

// Config configures a [Scheduler].
type Config struct {
	// Workers is the most knots run at once; 0 means GOMAXPROCS.
	Workers int
	// Dispatcher is the name recorded in lineage; "" means "local".
	Dispatcher string
	// Logger receives a debug record per knot; nil discards.
	Logger *slog.Logger
	// StoreWriters, when positive, writes ok values to the data store from
	// that many background goroutines instead of from the worker that
	// produced them, so that a slow store (a disk) overlaps with execution.
	// The run waits for every write before it is recorded; a failed write
	// fails the run with a StoreError record for the knot. 0 writes
	// synchronously.
	StoreWriters int
}

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
	cfg.Workers = cmp.Or(cfg.Workers, runtime.GOMAXPROCS(0))
	cfg.Dispatcher = cmp.Or(cfg.Dispatcher, "local")
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	host, _ := os.Hostname()
	return &Scheduler{cfg: cfg, store: store, hist: hist, host: host}, nil
}

// Request asks for one run.
type Request struct {
	RunID     string         // "" means a fresh "run-<32 hex>"
	Pipeline  string         // recorded with the run
	Params    map[string]any // by parameter name
	Terminals []string       // knot ids; nil means every terminal
}

// Skip describes a skipped knot.
type Skip struct {
	KnotID string
	Reason string
	Detail any // decoded detail, or nil
}

// Result is what a run produced. Its embedded Run is what the history
// stores.
type Result struct {
	lineage.Run
	// Outputs holds every ok value, decoded, keyed by knot id (a
	// parameter's id is "param:<name>" unless given explicitly).
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
// missing or ill-typed parameter value) returns a nil Result and records
// nothing. Otherwise every knot's outcome is in the Result and the run is
// recorded; the error is non-nil only if recording failed or ctx ended, in
// which case the Result (status cancelled) is still returned.
func (s *Scheduler) Run(ctx context.Context, t *Tapestry, req Request) (*Result, error) {
	runID := cmp.Or(req.RunID, NewRunID())
	if !abi.ValidKnotName(runID) {
		return nil, fmt.Errorf("run id %q is invalid (allowed: A-Z a-z 0-9 _ - . :, at most 256)", runID)
	}
	terminals, err := t.terminals(req.Terminals)
	if err != nil {
		return nil, err
	}
	e := &engine{s: s, ctx: ctx, runID: runID, started: time.Now().UTC(), states: make([]*state, len(t.nodes)), states0: t.nodes}
	e.collect(terminals)
	if err := e.bind(t, req.Params); err != nil {
		return nil, err
	}
	e.execute()
	return e.finish(req, terminals)
}

func (t *Tapestry) terminals(ids []string) ([]*Node, error) {
	if ids == nil {
		ts := t.Terminals()
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
}

type engine struct {
	s       *Scheduler
	ctx     context.Context
	runID   string
	started time.Time
	states  []*state // by node index; nil outside the shed
	states0 []*Node  // the tapestry's nodes, by index
	shed    []*state // in topological order
	params  map[*Node]cas.Value

	mu        sync.Mutex
	cond      sync.Cond
	ready     []*state
	remaining int

	bg     context.Context // ctx without its cancellation, for storing and recording
	puts   chan *state     // to the store writers, if any
	putWG  sync.WaitGroup
	putMu  sync.Mutex
	putErr map[*state]error
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
	states := make([]state, 0, size) // one allocation for the whole shed
	for i, ok := range in {
		if ok {
			states = append(states, state{n: e.states0[i]})
			e.states[i] = &states[len(states)-1]
		}
	}
	edges := 0
	for _, st := range states {
		edges += len(st.n.parents)
	}
	inputs := make([]lineage.Input, edges) // one allocation for every record's inputs
	for _, st := range e.states {
		if st == nil {
			continue
		}
		e.shed = append(e.shed, st)
		st.pending = len(st.n.parents)
		st.rec.Inputs, inputs = inputs[:len(st.n.parents):len(st.n.parents)], inputs[len(st.n.parents):]
		for _, c := range st.n.children {
			if cs := e.states[c.index]; cs != nil {
				st.children = append(st.children, cs)
			}
		}
	}
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
		return fmt.Errorf("unknown parameter(s) %s (the pipeline has: %s)", strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	e.params = map[*Node]cas.Value{}
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
			e.params[st.n] = cv
		case p.HasDefault:
			e.params[st.n] = st.n.def
		default:
			errs = append(errs, fmt.Errorf("parameter %q has no value supplied and no default", p.Name))
		}
	}
	return errors.Join(errs...)
}

// execute runs the shed on the worker pool.
func (e *engine) execute() {
	e.bg = context.WithoutCancel(e.ctx)
	if n := e.s.cfg.StoreWriters; n > 0 {
		e.puts = make(chan *state, 4*n)
		for range n {
			e.putWG.Go(func() {
				for st := range e.puts {
					if err := e.s.store.Put(e.bg, st.res.value.Digest, st.res.value.Bytes); err != nil {
						e.putMu.Lock()
						if e.putErr == nil {
							e.putErr = map[*state]error{}
						}
						e.putErr[st] = err
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
	e.cond.L = &e.mu
	e.remaining = len(e.shed)
	for i := len(e.shed) - 1; i >= 0; i-- { // LIFO: pop in topological order
		if e.shed[i].pending == 0 {
			e.ready = append(e.ready, e.shed[i])
		}
	}
	var wg sync.WaitGroup
	for range min(e.s.cfg.Workers, len(e.shed)) {
		wg.Go(e.worker)
	}
	wg.Wait()
}

func (e *engine) worker() {
	var call Call // reused: Knot.Invoke must not retain it
	e.mu.Lock()
	for {
		for len(e.ready) == 0 && e.remaining > 0 {
			e.cond.Wait()
		}
		if e.remaining == 0 {
			e.mu.Unlock()
			return
		}
		st := e.ready[len(e.ready)-1]
		e.ready = e.ready[:len(e.ready)-1]
		e.mu.Unlock()

		e.run(st, &call)

		e.mu.Lock()
		e.remaining--
		woken := 0
		for _, c := range st.children {
			if c.pending--; c.pending == 0 {
				e.ready = append(e.ready, c)
				woken++
			}
		}
		switch {
		case e.remaining == 0:
			e.cond.Broadcast()
		case woken > 1: // this worker takes one; wake others for the rest
			for range woken - 1 {
				e.cond.Signal()
			}
		}
	}
}

// run decides and, if needed, invokes one node, then fills its record.
func (e *engine) run(st *state, call *Call) {
	n := st.n
	rec := &st.rec
	rec.RunID, rec.KnotID, rec.ConfigHash, rec.Dispatcher = e.runID, n.id, n.configHash, e.s.cfg.Dispatcher
	rec.Module, rec.Knot = n.What()
	rec.StartedAt = time.Now().UTC()
	if n.param != nil {
		st.res = result{outcome: lineage.OK, value: e.params[n]}
	} else {
		st.res = e.decide(st, call)
	}
	e.settle(st)
	rec.FinishedAt = time.Now().UTC()
	if e.s.cfg.Logger.Enabled(e.ctx, slog.LevelDebug) {
		e.s.cfg.Logger.LogAttrs(e.ctx, slog.LevelDebug, "knot finished", slog.String("run", e.runID),
			slog.String("knot", n.id), slog.String("outcome", string(st.res.outcome)), slog.Duration("duration", rec.Duration()))
	}
}

// seen returns the parent's result as its children see it: an err of an
// optional knot is seen as a skip.
func seen(p *state) lineage.Outcome {
	if p.res.outcome == lineage.Err && p.n.optional() {
		return lineage.Skipped
	}
	return p.res.outcome
}

func (e *engine) decide(st *state, c *Call) result {
	n := st.n
	var failed []string
	anyErr, anySkip := false, false
	for _, ed := range n.parents {
		p := e.states[ed.parent.index]
		switch seen(p) {
		case lineage.Err:
			anyErr = true
			failed = append(failed, fmt.Sprintf("%s (err)", p.n.id))
		case lineage.Skipped:
			anySkip = true
			failed = append(failed, fmt.Sprintf("%s (skipped)", p.n.id))
		}
	}
	for i, ed := range n.byName {
		p := e.states[ed.parent.index]
		d := p.res.doc.Digest
		if p.res.outcome == lineage.OK {
			d = p.res.value.Digest
		}
		st.rec.Inputs[i] = lineage.Input{Name: ed.input, Parent: ed.parent.id, Digest: d}
	}
	if len(failed) > 0 {
		switch n.knot.Policy {
		case SkipIfParentFailed:
			return skipped(ReasonParentFailed, map[string]any{"any_err": anyErr, "any_skipped": anySkip})
		case RequireAllParents:
			return e.failure(n, ErrParents, fmt.Sprintf("knot %q: require_all_parents not satisfied: %s", n.id, strings.Join(failed, ", ")), nil, "")
		}
	}
	if e.ctx.Err() != nil {
		return skipped(ReasonCancelled, nil)
	}
	c.RunID, c.KnotID, c.Config, c.Inputs = e.runID, n.id, n.config, c.Inputs[:0]
	for _, ed := range n.parents {
		p := e.states[ed.parent.index]
		v := p.res.value.Bytes
		if n.knot.Policy == ReceiveErrors {
			v = wrap(p)
		}
		c.Inputs = append(c.Inputs, abi.Arg{Name: ed.input, Value: v})
	}
	r := invoke(e.ctx, n.knot.Knot, c)
	switch r.Outcome {
	case abi.OutcomeOK:
		return result{outcome: lineage.OK, value: cas.CanonicalValue(r.Value)}
	case abi.OutcomeSkip:
		res := result{outcome: lineage.Skipped, skip: r.Skip.Reason, detail: r.Skip.Detail}
		res.doc = skipDoc(res.skip, res.detail)
		return res
	case abi.OutcomeErr:
		return e.failure(n, r.Error.Type, r.Error.Message, r.Error.Detail, r.Error.Trace)
	}
	return e.failure(n, "InternalError", fmt.Sprintf("knot returned %v", r.Outcome), nil, "")
}

// invoke calls a knot, turning a panic (a bug in a host-native knot) into
// an err so that it fails alone.
func invoke(ctx context.Context, k Knot, c *Call) (r abi.Response) {
	defer func() {
		if p := recover(); p != nil {
			r = abi.Response{Outcome: abi.OutcomeErr, Error: &abi.Error{Type: ErrPanic, Message: fmt.Sprint(p), Trace: string(debug.Stack())}}
		}
	}()
	return k.Invoke(ctx, c)
}

// settle stores an ok value and completes the record.
func (e *engine) settle(st *state) {
	rec := &st.rec
	if st.res.outcome == lineage.OK {
		if e.puts != nil {
			e.puts <- st
		} else if err := e.s.store.Put(e.bg, st.res.value.Digest, st.res.value.Bytes); err != nil {
			st.res = e.failure(st.n, ErrStore, "store the output: "+err.Error(), nil, "")
		}
	}
	rec.Outcome = st.res.outcome
	switch st.res.outcome {
	case lineage.OK:
		rec.Output = st.res.value.Digest
	case lineage.Err:
		rec.ErrorID = st.res.err.ID
	case lineage.Skipped:
		rec.SkipReason, rec.SkipDetail = st.res.skip, st.res.detail
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

// failure builds an err result with a stable error record.
func (e *engine) failure(n *Node, typ, msg string, detail []byte, trace string) result {
	idDoc := map[string]any{"knot": n.id, "type": typ, "message": msg}
	if detail != nil {
		idDoc["detail"] = raw(detail)
	}
	id, err := cas.Hash(idDoc)
	if err != nil { // detail is canonical, so this cannot happen; keep the id stable anyway
		id, _ = cas.Hash(map[string]any{"knot": n.id, "type": typ, "message": msg})
	}
	rec := &lineage.ErrorRecord{ID: id, RunID: e.runID, KnotID: n.id, Type: typ, Message: msg,
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

// wrap returns a parent's result as a ReceiveErrors input.
func wrap(p *state) []byte {
	if p.res.outcome != lineage.OK {
		return p.res.doc.Bytes
	}
	b := cborhead.Append(nil, cborhead.Map, 1)
	b = cborhead.AppendText(b, "ok")
	return append(b, p.res.value.Bytes...)
}

// finish assembles the result and records the run.
func (e *engine) finish(req Request, terminals []*Node) (*Result, error) {
	res := &Result{
		Run: lineage.Run{ID: e.runID, Pipeline: req.Pipeline, Dispatcher: e.s.cfg.Dispatcher, Host: e.s.host,
			StartedAt: e.started, Records: make([]lineage.Record, 0, len(e.shed))},
		Outputs: make(map[string]any, len(e.shed)),
		Values:  make(map[string]cas.Value, len(e.shed)),
	}
	for _, n := range terminals {
		res.Terminals = append(res.Terminals, n.id)
	}
	failed := false
	for _, st := range e.shed {
		res.Records = append(res.Records, st.rec)
		switch st.res.outcome {
		case lineage.OK:
			v, err := st.res.value.Decode()
			if err != nil { // canonical values always decode
				v = nil
			}
			res.Outputs[st.n.id] = v
			res.Values[st.n.id] = st.res.value
		case lineage.Err:
			res.Errors = append(res.Errors, *st.res.err)
			failed = failed || !st.n.optional()
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
	for _, st := range e.shed {
		if err, ok := e.putErr[st]; ok {
			f := e.failure(st.n, ErrStore, "store the output: "+err.Error(), nil, "")
			res.Errors = append(res.Errors, *f.err)
			failed = true
		}
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
