package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/pirn-wasm/pirn/emit"
)

// MinEvery is the shortest fixed interval of a cron trigger.
const MinEvery = 100 * time.Millisecond

// cronConfig is a cron trigger's entry.
type cronConfig struct {
	Pipeline string `json:"pipeline"`
	// Schedule is a standard five-field cron expression (minute hour
	// day-of-month month day-of-week), a descriptor (@hourly, @daily…),
	// optionally prefixed by CRON_TZ=Zone.
	Schedule string `json:"schedule"`
	// Timezone is the IANA zone of Schedule (default: the server's
	// local zone).
	Timezone string `json:"timezone"`
	// Every is a fixed interval instead of Schedule.
	Every emit.Duration `json:"every"`
	// Overlap lets a tick start a run while the trigger's previous run
	// is still going; by default such a tick is skipped and logged.
	Overlap bool `json:"overlap"`
	// Params are every run's parameters.
	Params map[string]any `json:"params"`
}

// Cron is the cron trigger: a run at each tick of a cron schedule or a
// fixed interval. Ticks missed while the server was down are not
// replayed: the first tick is the schedule's next after the start.
type Cron struct {
	cfg   cronConfig
	sched cron.Schedule
	what  string // the schedule's text, for labels and run ids
	lg    *slog.Logger
}

var _ Trigger = (*Cron)(nil)

// NewCron builds a cron trigger from its serve.yaml entry.
func NewCron(spec emit.Spec) (Trigger, error) {
	var c cronConfig
	if err := spec.Decode(&c); err != nil {
		return nil, err
	}
	t := &Cron{cfg: c, lg: spec.Logger}
	if t.lg == nil {
		t.lg = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.Schedule == "" && c.Every == 0:
		return nil, errors.New("cron: want schedule: (a cron expression) or every: (an interval)")
	case c.Schedule != "" && c.Every != 0:
		return nil, errors.New("cron: schedule and every exclude each other")
	case c.Every != 0:
		if time.Duration(c.Every) < MinEvery {
			return nil, fmt.Errorf("cron: every is %s, want at least %s", time.Duration(c.Every), MinEvery)
		}
		if c.Timezone != "" {
			return nil, errors.New("cron: timezone applies to schedule, not every")
		}
		t.sched = every(c.Every)
		t.what = "every " + time.Duration(c.Every).String()
		return t, nil
	}
	src := c.Schedule
	if c.Timezone != "" {
		if strings.HasPrefix(src, "CRON_TZ=") || strings.HasPrefix(src, "TZ=") {
			return nil, errors.New("cron: the schedule names its zone (CRON_TZ=) and timezone is set: keep one")
		}
		if _, err := time.LoadLocation(c.Timezone); err != nil {
			return nil, fmt.Errorf("cron: timezone %q: %w", c.Timezone, err)
		}
		src = "CRON_TZ=" + c.Timezone + " " + src
	}
	s, err := cron.ParseStandard(src)
	if err != nil {
		return nil, fmt.Errorf("cron: schedule %q: %w (want five fields: minute hour day-of-month month day-of-week, or @hourly, @daily…)", c.Schedule, err)
	}
	t.sched, t.what = s, src
	return t, nil
}

// every is a fixed interval from the previous tick.
type every time.Duration

func (e every) Next(t time.Time) time.Time { return t.Add(time.Duration(e)) }

// Name is "cron SCHEDULE".
func (t *Cron) Name() string { return "cron " + t.what }

// Run submits a run at each tick until ctx ends.
func (t *Cron) Run(ctx context.Context, s Submitter) error {
	var prev *Run
	next := t.sched.Next(time.Now())
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		prev = t.tick(ctx, s, next, prev)
		// A tick that could not be submitted at once (a full queue)
		// makes later ones late; ticks already past are skipped.
		now := time.Now()
		next = t.sched.Next(next)
		for !next.After(now) {
			t.lg.Warn("cron tick skipped: the server was behind", "trigger", t.Name(), "tick", next)
			next = t.sched.Next(next)
		}
		timer.Reset(time.Until(next))
	}
}

// tick submits one tick's run, unless the previous is still going and
// overlap is off; it returns the trigger's latest run.
func (t *Cron) tick(ctx context.Context, s Submitter, at time.Time, prev *Run) *Run {
	if prev != nil && !t.cfg.Overlap {
		select {
		case <-prev.Done():
		default:
			t.lg.Warn("cron tick skipped: the previous run is still going (overlap: false)", "trigger", t.Name(), "tick", at, "run", prev.ID)
			return prev
		}
	}
	tick := at.UTC().Format(time.RFC3339Nano)
	req := Request{Pipeline: t.cfg.Pipeline, Params: t.cfg.Params, RunID: t.runID(tick),
		Labels: map[string]string{"trigger": "cron", "schedule": t.what, "tick": tick}}
	run, err := s.Submit(ctx, req)
	if err != nil {
		if ctx.Err() == nil {
			t.lg.Error("cron tick: run not started", "trigger", t.Name(), "tick", at, "error", err)
		}
		return prev
	}
	return run
}

// runID names a tick's run: the same tick of the same trigger is one run,
// even from two servers sharing a history.
func (t *Cron) runID(tick string) string {
	h := sha256.Sum256([]byte(t.cfg.Pipeline + "\x00" + t.what + "\x00" + tick))
	return "cron-" + hex.EncodeToString(h[:16])
}
