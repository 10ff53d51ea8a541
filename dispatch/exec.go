package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/internal/pcbor"
	"github.com/pirn-wasm/pirn/model"
)

// MaxKnots bounds the knots a Modules executor keeps ready (each with its
// warm instances); the oldest is dropped beyond it.
const MaxKnots = 256

// Modules runs jobs on WebAssembly modules read from a data store: the
// executor of pirn worker. A module's bytes are checked against the digest
// the job names before the host compiles them (compiled code is cached by
// the host, on disk too); each knot, under the job's limits, grants and
// state, is kept ready for the next job that names it.
type Modules struct {
	h     *host.Host
	store cas.Store

	mu    sync.Mutex
	knots map[string]*knotEntry // by the Spec's encoding
	order []string              // oldest first
}

type knotEntry struct {
	once sync.Once
	k    *host.Knot
	err  error
}

var _ Executor = (*Modules)(nil)

// NewModules returns an executor over h and store.
func NewModules(h *host.Host, store cas.Store) *Modules {
	return &Modules{h: h, store: store, knots: map[string]*knotEntry{}}
}

// Execute implements Executor.
func (m *Modules) Execute(ctx context.Context, job *Job, call *host.Call) (abi.Response, error) {
	k, err := m.knot(ctx, &job.Spec)
	if err != nil {
		var u unavailable
		var le *host.LoadError
		switch {
		case errors.As(err, &u):
			return abi.Fail(ErrUnavailable, err.Error()), nil
		case errors.As(err, &le), errors.Is(err, errSpec):
			return abi.Fail("LoadError", err.Error()), nil
		}
		return abi.Response{}, err
	}
	return k.Invoke(ctx, call), nil
}

var errSpec = errors.New("invalid knot settings")

func (m *Modules) knot(ctx context.Context, s *Spec) (*host.Knot, error) {
	kb, err := pcbor.Marshal(s)
	if err != nil {
		return nil, err
	}
	key := string(kb)
	m.mu.Lock()
	e, ok := m.knots[key]
	if !ok {
		e = &knotEntry{}
		m.knots[key] = e
		m.order = append(m.order, key)
		if len(m.order) > MaxKnots {
			delete(m.knots, m.order[0])
			m.order = m.order[1:]
		}
	}
	m.mu.Unlock()
	e.once.Do(func() { e.k, e.err = m.load(ctx, s) })
	if e.err != nil {
		m.mu.Lock() // a failure is not kept: it may be the store's, and passing
		if m.knots[key] == e {
			delete(m.knots, key)
		}
		m.mu.Unlock()
	}
	return e.k, e.err
}

func (m *Modules) load(ctx context.Context, s *Spec) (*host.Knot, error) {
	d, err := cas.ParseDigest(s.Module)
	if err != nil {
		return nil, fmt.Errorf("%w: module: %v", errSpec, err)
	}
	b, err := m.store.Get(ctx, d)
	switch {
	case errors.Is(err, cas.ErrNotFound), errors.Is(err, cas.ErrCorrupt):
		return nil, unavailable{fmt.Errorf("module %s: %w", d, err)}
	case err != nil:
		return nil, fmt.Errorf("module %s: %w", d, err)
	case cas.Sum(b) != d:
		return nil, unavailable{fmt.Errorf("module %s: the data store's bytes do not match the digest", d)}
	}
	if s.State > model.StateKeep {
		return nil, fmt.Errorf("%w: unknown instance state %d", errSpec, s.State)
	}
	mod, err := m.h.LoadWith(ctx, d.String(), b, host.LoadOptions{ABI: host.ABI(s.ABI), Format: host.Format(s.Format)})
	if err != nil {
		return nil, err
	}
	k, err := mod.Knot(host.KnotConfig{Name: s.Knot, Limits: s.Limits, NoTypeCheck: s.NoTypeCheck, Grants: s.Grants, State: s.State})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errSpec, err)
	}
	return k, nil
}
