package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/bundle"
	"github.com/pirn-wasm/pirn/scheduler"
)

// HTTP bounds of the Server's listener.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 60 * time.Second
	MaxHeaderBytes    = 64 << 10
)

// Backoff of a trigger that failed: it is restarted after
// TriggerBackoffMin, doubling up to TriggerBackoffMax; a trigger that ran
// for TriggerBackoffMax before failing starts again from the minimum.
const (
	TriggerBackoffMin = time.Second
	TriggerBackoffMax = time.Minute
)

// Route is implemented by triggers that answer HTTP requests on the
// Server's listener (the webhook): the Server serves Handler at Path,
// answering 503 itself once it is stopping.
type Route interface {
	Path() string
	http.Handler
}

// Options are what a Server takes besides serve.yaml.
type Options struct {
	// Logger receives the server's, its triggers' and its runs' logs;
	// nil discards.
	Logger *slog.Logger
	// Observer, if set, receives every run's events besides the
	// configured emitters: an embedding program's own sink. It must
	// return quickly (see scheduler.Observer).
	Observer scheduler.Observer
	// Redact, if set, masks secrets in the events emitters see (the
	// engine's redactor masks error records and logs already).
	Redact func(string) string
}

// Server runs pipelines from the triggers and streams of a Config. The
// CLI's pirn serve is one; an embedding program makes its own with New
// and calls Run. Its methods are safe for concurrent use.
type Server struct {
	cfg     Config
	lg      *slog.Logger
	runners map[string]*Runner
	names   []string // pipeline names, in Config order
	trigs   []namedTrigger
	mux     *http.ServeMux
	obs     observer

	ready    chan struct{}
	state    atomic.Int32 // starting, serving, draining
	addrMu   sync.Mutex
	addr     net.Addr
	runCalls atomic.Bool
}

// armer is a trigger that can start accepting before its Run is called
// (a webhook, whose requests come to the server's listener).
type armer interface{ arm(Submitter) }

type namedTrigger struct {
	Trigger
	pipeline string
	where    string
}

const (
	starting int32 = iota
	serving
	draining
)

// New loads the configuration's pipelines on engine (a pipeline file's
// modules must be pinned by its lock file unless the engine allows
// otherwise; a bundle is checked as pirn run checks it), builds a Runner
// for each and builds the triggers. Every load error is reported, each
// naming the pipeline and its line. New listens nowhere and starts
// nothing: Run does.
func New(ctx context.Context, engine *pirn.Engine, cfg *Config, opts Options) (*Server, error) {
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	c := *cfg
	c.Listen = cmpOr(c.Listen, DefaultListen)
	if c.Drain <= 0 {
		c.Drain = DefaultDrain
	}
	s := &Server{cfg: c, lg: lg, runners: map[string]*Runner{}, mux: http.NewServeMux(), ready: make(chan struct{})}
	obs, err := newObserver(c.File, c.Emitters, lg, opts.Redact)
	if err != nil {
		return nil, err
	}
	s.obs = obs
	var errs []error
	for _, pc := range c.Pipelines {
		p, err := loadPipeline(ctx, engine, c.Dir, pc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: pipeline %s: %w", c.File, pc.Line, pc.Name, err))
			continue
		}
		for _, m := range p.Unpinned {
			lg.Warn("module not pinned by a lock file: its bytes are not verified", "pipeline", pc.Name, "module", m)
		}
		rc := RunnerConfig{Name: pc.Name, Concurrency: pc.Concurrency, Queue: pc.Queue, Logger: lg}
		if _, none := s.obs.(noObserver); !none {
			rc.Observer = s.obs
		}
		// Only an emitter of policy fail makes a run wait for its
		// emitters: a slow one of any other policy must not slow runs.
		if w, ok := s.obs.(interface {
			Wait(context.Context, string) error
		}); ok && slices.ContainsFunc(c.Emitters, func(e Entry) bool { return e.Fields["policy"] == "fail" }) {
			rc.Waiter = w
		}
		if opts.Observer != nil {
			rc.Observer = both{rc.Observer, opts.Observer}
		}
		s.runners[pc.Name] = NewRunner(engine, p, rc)
		s.names = append(s.names, pc.Name)
	}
	for _, e := range c.Triggers {
		spec := e.Spec
		spec.Logger = lg.With("trigger", e.Type, "line", e.Line)
		t, err := Triggers.New(spec)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: trigger %s: %w", c.File, e.Line, e.Type, err))
			continue
		}
		if ct, ok := t.(*Cron); ok && s.runners[e.Pipeline] != nil {
			if _, err := CheckParams(s.runners[e.Pipeline].p, ct.cfg.Params); err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: trigger %s: params: %w", c.File, e.Line, e.Type, err))
				continue
			}
		}
		if r, ok := t.(Route); ok {
			s.mux.Handle(r.Path(), s.route(r))
		}
		s.trigs = append(s.trigs, namedTrigger{Trigger: t, pipeline: e.Pipeline, where: fmt.Sprintf("%s:%d", c.File, e.Line)})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s.mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	s.mux.HandleFunc("/readyz", s.readyz)
	return s, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// loadPipeline loads one pipelines entry.
