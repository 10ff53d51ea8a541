package scheduler

import (
	"time"

	"github.com/pirn-wasm/pirn/lineage"
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
