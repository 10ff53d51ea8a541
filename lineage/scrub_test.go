package lineage_test

import (
	"errors"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

// scrubRun is a finished run whose one knot consumed in and produced out.
func scrubRun(id string, at time.Time, in, out cas.Digest) *lineage.Run {
	return &lineage.Run{ID: id, Status: lineage.Succeeded, StartedAt: at, FinishedAt: at,
		Records: []lineage.Record{{RunID: id, KnotID: "k", Kind: lineage.KindKnot, Outcome: lineage.OK, Output: out,
			Inputs: []lineage.Input{{Name: "x", Parent: "x", Digest: in}}}}}
}

func TestScrub(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h, s := lineage.NewMemory(), cas.NewMemory()
	put := func(v string) cas.Digest {
		b, _ := cas.Encode(v)
		d := cas.Sum(b)
		if err := s.Put(ctx, d, b); err != nil {
			t.Fatal(err)
		}
		return d
	}
	shared, old1, old2, mid, recent := put("shared"), put("old1"), put("old2"), put("mid"), put("recent")
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, r := range []*lineage.Run{
		scrubRun("old", now.Add(-72*time.Hour), old1, old2),
		scrubRun("older-shared", now.Add(-96*time.Hour), shared, old1),
		scrubRun("mid", now.Add(-48*time.Hour), mid, shared),
		scrubRun("recent", now.Add(-time.Hour), recent, recent),
	} {
		if err := h.RecordRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// Keep the newest two runs and those of the last day: "old" and
	// "older-shared" expire; "shared" stays, as "mid" needs it.
	o := lineage.ScrubOptions{KeepRuns: 2, OlderThan: 24 * time.Hour, Now: now, DryRun: true}
	st, err := lineage.Scrub(ctx, h, s, o)
	if err != nil || st.Expired != 2 || len(st.Removed) != 2 || st.Retained != 1 {
		t.Fatalf("dry run: %+v, %v", st, err)
	}
	if ok, _ := s.Has(ctx, old1); !ok {
		t.Fatal("a dry run removed a value")
	}
	o.DryRun = false
	if st, err = lineage.Scrub(ctx, h, s, o); err != nil || len(st.Removed) != 2 {
		t.Fatalf("scrub: %+v, %v", st, err)
	}
	for d, want := range map[cas.Digest]bool{old1: false, old2: false, shared: true, mid: true, recent: true} {
		if ok, _ := s.Has(ctx, d); ok != want {
			t.Errorf("%s stored = %v, want %v", d, ok, want)
		}
		at, scrubbed, err := h.Scrubbed(ctx, d)
		if err != nil || scrubbed == want || (scrubbed && !at.Equal(now)) {
			t.Errorf("%s scrubbed = %v at %v (%v)", d, scrubbed, at, err)
		}
	}
	// The lineage stays.
	if recs, err := h.ByOutput(ctx, old2); err != nil || len(recs) != 1 {
		t.Errorf("by output after scrubbing: %v, %v", recs, err)
	}
	// Again: nothing left to remove.
	if st, err = lineage.Scrub(ctx, h, s, o); err != nil || len(st.Removed) != 0 {
		t.Errorf("again: %+v, %v", st, err)
	}
	// A run in progress stops it.
	if err := h.RecordRun(ctx, &lineage.Run{ID: "live", Status: lineage.Running, StartedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err = lineage.Scrub(ctx, h, s, o); !errors.Is(err, lineage.ErrRunsInProgress) {
		t.Errorf("with a run in progress: %v", err)
	}
}
