// Package messagingtest holds what the tests of the Kafka, Valkey and NATS
// triggers share: a Submitter that records runs as the server's Runner
// does (a request whose run id is recorded returns that run and runs
// nothing), and can hold chosen runs unrecorded, as a crash would leave
// them.
package messagingtest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/serve"
)

// Submitter is a serve.Submitter that records each run at once, except
// those Hold picks, which it leaves running until Release. Safe for
// concurrent use.
type Submitter struct {
	// Hold, if set, picks requests whose runs are never recorded
	// (until Release).
	Hold func(serve.Request) bool
	// Refuse, if set, picks requests refused as bad.
	Refuse func(serve.Request) bool

	mu       sync.Mutex
	n        int
	recorded map[string]int // run id: times run and recorded
	requests map[string]serve.Request
	dups     int // requests answered with a recorded run
	held     []func(*pirn.RunResult, error)
	changed  chan struct{}
}

var _ serve.Submitter = (*Submitter)(nil)

// Submit records the request's run, or returns the recorded one.
func (s *Submitter) Submit(ctx context.Context, req serve.Request) (*serve.Run, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", serve.ErrBusy, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notify()
	if s.recorded == nil {
		s.recorded, s.requests = map[string]int{}, map[string]serve.Request{}
	}
	if s.Refuse != nil && s.Refuse(req) {
		return nil, fmt.Errorf("%w: refused", serve.ErrBadRequest)
	}
	id := req.RunID
	if id == "" {
		s.n++
		id = fmt.Sprintf("run-%d", s.n)
	}
	if s.recorded[id] > 0 {
		s.dups++
		return serve.Finished(id, nil, nil), nil
	}
	if s.Hold != nil && s.Hold(req) {
		run, finish := serve.Pending(id)
		s.held = append(s.held, finish)
		return run, nil
	}
	s.recorded[id]++
	s.requests[id] = req
	return serve.Finished(id, &pirn.RunResult{}, nil), nil
}

func (s *Submitter) notify() {
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}

// Release finishes the held runs without recording them (as a crash
// would) so that their waiters end.
func (s *Submitter) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.held {
		f(nil, serve.ErrStopping)
	}
	s.held = nil
}

// State is a copy of what a Submitter saw.
type State struct {
	Recorded map[string]int
	Requests map[string]serve.Request
	Dups     int
	Held     int
}

// State returns a copy of what the Submitter saw so far.
func (s *Submitter) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{Recorded: map[string]int{}, Requests: map[string]serve.Request{}, Dups: s.dups, Held: len(s.held)}
	for k, v := range s.recorded {
		st.Recorded[k] = v
	}
	for k, v := range s.requests {
		st.Requests[k] = v
	}
	return st
}

// Wait waits until done holds for the Submitter's state, failing the test
// after 15 s.
func (s *Submitter) Wait(t testing.TB, what string, done func(State) bool) State {
	t.Helper()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		ch := s.changed
		s.mu.Unlock()
		if st := s.State(); done(st) {
			return st
		}
		select {
		case <-ch:
		case <-deadline.C:
			st := s.State()
			t.Fatalf("waiting for %s: %d runs recorded, %d held, %d redeliveries", what, len(st.Recorded), st.Held, st.Dups)
		}
	}
}
