// Package lineagetest is the conformance suite every [lineage.History]
// implementation runs from its own tests.
package lineagetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

func digest(t testing.TB, v any) cas.Digest {
	t.Helper()
	d, err := cas.Hash(v)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Base is the start time of the sample runs; times are UTC with nanosecond
// precision.
var Base = time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)

// SampleRun returns the README quickstart's run (x=5, d=10, answer=15) plus
// a failed and a skipped knot, started at Base+offset.
func SampleRun(t testing.TB, id string, offset time.Duration) *lineage.Run {
	t.Helper()
	at := func(ms int) time.Time { return Base.Add(offset + time.Duration(ms)*time.Millisecond) }
	errID := digest(t, map[string]any{"knot": "bad", "type": "ValueError", "message": "no"})
	skipDetail, _ := cas.Encode(map[string]any{"any_err": true, "any_skipped": false})
	errDetail, _ := cas.Encode(map[string]any{"x": 5})
	return &lineage.Run{
		ID: id, Pipeline: "quickstart", PipelineDigest: digest(t, "pipeline"), Status: lineage.Failed, Terminals: []string{"answer", "after"},
		Dispatcher: "local", Host: "test-host", StartedAt: at(0), FinishedAt: at(9),
		Records: []lineage.Record{
			{RunID: id, KnotID: "x", Kind: lineage.KindParameter, Knot: lineage.KnotParameter, ConfigHash: digest(t, "cfg-x"),
				Output: digest(t, 5), Outcome: lineage.OK,
				Dispatcher: "local", StartedAt: at(1), FinishedAt: at(1)},
			{RunID: id, KnotID: "d", Kind: lineage.KindKnot, Module: digest(t, "module").String(), Knot: "double", ConfigHash: digest(t, "cfg-d"),
				Inputs: []lineage.Input{{Name: "x", Parent: "x", Digest: digest(t, 5)}}, Output: digest(t, 10), Outcome: lineage.OK,
				Dispatcher: "local", StartedAt: at(2), FinishedAt: at(3), Logs: digest(t, []any{map[string]any{"level": "info", "msg": "doubling 5"}})},
			{RunID: id, KnotID: "answer", Kind: lineage.KindKnot, Module: digest(t, "module").String(), Knot: "add", ConfigHash: digest(t, "cfg-answer"),
				Inputs: []lineage.Input{{Name: "a", Parent: "x", Digest: digest(t, 5)}, {Name: "b", Parent: "d", Digest: digest(t, 10)}}, Output: digest(t, 15), Outcome: lineage.OK,
				Grants: []string{"clock", "dir:ro:/data=/srv/data", "env:REGION"}, Dispatcher: "local", StartedAt: at(4), FinishedAt: at(5)},
			{RunID: id, KnotID: "bad", Kind: lineage.KindKnot, Module: digest(t, "other").String(), Knot: "fail", ConfigHash: digest(t, "cfg-bad"),
				Inputs: []lineage.Input{{Name: "x", Parent: "x", Digest: digest(t, 5)}}, Outcome: lineage.Err, ErrorID: errID,
				Dispatcher: "local", StartedAt: at(4), FinishedAt: at(6), Logs: digest(t, []any{map[string]any{"level": "warn", "msg": "about to fail"}})},
			{RunID: id, KnotID: "after", Kind: lineage.KindKnot, Module: digest(t, "module").String(), Knot: "inc", ConfigHash: digest(t, "cfg-after"),
				Inputs: []lineage.Input{{Name: "x", Parent: "bad", Digest: digest(t, map[string]any{"err": errID.String()})}}, Outcome: lineage.Skipped,
				SkipReason: "parent_failed_or_skipped", SkipDetail: skipDetail,
				Dispatcher: "local", StartedAt: at(7), FinishedAt: at(7)},
		},
		Errors: []lineage.ErrorRecord{{ID: errID, RunID: id, KnotID: "bad", Type: "ValueError", Message: "no",
			Detail: errDetail, Trace: "main.go:3\nmain.go:9", OccurredAt: at(6)}},
	}
}

