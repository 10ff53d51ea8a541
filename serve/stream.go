package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/lineage"
)

// StreamOptions configures RunStream; the json names are a serve.yaml
// `streams:` entry's.
type StreamOptions struct {
	// Pipeline is the pipeline's name, passed on in each Request.
	Pipeline string `json:"pipeline,omitempty"`
	// Param is the parameter each value (or window of values) is passed
	// as. Required.
	Param string `json:"param"`
	// Params are static parameters added to every run; Param wins.
	Params map[string]any `json:"params,omitempty"`
	// Window, when set, passes values in windows rather than one a run.
	Window Window `json:"window,omitzero"`
	// MaxInFlight bounds the values read from the source and not yet
	// acked: the source is never read further ahead than this. 0 means
	// the Submitter's capacity if it reports one (Capacity() int), else
	// DefaultMaxInFlight; never less than Window.Count.
	MaxInFlight int `json:"max_in_flight,omitempty"`
	// DrainTimeout bounds how long RunStream waits, once ctx ends, for
	// the runs in flight to be recorded and acked; 0 means
	// DefaultDrainTimeout.
	DrainTimeout emit.Duration `json:"drain_timeout,omitempty"`
	// Logger receives rejected values and ack failures; nil discards.
	Logger *slog.Logger `json:"-"`
	// OnRun, if set, is called once for every run in source order, after
	// its values are acked (or, for a run that was not recorded, when
	// RunStream gives up on it). It must not block for long: the next
	// acks wait for it.
	OnRun func(StreamRun) `json:"-"`
}

// Window groups values into one run: a window closes when it holds Count
// values or Every after its first value arrived, whichever comes first,
// and its run receives the list of its values, in source order, as the
// parameter. With Every alone a window also closes at MaxInFlight
// values; with Count alone it waits for Count values however long that
// takes. When the source ends, the open window is run as it is; when
// ctx ends, it is not run and its values are not acked.
type Window struct {
	Count int           `json:"count,omitempty"`
	Every emit.Duration `json:"every,omitempty"`
}

// IsZero reports whether w asks for no windows (one run per value).
func (w Window) IsZero() bool { return w.Count == 0 && w.Every == 0 }

// StreamRun reports one run of a stream to StreamOptions.OnRun.
type StreamRun struct {
	// RunID is the run's id; "" for a rejected run (never recorded).
	RunID string
	// Labels are the run's labels: "stream" and the origin labels.
	Labels map[string]string
	// Values is how many values the run received (1 without windows).
	Values int
	// Status is the recorded run's status; "" if it was not recorded.
	Status lineage.Status
	// Rejected is set when the run failed its setup (a value its
	// parameter does not accept): the values were logged and acked.
	Rejected bool
	// Err is the run's error: its setup's, its recording's, or why it
	// was not recorded (nil for a recorded run that failed: see Status).
	Err error
}

// Defaults of StreamOptions.
const (
	DefaultMaxInFlight  = 64
	DefaultDrainTimeout = 30 * time.Second
)

// Label names RunStream puts on each run. Origin labels are the item's
// Origin keys, prefixed: "origin.line"; for a window,
// "origin.first.line" and "origin.last.line".
const (
	LabelStream        = "stream"        // the source's Name
	LabelOrigin        = "origin."       // prefix of a single value's origin
	LabelOriginFirst   = "origin.first." // prefix of a window's first value's origin
	LabelOriginLast    = "origin.last."  // prefix of a window's last value's origin
	LabelWindowValues  = "window.values" // how many values a window holds
	maxSourceNameLabel = 256             // a source name longer than this is cut in labels
)

// capacitor is a Submitter that says how many runs it holds at most.
type capacitor interface{ Capacity() int }

// RunStream reads values from src and submits one run per value (or per
// window of values, see Window) to s, with the value as the parameter
// opts.Param, until the source ends (io.EOF from Next) or ctx ends. It
// does not close src.
//
// Bounds: at most MaxInFlight values are read and not yet acked, so the
// source is not read faster than runs finish; Submit blocks while the
// pipeline's queue is full, which holds the reading back too.
//
// Acks: an item's Ack is called once its run is recorded (Run.Done with
// a result), whether the run succeeded or failed, and acks go in source
// order: no item is acked before every earlier item's run is recorded,
// so a source that commits offsets never commits past an unrecorded
// value. A run that fails its setup (a value the parameter does not
// accept: ErrBadRequest) is logged with the value's origin and acked, so
// that one poison value cannot stop the stream for ever. A run that was
// not recorded (the Submitter stopped, the drain deadline passed) is not
// acked, and nothing after it is: those values come again from a source
// that redelivers (at-least-once).
//
// Each run's labels carry the source's name and the origin of its value
// (or of its window's first and last values); an item with an ID names
// its run after it (a hash of the pipeline, the source and the IDs), so
// a value delivered again after a restart starts no second run on a
// Submitter that keeps recorded runs (as Runner does).
//
// When ctx ends (or the source is closed: ErrClosed) RunStream stops reading, waits up to DrainTimeout for the
// runs in flight to be recorded and acks them, and returns nil if all
// were; when the source ends it waits for every run. It returns an error
// for a bad option, a source error other than io.EOF, a Submit error
// other than ErrBadRequest (except ctx's own end), and runs left
// unrecorded at the drain deadline.
func RunStream(ctx context.Context, s Submitter, src Source, opts StreamOptions) error {
	opts, err := opts.check(s)
	if err != nil {
		return err
	}
	st := &stream{s: s, src: src, opts: opts, name: src.Name(),
		sem:  make(chan struct{}, opts.MaxInFlight),
		acks: make(chan *pending, opts.MaxInFlight),
	}
	return st.run(ctx)
}