func loadPipeline(ctx context.Context, engine *pirn.Engine, dir string, pc PipelineConfig) (*pirn.Pipeline, error) {
	if pc.Path != "" {
		return engine.LoadPipeline(ctx, resolve(dir, pc.Path))
	}
	opts := pirn.LoadBundleOptions{Digest: pc.Digest, AllowGrants: pc.AllowGrants}
	for _, k := range pc.Trust {
		b, err := readSmall(resolve(dir, k), 1<<16)
		if err != nil {
			return nil, fmt.Errorf("trust: %w", err)
		}
		key, err := bundle.ParsePublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("trust %s: %w", k, err)
		}
		opts.Trust = append(opts.Trust, key)
	}
	path := pc.Bundle
	if !strings.HasPrefix(path, "oci://") && !strings.HasPrefix(path, "sha256:") {
		path = resolve(dir, path)
	}
	return engine.LoadBundle(ctx, path, opts)
}

// resolve makes a path relative to serve.yaml's directory.
func resolve(dir, path string) string {
	if filepath.IsAbs(path) || dir == "" {
		return path
	}
	return filepath.Join(dir, path)
}

func readSmall(path string, limit int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return os.ReadFile(path)
}

// Handler returns the server's HTTP handler: /healthz, /readyz and the
// webhooks. Run serves it on the configured address; a program that has
// its own listener may serve it there instead.
func (s *Server) Handler() http.Handler { return s.mux }

// Ready is closed once Run has loaded everything, listens and has started
// the triggers.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the address Run listens on, once Ready is closed (nil with
// Listen "-").
func (s *Server) Addr() net.Addr {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	return s.addr
}

// Runner returns the runner of the named pipeline, or nil.
func (s *Server) Runner(name string) *Runner { return s.runners[name] }

// Submit starts a run of req.Pipeline: the Server is the Submitter its
// triggers use, and an embedding program may call it directly.
func (s *Server) Submit(ctx context.Context, req Request) (*Run, error) {
	if s.state.Load() == draining {
		return nil, ErrStopping
	}
	r := s.runners[req.Pipeline]
	if r == nil {
		return nil, fmt.Errorf("%w: unknown pipeline %q (pipelines: %s)", ErrBadRequest, req.Pipeline, strings.Join(s.names, ", "))
	}
	return r.Submit(ctx, req)
}

// bound is the Submitter of a trigger bound to one pipeline.
type bound struct {
	s        *Server
	pipeline string
}

func (b bound) Submit(ctx context.Context, req Request) (*Run, error) {
	if req.Pipeline == "" {
		req.Pipeline = b.pipeline
	}
	return b.s.Submit(ctx, req)
}

