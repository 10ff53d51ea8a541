package lineage

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/pirn-wasm/pirn/cas"
)

// Memory is an in-memory [History].
type Memory struct {
	mu       sync.RWMutex
	runs     map[string]*Run
	seq      map[string]int // insertion order, for stable listing of equal times
	n        int
	scrubbed map[cas.Digest]time.Time
}

var (
	_ History  = (*Memory)(nil)
	_ Scrubber = (*Memory)(nil)
)

// MarkScrubbed implements [Scrubber].
func (m *Memory) MarkScrubbed(_ context.Context, digests []cas.Digest, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.scrubbed == nil {
		m.scrubbed = map[cas.Digest]time.Time{}
	}
	for _, d := range digests {
		m.scrubbed[d] = at
	}
	return nil
}

// Scrubbed implements [Scrubber].
func (m *Memory) Scrubbed(_ context.Context, d cas.Digest) (time.Time, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	at, ok := m.scrubbed[d]
	return at, ok, nil
}

// NewMemory returns an empty in-memory history.
func NewMemory() *Memory { return &Memory{runs: map[string]*Run{}, seq: map[string]int{}} }

// RecordRun implements [History]. The run is deep-copied. Labels out of
// bounds (see CheckLabels) are an error, and nothing is stored.
func (m *Memory) RecordRun(_ context.Context, r *Run) error {
	if err := CheckLabels(r.Labels); err != nil {
		return fmt.Errorf("record run %q: %w", r.ID, err)
	}
	c := clone(r)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runs[r.ID] = c
	m.n++
	m.seq[r.ID] = m.n
	return nil
}

// Run implements [History].
func (m *Memory) Run(_ context.Context, id string) (*Run, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.runs[id]
	if !ok {
		return nil, fmt.Errorf("run %q: %w", id, ErrNotFound)
	}
	return clone(r), nil
}

// ordered returns runs oldest first.
func (m *Memory) ordered() []*Run {
	rs := make([]*Run, 0, len(m.runs))
	for _, r := range m.runs {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b *Run) int {
		return cmp.Or(a.StartedAt.Compare(b.StartedAt), cmp.Compare(m.seq[a.ID], m.seq[b.ID]))
	})
	return rs
}

// Runs implements [History].
func (m *Memory) Runs(_ context.Context, q Query) ([]Summary, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	limit := cmp.Or(q.Limit, 100)
	rs := m.ordered()
	var out []Summary
	for i := len(rs) - 1; i >= 0 && len(out) < limit; i-- {
		if q.Pipeline != "" && rs[i].Pipeline != q.Pipeline || !rs[i].HasLabel(q.Label) {
			continue
		}
		out = append(out, Summarize(rs[i]))
	}
	return out, nil
}

func (m *Memory) query(match func(*Record) bool) []Record {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Record
	for _, r := range m.ordered() {
		for i := range r.Records {
			if match(&r.Records[i]) {
				out = append(out, cloneRecord(r.Records[i]))
			}
		}
	}
	return out
}

// ByOutput implements [History].
func (m *Memory) ByOutput(_ context.Context, d cas.Digest) ([]Record, error) {
	return m.query(func(r *Record) bool { return !d.IsZero() && r.Output == d }), nil
}

// ByInput implements [History].
func (m *Memory) ByInput(_ context.Context, d cas.Digest) ([]Record, error) {
	return m.query(func(r *Record) bool {
		for _, in := range r.Inputs {
			if in.Digest == d {
				return true
			}
		}
		return false
	}), nil
}

// ByKnot implements [History].
func (m *Memory) ByKnot(_ context.Context, knotID string) ([]Record, error) {
	return m.query(func(r *Record) bool { return r.KnotID == knotID }), nil
}

func clone(r *Run) *Run {
	c := *r
	c.Terminals = slices.Clone(r.Terminals)
	c.Labels = maps.Clone(r.Labels)
	c.Records = make([]Record, len(r.Records))
	n := 0
	for i := range r.Records {
		n += len(r.Records[i].Inputs)
	}
	inputs := make([]Input, 0, n) // one allocation for every record's inputs
	for i, rec := range r.Records {
		if rec.Inputs != nil {
			k := len(inputs)
			inputs = append(inputs, rec.Inputs...)
			rec.Inputs = inputs[k:len(inputs):len(inputs)]
		}
		rec.SkipDetail = slices.Clone(rec.SkipDetail)
		c.Records[i] = rec
	}
	c.Errors = make([]ErrorRecord, len(r.Errors))
	for i, e := range r.Errors {
		e.Detail = slices.Clone(e.Detail)
		c.Errors[i] = e
	}
	return &c
}

func cloneRecord(r Record) Record {
	r.Inputs = slices.Clone(r.Inputs)
	r.SkipDetail = slices.Clone(r.SkipDetail)
	return r
}
