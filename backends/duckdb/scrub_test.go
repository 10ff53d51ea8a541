//go:build duckdb

package duckdb

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

// TestScrubbed: a DuckDB history remembers what pirn gc scrubbed, and
// when, across reopening; a scrub through it leaves the lineage.
func TestScrubbed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "history.duckdb")
	h, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	store := cas.NewMemory()
	old, kept := cas.Sum([]byte("old")), cas.Sum([]byte("kept"))
	for d, v := range map[cas.Digest]string{old: "old", kept: "kept"} {
		if err := store.Put(ctx, d, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2026, 12, 3, 12, 0, 0, 123456789, time.UTC)
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
		t.Fatalf("Scrub = %+v, %v; want old removed", st, err)
	}
	// Marking again (and a digest twice in one call) records the later time.
	later := now.Add(time.Hour)
	if err := h.MarkScrubbed(ctx, []cas.Digest{old, old}, later); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	h = openTest(t, path)
	if at, ok, err := h.Scrubbed(ctx, old); err != nil || !ok || !at.Equal(later) {
		t.Errorf("Scrubbed(old) = %v, %v, %v; want %v", at, ok, err, later)
	}
	if _, ok, err := h.Scrubbed(ctx, kept); err != nil || ok {
		t.Errorf("Scrubbed(kept) = %v, %v; want not scrubbed", ok, err)
	}
	if recs, err := h.ByOutput(ctx, old); err != nil || len(recs) != 1 {
		t.Errorf("ByOutput(old) after the scrub = %d records, %v; want its record", len(recs), err)
	}
	if err := h.MarkScrubbed(ctx, nil, later); err != nil {
		t.Errorf("MarkScrubbed(none): %v", err)
	}
}
