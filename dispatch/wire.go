package dispatch

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/internal/pcbor"
	"github.com/pirn-wasm/pirn/model"
)

// Version is the version of the job and result encodings; a worker
// refuses a job of another version.
const Version = 1

// Spec is how one knot runs: the module by digest, how the host talks to
// it, and the knot's limits, grants and instance state, exactly as the
// coordinator's host resolved them, so that a worker runs the invocation
// as a local run would.
type Spec struct {
	Module      string       `cbor:"module"` // sha256:<hex> of the module's bytes
	ABI         string       `cbor:"abi"`    // host.ABI
	Format      string       `cbor:"format,omitempty"`
	Knot        string       `cbor:"knot"` // the knot's name in the module's manifest
	Limits      model.Limits `cbor:"limits"`
	NoTypeCheck bool         `cbor:"no_type_check,omitempty"`
	Grants      model.Grants `cbor:"grants"`
	State       model.State  `cbor:"state"`
}

// Ref names a value in the data store.
type Ref struct {
	Name   string `cbor:"name"`
	Digest string `cbor:"digest"`
	Size   int    `cbor:"size"`
}

// Job is one invocation. It carries digests and settings, never values.
type Job struct {
	V      int    `cbor:"v"`
	Run    string `cbor:"run"`  // the run's id
	Knot   string `cbor:"knot"` // the node's id (a Map element's: "<map>:<index>")
	Spec   Spec   `cbor:"spec"`
	Inputs []Ref  `cbor:"inputs"`
	Config []Ref  `cbor:"config,omitempty"`
}

// Encode returns the job's canonical encoding and its key: the hex
// SHA-256 of that encoding.
func (j *Job) Encode() (b []byte, key string, err error) {
	b, err = pcbor.Marshal(j)
	if err != nil {
		return nil, "", fmt.Errorf("encode job: %w", err)
	}
	if len(b) > MaxJob {
		return nil, "", fmt.Errorf("job for knot %s is %d bytes encoded, over the limit of %d (too many inputs or grants)", j.Knot, len(b), MaxJob)
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:]), nil
}

// DecodeJob decodes and checks a job.
func DecodeJob(b []byte) (*Job, error) {
	if len(b) > MaxJob {
		return nil, fmt.Errorf("job is %d bytes, over the limit of %d", len(b), MaxJob)
	}
	var j Job
	if err := pcbor.UnmarshalMessage(b, &j); err != nil {
		return nil, fmt.Errorf("decode job: %w", err)
	}
	if j.V != Version {
		return nil, fmt.Errorf("job is of version %d; this worker speaks version %d", j.V, Version)
	}
	if !abi.ValidKnotName(j.Run) || !abi.ValidKnotName(j.Knot) {
		return nil, fmt.Errorf("job has an invalid run id %.64q or knot id %.64q", j.Run, j.Knot)
	}
	if _, err := cas.ParseDigest(j.Spec.Module); err != nil {
		return nil, fmt.Errorf("job's module: %w", err)
	}
	for _, refs := range [][]Ref{j.Inputs, j.Config} {
		for _, r := range refs {
			if _, err := cas.ParseDigest(r.Digest); err != nil {
				return nil, fmt.Errorf("job's input %.64q: %w", r.Name, err)
			}
			if r.Size < 0 {
				return nil, fmt.Errorf("job's input %.64q has size %d", r.Name, r.Size)
			}
		}
	}
	return &j, nil
}

// Outcomes of a Result.
const (
	OK   = "ok"
	Err  = "err"
	Skip = "skip"
)

// Result is a job's terminal outcome, published to the results stream
// under the job's key.
type Result struct {
	V       int        `cbor:"v"`
	Key     string     `cbor:"key"`
	Outcome string     `cbor:"outcome"`
	Value   *Ref       `cbor:"value,omitempty"` // ok: the output, in the data store
	Error   *abi.Error `cbor:"error,omitempty"`
	Skip    *abi.Skip  `cbor:"skip,omitempty"`
	Worker  string     `cbor:"worker"`
	Attempt int        `cbor:"attempt"` // the delivery that produced it
	// Started and Finished are the invocation's times on the worker, in
	// Unix nanoseconds.
	Started  int64 `cbor:"started"`
	Finished int64 `cbor:"finished"`
	// Logs are the lines the knot logged, as the worker's host kept them
	// (abi.Response.Logs).
	Logs []LogLine `cbor:"logs,omitempty"`
}

// LogLine is one line a knot logged, in a Result.
type LogLine struct {
	Level int32  `cbor:"level"`
	Msg   string `cbor:"msg"`
}

