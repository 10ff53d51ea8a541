package lineage_test

import (
	"testing"

	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/lineagetest"
)

func TestMemoryHistory(t *testing.T) {
	lineagetest.RunHistory(t, func(t *testing.T) lineage.History { return lineage.NewMemory() })
}

func TestCountElements(t *testing.T) {
	t.Parallel()
	recs := []lineage.Record{
		{KnotID: "a:b", Kind: lineage.KindMap},
		{KnotID: "a:b:0", Kind: lineage.KindElement, Map: "a:b", Index: 0, Outcome: lineage.OK},
		{KnotID: "a:b:1", Kind: lineage.KindElement, Map: "a:b", Index: 1, Outcome: lineage.Err},
		{KnotID: "a:b:2", Kind: lineage.KindElement, Map: "a:b", Index: 2, Outcome: lineage.Skipped},
		{KnotID: "m:0", Kind: lineage.KindElement, Map: "m", Outcome: lineage.OK},
		{KnotID: "k:0", Kind: lineage.KindKnot, Outcome: lineage.OK},
	}
	got := lineage.CountElements(recs)
	want := map[string]lineage.ElementCount{"a:b": {OK: 1, Err: 1, Skipped: 1}, "m": {OK: 1}}
	if len(got) != len(want) || got["a:b"] != want["a:b"] || got["m"] != want["m"] {
		t.Errorf("CountElements = %v, want %v", got, want)
	}
	if s := got["a:b"].String(); s != "1 ok, 1 err, 1 skipped" {
		t.Errorf("String = %q", s)
	}
}
