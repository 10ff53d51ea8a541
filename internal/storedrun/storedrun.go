// Package storedrun holds what the histories that keep runs in a database
// (SQLite, Postgres, DuckDB) share: times stored as int64 unix nanoseconds,
// and the checks of a run before it is stored.
package storedrun

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/pirn-wasm/pirn/lineage"
)

// Stored times are unix nanoseconds; the zero time is stored as 0.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// Nanos converts times to stored integers, keeping the first error.
type Nanos struct{ Err error }

// Of returns t as stored.
func (c *Nanos) Of(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	if t.Before(minTime) || t.After(maxTime) {
		if c.Err == nil {
			c.Err = fmt.Errorf("time %v outside the range of int64 unix nanoseconds", t)
		}
		return 0
	}
	return t.UnixNano()
}

// Time is the inverse of Nanos.Of, in UTC.
func Time(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Check checks what a database cannot store: every record and error
// carries the run's ID, every time fits int64 unix nanoseconds, and the
// labels keep lineage's bounds (lineage.CheckLabels).
func Check(r *lineage.Run) error {
	if err := lineage.CheckLabels(r.Labels); err != nil {
		return err
	}
	var tc Nanos
	tc.Of(r.StartedAt)
	tc.Of(r.FinishedAt)
	for i := range r.Records {
		rec := &r.Records[i]
		if rec.RunID != r.ID {
			return fmt.Errorf("record %d (%s): RunID = %q, want %q", i, rec.KnotID, rec.RunID, r.ID)
		}
		tc.Of(rec.StartedAt)
		tc.Of(rec.FinishedAt)
	}
	for i := range r.Errors {
		e := &r.Errors[i]
		if e.RunID != r.ID {
			return fmt.Errorf("error %d (%s): RunID = %q, want %q", i, e.ID, e.RunID, r.ID)
		}
		tc.Of(e.OccurredAt)
	}
	return tc.Err
}

// CheckText checks every text of r (the run's fields, terminals and label
// values, each record's text fields, grants and inputs, each error's text
// fields) with
// problem, which returns why a database cannot store s, or "" if it can.
// The error names the text, where it is, and the problem.
func CheckText(r *lineage.Run, problem func(s string) string) error {
	check := func(where string, texts ...string) error {
		for _, s := range texts {
			if p := problem(s); p != "" {
				return fmt.Errorf("%s: text %q %s", where, s, p)
			}
		}
		return nil
	}
	if err := check("run", r.ID, r.Pipeline, string(r.Status), r.Dispatcher, r.Host); err != nil {
		return err
	}
	if err := check("run terminals", r.Terminals...); err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(r.Labels)) {
		if err := check(fmt.Sprintf("run label %q", k), r.Labels[k]); err != nil {
			return err
		}
	}
	for i := range r.Records {
		rec := &r.Records[i]
		where := fmt.Sprintf("record %d (%q)", i, rec.KnotID)
		if err := check(where, rec.KnotID, string(rec.Kind), rec.Map, rec.Module, rec.Knot, string(rec.Outcome),
			rec.SkipReason, rec.Dispatcher); err != nil {
			return err
		}
		if err := check(where+" grants", rec.Grants...); err != nil {
			return err
		}
		for _, in := range rec.Inputs {
			if err := check(where+" inputs", in.Name, in.Parent); err != nil {
				return err
			}
		}
	}
	for i := range r.Errors {
		e := &r.Errors[i]
		if err := check(fmt.Sprintf("error %d (%s)", i, e.ID), e.KnotID, e.Type, e.Message, e.Trace); err != nil {
			return err
		}
	}
	return nil
}
