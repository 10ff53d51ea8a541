// Package pirn is the embedding API: it wires the WebAssembly host, the
// scheduler, the data store and the run history together so that a Go
// program can load knot modules, build or load a tapestry, and run it.
//
// The smallest program runs the README's quickstart from its YAML file:
//
//	eng, err := pirn.Open(ctx, pirn.Config{}) // in memory; see package statedir
//	...
//	defer eng.Close(ctx)
//	p, err := eng.LoadPipeline(ctx, "examples/quickstart/pipeline.yaml")
//	res, err := eng.Run(ctx, p.Tapestry, pirn.RunRequest{Params: map[string]any{"x": 5}})
//	fmt.Println(res.Outputs) // map[answer:15 d:10 x:5]
//
// and the same tapestry can be built in Go (see the examples).
package pirn

import (
	"cmp"
	"context"
	"log/slog"
	"time"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/model"
	"github.com/pirn-wasm/pirn/redact"
	"github.com/pirn-wasm/pirn/scheduler"
)

// Config configures an [Engine]. Every field's zero value is a usable
// default.
type Config struct {
	// Store holds the values runs produce; nil means a new in-memory
	// store. The caller keeps ownership: Close does not close it.
	// statedir.Open opens the local one pirn uses (.pirn/data).
	Store cas.Store
	// History records the runs; nil means a new in-memory history. The
	// caller keeps ownership: Close does not close it. statedir.Open
	// opens the local one pirn uses (.pirn/history.db).
	History lineage.History
	// StoreWriters is how many goroutines write values to Store while knots
	// run: 0 means none for an in-memory store and 8 otherwise; negative none.
	StoreWriters int
	// Workers is the most knots run at once; 0 means GOMAXPROCS (256 with a Remote).
	Workers int
	// Remote, when set, runs module knots in other processes (a dispatch.Coordinator
	// sends them to pirn workers over NATS, which share Store).
	Remote scheduler.Remote
	// CacheDir holds compiled modules; "" means the user cache directory,
	// "-" disables the on-disk cache.
	CacheDir string
	// Limits are the default limits of every knot.
	Limits model.Limits
	// LoadTimeout bounds loading a module, its start function and its
	// manifest (default 10s).
	LoadTimeout time.Duration
	// AllowUnpinned lets LoadPipeline load modules that the pipeline's lock
	// file does not pin (or when there is no lock file). Each such module
	// is logged as a warning.
	AllowUnpinned bool
	// Logger receives guest output and diagnostics; nil discards.
	Logger *slog.Logger
	// CacheSalt is the operator's salt in every cache key (memoisation):
	// results recorded under another salt are not reused. See
	// scheduler.Config.CacheSalt; RunRequest.NoCache turns reuse off for
	// one run.
	CacheSalt string
	// Redactor masks secrets in error records, events and (wrapping
	// Logger's handler) logs; runs add the granted environment values.
	Redactor *redact.Redactor
}

// Type aliases for the values that cross this API.
type (
	RunRequest = scheduler.Request
	RunResult  = scheduler.Result
)

// Engine runs tapestries. It is safe for concurrent use.
type Engine struct {
	cfg   Config
	host  *host.Host
	sched *scheduler.Scheduler
	store cas.Store
	hist  lineage.History
}

// Open creates an engine.
func Open(ctx context.Context, cfg Config) (*Engine, error) {
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	if cfg.Redactor != nil {
		cfg.Logger = slog.New(cfg.Redactor.Handler(cfg.Logger.Handler()))
	}
	e := &Engine{cfg: cfg, store: cmp.Or[cas.Store](cfg.Store, cas.NewMemory()),
		hist: cmp.Or[lineage.History](cfg.History, lineage.NewMemory())}
	writers := cfg.StoreWriters
	if _, mem := e.store.(*cas.Memory); writers == 0 && !mem {
		writers = 8 // file creation is I/O-bound: overlap it with execution
	}
	h, err := host.New(host.Config{CacheDir: cfg.CacheDir, Logger: cfg.Logger, Defaults: cfg.Limits, LoadTimeout: cfg.LoadTimeout})
	if err != nil {
		return nil, err
	}
	e.host = h
	if e.sched, err = scheduler.New(scheduler.Config{Workers: cfg.Workers, Logger: cfg.Logger, StoreWriters: max(writers, 0), Remote: cfg.Remote,
		Redactor: cfg.Redactor, CacheSalt: cfg.CacheSalt}, e.store, e.hist); err != nil {
		h.Close(ctx)
		return nil, err
	}
	return e, nil
}

// Close releases the engine's modules and instances (not the Store or
// History it was given).
func (e *Engine) Close(ctx context.Context) error { return e.host.Close(ctx) }

// History returns the run history.
func (e *Engine) History() lineage.History { return e.hist }

// Store returns the data store.
func (e *Engine) Store() cas.Store { return e.store }

// Prepare makes a tapestry's module knots ready to run: each module
// compiled under its knots' limits, and an instance of each started.
// Run prepares what is not ready itself; Prepare lets a caller pay that
// cost, and meet its errors, before a run.
func (e *Engine) Prepare(ctx context.Context, t *Tapestry) error {
	if t.err != nil {
		return t.err
	}
	return t.l.Prepare(ctx)
}

// Run runs a tapestry. See scheduler.Scheduler.Run for what the error
// means; a run whose knots failed is not an error (check res.Status).
func (e *Engine) Run(ctx context.Context, t *Tapestry, req RunRequest) (*RunResult, error) {
	if err := e.Prepare(ctx, t); err != nil {
		return nil, err
	}
	return e.sched.Run(ctx, t.l.T, req)
}
