// Package lineage defines pirn's lineage records and the RunHistory that
// stores them: a record per knot execution, naming what ran, the digests of
// what it consumed and produced, and how it ended. Because values are
// content-addressed, records join across runs: the same value has the same
// digest whichever run produced it.
//
// A record's vocabulary is defined here, once: its [Kind] (the node's kind,
// or [KindElement] for one element of a Map), and the prefixes of
// Record.Knot that say what ran when no module did ([PrefixHost],
// [PrefixExpr], [PrefixBuiltin], [PrefixArm]). Structure is held in fields,
// never parsed back out of an id: an element's record names its Map and
// its index in Record.Map and Record.Index.
package lineage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/pirn-wasm/pirn/cas"
)

// Outcome is how a knot execution ended.
type Outcome string

// Outcomes.
const (
	OK      Outcome = "ok"
	Err     Outcome = "err"
	Skipped Outcome = "skipped"
)

// Kind is the kind of node a Record is of. Its values are the constants
// below; histories store it as its text.
type Kind string

// Record kinds: one per kind of node, and KindElement for one element of a
// Map.
const (
	KindParameter  Kind = "parameter"  // a run parameter
	KindKnot       Kind = "knot"       // a knot invoked with its parents' values
	KindSource     Kind = "source"     // a knot with no parents
	KindSink       Kind = "sink"       // a terminal knot whose output is recorded as null
	KindAggregator Kind = "aggregator" // a knot combining N parents
	KindBranch     Kind = "branch"     // selects one of its arms
	KindArm        Kind = "arm"        // one arm of a Branch
	KindGate       Kind = "gate"       // passes its input through, or skips
	KindMap        Kind = "map"        // applies a knot to each element of a list
	KindElement    Kind = "element"    // one element of a Map (see Record.Map and Record.Index)
	KindReduce     Kind = "reduce"     // folds a list into one value
)

// What ran, for Record.Knot when no module ran (Module is then empty): a
// parameter's record names KnotParameter; the others name one of these
// prefixes and then a name.
const (
	KnotParameter = "parameter" // a Parameter node
	PrefixHost    = "host:"     // a host-native Go function: "host:<name>"
	PrefixExpr    = "expr:"     // an inline expression: "expr:<source>"
	PrefixBuiltin = "builtin:"  // a function built into pirn: "builtin:<name>"
	PrefixArm     = "arm:"      // an arm of a Branch: "arm:<arm name>"
)

// ElementID returns the KnotID of the record of element i of the Map with
// id mapID: "<mapID>:<i>". A Map's id may itself contain ':', so read an
// element's Map and Index from its Record rather than parse this.
func ElementID(mapID string, i int) string { return mapID + ":" + strconv.Itoa(i) }

