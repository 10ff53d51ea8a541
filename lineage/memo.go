package lineage

import (
	"context"

	"github.com/pirn-wasm/pirn/cas"
)

// Memo is implemented by histories that find an earlier result by its
// cache key (Record.CacheKey), for memoisation: the scheduler asks
// Reusable before it invokes a hermetic knot, and reuses the output of
// the record it gets instead of running the knot again.
//
// A history indexes, by key, every record it stores that has a CacheKey,
// ended OK and was executed in its run (ReusedFrom zero): a reused record
// only points at one that ran, so ReusedFrom always names an execution.
// When several records have the same key, Reusable returns the latest
// (by its run's start). Re-recording a run replaces its entries with the
// new run's. The entries are an index over the records: ClearCache
// forgets keys and leaves every record as it was stored, CacheKey
// included.
type Memo interface {
	// Reusable returns the record indexed under key, and true; false if
	// none is (or key is zero).
	Reusable(ctx context.Context, key cas.Digest) (Record, bool, error)
	// CacheStats counts the index's entries and the records that used it.
	CacheStats(ctx context.Context) (CacheStats, error)
	// ClearCache forgets the entries whose record f matches, and returns
	// how many records it took out of the index. The records stay.
	ClearCache(ctx context.Context, f CacheFilter) (int, error)
}

// CacheStats describes a history's memoisation index.
type CacheStats struct {
	// Entries is how many distinct keys the index holds: results that
	// can be reused.
	Entries int
	// Executed counts the stored records that ran with a cache key (each
	// a miss when it ran, and, while its entry lasts, a result to reuse).
	Executed int
	// Reused counts the stored records that were not executed: their
	// results were reused (the hits across every run).
	Reused int
}

// CacheFilter selects the entries ClearCache forgets: those whose record
// ran Knot of Module, where each is set; the zero filter selects all.
type CacheFilter struct {
	Module string // a module digest ("sha256:…"), or ""
	Knot   string // a knot's name in its module, or ""
}

// Matches reports whether f selects r's entry.
func (f CacheFilter) Matches(r *Record) bool {
	return (f.Module == "" || r.Module == f.Module) && (f.Knot == "" || r.Knot == f.Knot)
}

// Memoisable reports whether a history indexes r under its CacheKey: r
// has one, ended OK, and was executed rather than reused.
func Memoisable(r *Record) bool {
	return !r.CacheKey.IsZero() && r.Outcome == OK && !r.Reused() && !r.Output.IsZero()
}

// String reads "RUN/KNOT".
func (r Ref) String() string { return r.RunID + "/" + r.KnotID }
