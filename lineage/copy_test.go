package lineage_test

import (
	"errors"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

func copyRun(id string, at time.Time, status lineage.Status) *lineage.Run {
	d := cas.Sum([]byte(id))
	return &lineage.Run{ID: id, Pipeline: "p", Status: status, StartedAt: at, FinishedAt: at.Add(time.Second),
		Records: []lineage.Record{{RunID: id, KnotID: "k", Kind: lineage.KindKnot, Outcome: lineage.OK, Output: d, Logs: cas.Sum([]byte("logs of " + id)),
			Inputs: []lineage.Input{{Name: "x", Parent: "x", Digest: d}}, StartedAt: at, FinishedAt: at}}}
}

func TestCopy(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	from, to := lineage.NewMemory(), lineage.NewMemory()
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for i, id := range []string{"a", "b", "c"} {
		if err := from.RecordRun(ctx, copyRun(id, t0.Add(time.Duration(i)*time.Minute), lineage.Succeeded)); err != nil {
			t.Fatal(err)
		}
	}
	if err := from.RecordRun(ctx, &lineage.Run{ID: "live", Status: lineage.Running, StartedAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	st, err := lineage.Copy(ctx, from, to, false, true)
	if err != nil || st.Copied != 3 {
		t.Fatalf("dry run: %+v, %v", st, err)
	}
	if _, err := to.Run(ctx, "a"); !errors.Is(err, lineage.ErrNotFound) {
		t.Fatalf("a dry run wrote: %v", err)
	}
	// Resumable: a run already copied is skipped.
	if err := to.RecordRun(ctx, copyRun("a", t0, lineage.Succeeded)); err != nil {
		t.Fatal(err)
	}
	st, err = lineage.Copy(ctx, from, to, false, false)
	if err != nil || st.Copied != 2 || st.Skipped != 1 || len(st.Running) != 1 || st.Running[0] != "live" {
		t.Fatalf("copy: %+v, %v", st, err)
	}
	for _, id := range []string{"a", "b", "c"} {
		a, _ := from.Run(ctx, id)
		b, err := to.Run(ctx, id)
		if err != nil || !lineage.SameRun(a, b) {
			t.Errorf("run %s: %+v, %v", id, b, err)
		}
	}
	if st, err = lineage.Copy(ctx, from, to, false, false); err != nil || st.Copied != 0 || st.Skipped != 3 {
		t.Fatalf("again: %+v, %v", st, err)
	}
	// A different run under the same id is a conflict, unless replaced.
	if err := to.RecordRun(ctx, copyRun("b", t0.Add(time.Hour), lineage.Failed)); err != nil {
		t.Fatal(err)
	}
	if _, err = lineage.Copy(ctx, from, to, false, false); !errors.Is(err, lineage.ErrCopyConflict) {
		t.Fatalf("conflict: %v", err)
	}
	if st, err = lineage.Copy(ctx, from, to, true, false); err != nil || st.Copied != 1 {
		t.Fatalf("replace: %+v, %v", st, err)
	}
}