// MapRun returns a run of a Map whose id contains ':' ("sq:each"), over
// the list a parameter holds: three elements (indexes 0, 1 and 10; the
// others were left out) that end ok, err and skipped, started at
// Base+offset.
func MapRun(t testing.TB, id string, offset time.Duration) *lineage.Run {
	t.Helper()
	at := func(ms int) time.Time { return Base.Add(offset + time.Duration(ms)*time.Millisecond) }
	const mapID = "sq:each"
	errID := digest(t, map[string]any{"knot": lineage.ElementID(mapID, 1), "type": "Trap", "message": "unreachable"})
	list := make([]any, 11)
	for i := range list {
		list[i] = i
	}
	element := func(i int, outcome lineage.Outcome) lineage.Record {
		r := lineage.Record{RunID: id, KnotID: lineage.ElementID(mapID, i), Kind: lineage.KindElement, Map: mapID, Index: i,
			Module: digest(t, "module").String(), Knot: "square", ConfigHash: digest(t, "cfg-sq"),
			Inputs:  []lineage.Input{{Name: "x", Parent: "xs", Digest: digest(t, i)}},
			Outcome: outcome, Dispatcher: "local", StartedAt: at(2 + i), FinishedAt: at(3 + i)}
		switch outcome {
		case lineage.OK:
			r.Output = digest(t, i*i)
		case lineage.Err:
			r.ErrorID = errID
			r.Logs = digest(t, []any{map[string]any{"level": "error", "msg": "element 1"}})
		case lineage.Skipped:
			r.SkipReason = "element_skipped"
		}
		return r
	}
	return &lineage.Run{
		ID: id, Pipeline: "map", Status: lineage.Failed, Terminals: []string{mapID},
		Dispatcher: "local", Host: "test-host", StartedAt: at(0), FinishedAt: at(20),
		Records: []lineage.Record{
			{RunID: id, KnotID: "xs", Kind: lineage.KindParameter, Knot: lineage.KnotParameter, ConfigHash: digest(t, "cfg-xs"),
				Output: digest(t, list), Outcome: lineage.OK, Dispatcher: "local", StartedAt: at(1), FinishedAt: at(1)},
			element(0, lineage.OK),
			element(1, lineage.Err),
			element(10, lineage.Skipped),
			{RunID: id, KnotID: mapID, Kind: lineage.KindMap, Module: digest(t, "module").String(), Knot: "square", ConfigHash: digest(t, "cfg-sq"),
				Inputs: []lineage.Input{{Name: "over", Parent: "xs", Digest: digest(t, list)}}, Outcome: lineage.Err, ErrorID: errID,
				Dispatcher: "local", StartedAt: at(2), FinishedAt: at(14)},
		},
		Errors: []lineage.ErrorRecord{{ID: errID, RunID: id, KnotID: lineage.ElementID(mapID, 1), Type: "Trap",
			Message: "unreachable", OccurredAt: at(4)}},
	}
}

var equateTimes = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

