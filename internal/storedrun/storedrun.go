// Package storedrun holds what the histories that keep runs in a database
// (SQLite, Postgres) share: times stored as int64 unix nanoseconds, and the
// checks of a run before it is stored.
package storedrun

import (
	"fmt"
	"math"
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
// carries the run's ID, and every time fits int64 unix nanoseconds.
func Check(r *lineage.Run) error {
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
