package lineage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// CopyStats says what Copy did.
type CopyStats struct {
	Copied  int      // runs written to the destination and read back equal
	Skipped int      // runs the destination already held, equal
	Running []string // runs still in progress at the source, not copied
}

// ErrCopyConflict is wrapped by Copy's error for a run the destination
// holds with other contents.
var ErrCopyConflict = errors.New("lineage: the destination holds the run with other contents")

// Copy copies every finished run of from into to, oldest first, and reads
// each back to verify it. It is resumable: a run the destination already
// holds, equal, is skipped; one it holds with other contents is an error
// (ErrCopyConflict) unless replace. Runs still in progress are left out and
// listed. If dryRun, nothing is written: the stats say what would be.
func Copy(ctx context.Context, from, to History, replace, dryRun bool) (CopyStats, error) {
	var st CopyStats
	sums, err := from.Runs(ctx, Query{Limit: math.MaxInt32})
	if err != nil {
		return st, fmt.Errorf("list the source's runs: %w", err)
	}
	slices.Reverse(sums) // oldest first
	for _, s := range sums {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if s.Status == Running {
			st.Running = append(st.Running, s.ID)
			continue
		}
		run, err := from.Run(ctx, s.ID)
		if err != nil {
			return st, fmt.Errorf("read run %s: %w", s.ID, err)
		}
		held, err := to.Run(ctx, s.ID)
		switch {
		case err == nil && SameRun(run, held):
			st.Skipped++
			continue
		case err == nil && !replace:
			return st, fmt.Errorf("run %s: %w (replace it to overwrite)", s.ID, ErrCopyConflict)
		case err != nil && !errors.Is(err, ErrNotFound):
			return st, fmt.Errorf("read run %s from the destination: %w", s.ID, err)
		}
		if dryRun {
			st.Copied++
			continue
		}
		if err := to.RecordRun(ctx, run); err != nil {
			return st, fmt.Errorf("record run %s: %w", s.ID, err)
		}
		back, err := to.Run(ctx, s.ID)
		if err != nil {
			return st, fmt.Errorf("read back run %s: %w", s.ID, err)
		}
		if !SameRun(run, back) {
			return st, fmt.Errorf("run %s reads back different from what was copied", s.ID)
		}
		st.Copied++
	}
	return st, nil
}

// SameRun reports whether two runs hold the same facts: times compare as
// instants, and an empty list equals none.
func SameRun(a, b *Run) bool {
	ja, erra := json.Marshal(normalRun(a))
	jb, errb := json.Marshal(normalRun(b))
	return erra == nil && errb == nil && bytes.Equal(ja, jb)
}

func normalRun(r *Run) *Run {
	n := *r
	t := func(x time.Time) time.Time { return x.UTC().Round(0) }
	n.StartedAt, n.FinishedAt = t(r.StartedAt), t(r.FinishedAt)
	n.Terminals = slices.Clip(nilIfEmpty(r.Terminals))
	if len(r.Labels) == 0 {
		n.Labels = nil
	}
	n.Records = make([]Record, len(r.Records))
	for i, rec := range r.Records {
		rec.StartedAt, rec.FinishedAt = t(rec.StartedAt), t(rec.FinishedAt)
		rec.Grants = nilIfEmpty(rec.Grants)
		rec.Inputs = nilIfEmpty(rec.Inputs)
		rec.SkipDetail = nilIfEmpty(rec.SkipDetail)
		n.Records[i] = rec
	}
	n.Errors = make([]ErrorRecord, len(r.Errors))
	for i, e := range r.Errors {
		e.OccurredAt = t(e.OccurredAt)
		e.Detail = nilIfEmpty(e.Detail)
		n.Errors[i] = e
	}
	return &n
}

func nilIfEmpty[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return s
}