// RunHistory exercises a history returned fresh by newHistory for each
// subtest.
func RunHistory(t *testing.T, newHistory func(t *testing.T) lineage.History) {
	t.Helper()

	t.Run("RecordAndGet", func(t *testing.T) {
		h, ctx := newHistory(t), t.Context()
		want := SampleRun(t, "run-1", 0)
		if err := h.RecordRun(ctx, want); err != nil {
			t.Fatalf("RecordRun: %v", err)
		}
		got, err := h.Run(ctx, "run-1")
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if diff := cmp.Diff(want, got, equateTimes, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Run(run-1) mismatch (-want +got):\n%s", diff)
		}
		if _, err := h.Run(ctx, "run-missing"); !errors.Is(err, lineage.ErrNotFound) {
			t.Errorf("Run(missing) error = %v, want ErrNotFound", err)
		}
	})

	t.Run("ReRecordReplaces", func(t *testing.T) {
		h, ctx := newHistory(t), t.Context()
		first := SampleRun(t, "run-1", 0)
		if err := h.RecordRun(ctx, first); err != nil {
			t.Fatal(err)
		}
		second := SampleRun(t, "run-1", time.Second)
		second.Records = second.Records[:2]
		second.Errors = nil
		second.Status = lineage.Succeeded
		if err := h.RecordRun(ctx, second); err != nil {
			t.Fatal(err)
		}
		got, err := h.Run(ctx, "run-1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(second, got, equateTimes, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("re-recorded run mismatch (-want +got):\n%s", diff)
		}
		recs, err := h.ByKnot(ctx, "answer")
		if err != nil || len(recs) != 0 {
			t.Errorf("ByKnot(answer) after replacement = %d records, %v; want 0", len(recs), err)
		}
	})

	t.Run("Queries", func(t *testing.T) {
		h, ctx := newHistory(t), t.Context()
		for i := range 3 {
			if err := h.RecordRun(ctx, SampleRun(t, fmt.Sprintf("run-%d", i), time.Duration(i)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		ids := func(recs []lineage.Record) []string {
			var s []string
			for _, r := range recs {
				s = append(s, r.RunID+"/"+r.KnotID)
			}
			return s
		}
		check := func(name string, recs []lineage.Record, err error, want []string) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if diff := cmp.Diff(want, ids(recs)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", name, diff)
			}
		}
		recs, err := h.ByOutput(ctx, digest(t, 10))
		check("ByOutput(10)", recs, err, []string{"run-0/d", "run-1/d", "run-2/d"})
		recs, err = h.ByInput(ctx, digest(t, 5))
		check("ByInput(5)", recs, err, []string{"run-0/d", "run-0/answer", "run-0/bad", "run-1/d", "run-1/answer", "run-1/bad", "run-2/d", "run-2/answer", "run-2/bad"})
		recs, err = h.ByKnot(ctx, "answer")
		check("ByKnot(answer)", recs, err, []string{"run-0/answer", "run-1/answer", "run-2/answer"})
		if b, _ := recs[len(recs)-1].Input("b"); len(recs) == 3 && b != digest(t, 10) {
			t.Errorf("ByKnot record lost its inputs: %v", recs[2].Inputs)
		}
		recs, err = h.ByOutput(ctx, digest(t, "nothing"))
		check("ByOutput(unknown)", recs, err, nil)
		recs, err = h.ByOutput(ctx, cas.Digest{})
		check("ByOutput(zero)", recs, err, nil)

		// A record that takes one value as two inputs is found once.
		twice := SampleRun(t, "run-3", 3*time.Minute)
		twice.Records, twice.Errors = twice.Records[:1], nil
		twice.Records = append(twice.Records, lineage.Record{RunID: "run-3", KnotID: "sq", Kind: lineage.KindKnot, Knot: "mul",
			ConfigHash: digest(t, "cfg-sq"), Output: digest(t, 25), Outcome: lineage.OK,
			Inputs: []lineage.Input{{Name: "a", Parent: "x", Digest: digest(t, 5)}, {Name: "b", Parent: "x", Digest: digest(t, 5)}}})
		if err := h.RecordRun(ctx, twice); err != nil {
			t.Fatal(err)
		}
		recs, err = h.ByOutput(ctx, digest(t, 25))
		check("ByOutput(25)", recs, err, []string{"run-3/sq"})
		recs, err = h.ByKnot(ctx, "sq")
		check("ByKnot(sq)", recs, err, []string{"run-3/sq"})
		recs, err = h.ByInput(ctx, digest(t, 5))
		check("ByInput(5) with run-3", recs, err, []string{"run-0/d", "run-0/answer", "run-0/bad", "run-1/d", "run-1/answer", "run-1/bad", "run-2/d", "run-2/answer", "run-2/bad", "run-3/sq"})
	})

	t.Run("MapElements", func(t *testing.T) {
		// An element's Map and Index round-trip, also when the Map's id
		// contains ':' and so cannot be told from the element's KnotID.
		h, ctx := newHistory(t), t.Context()
		want := MapRun(t, "run-m", 0)
		if err := h.RecordRun(ctx, want); err != nil {
			t.Fatalf("RecordRun: %v", err)
		}
		got, err := h.Run(ctx, "run-m")
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if diff := cmp.Diff(want, got, equateTimes, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Run(run-m) mismatch (-want +got):\n%s", diff)
		}
		recs, err := h.ByKnot(ctx, "sq:each:10")
		if err != nil || len(recs) != 1 {
			t.Fatalf("ByKnot(sq:each:10) = %d records, %v; want 1", len(recs), err)
		}
		if r := recs[0]; r.Kind != lineage.KindElement || r.Map != "sq:each" || r.Index != 10 {
			t.Errorf("ByKnot(sq:each:10) = kind %q, map %q, index %d; want element, sq:each, 10", r.Kind, r.Map, r.Index)
		}
		recs, err = h.ByOutput(ctx, digest(t, 0))
		if err != nil || len(recs) != 1 || recs[0].Map != "sq:each" || recs[0].Index != 0 {
			t.Errorf("ByOutput(0) = %+v, %v; want element 0 of sq:each", recs, err)
		}
		sums, err := h.Runs(ctx, lineage.Query{})
		if err != nil || len(sums) != 1 {
			t.Fatalf("Runs = %v, %v", sums, err)
		}
		if s := sums[0]; s.Knots != 2 || s.Failed != 1 || s.Skipped != 0 || s.Elements != 3 {
			t.Errorf("summary = %+v, want 2 knots (1 failed) and 3 elements", s)
		}
	})

	t.Run("Runs", func(t *testing.T) {
		h, ctx := newHistory(t), t.Context()
		for i := range 5 {
			r := SampleRun(t, fmt.Sprintf("run-%d", i), time.Duration(i)*time.Minute)
			if i == 4 {
				r.Pipeline = "other"
			}
			if err := h.RecordRun(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		got, err := h.Runs(ctx, lineage.Query{Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range got {
			ids = append(ids, s.ID)
		}
		if diff := cmp.Diff([]string{"run-4", "run-3", "run-2"}, ids); diff != "" {
			t.Errorf("Runs(limit 3) newest first (-want +got):\n%s", diff)
		}
		if len(got) > 0 && (got[0].Knots != 5 || got[0].Failed != 1 || got[0].Skipped != 1 || got[0].Status != lineage.Failed) {
			t.Errorf("summary = %+v, want 5 knots, 1 failed, 1 skipped, failed", got[0])
		}
		got, err = h.Runs(ctx, lineage.Query{Pipeline: "quickstart"})
		if err != nil || len(got) != 4 {
			t.Errorf("Runs(pipeline quickstart) = %d runs, %v; want 4", len(got), err)
		}
	})

	t.Run("Labels", func(t *testing.T) { runLabels(t, newHistory(t)) })

	t.Run("Memo", func(t *testing.T) { runMemo(t, newHistory) })

	t.Run("Concurrent", func(t *testing.T) {
		h, ctx := newHistory(t), t.Context()
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := range 16 {
			wg.Go(func() {
				if err := h.RecordRun(ctx, SampleRun(t, fmt.Sprintf("run-%d", i), time.Duration(i)*time.Second)); err != nil {
					errs <- err
				}
				if _, err := h.ByKnot(ctx, "d"); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		recs, err := h.ByKnot(ctx, "d")
		if err != nil || len(recs) != 16 {
			t.Errorf("ByKnot(d) after 16 concurrent runs = %d, %v; want 16", len(recs), err)
		}
	})

	t.Run("ConcurrentSameID", func(t *testing.T) {
		// Writers of one run id replace each other whole: the run read
		// back is one of the versions written, and the queries agree
		// with it.
		h, ctx := newHistory(t), t.Context()
		versions := make([]*lineage.Run, 8)
		for i := range versions {
			r := SampleRun(t, "run-same", time.Duration(i)*time.Second)
			r.Records = r.Records[:1+i%len(r.Records)]
			r.Errors = nil
			versions[i] = r
		}
		var wg sync.WaitGroup
		errs := make(chan error, len(versions))
		for _, r := range versions {
			wg.Go(func() {
				if err := h.RecordRun(ctx, r); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		got, err := h.Run(ctx, "run-same")
		if err != nil {
			t.Fatal(err)
		}
		var want *lineage.Run
		for _, r := range versions {
			if r.StartedAt.Equal(got.StartedAt) {
				want = r
			}
		}
		if diff := cmp.Diff(want, got, equateTimes, cmpopts.EquateEmpty()); want == nil || diff != "" {
			t.Fatalf("Run(run-same) is none of the versions written (-want +got):\n%s", diff)
		}
		recs, err := h.ByKnot(ctx, "x")
		if err != nil || len(recs) != 1 || !recs[0].StartedAt.Equal(want.Records[0].StartedAt) {
			t.Errorf("ByKnot(x) = %d records, %v; want 1, of the version read", len(recs), err)
		}
		sums, err := h.Runs(ctx, lineage.Query{})
		if err != nil || len(sums) != 1 || sums[0].Knots != len(want.Records) {
			t.Errorf("Runs = %+v, %v; want one run of %d knots", sums, err, len(want.Records))
		}
	})

	t.Run("LargeRun", func(t *testing.T) {
		// A run of thousands of records, with inputs and errors, reads
		// back whole; more rows than backends write in one statement.
		h, ctx := newHistory(t), t.Context()
		want := LargeRun(t, "run-large", 2000, 150)
		if err := h.RecordRun(ctx, want); err != nil {
			t.Fatalf("RecordRun: %v", err)
		}
		got, err := h.Run(ctx, "run-large")
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if diff := cmp.Diff(want, got, equateTimes, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Run(run-large) mismatch (-want +got):\n%s", diff)
		}
		mid := want.Records[1000]
		recs, err := h.ByOutput(ctx, mid.Output)
		if err != nil || len(recs) != 1 || recs[0].KnotID != mid.KnotID {
			t.Errorf("ByOutput(output of %s) = %d records, %v; want %s", mid.KnotID, len(recs), err, mid.KnotID)
		}
		recs, err = h.ByInput(ctx, mid.Output)
		if err != nil || len(recs) != 1 || recs[0].KnotID != want.Records[1001].KnotID {
			t.Errorf("ByInput(output of %s) = %d records, %v; want its successor", mid.KnotID, len(recs), err)
		}
	})

	t.Run("Missing", func(t *testing.T) {
		h, ctx := newHistory(t), t.Context()
		if _, err := h.Run(ctx, "run-missing"); !errors.Is(err, lineage.ErrNotFound) {
			t.Errorf("Run(missing) on an empty history: error = %v, want ErrNotFound", err)
		}
		sums, err := h.Runs(ctx, lineage.Query{})
		if err != nil || len(sums) != 0 {
			t.Errorf("Runs on an empty history = %v, %v; want none", sums, err)
		}
		if err := h.RecordRun(ctx, SampleRun(t, "run-1", 0)); err != nil {
			t.Fatal(err)
		}
		for name, q := range map[string]func() ([]lineage.Record, error){
			"ByKnot(unknown)":   func() ([]lineage.Record, error) { return h.ByKnot(ctx, "unknown") },
			"ByInput(unknown)":  func() ([]lineage.Record, error) { return h.ByInput(ctx, digest(t, "unknown")) },
			"ByOutput(unknown)": func() ([]lineage.Record, error) { return h.ByOutput(ctx, digest(t, "unknown")) },
		} {
			if recs, err := q(); err != nil || len(recs) != 0 {
				t.Errorf("%s = %d records, %v; want none", name, len(recs), err)
			}
		}
		sums, err = h.Runs(ctx, lineage.Query{Pipeline: "unknown"})
		if err != nil || len(sums) != 0 {
			t.Errorf("Runs(pipeline unknown) = %v, %v; want none", sums, err)
		}
	})

	t.Run("Cancelled", func(t *testing.T) {
		// A history may ignore a context that is done (an in-memory one
		// does); if RecordRun fails for it, the error wraps the context's
		// error and nothing of the run is stored.
		h := newHistory(t)
		done, cancel := context.WithCancel(t.Context())
		cancel()
		want := SampleRun(t, "run-1", 0)
		err := h.RecordRun(done, want)
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("RecordRun with a done context: error = %v, want nil or context.Canceled", err)
		}
		got, gerr := h.Run(t.Context(), "run-1")
		switch {
		case err == nil && gerr != nil:
			t.Errorf("Run after RecordRun succeeded: %v", gerr)
		case err == nil:
			if diff := cmp.Diff(want, got, equateTimes, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Run(run-1) mismatch (-want +got):\n%s", diff)
			}
		case !errors.Is(gerr, lineage.ErrNotFound):
			t.Errorf("Run after RecordRun failed = %v, %v; want ErrNotFound", got, gerr)
		}
		for name, q := range map[string]func() error{
			"Run":      func() error { _, err := h.Run(done, "run-1"); return ignore(err, lineage.ErrNotFound) },
			"Runs":     func() error { _, err := h.Runs(done, lineage.Query{}); return err },
			"ByKnot":   func() error { _, err := h.ByKnot(done, "x"); return err },
			"ByInput":  func() error { _, err := h.ByInput(done, digest(t, 5)); return err },
			"ByOutput": func() error { _, err := h.ByOutput(done, digest(t, 5)); return err },
		} {
			if err := q(); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a done context: error = %v, want nil or context.Canceled", name, err)
			}
		}
		if err := h.RecordRun(t.Context(), want); err != nil {
			t.Fatalf("RecordRun after calls with a done context: %v", err)
		}
	})
}

func ignore(err, target error) error {
	if errors.Is(err, target) {
		return nil
	}
	return err
}

// LargeRun returns a run of n records, a chain in which each consumes the
// previous one's output and a value shared by all, with grants on every
// tenth, and nerr of them failed (each with an error record), started at
// Base.
func LargeRun(t testing.TB, id string, n, nerr int) *lineage.Run {
	t.Helper()
	r := &lineage.Run{ID: id, Pipeline: "large", Status: lineage.Failed, Terminals: []string{fmt.Sprintf("k%d", n-1)},
		Dispatcher: "local", Host: "test-host", StartedAt: Base, FinishedAt: Base.Add(time.Duration(n) * time.Millisecond)}
	shared := digest(t, "shared")
	prev := digest(t, -1)
	for i := range n {
		at := Base.Add(time.Duration(i) * time.Millisecond)
		rec := lineage.Record{RunID: id, KnotID: fmt.Sprintf("k%d", i), Kind: lineage.KindKnot,
			Module: digest(t, "module").String(), Knot: "step", ConfigHash: digest(t, fmt.Sprint("cfg", i%7)),
			Inputs:     []lineage.Input{{Name: "prev", Parent: fmt.Sprintf("k%d", i-1), Digest: prev}, {Name: "shared", Parent: "p", Digest: shared}},
			Dispatcher: "local", StartedAt: at, FinishedAt: at.Add(time.Microsecond)}
		if i%10 == 0 {
			rec.Grants = []string{"clock", fmt.Sprint("env:V", i)}
		}
		if i%(n/nerr) == 0 && len(r.Errors) < nerr {
			rec.Outcome = lineage.Err
			rec.ErrorID = digest(t, map[string]any{"knot": rec.KnotID, "type": "Trap"})
			r.Errors = append(r.Errors, lineage.ErrorRecord{ID: rec.ErrorID, RunID: id, KnotID: rec.KnotID,
				Type: "Trap", Message: fmt.Sprint("failed ", i), OccurredAt: rec.FinishedAt})
		} else {
			rec.Outcome = lineage.OK
			rec.Output = digest(t, i)
		}
		r.Records = append(r.Records, rec)
		prev = rec.Output
	}
	return r
}

// HostileLabelValue is a label value that a terminal would act on: an
// escape sequence, a carriage return, a tab, a bell and a right-to-left
// override. Histories store it as it is; what shows it escapes it.
const HostileLabelValue = "\x1b[31mred\x1b[0m\r\tdone\a \u202eevil"

// LabeledRun returns SampleRun with labels: those of a Kafka message
// (topic, partition, offset) and HostileLabelValue under "note".
func LabeledRun(t testing.TB, id string, offset time.Duration, kafkaOffset string) *lineage.Run {
	t.Helper()
	r := SampleRun(t, id, offset)
	r.Labels = map[string]string{"kafka.topic": "orders", "kafka.partition": "3", "kafka.offset": kafkaOffset,
		"note": HostileLabelValue, "trigger": "cron", "empty": ""}
	return r
}

// runLabels checks that labels are stored and read back, found by
// Query.Label, replaced with their run, and refused beyond their bounds.
func runLabels(t *testing.T, h lineage.History) {
	ctx := t.Context()
	one, two := LabeledRun(t, "run-1", 0, "1234"), LabeledRun(t, "run-2", time.Minute, "1235")
	two.Pipeline = "other"
	three := SampleRun(t, "run-3", 2*time.Minute)
	for _, r := range []*lineage.Run{one, two, three} {
		if err := h.RecordRun(ctx, r); err != nil {
			t.Fatalf("RecordRun(%s): %v", r.ID, err)
		}
	}
	for _, want := range []*lineage.Run{one, two, three} {
		got, err := h.Run(ctx, want.ID)
		if err != nil {
			t.Fatalf("Run(%s): %v", want.ID, err)
		}
		if diff := cmp.Diff(want, got, equateTimes, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Run(%s) mismatch (-want +got):\n%s", want.ID, diff)
		}
	}
	for _, tc := range []struct {
		q    lineage.Query
		want []string
	}{
		{lineage.Query{Label: lineage.Label{Key: "kafka.offset", Value: "1234"}}, []string{"run-1"}},
		{lineage.Query{Label: lineage.Label{Key: "kafka.topic", Value: "orders"}}, []string{"run-2", "run-1"}},
		{lineage.Query{Label: lineage.Label{Key: "kafka.topic", Value: "orders"}, Limit: 1}, []string{"run-2"}},
		{lineage.Query{Label: lineage.Label{Key: "kafka.topic", Value: "orders"}, Pipeline: "quickstart"}, []string{"run-1"}},
		{lineage.Query{Label: lineage.Label{Key: "note", Value: HostileLabelValue}}, []string{"run-2", "run-1"}},
		{lineage.Query{Label: lineage.Label{Key: "empty", Value: ""}}, []string{"run-2", "run-1"}},
		{lineage.Query{Label: lineage.Label{Key: "kafka.topic", Value: "order"}}, nil},
		{lineage.Query{Label: lineage.Label{Key: "kafka.offset", Value: ""}}, nil},
		{lineage.Query{Label: lineage.Label{Key: "absent", Value: "1234"}}, nil},
		{lineage.Query{Label: lineage.Label{Key: "bad key!", Value: "1234"}}, nil},
		{lineage.Query{}, []string{"run-3", "run-2", "run-1"}},
	} {
		sums, err := h.Runs(ctx, tc.q)
		if err != nil {
			t.Errorf("Runs(%+v): %v", tc.q, err)
			continue
		}
		var ids []string
		for _, s := range sums {
			ids = append(ids, s.ID)
		}
		if diff := cmp.Diff(tc.want, ids); diff != "" {
			t.Errorf("Runs(%+v) (-want +got):\n%s", tc.q, diff)
		}
	}

	// Re-recording a run replaces its labels with the new run's.
	again := SampleRun(t, "run-1", 0)
	again.Labels = map[string]string{"kafka.offset": "9999"}
	if err := h.RecordRun(ctx, again); err != nil {
		t.Fatal(err)
	}
	if got, err := h.Run(ctx, "run-1"); err != nil {
		t.Errorf("Run(run-1) after re-recording: %v", err)
	} else if !cmp.Equal(again.Labels, got.Labels) {
		t.Errorf("Run(run-1) after re-recording: labels %v, want %v", got.Labels, again.Labels)
	}
	for label, want := range map[lineage.Label]int{
		{Key: "kafka.offset", Value: "1234"}: 0, {Key: "kafka.offset", Value: "9999"}: 1, {Key: "trigger", Value: "cron"}: 1,
	} {
		if sums, err := h.Runs(ctx, lineage.Query{Label: label}); err != nil || len(sums) != want {
			t.Errorf("Runs(label %s) after re-recording = %v, %v; want %d runs", label, sums, err, want)
		}
	}

	// The bounds, met exactly, hold.
	most := SampleRun(t, "run-most", 3*time.Minute)
	most.Labels = map[string]string{}
	for i := range lineage.MaxLabels - 1 {
		most.Labels[fmt.Sprintf("k%02d", i)] = strings.Repeat("ü", lineage.MaxLabelValue/2)
	}
	most.Labels[strings.Repeat("A-z_0.9:/", 15)[:lineage.MaxLabelKey]] = "v"
	if err := h.RecordRun(ctx, most); err != nil {
		t.Fatalf("RecordRun of a run at the labels' bounds: %v", err)
	}
	if got, err := h.Run(ctx, "run-most"); err != nil {
		t.Errorf("Run(run-most): %v", err)
	} else if !cmp.Equal(most.Labels, got.Labels) {
		t.Errorf("Run(run-most): %d labels, want its %d labels back", len(got.Labels), len(most.Labels))
	}

	// Beyond them, nothing is recorded.
	tooMany := map[string]string{}
	for i := range lineage.MaxLabels + 1 {
		tooMany[fmt.Sprint("k", i)] = "v"
	}
	for name, labels := range map[string]map[string]string{
		"too many":        tooMany,
		"empty key":       {"": "v"},
		"long key":        {strings.Repeat("k", lineage.MaxLabelKey+1): "v"},
		"key with space":  {"a key": "v"},
		"key with =":      {"a=b": "v"},
		"key with escape": {"k\x1b[2J": "v"},
		"long value":      {"k": strings.Repeat("v", lineage.MaxLabelValue+1)},
		"invalid UTF-8":   {"k": "\xff\xfe"},
		"NUL":             {"k": "a\x00b"},
	} {
		r := SampleRun(t, "run-bad", 4*time.Minute)
		r.Labels = labels
		err := h.RecordRun(ctx, r)
		if !errors.Is(err, lineage.ErrLabel) {
			t.Errorf("RecordRun with labels %s: error = %v, want one wrapping ErrLabel", name, err)
		}
		if _, err := h.Run(ctx, "run-bad"); !errors.Is(err, lineage.ErrNotFound) {
			t.Errorf("Run(run-bad) after RecordRun with labels %s: error = %v, want ErrNotFound", name, err)
		}
	}

	// A run in progress carries its labels too.
	rs, ok := h.(lineage.RunStarter)
	if !ok {
		return
	}
	start := &lineage.Run{ID: "run-started", Pipeline: "quickstart", Status: lineage.Running, StartedAt: Base.Add(5 * time.Minute),
		Dispatcher: "local", Host: "test-host", Labels: map[string]string{"trigger": "webhook", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
	if err := rs.StartRun(ctx, start); err != nil {
		t.Fatalf("StartRun: %v", err)
	}
	got, err := h.Run(ctx, "run-started")
	if err != nil {
		t.Fatalf("Run(run-started): %v", err)
	}
	if got.Status != lineage.Running || !cmp.Equal(start.Labels, got.Labels) {
		t.Errorf("Run(run-started) = status %v, labels %v; want running with %v", got.Status, got.Labels, start.Labels)
	}
	if sums, err := h.Runs(ctx, lineage.Query{Label: lineage.Label{Key: "trigger", Value: "webhook"}}); err != nil || len(sums) != 1 {
		t.Errorf("Runs(trigger=webhook) = %v, %v; want the run in progress", sums, err)
	}
	start.Status = lineage.Succeeded
	if err := h.RecordRun(ctx, start); err != nil {
		t.Fatalf("RecordRun after StartRun: %v", err)
	}
}
