package rundiff_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/rundiff"
)

// twoRuns runs the quickstart graph (with a Map and an expression that
// builds a structured value) with x = 5, then with x = 6 and the Map over
// 3 elements instead of 4.
func twoRuns(t *testing.T, store cas.Store) (a, b *pirn.RunResult) {
	t.Helper()
	ctx := context.Background()
	eng, err := pirn.Open(ctx, pirn.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(context.Background()) })
	arith, err := eng.LoadModule(ctx, "../../examples/wasm/go/arith/arith.wasm")
	if err != nil {
		t.Fatal(err)
	}
	build := func(n int, extra bool) *pirn.Tapestry {
		tp := pirn.NewTapestry()
		x, _ := tp.Parameter(pirn.Param{Name: "x", Type: "int"})
		d, _ := tp.Knot("d", arith.Knot("double"), pirn.In{"x": x})
		tp.Knot("answer", arith.Knot("add"), pirn.In{"a": x, "b": d})
		tp.Knot("doc", pirn.Expr(`{"name": "pirn", "x": x, "tags": x > 5 ? ["a", "b"] : ["a"], "same": {"k": 1}}`), pirn.In{"x": x})
		nums, _ := tp.Add(pirn.KnotDef{ID: "numbers", Kind: pirn.KindSource, Knot: arith.Knot("range"), In: pirn.In{"n": n}})
		tp.Map(pirn.MapDef{ID: "squares", Over: nums, Each: arith.Knot("square")})
		if extra {
			tp.Knot("extra", arith.Knot("inc"), pirn.In{"x": d})
		}
		return tp
	}
	if a, err = eng.Run(ctx, build(4, false), pirn.RunRequest{Params: map[string]any{"x": 5}}); err != nil {
		t.Fatal(err)
	}
	if b, err = eng.Run(ctx, build(3, true), pirn.RunRequest{Params: map[string]any{"x": 6}}); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestRuns(t *testing.T) {
	store := cas.NewMemory()
	a, b := twoRuns(t, store)
	d, err := rundiff.Runs(t.Context(), rundiff.Config{}, store, &a.Run, &b.Run)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]rundiff.Node{}
	for _, n := range d.Nodes {
		got[n.ID] = n
	}
	for id, want := range map[string]rundiff.Change{"param:x": rundiff.Changed, "d": rundiff.Changed, "answer": rundiff.Changed,
		"doc": rundiff.Changed, "numbers": rundiff.Changed, "squares": rundiff.Changed, "extra": rundiff.OnlyB} {
		if got[id].Change != want {
			t.Errorf("node %s: change %q, want %q", id, got[id].Change, want)
		}
	}
	if d.Differ != 7 || d.Same != 0 {
		t.Errorf("Differ, Same = %d, %d; want 7, 0", d.Differ, d.Same)
	}
	if sq := got["squares"]; sq.ElementsA.OK != 4 || sq.ElementsB.OK != 3 {
		t.Errorf("squares elements = %+v, %+v", sq.ElementsA, sq.ElementsB)
	}
	wantDoc := []rundiff.PathChange{
		{Path: "/tags/1", Op: rundiff.Added, B: `"b"`},
		{Path: "/x", Op: rundiff.Altered, A: "5", B: "6"},
	}
	if diff := cmp.Diff(wantDoc, got["doc"].Value); diff != "" {
		t.Errorf("doc value diff (-want +got):\n%s", diff)
	}
	if ans := got["answer"].Value; len(ans) != 1 || ans[0].Path != "" || ans[0].A != "15" || ans[0].B != "18" {
		t.Errorf("answer value diff = %+v", ans)
	}
	if _, err := json.Marshal(d); err != nil {
		t.Fatal(err)
	}

	// A run against itself: nothing differs.
	same, _ := rundiff.Runs(t.Context(), rundiff.Config{}, store, &a.Run, &a.Run)
	if same.Differ != 0 || same.Same != 6 {
		t.Errorf("a vs a: Differ, Same = %d, %d; want 0, 6", same.Differ, same.Same)
	}
	// B against A: "extra" is only in A now.
	rev, _ := rundiff.Runs(t.Context(), rundiff.Config{}, store, &b.Run, &a.Run)
	for _, n := range rev.Nodes {
		if n.ID == "extra" && n.Change != rundiff.OnlyA {
			t.Errorf("b vs a: extra is %q, want only_a", n.Change)
		}
	}
}

func TestRunsBounds(t *testing.T) {
	ctx := t.Context()
	store := cas.NewMemory()
	put := func(v any) cas.Digest {
		val, err := cas.NewValue(v)
		if err != nil {
			t.Fatal(err)
		}
		store.Put(ctx, val.Digest, val.Bytes)
		return val.Digest
	}
	list := func(n, add int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = int64(i + add)
		}
		return out
	}
	deep := func(leaf any) any {
		var v any = leaf
		for range 50 {
			v = map[string]any{"a/b~": v}
		}
		return v
	}
	run := func(id string, outs ...cas.Digest) *lineage.Run {
		r := &lineage.Run{ID: id}
		for i, o := range outs {
			r.Records = append(r.Records, lineage.Record{RunID: id, KnotID: string(rune('a' + i)), Kind: lineage.KindKnot, Outcome: lineage.OK, Output: o})
		}
		return r
	}
	a := run("A", put(list(500, 0)), put(deep(int64(1))), put(strings.Repeat("x", 5000)), cas.Digest{9})
	b := run("B", put(list(500, 1)), put(deep(int64(2))), put(strings.Repeat("y", 5000)), cas.Digest{8})
	d, err := rundiff.Runs(ctx, rundiff.Config{MaxChanges: 10, MaxDepth: 8, MaxTextBytes: 50}, store, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if n := d.Nodes[0]; len(n.Value) != 10 || !strings.Contains(n.ValueNote, "more than 10 changes") {
		t.Errorf("list diff: %d changes, note %q; want 10 and a note", len(n.Value), n.ValueNote)
	}
	if n := d.Nodes[1]; len(n.Value) != 1 || strings.Count(n.Value[0].Path, "/") != 8 || !strings.HasPrefix(n.Value[0].Path, "/a~1b~0/") {
		t.Errorf("deep diff = %+v, want one change at depth 8 with escaped keys", n.Value)
	}
	if n := d.Nodes[2]; len(n.Value[0].A) > 54 || !strings.HasSuffix(n.Value[0].A, "…") {
		t.Errorf("long text not cut: %d bytes", len(n.Value[0].A))
	}
	if n := d.Nodes[3]; n.ValueNote != "value A: not in the data store" {
		t.Errorf("absent value note = %q", n.ValueNote)
	}
}
