package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/scheduler"
)

// ErrNotBuilt is returned by New and Run for a serve.yaml entry whose
// kind this build of pirn cannot run yet.
var ErrNotBuilt = errors.New("serve: not built in this pirn")

// newObserver builds the configured emitters into an emit.Hub, the
// observer every run reports to, each emitter with its own bounded queue
// and policy; with none it returns an observer that drops events. redact
// masks secrets in what the emitters see.
func newObserver(file string, entries []Entry, lg *slog.Logger, redact func(string) string) (observer, error) {
	if len(entries) == 0 {
		return noObserver{}, nil
	}
	var hes []emit.HubEmitter
	var errs []error
	for _, e := range entries {
		e.Logger = lg
		he, err := emit.NewHubEmitter(e.Spec)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: emitter %s: %w", file, e.Line, e.Type, err))
			continue
		}
		hes = append(hes, he)
	}
	if len(errs) > 0 {
		for _, he := range hes {
			he.Emitter.Close(context.Background())
		}
		return nil, errors.Join(errs...)
	}
	return emit.NewHub(emit.HubConfig{Emitters: hes, Redact: redact, Logger: lg})
}

// noObserver drops every event.
type noObserver struct{}

func (noObserver) Event(scheduler.Event)       {}
func (noObserver) Close(context.Context) error { return nil }

// streamKeys are a streams: entry's fields that configure RunStream; the
// others configure its source.
var streamKeys = []string{"pipeline", "param", "params", "window", "max_in_flight", "drain_timeout"}

// startStreams starts the configured streaming sources, each feeding
// its pipeline's runner through RunStream; the returned function stops
// them (ctx's end does too) and waits for their runs to be recorded and
// acked. A source that cannot be opened fails the start, naming its line.
func (s *Server) startStreams(ctx context.Context) (stop func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stop = func() { cancel(); wg.Wait() }
	for _, e := range s.cfg.Streams {
		opts, src, err := s.openStream(e)
		if err != nil {
			stop()
			return nil, fmt.Errorf("%s:%d: stream %s: %w", s.cfg.File, e.Line, e.Type, err)
		}
		wg.Go(func() {
			defer src.Close()
			err := RunStream(ctx, s.runners[e.Pipeline], src, opts)
			if err != nil && ctx.Err() == nil {
				s.lg.Error("stream ended", "stream", src.Name(), "line", e.Line, "err", err)
			} else {
				s.lg.Info("stream ended", "stream", src.Name(), "line", e.Line, "err", err)
			}
		})
	}
	return stop, nil
}

// openStream splits a streams: entry into RunStream's options and its
// source's fields, and opens the source.
func (s *Server) openStream(e Entry) (StreamOptions, Source, error) {
	optFields, srcFields := map[string]any{}, map[string]any{}
	for k, v := range e.Fields {
		if slices.Contains(streamKeys, k) {
			optFields[k] = v
		} else {
			srcFields[k] = v
		}
	}
	var opts StreamOptions
	if err := (emit.Spec{Type: e.Type, Fields: optFields}).Decode(&opts); err != nil {
		return opts, nil, err
	}
	opts.Logger = s.lg
	src, err := Sources.New(emit.Spec{Type: e.Type, Fields: srcFields, Dir: e.Dir, Logger: s.lg})
	return opts, src, err
}