// Run serves until ctx ends: it listens, starts the triggers (each
// restarted with backoff if it fails) and the streams, and reports ready.
// When ctx ends it stops accepting (webhooks answer 503, /readyz 503),
// stops the triggers, lets the runs in flight finish for up to Drain,
// cancels and records the rest as cancelled, flushes the emitters and
// returns. It returns an error only if it could not start (the address
// is taken, a stream cannot be built); runs cancelled at the drain
// deadline are logged. Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	if s.runCalls.Swap(true) {
		return errors.New("serve: Run called twice")
	}
	var hs *http.Server
	var ln net.Listener
	if s.cfg.Listen != "-" {
		var err error
		if ln, err = (&net.ListenConfig{}).Listen(ctx, "tcp", s.cfg.Listen); err != nil {
			return fmt.Errorf("serve: listen: %w", err)
		}
		s.addrMu.Lock()
		s.addr = ln.Addr()
		s.addrMu.Unlock()
		hs = &http.Server{Handler: s.mux, ReadHeaderTimeout: ReadHeaderTimeout, ReadTimeout: ReadTimeout,
			WriteTimeout: WriteTimeout, IdleTimeout: IdleTimeout, MaxHeaderBytes: MaxHeaderBytes,
			ErrorLog: slog.NewLogLogger(s.lg.Handler(), slog.LevelDebug)}
	}
	streamsDone, err := s.startStreams(ctx)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	serveErr := make(chan error, 1)
	if hs != nil {
		go func() { serveErr <- hs.Serve(ln) }()
	}
	tctx, stopTriggers := context.WithCancel(context.WithoutCancel(ctx))
	var twg sync.WaitGroup
	for _, t := range s.trigs {
		// A webhook accepts from the moment the server says it is
		// ready, not from when its goroutine happens to start.
		if a, ok := t.Trigger.(armer); ok {
			a.arm(bound{s: s, pipeline: t.pipeline})
		}
		twg.Go(func() { s.supervise(tctx, t) })
	}
	s.state.Store(serving)
	close(s.ready)
	s.lg.Info("serving", "listen", s.Addr(), "pipelines", len(s.runners), "triggers", len(s.trigs))
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("serve: %w", err)
	}
	s.state.Store(draining)
	s.lg.Info("stopping: draining runs in flight", "drain", s.cfg.Drain)
	stopTriggers()
	twg.Wait()
	streamsDone()
	s.drain()
	if err := s.obs.Close(context.Background()); err != nil {
		s.lg.Warn("flush emitters", "error", err)
	}
	if hs != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			hs.Close()
		}
	}
	s.lg.Info("stopped")
	return runErr
}

// drain closes every runner within one Drain deadline.
func (s *Server) drain() {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Drain)
	defer cancel()
	var wg sync.WaitGroup
	for name, r := range s.runners {
		wg.Go(func() {
			if err := r.Close(ctx); err != nil {
				s.lg.Warn("drain", "pipeline", name, "error", err)
			}
		})
	}
	wg.Wait()
}

// supervise runs a trigger until ctx ends, restarting it with backoff
// when it returns or panics.
func (s *Server) supervise(ctx context.Context, t namedTrigger) {
	sub := bound{s: s, pipeline: t.pipeline}
	wait := TriggerBackoffMin
	for {
		began := time.Now()
		err := runTrigger(ctx, t.Trigger, sub)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) >= TriggerBackoffMax {
			wait = TriggerBackoffMin
		}
		s.lg.Error("trigger failed: restarting", "trigger", t.Name(), "at", t.where, "error", err, "after", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, TriggerBackoffMax)
	}
}

// runTrigger runs t once, turning a panic into an error.
func runTrigger(ctx context.Context, t Trigger, sub Submitter) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("trigger panicked: %v", p)
		}
	}()
	err = t.Run(ctx, sub)
	if err == nil && ctx.Err() == nil {
		err = errors.New("trigger returned before the server stopped")
	}
	return err
}

// route serves a trigger's HTTP handler while the server serves.
func (s *Server) route(r Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if s.state.Load() != serving {
			w.Header().Set("Retry-After", "5")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the server is not serving (starting or stopping)"})
			return
		}
		r.ServeHTTP(w, req)
	})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	switch s.state.Load() {
	case serving:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	case draining:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
	default:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
	}
}

// writeJSON writes v as the response, with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// observer is what the Server needs of its emitters: a scheduler observer
// it flushes at the end.
type observer interface {
	scheduler.Observer
	Close(ctx context.Context) error
}

// both sends events to two observers (the first may be nil).
type both [2]scheduler.Observer

func (b both) Event(ev scheduler.Event) {
	if b[0] != nil {
		b[0].Event(ev)
	}
	b[1].Event(ev)
}
