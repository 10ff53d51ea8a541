package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/pirn-wasm/pirn/scheduler"
)

// ErrNotBuilt is returned by New and Run for a serve.yaml entry whose
// kind this build of pirn cannot run yet.
var ErrNotBuilt = errors.New("serve: not built in this pirn")

// newObserver builds the configured emitters into the observer every run
// reports to. With none it returns an observer that drops events.
//
// The emitters (package emit's Hub, with its per-emitter queues and
// policies) are being written beside this package; until they are merged
// a configuration that lists emitters is refused, naming the first.
func newObserver(file string, entries []Entry, _ *slog.Logger) (observer, error) {
	if len(entries) > 0 {
		return nil, fmt.Errorf("%s:%d: emitter %s: %w (emitters arrive with package emit's Hub)", file, entries[0].Line, entries[0].Type, ErrNotBuilt)
	}
	return noObserver{}, nil
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
