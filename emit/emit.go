// Package emit sends a run's events to outside sinks (emitters): logs,
// OpenTelemetry, OpenLineage, webhooks, Kafka, Valkey, NATS. A Hub is the
// scheduler.Observer that isolates the run from them: each emitter has a
// bounded queue and a goroutine of its own, so one that fails, hangs or is
// slow never fails, blocks or slows a run; events of a run keep their
// order; drops and failures are counted and logged.
package emit

import (
	"context"
	"time"
)

// Kind names an event on the wire.
type Kind string

const (
	RunStarted    Kind = "run_started"
	KnotStatus    Kind = "knot_status"    // a knot started ("running") or finished (its outcome)
	LineageRecord Kind = "lineage_record" // a record, once the history stored the run
	RunFinished   Kind = "run_finished"
)

// Event is an event as every emitter receives it, and as the emitters
// that send JSON (webhook, Kafka, Valkey, NATS) encode it.
type Event struct {
	Kind  Kind      `json:"kind"`
	RunID string    `json:"run_id"`
	Seq   uint64    `json:"seq"` // from 1 within a run, in the order of the run's events
	Time  time.Time `json:"time"`
	// The rest depends on Kind; see the fields' documentation.
	Pipeline string            `json:"pipeline,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"` // run_started
	Knot     string            `json:"knot,omitempty"`   // knot_status, lineage_record
	// State is a knot's ("running", "ok", "err", "skipped") or a
	// finished run's status ("succeeded", "failed", "cancelled").
	State string `json:"state,omitempty"`
	// Record is a knot_status's (when running: its ids, kind, module,
	// function, grants and start; when finished: complete) and a
	// lineage_record's.
	Record *Record `json:"record,omitempty"`
	Error  *Error  `json:"error,omitempty"` // an err's record, redacted
	Run    *Run    `json:"run,omitempty"`   // run_started, run_finished
}

// Emitter is a sink of events. Emit is called from one goroutine per
// emitter, in order; ctx bounds the call (the Hub's per-event timeout).
// The Event is shared by every emitter of a Hub: Emit must not change it
// or keep it past the call.
type Emitter interface {
	Name() string
	Emit(ctx context.Context, ev *Event) error
	// Close flushes what the emitter buffers, within ctx.
	Close(ctx context.Context) error
}

// Record is a lineage record on the wire: digests as "sha256:<hex>".
type Record struct {
	Knot       string    `json:"knot"`
	Kind       string    `json:"kind"`
	Map        string    `json:"map,omitempty"` // an element's Map
	Index      int       `json:"index,omitempty"`
	Module     string    `json:"module,omitempty"` // the module's digest
	Function   string    `json:"function,omitempty"`
	ConfigHash string    `json:"config_hash,omitempty"`
	Grants     []string  `json:"grants,omitempty"`
	Inputs     []Input   `json:"inputs,omitempty"`
	Output     string    `json:"output,omitempty"`
	Outcome    string    `json:"outcome"`
	SkipReason string    `json:"skip_reason,omitempty"`
	ErrorID    string    `json:"error_id,omitempty"`
	Dispatcher string    `json:"dispatcher,omitempty"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished,omitzero"`
	// CacheKey is the memoisation key of a result that may be reused;
	// ReusedFrom ("RUN/KNOT") names the record a reused result came from.
	CacheKey   string `json:"cache_key,omitempty"`
	ReusedFrom string `json:"reused_from,omitempty"`
	// Logs is the digest of the lines the knot logged, a value in the
	// data store.
	Logs string `json:"logs,omitempty"`
}

// Input is one consumed value of a Record.
type Input struct {
	Name   string `json:"name"`
	Parent string `json:"parent"`
	Digest string `json:"digest"`
}

// Error is an err's record on the wire, its text redacted.
type Error struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Message string `json:"message"`
	Trace   string `json:"trace,omitempty"`
}

// Run describes a run on the wire.
type Run struct {
	Pipeline       string    `json:"pipeline,omitempty"`
	PipelineDigest string    `json:"pipeline_digest,omitempty"`
	Terminals      []string  `json:"terminals,omitempty"`
	Dispatcher     string    `json:"dispatcher,omitempty"`
	Host           string    `json:"host,omitempty"`
	Status         string    `json:"status"`
	Started        time.Time `json:"started"`
	Finished       time.Time `json:"finished,omitzero"`
	Knots          int       `json:"knots,omitempty"`
	Failed         int       `json:"failed,omitempty"`
	Skipped        int       `json:"skipped,omitempty"`
	Elements       int       `json:"elements,omitempty"`
	Error          string    `json:"error,omitempty"` // the run's own error (recording, cancellation)
}
