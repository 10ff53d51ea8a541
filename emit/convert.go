package emit

import (
	"maps"

	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/scheduler"
)

// The knot state of a knot_status event that reports a start.
const StateRunning = "running"

// convert turns a scheduler event into its wire form, redacted (Seq and,
// for events after the run's start, Pipeline are the Hub's to set).
func (h *Hub) convert(sev scheduler.Event) *Event {
	ev := &Event{RunID: sev.RunID, Time: sev.Time}
	switch sev.Kind {
	case scheduler.RunStarted:
		ev.Kind = RunStarted
		if len(sev.Labels) > 0 {
			ev.Labels = maps.Clone(sev.Labels)
			for k, v := range ev.Labels {
				ev.Labels[k] = h.redact(v)
			}
		}
		if sev.Run != nil {
			ev.Pipeline = sev.Run.Pipeline
			ev.Run = h.run(sev.Run, nil)
			ev.State = ev.Run.Status
		}
	case scheduler.KnotStarted:
		ev.Kind, ev.Knot, ev.State = KnotStatus, sev.Record.KnotID, StateRunning
		ev.Record = WireRecord(&sev.Record)
	case scheduler.KnotFinished, scheduler.Recorded:
		ev.Kind = KnotStatus
		if sev.Kind == scheduler.Recorded {
			ev.Kind = LineageRecord
		}
		ev.Knot, ev.State = sev.Record.KnotID, string(sev.Record.Outcome)
		ev.Record = WireRecord(&sev.Record)
		if sev.Error != nil {
			ev.Error = &Error{ID: sev.Error.ID.String(), Type: sev.Error.Type,
				Message: h.redact(sev.Error.Message), Trace: h.redact(sev.Error.Trace)}
		}
	case scheduler.RunFinished:
		ev.Kind = RunFinished
		if sev.Result != nil {
			ev.Pipeline = sev.Result.Pipeline
			ev.Run = h.run(&sev.Result.Run, sev.Err)
		} else {
			ev.Run = &Run{Status: string(lineage.Failed)}
			if sev.Err != nil {
				ev.Run.Error = h.redact(sev.Err.Error())
			}
		}
		ev.State = ev.Run.Status
	}
	return ev
}

func (h *Hub) redact(s string) string {
	if h.cfg.Redact == nil || s == "" {
		return s
	}
	return h.cfg.Redact(s)
}

// run is a run on the wire, with its summary once it has records.
func (h *Hub) run(r *lineage.Run, err error) *Run {
	w := &Run{Pipeline: r.Pipeline, PipelineDigest: r.PipelineDigest.String(), Terminals: r.Terminals,
		Dispatcher: r.Dispatcher, Host: r.Host, Status: string(r.Status), Started: r.StartedAt, Finished: r.FinishedAt}
	if len(r.Records) > 0 {
		s := lineage.Summarize(r)
		w.Knots, w.Failed, w.Skipped, w.Elements = s.Knots, s.Failed, s.Skipped, s.Elements
	}
	if err != nil {
		w.Error = h.redact(err.Error())
	}
	return w
}

// WireRecord returns a lineage record's wire form. The result shares
// r's Grants.
func WireRecord(r *lineage.Record) *Record {
	w := &Record{Knot: r.KnotID, Kind: string(r.Kind), Map: r.Map, Index: r.Index, Module: r.Module,
		Function: r.Knot, ConfigHash: r.ConfigHash.String(), Grants: r.Grants, Output: r.Output.String(),
		Outcome: string(r.Outcome), SkipReason: r.SkipReason, ErrorID: r.ErrorID.String(),
		Dispatcher: r.Dispatcher, Started: r.StartedAt, Finished: r.FinishedAt, CacheKey: r.CacheKey.String(), Logs: r.Logs.String()}
	if r.Reused() {
		w.ReusedFrom = r.ReusedFrom.String()
	}
	if len(r.Inputs) > 0 {
		w.Inputs = make([]Input, len(r.Inputs))
		for i, in := range r.Inputs {
			w.Inputs[i] = Input{Name: in.Name, Parent: in.Parent, Digest: in.Digest.String()}
		}
	}
	return w
}