// check validates the options and fills in the defaults.
func (o StreamOptions) check(s Submitter) (StreamOptions, error) {
	switch {
	case o.Param == "":
		return o, errors.New("stream: no parameter to pass the values as (param)")
	case o.Window.Count < 0:
		return o, fmt.Errorf("stream: window count %d, want >= 0", o.Window.Count)
	case o.Window.Every < 0:
		return o, fmt.Errorf("stream: window every %v, want >= 0", time.Duration(o.Window.Every))
	case o.MaxInFlight < 0:
		return o, fmt.Errorf("stream: max_in_flight %d, want >= 0", o.MaxInFlight)
	case o.MaxInFlight > 0 && o.MaxInFlight < o.Window.Count:
		return o, fmt.Errorf("stream: max_in_flight %d is less than the window count %d: a window could never fill", o.MaxInFlight, o.Window.Count)
	case o.DrainTimeout < 0:
		return o, fmt.Errorf("stream: drain_timeout %v, want >= 0", time.Duration(o.DrainTimeout))
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
		if c, ok := s.(capacitor); ok && c.Capacity() > 0 {
			o.MaxInFlight = c.Capacity()
		}
		o.MaxInFlight = max(o.MaxInFlight, o.Window.Count)
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = emit.Duration(DefaultDrainTimeout)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// stream is one RunStream call.
type stream struct {
	s    Submitter
	src  Source
	opts StreamOptions
	name string
	// sem holds a token for every value read and not yet acked.
	sem chan struct{}
	// acks holds the submitted runs in source order, for the acker;
	// each holds at least one token, so it never fills.
	acks chan *pending
}

// pending is a submitted (or refused) run and the items it carries.
type pending struct {
	items  []Item
	labels map[string]string
	run    *Run  // nil if Submit refused the request
	err    error // Submit's error, when run is nil
}

// read is what the reading goroutine hands over: an item, or the error
// that ended the source.
type read struct {
	item Item
	err  error
}

func (st *stream) run(ctx context.Context) error {
	// drain lives until DrainTimeout after ctx ends: acks and the wait
	// for runs in flight use it.
	drain, cancelDrain := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDrain()
	stopTimer := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(time.Duration(st.opts.DrainTimeout), cancelDrain)
		context.AfterFunc(drain, func() { t.Stop() })
	})
	defer stopTimer()

	readCtx, stopReading := context.WithCancel(ctx)
	reads := make(chan read)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		st.read(readCtx, reads)
	}()
	ackerDone := make(chan error, 1)
	go func() { ackerDone <- st.acker(drain) }()

	err := st.window(ctx, reads)
	stopReading()
	<-readerDone
	close(st.acks)
	return errors.Join(err, <-ackerDone)
}

