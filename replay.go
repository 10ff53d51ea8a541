package pirn

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/internal/suggest"
	"github.com/pirn-wasm/pirn/lineage"
)

// LabelReplayOf is the label a replayed run carries: the id of the run
// it replays.
const LabelReplayOf = "replay.of"

// MaxReplayParamItems bounds a recorded parameter value that Replay
// decodes (every scalar, list and dict in it).
const MaxReplayParamItems = 1 << 20

// ErrNoPipeline is wrapped by Replay's and Verify's error for a run that
// names no pipeline in the data store: a tapestry built in Go.
var ErrNoPipeline = errors.New("the run's tapestry was built in Go: no pipeline in the data store to load again")

// ReplayOptions say how to load a recorded run's pipeline again.
type ReplayOptions struct {
	// AllowGrants lets the pipeline grant its knots capabilities, as
	// LoadBundleOptions.AllowGrants does for a pipeline from the data
	// store: without it, a pipeline that grants anything is refused.
	AllowGrants bool
}

// Replay is a recorded run made ready to run again from the data store
// alone: its pipeline loaded by the run's PipelineDigest (the modules
// it used, by digest) and a request with its recorded parameters.
type Replay struct {
	// Original is the run replayed, as the history keeps it.
	Original *lineage.Run
	// Pipeline is the original's pipeline, loaded from the data store.
	Pipeline *Pipeline
	// Request asks for the original's terminals with its parameters
	// (by name; Override changes them), pipeline name, and a label
	// LabelReplayOf naming the original.
	Request RunRequest
}

// Replay loads the run runID from the history and its pipeline and
// parameters from the data store: Engine.Run(ctx, r.Pipeline.Tapestry,
// r.Request) runs it again as a new run. Errors name what is missing:
// an unknown run (wrapping lineage.ErrNotFound), a run built in Go
// (ErrNoPipeline), a pipeline or module not in the store, a parameter
// value that is not (wrapping cas.ErrNotFound; the error says whether
// pirn gc scrubbed it).
func (e *Engine) Replay(ctx context.Context, runID string, opts ReplayOptions) (*Replay, error) {
	run, err := e.hist.Run(ctx, runID)
	if err != nil {
		return nil, fmt.Errorf("run %q: %w", runID, err)
	}
	if err := recorded(run); err != nil {
		return nil, err
	}
	if run.PipelineDigest.IsZero() {
		return nil, fmt.Errorf("run %s: %w", runID, ErrNoPipeline)
	}
	p, err := e.LoadBundle(ctx, run.PipelineDigest.String(), LoadBundleOptions{AllowGrants: opts.AllowGrants})
	if err != nil {
		return nil, fmt.Errorf("run %s: its pipeline %s: %w", runID, run.PipelineDigest, err)
	}
	params := map[string]any{}
	t := p.Tapestry.l.T
	for i := range run.Records {
		r := &run.Records[i]
		if r.Kind != lineage.KindParameter || r.Outcome != lineage.OK {
			continue
		}
		n, ok := t.Node(r.KnotID)
		if !ok || !n.IsParameter() {
			return nil, fmt.Errorf("run %s: its pipeline %s has no parameter %q", runID, run.PipelineDigest, r.KnotID)
		}
		b, err := e.store.Get(ctx, r.Output)
		if err != nil {
			return nil, fmt.Errorf("run %s: the value of parameter %s (%s): %w", runID, n.ParamName(), r.Output, e.missing(ctx, r.Output, err))
		}
		v, err := cas.DecodeBounded(b, MaxReplayParamItems)
		if err != nil {
			return nil, fmt.Errorf("run %s: the value of parameter %s (%s): %w", runID, n.ParamName(), r.Output, err)
		}
		params[n.ParamName()] = v
	}
	req := RunRequest{Pipeline: run.Pipeline, Params: params, Terminals: slices.Clone(run.Terminals),
		Labels: map[string]string{LabelReplayOf: run.ID}}
	return &Replay{Original: run, Pipeline: p, Request: req}, nil
}

// Override replaces parameter values of the replay's request, by name;
// a name that is no parameter of the pipeline is an error (with a
// suggestion), and nothing is changed then. Values are coerced to
// their parameters' types when the run starts, as RunRequest.Params'.
func (r *Replay) Override(params map[string]any) error {
	var names []string
	for _, n := range r.Pipeline.Tapestry.l.T.Nodes() {
		if n.IsParameter() {
			names = append(names, n.ParamName())
		}
	}
	for _, name := range slices.Sorted(maps.Keys(params)) {
		if !slices.Contains(names, name) {
			return fmt.Errorf("pipeline %s has no parameter %q (parameters: %v)%s", r.Original.PipelineDigest, name, names, suggest.DidYouMean(name, names))
		}
	}
	maps.Copy(r.Request.Params, params)
	return nil
}

// recorded refuses a run whose records were never written: one still
// running, or whose process died (interrupted).
func recorded(run *lineage.Run) error {
	if run.Status == lineage.Running || run.Status == lineage.Interrupted {
		return fmt.Errorf("run %s is %s: its records, parameters included, were never written", run.ID, run.Status)
	}
	return nil
}

// missing says why the value d could not be read: err, or for one not
// in the store, that, and when pirn gc scrubbed it if the history
// remembers.
func (e *Engine) missing(ctx context.Context, d cas.Digest, err error) error {
	if !errors.Is(err, cas.ErrNotFound) {
		return err
	}
	if sc, ok := e.hist.(lineage.Scrubber); ok {
		if at, scrubbed, _ := sc.Scrubbed(ctx, d); scrubbed {
			return fmt.Errorf("%w: scrubbed from the data store at %s", cas.ErrNotFound, at.UTC().Format("2006-01-02T15:04:05Z"))
		}
	}
	return fmt.Errorf("%w: not in the data store", cas.ErrNotFound)
}