// Record is the lineage of one knot execution: every field of the
// original's KnotLineage, with Module+Knot in place of the Python class.
type Record struct {
	RunID  string
	KnotID string
	// Kind is the node's kind (KindParameter, KindKnot, …, KindReduce),
	// or KindElement for one element of a Map.
	Kind Kind
	// Map and Index are set only when Kind is KindElement: the id of the
	// Map node the element belongs to and the element's position in the
	// Map's list, from 0. (KnotID is then ElementID(Map, Index).)
	// Otherwise Map is empty and Index 0.
	Map   string
	Index int
	// Module is the digest of the module that ran ("sha256:…"), or empty
	// when no module ran.
	Module string
	// Knot is the knot's name inside Module or, when no module ran,
	// KnotParameter or a name with one of the prefixes PrefixHost,
	// PrefixExpr, PrefixBuiltin or PrefixArm.
	Knot string
	// ConfigHash is the digest of the knot's configuration: its id, its
	// constant inputs, its policy and its grants.
	ConfigHash cas.Digest
	// Grants lists the capabilities the knot ran with, sorted ("clock",
	// "random", "env:NAME", "dir:ro:/mount=/host/path",
	// "http:GET:api.example.com"; "host" for a host-native Go function,
	// which runs outside the sandbox; "state" for a knot whose instances
	// keep their state between invocations, so that one invocation can
	// see what another left). None means the knot was hermetic.
	Grants []string
	// Inputs holds, for each parent input name, the digest of what it
	// consumed (for a failed or skipped parent, the digest of its outcome),
	// sorted by name. Constant inputs are part of ConfigHash instead.
	Inputs []Input
	// Output is the digest of the value produced; zero unless Outcome is OK.
	Output  cas.Digest
	Outcome Outcome
	// SkipReason and SkipDetail (canonical CBOR, may be nil) are set when
	// Outcome is Skipped.
	SkipReason string
	SkipDetail []byte
	// ErrorID names the ErrorRecord when Outcome is Err.
	ErrorID    cas.Digest
	Dispatcher string
	StartedAt  time.Time
	FinishedAt time.Time
	// CacheKey is the memoisation key of the execution: a digest of
	// everything that can change a hermetic knot's output (its module,
	// knot, ABI version, declared types, configuration and named input
	// digests, a key-format version and the operator's salt). Zero when
	// the execution may not be reused (a knot with grants, a knot with
	// caching turned off, a node that runs no module, or any part of the
	// key that could not be computed: reuse fails closed).
	CacheKey cas.Digest
	// ReusedFrom, when set, says this run did not execute the knot: its
	// ok result was reused from the earlier record it names, which has
	// the same CacheKey. Zero when the knot ran.
	ReusedFrom Ref
	// Logs is the digest of the lines the guest logged during the
	// execution, a value in the data store: a canonical CBOR list of
	// {"level": "debug"|"info"|"warn"|"error", "msg": text} maps, bounded
	// as abi.Log bounds them. Zero when nothing was logged, when no
	// module ran, and when the result was reused (ReusedFrom).
	Logs cas.Digest
}

// Ref names one record of one run.
type Ref struct {
	RunID  string
	KnotID string
}

// IsZero reports whether r names no record.
func (r Ref) IsZero() bool { return r.RunID == "" && r.KnotID == "" }

// Reused reports whether the record's result was reused from an earlier
// record rather than computed in its run.
func (r *Record) Reused() bool { return !r.ReusedFrom.IsZero() }

// Input is one parent input of a Record.
type Input struct {
	Name   string     // the input's name
	Parent string     // the id of the node it came from (an edge of the run's graph)
	Digest cas.Digest // what it consumed
}

// Hermetic reports whether the knot ran with no capabilities and from a
// clean instance (reset or fresh): its output can depend only on its
// module, configuration and inputs.
func (r *Record) Hermetic() bool { return len(r.Grants) == 0 }

// Input returns the digest consumed by the named input.
func (r *Record) Input(name string) (cas.Digest, bool) {
	for _, in := range r.Inputs {
		if in.Name == name {
			return in.Digest, true
		}
	}
	return cas.Digest{}, false
}

// Duration is FinishedAt - StartedAt.
func (r *Record) Duration() time.Duration { return r.FinishedAt.Sub(r.StartedAt) }

// ErrorRecord describes one failure. Its ID is a content hash of the knot
// and the failure (type, message, detail), so the same failure has the same
// ID in every run.
type ErrorRecord struct {
	ID         cas.Digest
	RunID      string
	KnotID     string
	Type       string
	Message    string
	Detail     []byte // canonical CBOR, may be nil
	Trace      string
	OccurredAt time.Time
}

// Status is the state of a run.
type Status string

// Run statuses.
const (
	Succeeded Status = "succeeded" // no knot erred
	Failed    Status = "failed"    // at least one knot erred
	Cancelled Status = "cancelled" // the run's context ended before it finished
	// Running marks a run that has started and not been recorded yet
	// (histories that implement RunStarter).
	Running Status = "running"
	// Interrupted marks a run whose process ended (was killed, crashed)
	// before recording it; its records are lost, its stored values kept.
	Interrupted Status = "interrupted"
)

// RunStarter is implemented by histories that record a run as Running
// when it starts, so that a run whose process dies is found later and
// marked Interrupted. RecordRun then replaces the running entry.
type RunStarter interface {
	StartRun(ctx context.Context, r *Run) error
}

