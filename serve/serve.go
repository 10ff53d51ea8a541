// Package serve runs pipelines from outside events: a Server loads the
// pipelines serve.yaml names, starts its triggers (cron, webhook, Kafka,
// Valkey, NATS) and streaming sources, runs their requests with bounded
// concurrency per pipeline, sends every run's events to its emitters
// (package emit), answers /healthz and /readyz, and drains on shutdown.
package serve

import (
	"context"
	"errors"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/emit"
)

// Request asks a Server for a run of one of its pipelines.
type Request struct {
	// Pipeline is the pipeline's name in serve.yaml; a trigger bound to
	// one pipeline leaves it to the Server.
	Pipeline string
	// Params are checked and converted as pirn run's -p values are.
	Params map[string]any
	// RunID, when set, names the run after what caused it (a message's
	// offset, a webhook's idempotency key), so that a delivery seen
	// again starts no second run: Submit then returns the recorded run.
	RunID string
	// Labels go with the run to its emitters and lineage: the trigger,
	// where a streamed value came from, a caller's "traceparent".
	Labels map[string]string
}

// Submitter starts runs. Submit waits while the pipeline's runs and queue
// are full (backpressure) until ctx ends, then returns ErrBusy. A request
// that fails its checks (an unknown pipeline, a bad parameter) returns an
// error wrapping ErrBadRequest, naming what was wrong.
type Submitter interface {
	Submit(ctx context.Context, req Request) (*Run, error)
}

// Errors of Submit.
var (
	ErrBusy       = errors.New("serve: the pipeline's queue is full")
	ErrBadRequest = errors.New("serve: bad request")
	ErrStopping   = errors.New("serve: the server is stopping")
)

// Run is a submitted run.
type Run struct {
	ID   string
	done chan struct{}
	res  *pirn.RunResult
	err  error
}

// Done is closed once the run is recorded (or failed to start).
func (r *Run) Done() <-chan struct{} { return r.done }

// Result returns what the run produced, once Done is closed.
func (r *Run) Result() (*pirn.RunResult, error) {
	<-r.done
	return r.res, r.err
}

// Trigger turns outside events into run requests until ctx ends. A bad
// event is logged and answered (where the event has a sender) with an
// error naming what was wrong; it never ends Run.
type Trigger interface {
	Name() string
	Run(ctx context.Context, s Submitter) error
}

// Source is a stream of values, one run (or one window of runs) each.
type Source interface {
	Name() string
	// Next blocks for the next value until ctx ends.
	Next(ctx context.Context) (Item, error)
	Close() error
}

// Item is one value of a Source.
type Item struct {
	Value any
	// Origin says where the value came from (topic, partition, offset;
	// file and line); it goes into the run's labels.
	Origin map[string]string
	// ID, if set, identifies the value for good (a topic, partition and
	// offset; a stream entry's id): RunStream names the value's run after
	// it, so a value delivered again starts no second run. Leave it
	// empty where a position can be reused (a truncated file).
	ID string
	// Ack, if set, commits the value (an offset, an XACK) once its run is
	// recorded: at-least-once.
	Ack func(ctx context.Context) error
}

// Finished returns a run that is already done: for a Submitter that
// found the request's run recorded, and for tests of triggers.
func Finished(id string, res *pirn.RunResult, err error) *Run {
	r := &Run{ID: id, done: make(chan struct{}), res: res, err: err}
	close(r.done)
	return r
}

// Triggers and Sources are the registries of trigger and streaming-source
// types by their serve.yaml name: this package's cron, webhook, file and
// stdin; pirn serve adds kafka, valkey and nats (cmd/pirn's table).
var (
	Triggers = emit.NewRegistry(map[string]func(emit.Spec) (Trigger, error){
		"cron":    NewCron,
		"webhook": NewWebhook,
	})
	Sources = emit.NewRegistry(map[string]func(emit.Spec) (Source, error){
		"file":  newFileSource,
		"stdin": newStdinSource,
	})
)
