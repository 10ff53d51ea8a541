package lineagetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

// CachedRun returns SampleRun with cache keys: "d" ran with key
// digest("key-d"), "answer" was reused under digest("key-answer") from
// reusedFrom (if not zero; otherwise it ran with that key too), and "bad"
// erred with digest("key-bad"), which no history may index.
func CachedRun(t testing.TB, id string, offset time.Duration, reusedFrom lineage.Ref) *lineage.Run {
	t.Helper()
	r := SampleRun(t, id, offset)
	for i := range r.Records {
		rec := &r.Records[i]
		switch rec.KnotID {
		case "d", "bad":
			rec.CacheKey = digest(t, "key-"+rec.KnotID)
		case "answer":
			rec.CacheKey = digest(t, "key-answer")
			rec.ReusedFrom = reusedFrom
			rec.Grants = nil
		}
	}
	return r
}

// runMemo checks that a history stores CacheKey and ReusedFrom, and
// implements lineage.Memo: only executed ok records are found by key, the
// latest recorded wins, re-recording a run replaces its entries, and
// clearing forgets keys but keeps records.
func runMemo(t *testing.T, newHistory func(t *testing.T) lineage.History) {
	h, ctx := newHistory(t), t.Context()
	memo, ok := h.(lineage.Memo)
	if !ok {
		t.Fatalf("%T does not implement lineage.Memo", h)
	}
	one := CachedRun(t, "run-1", 0, lineage.Ref{})
	two := CachedRun(t, "run-2", time.Minute, lineage.Ref{RunID: "run-1", KnotID: "answer"})
	for _, r := range []*lineage.Run{one, two} {
		if err := h.RecordRun(ctx, r); err != nil {
			t.Fatalf("RecordRun(%s): %v", r.ID, err)
		}
		got, err := h.Run(ctx, r.ID)
		if err != nil {
			t.Fatalf("Run(%s): %v", r.ID, err)
		}
		if diff := cmp.Diff(r, got, equateTimes, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Run(%s) mismatch (-want +got):\n%s", r.ID, diff)
		}
	}
	recs, err := h.ByKnot(ctx, "answer")
	if err != nil || len(recs) != 2 || recs[1].ReusedFrom != (lineage.Ref{RunID: "run-1", KnotID: "answer"}) || recs[1].CacheKey != digest(t, "key-answer") {
		t.Errorf("ByKnot(answer) = %+v, %v; want run-2's record reused from run-1/answer", recs, err)
	}
	lookup := func(key string) string {
		t.Helper()
		rec, ok, err := memo.Reusable(ctx, digest(t, key))
		if err != nil {
			t.Fatalf("Reusable(%s): %v", key, err)
		}
		if !ok {
			return ""
		}
		if rec.CacheKey != digest(t, key) || rec.Outcome != lineage.OK || rec.Reused() {
			t.Errorf("Reusable(%s) = %+v, want an executed ok record with that key", key, rec)
		}
		return rec.RunID + "/" + rec.KnotID
	}
	for _, tc := range []struct{ key, want string }{
		{"key-d", "run-2/d"},           // the latest of two executions
		{"key-answer", "run-1/answer"}, // run-2's was reused: not an entry
		{"key-bad", ""},                // err results are never reused
		{"key-none", ""},
	} {
		if got := lookup(tc.key); got != tc.want {
			t.Errorf("Reusable(%s) = %q, want %q", tc.key, got, tc.want)
		}
	}
	if _, ok, err := memo.Reusable(ctx, cas.Digest{}); ok || err != nil {
		t.Errorf("Reusable(zero) = %v, %v; want false, nil", ok, err)
	}
	stats, err := memo.CacheStats(ctx)
	if want := (lineage.CacheStats{Entries: 2, Executed: 5, Reused: 1}); err != nil || stats != want {
		t.Errorf("CacheStats = %+v, %v; want %+v", stats, err, want)
	}

	// Re-recording run-2 without its keys drops its entries: d is found
	// in run-1 again.
	if err := h.RecordRun(ctx, SampleRun(t, "run-2", time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := lookup("key-d"); got != "run-1/d" {
		t.Errorf("after re-recording run-2, Reusable(key-d) = %q, want run-1/d", got)
	}

	// Clearing by knot, then everything: the records keep their keys.
	n, err := memo.ClearCache(ctx, lineage.CacheFilter{Knot: "add"})
	if err != nil || n != 1 {
		t.Errorf("ClearCache(knot add) = %d, %v; want 1", n, err)
	}
	if got := lookup("key-answer"); got != "" {
		t.Errorf("after clearing knot add, Reusable(key-answer) = %q, want none", got)
	}
	if got := lookup("key-d"); got != "run-1/d" {
		t.Errorf("after clearing knot add, Reusable(key-d) = %q, want run-1/d", got)
	}
	if n, err := memo.ClearCache(ctx, lineage.CacheFilter{Module: digest(t, "other").String()}); err != nil || n != 0 {
		t.Errorf("ClearCache(module other) = %d, %v; want 0", n, err)
	}
	if n, err := memo.ClearCache(ctx, lineage.CacheFilter{}); err != nil || n != 1 {
		t.Errorf("ClearCache(all) = %d, %v; want 1", n, err)
	}
	if got := lookup("key-d"); got != "" {
		t.Errorf("after clearing, Reusable(key-d) = %q, want none", got)
	}
	got, err := h.Run(ctx, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(one, got, equateTimes, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("clearing changed run-1 (-want +got):\n%s", diff)
	}
	if stats, err := memo.CacheStats(ctx); err != nil || stats.Entries != 0 || stats.Executed != 3 {
		t.Errorf("CacheStats after clearing = %+v, %v; want 0 entries, 3 executed", stats, err)
	}
	// A run recorded after clearing is indexed again.
	if err := h.RecordRun(ctx, CachedRun(t, "run-3", 2*time.Minute, lineage.Ref{})); err != nil {
		t.Fatal(err)
	}
	if got := lookup("key-answer"); got != "run-3/answer" {
		t.Errorf("after a new run, Reusable(key-answer) = %q, want run-3/answer", got)
	}
}
