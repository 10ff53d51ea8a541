package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/scheduler"
)

// starter is a history that records runs as they start, as the SQL
// histories do, keeping each running marker it is given.
type starter struct {
	*lineage.Memory
	mu      sync.Mutex
	started []*lineage.Run
}

func (s *starter) StartRun(ctx context.Context, r *lineage.Run) error {
	s.mu.Lock()
	s.started = append(s.started, r)
	s.mu.Unlock()
	return s.RecordRun(ctx, r)
}

// TestLabelsRecorded: a request's labels are recorded with the run, from
// its running marker on, as they were when Run was called.
func TestLabelsRecorded(t *testing.T) {
	hist := &starter{Memory: lineage.NewMemory()}
	s, err := scheduler.New(scheduler.Config{}, newEnv(t, scheduler.Config{}).store, hist)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"kafka.topic": "orders", "kafka.partition": "3", "kafka.offset": "1234",
		"note": "\x1b[31mred\x1b[0m\r\n"}
	want := map[string]string{}
	for k, v := range labels {
		want[k] = v
	}
	obs := &events{}
	res, err := s.Run(t.Context(), quickstart(t), scheduler.Request{Params: map[string]any{"x": 5}, Labels: labels, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	labels["kafka.offset"] = "changed after the run" // the run keeps its own copy
	if len(hist.started) != 1 || !cmp.Equal(want, hist.started[0].Labels) {
		t.Fatalf("running markers = %v, want one with labels %v", hist.started, want)
	}
	if !cmp.Equal(want, res.Labels) {
		t.Errorf("Result.Labels = %v, want %v", res.Labels, want)
	}
	got, err := hist.Run(t.Context(), res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(want, got.Labels) {
		t.Errorf("recorded labels = %v, want %v", got.Labels, want)
	}
	sums, err := hist.Runs(t.Context(), lineage.Query{Label: lineage.Label{Key: "kafka.offset", Value: "1234"}})
	if err != nil || len(sums) != 1 || sums[0].ID != res.ID {
		t.Errorf("Runs(kafka.offset=1234) = %v, %v; want the run", sums, err)
	}
	if ev := obs.evs[0]; ev.Kind != scheduler.RunStarted || !cmp.Equal(want, ev.Labels) || !cmp.Equal(want, ev.Run.Labels) {
		t.Errorf("RunStarted event labels = %v, run's %v; want %v", ev.Labels, ev.Run.Labels, want)
	}
}

// TestLabelsNotHashed: labels change nothing a hash covers: two runs of one
// tapestry, with and without labels, have the same records (but for
// their run id and times), errors and pipeline digest.
func TestLabelsNotHashed(t *testing.T) {
	e := newEnv(t, scheduler.Config{})
	tp := quickstart(t)
	must[*scheduler.Node](t)(tp.AddKnot(scheduler.KnotDecl{ID: "b", Fn: scheduler.Fn{Invoker: boom, Name: "host:boom"},
		Parents: map[string]string{"x": "d"}, Optional: true}))
	run := func(labels map[string]string) *scheduler.Result {
		t.Helper()
		res, err := e.s.Run(t.Context(), tp, scheduler.Request{Params: map[string]any{"x": 5}, Labels: labels})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	plain := run(nil)
	labeled := run(map[string]string{"trigger": "cron", "cron.tick": "2026-11-27T10:00:00Z", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
	if len(labeled.Errors) != 1 {
		t.Fatalf("the labeled run has %d errors, want boom's", len(labeled.Errors))
	}
	ignore := cmpopts.IgnoreFields(lineage.Record{}, "RunID", "StartedAt", "FinishedAt")
	if diff := cmp.Diff(plain.Records, labeled.Records, ignore); diff != "" {
		t.Errorf("records differ with labels (-without +with):\n%s", diff)
	}
	if diff := cmp.Diff(plain.Errors, labeled.Errors, cmpopts.IgnoreFields(lineage.ErrorRecord{}, "RunID", "OccurredAt")); diff != "" {
		t.Errorf("errors differ with labels (-without +with):\n%s", diff)
	}
	if plain.PipelineDigest != labeled.PipelineDigest || len(plain.Labels) != 0 || len(labeled.Labels) != 3 {
		t.Errorf("pipeline digests %s, %s; labels %v, %v", plain.PipelineDigest, labeled.PipelineDigest, plain.Labels, labeled.Labels)
	}
}

// TestLabelsRefused: labels beyond their bounds are a setup error that
// names the label; nothing is recorded or reported.
func TestLabelsRefused(t *testing.T) {
	tooMany := map[string]string{}
	for i := range lineage.MaxLabels + 1 {
		tooMany[fmt.Sprint("k", i)] = "v"
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   string // in the error
	}{
		{"too many", tooMany, "65 labels, want at most 64"},
		{"empty key", map[string]string{"": "v"}, `label key ""`},
		{"long key", map[string]string{strings.Repeat("k", lineage.MaxLabelKey+1): "v"}, "129 bytes, want 1 to 128"},
		{"key with space", map[string]string{"ok": "v", "a key": "v"}, `label key "a key": byte 1 (' ')`},
		{"key with escape", map[string]string{"k\x1b[2J": "v"}, `label key "k\x1b[2J"`},
		{"long value", map[string]string{"big": strings.Repeat("v", lineage.MaxLabelValue+1)}, `label "big": value of 1025 bytes`},
		{"invalid UTF-8", map[string]string{"bin": "\xff\xfe"}, `label "bin": value is not valid UTF-8`},
		{"NUL", map[string]string{"nul": "a\x00b"}, `label "nul": value holds a NUL byte`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hist := &starter{Memory: lineage.NewMemory()}
			s, err := scheduler.New(scheduler.Config{}, newEnv(t, scheduler.Config{}).store, hist)
			if err != nil {
				t.Fatal(err)
			}
			obs := &events{}
			res, err := s.Run(t.Context(), quickstart(t), scheduler.Request{Params: map[string]any{"x": 5}, Labels: tc.labels, Observer: obs})
			if !errors.Is(err, lineage.ErrLabel) || !strings.Contains(err.Error(), tc.want) || res != nil {
				t.Fatalf("Run = %v, %v; want a setup error wrapping ErrLabel with %q", res, err, tc.want)
			}
			sums, err := hist.Runs(t.Context(), lineage.Query{})
			if err != nil || len(sums) != 0 || len(hist.started) != 0 || len(obs.evs) != 0 {
				t.Errorf("after the setup error: %d runs recorded (%v), %d started, %d events; want none", len(sums), err, len(hist.started), len(obs.evs))
			}
		})
	}
}
