package postgres

import (
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

// TestScrubbed: a history on Postgres remembers what pirn gc scrubbed,
// across processes (another History on the schema sees it), and a scrub
// through it leaves the lineage.
func TestScrubbed(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	h := openHistory(t, schema)
	ctx := t.Context()
	store := cas.NewMemory()
	old, kept := cas.Sum([]byte("old")), cas.Sum([]byte("kept"))
	for _, d := range []cas.Digest{old, kept} {
		if err := store.Put(ctx, d, []byte(map[cas.Digest]string{old: "old", kept: "kept"}[d])); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2026, 12, 3, 12, 0, 0, 123000, time.UTC)
	for _, r := range []*lineage.Run{
		{ID: "old", Status: lineage.Succeeded, StartedAt: now.Add(-72 * time.Hour), FinishedAt: now.Add(-72 * time.Hour),
			Records: []lineage.Record{{RunID: "old", KnotID: "k", Kind: lineage.KindKnot, Outcome: lineage.OK, Output: old}}},
		{ID: "new", Status: lineage.Succeeded, StartedAt: now, FinishedAt: now,
			Records: []lineage.Record{{RunID: "new", KnotID: "k", Kind: lineage.KindKnot, Outcome: lineage.OK, Output: kept}}},
	} {
		if err := h.RecordRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	st, err := lineage.Scrub(ctx, h, store, lineage.ScrubOptions{KeepRuns: 1, OlderThan: time.Hour, Now: now})
	if err != nil || len(st.Removed) != 1 || st.Removed[0] != old {
		t.Fatalf("scrub: %+v, %v", st, err)
	}
	other := openHistory(t, schema)
	if at, ok, err := other.Scrubbed(ctx, old); err != nil || !ok || !at.Equal(now) {
		t.Errorf("Scrubbed(old) = %v, %v, %v", at, ok, err)
	}
	if _, ok, err := other.Scrubbed(ctx, kept); err != nil || ok {
		t.Errorf("Scrubbed(kept) = %v, %v", ok, err)
	}
	if recs, err := other.ByOutput(ctx, old); err != nil || len(recs) != 1 {
		t.Errorf("the lineage of the scrubbed value: %v, %v", recs, err)
	}
}
