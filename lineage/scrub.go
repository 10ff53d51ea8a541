package lineage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/pirn-wasm/pirn/cas"
)

// Scrubber is implemented by histories that remember which values were
// scrubbed from the data store, so that a record naming one can say so
// rather than point at nothing.
type Scrubber interface {
	// MarkScrubbed records that the values were removed at at.
	MarkScrubbed(ctx context.Context, digests []cas.Digest, at time.Time) error
	// Scrubbed reports whether, and when, d was scrubbed.
	Scrubbed(ctx context.Context, d cas.Digest) (at time.Time, ok bool, err error)
}

// ScrubOptions say which runs keep their values.
type ScrubOptions struct {
	// KeepRuns is how many of the newest runs keep their values, whatever
	// their age.
	KeepRuns int
	// OlderThan: runs started within it before Now keep their values.
	OlderThan time.Duration
	Now       time.Time
	// DryRun removes nothing: the stats say what would be removed.
	DryRun bool
}

// ScrubStats say what Scrub did.
type ScrubStats struct {
	Runs     int          // runs in the history
	Expired  int          // runs whose values are no longer kept for them
	Removed  []cas.Digest // values removed (or, in a dry run, to remove)
	Retained int          // values of expired runs kept, because a kept run needs them
}

// ErrRunsInProgress is wrapped by Scrub's error when runs are in
// progress: what values they will record is not known until they end.
var ErrRunsInProgress = errors.New("lineage: runs are in progress")

// Scrub removes from the store the values that only expired runs
// reference: runs that are neither among the KeepRuns newest nor started
// within OlderThan. The lineage records stay; a history that is a
// Scrubber remembers what was removed and when. While any run is in
// progress Scrub refuses, since a running run's values are known only
// when it ends; a run that starts while Scrub removes values may find a
// value it needs removed (it then recomputes it only on a later run), so
// scrub when no run starts.
func Scrub(ctx context.Context, h History, s cas.Store, o ScrubOptions) (ScrubStats, error) {
	var st ScrubStats
	sums, err := h.Runs(ctx, Query{Limit: math.MaxInt32})
	if err != nil {
		return st, fmt.Errorf("list runs: %w", err)
	}
	st.Runs = len(sums)
	var running []string
	for _, r := range sums {
		if r.Status == Running {
			running = append(running, r.ID)
		}
	}
	if len(running) > 0 {
		return st, fmt.Errorf("%w: %s (scrub when they end)", ErrRunsInProgress, strings.Join(running, ", "))
	}
	cutoff := o.Now.Add(-o.OlderThan)
	needed, candidates := map[cas.Digest]bool{}, map[cas.Digest]bool{}
	for i, sum := range sums { // newest first
		keep := i < o.KeepRuns || !sum.StartedAt.Before(cutoff)
		if !keep {
			st.Expired++
		}
		run, err := h.Run(ctx, sum.ID)
		if err != nil {
			return st, fmt.Errorf("read run %s: %w", sum.ID, err)
		}
		for _, d := range runValues(run) {
			if keep {
				needed[d] = true
			} else {
				candidates[d] = true
			}
		}
	}
	var remove []cas.Digest
	for d := range candidates {
		if needed[d] {
			st.Retained++
			continue
		}
		remove = append(remove, d)
	}
	slices.SortFunc(remove, func(a, b cas.Digest) int { return strings.Compare(a.String(), b.String()) })
	for _, d := range remove {
		ok, err := s.Has(ctx, d)
		if err != nil {
			return st, fmt.Errorf("value %s: %w", d, err)
		}
		if !ok {
			continue // scrubbed before, or never stored
		}
		if !o.DryRun {
			if err := s.Delete(ctx, d); err != nil {
				return st, fmt.Errorf("remove %s: %w", d, err)
			}
		}
		st.Removed = append(st.Removed, d)
	}
	if sc, ok := h.(Scrubber); ok && !o.DryRun && len(st.Removed) > 0 {
		if err := sc.MarkScrubbed(ctx, st.Removed, o.Now); err != nil {
			return st, fmt.Errorf("record what was scrubbed: %w", err)
		}
	}
	return st, nil
}

// runValues lists the digests of the values a run's records name.
func runValues(r *Run) []cas.Digest {
	var out []cas.Digest
	for _, rec := range r.Records {
		if !rec.Output.IsZero() {
			out = append(out, rec.Output)
		}
		if !rec.Logs.IsZero() {
			out = append(out, rec.Logs)
		}
		for _, in := range rec.Inputs {
			if !in.Digest.IsZero() {
				out = append(out, in.Digest)
			}
		}
	}
	return out
}
