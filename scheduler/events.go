package scheduler

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/redact"
)

// EventKind says what an Event reports.
type EventKind uint8

const (
	// RunStarted: the run's setup passed and its start is recorded; Run
	// holds its id, pipeline, terminals, dispatcher and start time.
	RunStarted EventKind = iota + 1
	// KnotStarted: a node (or a Map's element) began; Record holds its
	// ids, kind, module and start time.
	KnotStarted
	// KnotFinished: a node or element finished; Record is complete and
	// Error is its error record if it erred.
	KnotFinished
	// Recorded: one lineage record of the run, after the history stored
	// the run, in the order the history keeps them.
	Recorded
	// RunFinished: the last event of a run; Result is what Run returns,
	// Err the error it returns (nil, or the run's recording or
	// cancellation error).
	RunFinished
)

func (k EventKind) String() string {
	switch k {
	case RunStarted:
		return "run_started"
	case KnotStarted:
		return "knot_started"
	case KnotFinished:
		return "knot_finished"
	case Recorded:
		return "lineage_record"
	case RunFinished:
		return "run_finished"
	}
	return "unknown"
}

// Event is one thing that happened in a run, for Request.Observer.
// Nothing in it is changed after it is delivered; the observer must not
// change it either.
type Event struct {
	Kind  EventKind
	RunID string
	Time  time.Time
	// Labels are the request's (RunStarted only).
	Labels map[string]string
	Run    *lineage.Run         // RunStarted
	Record lineage.Record       // KnotStarted, KnotFinished, Recorded
	Error  *lineage.ErrorRecord // KnotFinished, Recorded: the record's error, if it erred
	Result *Result              // RunFinished
	Err    error                // RunFinished
}

// Observer receives a run's events. Event is called from the run's
// goroutines, possibly at once from several (a knot's KnotStarted always
// before its KnotFinished, a parent's KnotFinished before its children's
// KnotStarted, every Recorded after every KnotFinished and RunFinished
// last); it must return quickly and never block the run (package emit's
// Hub queues them for slow sinks).
type Observer interface {
	Event(Event)
}

// emit delivers an event to the request's observer, if any.
func (e *engine) emit(ev Event) {
	if e.obs == nil {
		return
	}
	ev.RunID = e.runID
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	e.obs.Event(ev)
}

// emitFinished reports a finished node or element.
func (e *engine) emitFinished(rec *lineage.Record, res *result) {
	if e.obs == nil {
		return
	}
	ev := Event{Kind: KnotFinished, Record: *rec, Time: rec.FinishedAt}
	if res.outcome == lineage.Err {
		ev.Error = res.err
	}
	e.emit(ev)
}

// emitRecorded reports the run's records once the history has it, then
// the run's end.
func (e *engine) emitRecorded(res *Result, err error) {
	if e.obs == nil {
		return
	}
	errs := make(map[string]*lineage.ErrorRecord, len(res.Errors))
	for i := range res.Errors {
		errs[res.Errors[i].ID.String()+"\x00"+res.Errors[i].KnotID] = &res.Errors[i]
	}
	for i := range res.Records {
		r := &res.Records[i]
		ev := Event{Kind: Recorded, Record: *r}
		if r.Outcome == lineage.Err {
			ev.Error = errs[r.ErrorID.String()+"\x00"+r.KnotID]
		}
		e.emit(ev)
	}
	e.emit(Event{Kind: RunFinished, Result: res, Err: err, Time: res.FinishedAt})
}

// grantedSecrets adds to the redactor the values of the environment
// variables granted to the run's knots: what a knot was given must not
// come back out in an error record.
func (e *engine) grantedSecrets() error {
	r := e.s.cfg.Redactor
	if r == nil {
		return nil
	}
	var values []string
	for _, st := range e.shed {
		for _, g := range st.n.fn.Grants {
			if name, ok := strings.CutPrefix(g, "env:"); ok {
				if v, ok := os.LookupEnv(name); ok {
					values = append(values, v)
				}
			}
		}
	}
	if err := r.AddSecrets(values...); err != nil {
		return fmt.Errorf("the values of the environment variables granted to knots: %w", err)
	}
	return nil
}

// redactDetail masks secrets in the text of an error's canonical CBOR
// detail; detail that does not decode within bounds is dropped rather
// than kept unmasked.
func redactDetail(r *redact.Redactor, detail []byte) []byte {
	if detail == nil {
		return nil
	}
	v, err := cas.DecodeBounded(detail, MaxOutputItems)
	if err != nil {
		return nil
	}
	changed := false
	var walk func(v any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case string:
			if m := r.String(x); m != x {
				changed = true
				return m
			}
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		case map[string]any:
			for k, val := range x {
				if m := r.String(k); m != k {
					delete(x, k)
					changed, k = true, m
				}
				x[k] = walk(val)
			}
		}
		return v
	}
	v = walk(v)
	if !changed {
		return detail
	}
	b, err := cas.Encode(v)
	if err != nil {
		return nil
	}
	return b
}
