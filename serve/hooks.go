package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

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

// startStreams starts the configured streaming sources, each feeding
// its pipeline's runner; the returned function stops them and waits.
//
// Streaming (serve.RunStream) is being written beside this package; until
// it is merged a configuration that lists streams does not start.
func (s *Server) startStreams(context.Context) (stop func(), err error) {
	if len(s.cfg.Streams) > 0 {
		e := s.cfg.Streams[0]
		return nil, fmt.Errorf("%s:%d: stream %s: %w (streaming arrives with serve.RunStream)", s.cfg.File, e.Line, e.Type, ErrNotBuilt)
	}
	return func() {}, nil
}