// read calls Next whenever a token is free and hands each item over,
// until the source ends or ctx does.
func (st *stream) read(ctx context.Context, out chan<- read) {
	for {
		select {
		case st.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		it, err := st.src.Next(ctx)
		select {
		case out <- read{it, err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// window gathers the items into windows (of one item without Window)
// and submits each, until the source or ctx ends.
func (st *stream) window(ctx context.Context, reads <-chan read) error {
	size := st.opts.Window.Count
	if st.opts.Window.IsZero() {
		size = 1
	} else if size == 0 {
		size = st.opts.MaxInFlight
	}
	var (
		win   []Item
		timer *time.Timer
		due   <-chan time.Time
	)
	stop := func() {
		if timer != nil {
			timer.Stop()
			timer, due = nil, nil
		}
	}
	defer stop()
	flush := func() error {
		stop()
		if len(win) == 0 {
			return nil
		}
		items := win
		win = nil
		return st.submit(ctx, items)
	}
	for {
		select {
		case r := <-reads:
			if r.err != nil {
				if errors.Is(r.err, io.EOF) {
					return flush()
				}
				if ctx.Err() != nil || errors.Is(r.err, ErrClosed) {
					return nil // stopped: the open window is not run
				}
				return fmt.Errorf("stream %s: %w", st.name, r.err)
			}
			win = append(win, r.item)
			if len(win) == 1 && st.opts.Window.Every > 0 {
				timer = time.NewTimer(time.Duration(st.opts.Window.Every))
				due = timer.C
			}
			if len(win) >= size {
				if err := flush(); err != nil {
					return err
				}
			}
		case <-due:
			if err := flush(); err != nil {
				return err
			}
		case <-ctx.Done():
			// The open window is not run; its values are not acked.
			return nil
		}
	}
}

// submit starts the run of a window and queues it for the acker.
func (st *stream) submit(ctx context.Context, items []Item) error {
	p := &pending{items: items, labels: st.labels(items)}
	params := make(map[string]any, len(st.opts.Params)+1)
	maps.Copy(params, st.opts.Params)
	if st.opts.Window.IsZero() {
		params[st.opts.Param] = items[0].Value
	} else {
		vals := make([]any, len(items))
		for i, it := range items {
			vals[i] = it.Value
		}
		params[st.opts.Param] = vals
	}
	req := Request{Pipeline: st.opts.Pipeline, Params: params, Labels: p.labels, RunID: st.runID(items)}
	run, err := st.s.Submit(ctx, req)
	switch {
	case err == nil:
		p.run = run
	case errors.Is(err, ErrBadRequest):
		p.err = err
	case ctx.Err() != nil:
		st.release(len(items)) // not submitted, not acked
		return nil
	default:
		st.release(len(items))
		return fmt.Errorf("stream %s: submit: %w", st.name, err)
	}
	st.acks <- p
	return nil
}

// labels returns the labels of a run of items.
func (st *stream) labels(items []Item) map[string]string {
	name := st.name
	if len(name) > maxSourceNameLabel {
		name = name[:maxSourceNameLabel]
	}
	l := map[string]string{LabelStream: name}
	if st.opts.Window.IsZero() {
		for k, v := range items[0].Origin {
			l[LabelOrigin+k] = v
		}
		return l
	}
	l[LabelWindowValues] = strconv.Itoa(len(items))
	for k, v := range items[0].Origin {
		l[LabelOriginFirst+k] = v
	}
	for k, v := range items[len(items)-1].Origin {
		l[LabelOriginLast+k] = v
	}
	return l
}

// runID names a run after its items' IDs, or returns "" (a fresh id) if
// any item has none.
func (st *stream) runID(items []Item) string {
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %d", st.opts.Pipeline, st.name, len(items))
	for _, it := range items {
		if it.ID == "" {
			return ""
		}
		fmt.Fprintf(h, " %q", it.ID)
	}
	return "stream-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// release returns n tokens.
func (st *stream) release(n int) {
	for range n {
		<-st.sem
	}
}

// acker waits for each run in source order, acks its items once it is
// recorded, and returns the tokens. Once a run is found unrecorded it
// acks nothing more. ctx is the drain context.
func (st *stream) acker(ctx context.Context) error {
	var lost int // runs not recorded
	for p := range st.acks {
		sr := StreamRun{Labels: p.labels, Values: len(p.items)}
		recorded := false
		if p.run != nil {
			sr.RunID = p.run.ID
		}
		switch {
		case lost > 0:
			sr.Err = errors.New("not acked: an earlier run was not recorded")
		case p.run == nil:
			sr.Rejected, sr.Err = true, p.err
		default:
			if waitDone(ctx, p.run) {
				res, err := p.run.Result()
				sr.Err = err
				switch {
				case res != nil:
					recorded, sr.Status = true, res.Status
				case errors.Is(err, ErrBadRequest):
					sr.Rejected, sr.RunID = true, ""
				}
			} else {
				sr.Err = fmt.Errorf("not recorded by the drain deadline: %w", context.Cause(ctx))
			}
		}
		switch {
		case sr.Rejected:
			st.opts.Logger.Warn("stream: a value was rejected by its run's setup; it is acked and skipped",
				"stream", st.name, originAttr(p.labels), "err", sr.Err)
			st.ack(ctx, p)
		case recorded:
			st.ack(ctx, p)
		default:
			if lost == 0 {
				st.opts.Logger.Error("stream: a run was not recorded; it and every later value stay unacked",
					"stream", st.name, "run", sr.RunID, originAttr(p.labels), "err", sr.Err)
			}
			lost++
		}
		if st.opts.OnRun != nil {
			st.opts.OnRun(sr)
		}
		st.release(len(p.items))
	}
	if lost > 0 {
		return fmt.Errorf("stream %s: %d runs were not recorded; their values were not acked", st.name, lost)
	}
	return nil
}

// ack acks a run's items in order; a failed ack is logged (the value
// will come again from a source that redelivers).
func (st *stream) ack(ctx context.Context, p *pending) {
	for _, it := range p.items {
		if it.Ack == nil {
			continue
		}
		if err := it.Ack(ctx); err != nil {
			st.opts.Logger.Warn("stream: ack failed; the value may come again", "stream", st.name, originAttr(it.Origin), "err", err)
		}
	}
}

// waitDone waits for the run to be done and reports whether it is; a run
// already done counts even after ctx ended.
func waitDone(ctx context.Context, r *Run) bool {
	select {
	case <-r.Done():
		return true
	default:
	}
	select {
	case <-r.Done():
		return true
	case <-ctx.Done():
		return false
	}
}

// originAttr is a log attribute of a run's labels (or an item's origin),
// sorted by name.
func originAttr(labels map[string]string) slog.Attr {
	attrs := make([]any, 0, len(labels))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		attrs = append(attrs, slog.String(k, labels[k]))
	}
	return slog.Group("origin", attrs...)
}