// Run is everything recorded about one run.
type Run struct {
	ID       string
	Pipeline string // name of the pipeline, may be empty
	// PipelineDigest names the pipeline that ran, as kept in the data
	// store: the digest of its bundle manifest (see package bundle),
	// which covers the pipeline file and every module it uses. Zero for
	// a tapestry built in Go.
	PipelineDigest cas.Digest
	Status         Status
	Terminals      []string // the knot ids the run was asked for
	Dispatcher     string
	Host           string // hostname of the machine that ran it
	StartedAt      time.Time
	FinishedAt     time.Time
	Records        []Record // in the tapestry's topological order
	Errors         []ErrorRecord
	// Labels say where the run came from: what triggered it (a cron
	// tick, a webhook delivery, a caller's "traceparent") or which value
	// of a stream it ran for (a topic, partition and offset; a file and
	// line). They are facts about the request, not the computation: no
	// hash covers them, so a run's records and digests are the same
	// whatever its labels, and a history can find runs by one
	// (Query.Label). Bounded as CheckLabels says: at most MaxLabels,
	// keys of 1 to MaxLabelKey bytes of A-Z a-z 0-9 _ . : / -, values of
	// at most MaxLabelValue bytes of valid UTF-8 without NUL. Values may
	// hold other control characters: whatever shows a label escapes it.
	// Nil or empty for none; the two are the same run.
	Labels map[string]string
}

// Summary is one line of a run listing.
type Summary struct {
	ID         string
	Pipeline   string
	Status     Status
	StartedAt  time.Time
	FinishedAt time.Time
	Knots      int // records of nodes (every record but Map elements)
	Failed     int // of those, with Outcome Err
	Skipped    int // of those, with Outcome Skipped
	Elements   int // records of Map elements
}

// Query filters a run listing.
type Query struct {
	Pipeline string // only runs of this pipeline, if set
	// Label, if its Key is set, keeps only runs that carry it: the key
	// with exactly that value.
	Label Label
	Limit int // at most this many, newest first; 0 means 100
}

// ErrNotFound is wrapped by History.Run for an unknown run id.
var ErrNotFound = errors.New("lineage: run not found")

// ErrRunExists is wrapped by the error of starting a run under an id that
// is already recorded, unless replacing it was asked for.
var ErrRunExists = errors.New("lineage: run id already recorded")

// History stores runs and answers lineage queries across them: the
// RunHistory of the Python original. Implementations are safe for
// concurrent use.
type History interface {
	// RecordRun stores a finished run atomically: either all of it is
	// visible or none. Recording a run id again replaces the earlier run.
	RecordRun(ctx context.Context, r *Run) error
	// Run returns a stored run, or an error wrapping ErrNotFound.
	Run(ctx context.Context, id string) (*Run, error)
	// Runs lists runs, newest first.
	Runs(ctx context.Context, q Query) ([]Summary, error)
	// ByOutput returns every record whose output has digest d.
	ByOutput(ctx context.Context, d cas.Digest) ([]Record, error)
	// ByInput returns every record that consumed digest d as an input.
	ByInput(ctx context.Context, d cas.Digest) ([]Record, error)
	// ByKnot returns every record of the knot id, across runs.
	ByKnot(ctx context.Context, knotID string) ([]Record, error)
}

// Query results are ordered by run start time, then by the record's
// position in its run.

// ElementCount counts a Map's element records by outcome.
type ElementCount struct{ OK, Err, Skipped int }

// String reads "3 ok, 1 err, 0 skipped".
func (c ElementCount) String() string {
	return fmt.Sprintf("%d ok, %d err, %d skipped", c.OK, c.Err, c.Skipped)
}

// CountElements counts the element records among records, by the id of
// their Map.
func CountElements(records []Record) map[string]ElementCount {
	counts := map[string]ElementCount{}
	for _, r := range records {
		if r.Kind != KindElement {
			continue
		}
		c := counts[r.Map]
		switch r.Outcome {
		case OK:
			c.OK++
		case Err:
			c.Err++
		default:
			c.Skipped++
		}
		counts[r.Map] = c
	}
	return counts
}

// Summarize computes a run's Summary.
func Summarize(r *Run) Summary {
	s := Summary{ID: r.ID, Pipeline: r.Pipeline, Status: r.Status, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt}
	for i := range r.Records {
		if r.Records[i].Kind == KindElement {
			s.Elements++
			continue
		}
		s.Knots++
		switch r.Records[i].Outcome {
		case Err:
			s.Failed++
		case Skipped:
			s.Skipped++
		}
	}
	return s
}
