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
	memo     map[cas.Digest][]memoEntry // by cache key: the records that ran with it, oldest first (see Memo)
}

var (
	_ History  = (*Memory)(nil)
	_ Scrubber = (*Memory)(nil)
	_ Memo     = (*Memory)(nil)
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
func NewMemory() *Memory {
	return &Memory{runs: map[string]*Run{}, seq: map[string]int{}, memo: map[cas.Digest][]memoEntry{}}
}

// RecordRun implements [History]. The run is deep-copied. Labels out of
// bounds (see CheckLabels) are an error, and nothing is stored.
func (m *Memory) RecordRun(_ context.Context, r *Run) error {
	if err := CheckLabels(r.Labels); err != nil {
		return fmt.Errorf("record run %q: %w", r.ID, err)
	}
	c := clone(r)
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.runs[r.ID]; ok { // its entries go with it
		for i := range old.Records {
			m.forget(old.Records[i].CacheKey, func(e memoEntry) bool { return e.run == r.ID })
		}
	}
	for i := range c.Records {
		if rec := &c.Records[i]; Memoisable(rec) {
			m.memo[rec.CacheKey] = append(m.memo[rec.CacheKey], memoEntry{run: r.ID, index: i})
		}
	}
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

// Reusable implements [Memo].
func (m *Memory) Reusable(_ context.Context, key cas.Digest) (Record, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if es := m.memo[key]; len(es) > 0 {
		if rec := m.record(es[len(es)-1]); rec != nil {
			return cloneRecord(*rec), true, nil
		}
	}
	return Record{}, false, nil
}

// memoEntry locates a record: its run, and its position in Run.Records.
type memoEntry struct {
	run   string
	index int
}

// record returns the stored record e names, or nil; m.mu is held.
func (m *Memory) record(e memoEntry) *Record {
	if r, ok := m.runs[e.run]; ok && e.index < len(r.Records) {
		return &r.Records[e.index]
	}
	return nil
}

// CacheStats implements [Memo].
func (m *Memory) CacheStats(context.Context) (CacheStats, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := CacheStats{Entries: len(m.memo)}
	for _, r := range m.runs {
		for i := range r.Records {
			switch rec := &r.Records[i]; {
			case rec.Reused():
				s.Reused++
			case !rec.CacheKey.IsZero():
				s.Executed++
			}
		}
	}
	return s, nil
}

// ClearCache implements [Memo].
func (m *Memory) ClearCache(_ context.Context, f CacheFilter) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k := range m.memo {
		n += m.forget(k, func(e memoEntry) bool { rec := m.record(e); return rec == nil || f.Matches(rec) })
	}
	return n, nil
}

// forget drops the entries of key that match, and returns how many;
// m.mu is held.
func (m *Memory) forget(key cas.Digest, match func(memoEntry) bool) int {
	es, ok := m.memo[key]
	if !ok {
		return 0
	}
	kept := slices.DeleteFunc(es, match)
	if len(kept) == 0 {
		delete(m.memo, key)
	} else {
		m.memo[key] = kept
	}
	return len(es) - len(kept)
}