func wireLogs(lines []abi.LogLine) []LogLine {
	if len(lines) == 0 {
		return nil
	}
	out := make([]LogLine, len(lines))
	for i, l := range lines {
		out[i] = LogLine{Level: int32(l.Level), Msg: l.Msg}
	}
	return out
}

// logLines returns the result's log lines held to the bounds a host keeps
// them to (at most abi.MaxLogLines and the line counting the dropped,
// each at most abi.MaxLogLineBytes of valid UTF-8, at a known level): a
// worker is another process.
func (r *Result) logLines() []abi.LogLine {
	if len(r.Logs) == 0 {
		return nil
	}
	in := r.Logs[:min(len(r.Logs), abi.MaxLogLines+1)]
	out := make([]abi.LogLine, len(in))
	for i, l := range in {
		level := abi.LogLevel(l.Level)
		if level < abi.LogDebug || level > abi.LogError {
			level = abi.LogInfo
		}
		out[i] = abi.LogLine{Level: level, Msg: abi.ClipText(strings.ToValidUTF8(l.Msg, "\uFFFD"), abi.MaxLogLineBytes)}
	}
	return out
}

func (r *Result) encode() ([]byte, error) {
	b, err := pcbor.Marshal(r)
	if err == nil && len(b) > MaxResult {
		err = fmt.Errorf("result is %d bytes, over the limit of %d", len(b), MaxResult)
	}
	return b, err
}

func decodeResult(b []byte) (*Result, error) {
	if len(b) > MaxResult {
		return nil, fmt.Errorf("result is %d bytes, over the limit of %d", len(b), MaxResult)
	}
	var r Result
	if err := pcbor.UnmarshalMessage(b, &r); err != nil {
		return nil, fmt.Errorf("decode result: %w", err)
	}
	switch {
	case r.V != Version:
		return nil, fmt.Errorf("result is of version %d, want %d", r.V, Version)
	case r.Outcome == OK && r.Value == nil, r.Outcome == Err && r.Error == nil, r.Outcome == Skip && r.Skip == nil:
		return nil, fmt.Errorf("result of outcome %q lacks its %s", r.Outcome, r.Outcome)
	case r.Outcome != OK && r.Outcome != Err && r.Outcome != Skip:
		return nil, fmt.Errorf("result has unknown outcome %.32q", r.Outcome)
	}
	if r.Value != nil {
		if _, err := cas.ParseDigest(r.Value.Digest); err != nil {
			return nil, fmt.Errorf("result's value: %w", err)
		}
	}
	return &r, nil
}

// response turns an err or skip result into a response; an ok result's
// value must be read from the store by the caller.
func (r *Result) response() abi.Response {
	switch r.Outcome {
	case Err:
		return abi.Response{Outcome: abi.OutcomeErr, Error: r.Error}
	case Skip:
		return abi.Response{Outcome: abi.OutcomeSkip, Skip: r.Skip}
	}
	return abi.Fail(ErrBadResult, "result without a value")
}

// Error types a remote invocation may end with, besides the knot's own.
const (
	// ErrWorkerLost: the job was delivered Config.MaxDeliver times and
	// every worker that took it stopped before finishing it.
	ErrWorkerLost = "WorkerLost"
	// ErrNoWorkers: no worker of the job's pool was alive for
	// CoordinatorConfig.WorkerWait.
	ErrNoWorkers = "NoWorkers"
	// ErrGrantRefused: the knot has grants and the worker does not allow
	// any (pirn worker --allow-grants).
	ErrGrantRefused = "GrantRefused"
	// ErrUnavailable: the module or an input is not in the data store, or
	// is not what its digest says.
	ErrUnavailable = "Unavailable"
	// ErrBadJob: the worker could not read the job.
	ErrBadJob = "BadJob"
	// ErrBadResult: the coordinator could not read a result or its value.
	ErrBadResult = "BadResult"
	// ErrDispatch: the coordinator could not publish the job.
	ErrDispatch = "DispatchError"
	// errCancelled matches host.ErrCancelled.
	errCancelled = "Cancelled"
)

// RunRecord is what the coordinator keeps about a run so that pirn resume
// can finish it: its request, with the pipeline by digest.
type RunRecord struct {
	Run       string   `cbor:"run"`
	Pipeline  string   `cbor:"pipeline"` // the pipeline's name
	Digest    string   `cbor:"digest"`   // the pipeline's bundle manifest, in the data store
	Params    []byte   `cbor:"params"`   // canonical CBOR map, by parameter name
	Terminals []string `cbor:"terminals,omitempty"`
	Pool      string   `cbor:"pool"`
	State     string   `cbor:"state"` // running, cancelled or finished
}

// Run states in a RunRecord.
const (
	RunRunning   = "running"
	RunCancelled = "cancelled"
	RunFinished  = "finished"
)

var errNotRecorded = errors.New("not recorded")
