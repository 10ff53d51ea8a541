package pirn_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

// memoPipeline is a pipeline of Wasm knots for the memoisation tests: d
// and e are hermetic (instance: reset), sq maps a hermetic knot over a
// list, bad always errs (optional, so runs succeed), count keeps its
// instance (the grant "state") and counts its invocations, and off opts
// out. extra is appended to count's and d's declarations.
func memoPipeline(t *testing.T, arith, countCache, dExtra string) string {
	t.Helper()
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if arith == "" {
		arith = abs("examples/wasm/go/arith/arith.wasm")
	}
	src := `name: memo
instance: reset
modules:
  arith: ` + arith + `
  outcomes: ` + abs("examples/wasm/go/outcomes/outcomes.wasm") + `
  testknots: ` + abs("testdata/wasm/go/testknots/testknots.wasm") + `
nodes:
  - {id: x, type: parameter, type_: int, default: 5}
  - {id: k, type: parameter, type_: int, default: 1}
  - id: d
    type: knot
    module: arith
    knot: double
    parents: {x: x}
` + dExtra + `
  - id: e
    type: knot
    module: arith
    knot: add
    parents: {a: d, b: k}
  - id: xs
    type: knot
    module: arith
    knot: range
    parents: {n: x}
  - id: sq
    type: map
    over: xs
    each: {module: arith, knot: square}
  - id: bad
    type: knot
    module: outcomes
    knot: fail
    optional: true
    parents: {x: x}
  - id: count
    type: source
    module: testknots
    knot: retain
    instance: keep
    limits: {max_instances: 1}
    config: {data: !!binary AAE=}
` + countCache + `
  - id: off
    type: knot
    module: arith
    knot: inc
    cache: false
    parents: {x: x}
`
	path := filepath.Join(t.TempDir(), "memo.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// reused maps each record's knot id to where it was reused from ("" if it
// ran).
func reused(res *pirn.RunResult) map[string]string {
	m := map[string]string{}
	for _, r := range res.Records {
		m[r.KnotID] = ""
		if r.Reused() {
			m[r.KnotID] = r.ReusedFrom.String()
		}
	}
	return m
}

func runMemo(t *testing.T, e *pirn.Engine, path string, req pirn.RunRequest) *pirn.RunResult {
	t.Helper()
	p, err := e.LoadPipeline(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(t.Context(), p.Tapestry, req)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Succeeded() {
		t.Fatalf("run %s: %s, errors %+v", res.ID, res.Status, res.Errors)
	}
	return res
}

// TestMemoReuse runs a pipeline of Wasm knots again and again: the second
// run executes no hermetic knot, and each change re-executes exactly the
// knots it affects.
func TestMemoReuse(t *testing.T) {
	t.Parallel()
	store, hist := cas.NewMemory(), lineage.NewMemory()
	e := open(t, pirn.Config{Store: store, History: hist, AllowUnpinned: true})
	path := memoPipeline(t, "", "    cache: true", "")
	hermetic := []string{"d", "e", "xs", "sq:0", "sq:1", "sq:2", "sq:3", "sq:4"}

	first := runMemo(t, e, path, pirn.RunRequest{})
	for _, r := range first.Records {
		wantKey := strings.HasPrefix(r.KnotID, "sq:") || r.KnotID == "d" || r.KnotID == "e" || r.KnotID == "xs" || r.KnotID == "count"
		if r.Reused() || r.CacheKey.IsZero() == wantKey {
			t.Errorf("first run: %s reused from %q with key %v; want it run, with a key: %v", r.KnotID, r.ReusedFrom, r.CacheKey, wantKey)
		}
	}
	if got := first.Outputs["count"]; got != int64(1) {
		t.Fatalf("first run: count = %v, want 1", got)
	}

	second := runMemo(t, e, path, pirn.RunRequest{})
	got := reused(second)
	for _, id := range append(hermetic, "count") {
		if want := first.ID + "/" + id; got[id] != want {
			t.Errorf("second run: %s reused from %q, want %q", id, got[id], want)
		}
	}
	for _, id := range []string{"x", "k", "sq", "bad", "off"} { // parameters, the Map itself, an err, cache: false
		if got[id] != "" {
			t.Errorf("second run: %s reused from %q, want it run", id, got[id])
		}
	}
	for id, v := range first.Outputs {
		if second.Outputs[id] != nil && !equalValue(second.Values[id], first.Values[id]) {
			t.Errorf("second run: %s = %v, want %v", id, second.Outputs[id], v)
		}
	}
	// count's instance is kept: had the second run invoked it, it would
	// have answered 2. Without the cache it does, which proves the
	// second run did not invoke it.
	if got := second.Outputs["count"]; got != int64(1) {
		t.Errorf("second run: count = %v, want 1 (reused)", got)
	}
	third := runMemo(t, e, path, pirn.RunRequest{NoCache: true})
	for id, from := range reused(third) {
		if from != "" {
			t.Errorf("run with NoCache: %s reused from %q", id, from)
		}
	}
	if got := third.Outputs["count"]; got != int64(2) {
		t.Errorf("run with NoCache: count = %v, want 2 (its second invocation)", got)
	}
	for _, r := range third.Records {
		if r.KnotID == "d" && r.CacheKey.IsZero() {
			t.Errorf("run with NoCache: d has no cache key; want it recorded for later runs")
		}
	}

	// A parameter that only e reads: e re-executes, the rest is reused.
	k2 := runMemo(t, e, path, pirn.RunRequest{Params: map[string]any{"k": 2}})
	for id, from := range reused(k2) {
		wantRun := id == "e" || id == "bad" || id == "off" || id == "x" || id == "k" || id == "sq"
		if (from == "") != wantRun {
			t.Errorf("run with k=2: %s reused from %q, want it run: %v", id, from, wantRun)
		}
	}
	if k2.Outputs["e"] != int64(12) {
		t.Errorf("run with k=2: e = %v, want 12", k2.Outputs["e"])
	}

	// x changes every knot's inputs: nothing is reused, and sq's list
	// is one longer, its first five elements the same values: reused.
	x6 := runMemo(t, e, path, pirn.RunRequest{Params: map[string]any{"x": 6}})
	for id, from := range reused(x6) {
		wantReused := id == "count" || (strings.HasPrefix(id, "sq:") && id != "sq:5")
		if (from != "") != wantReused {
			t.Errorf("run with x=6: %s reused from %q, want reused: %v", id, from, wantReused)
		}
	}

	// A value no longer in the data store: e runs again (and puts it back).
	if err := store.Delete(t.Context(), second.Values["e"].Digest); err != nil {
		t.Fatal(err)
	}
	gone := runMemo(t, e, path, pirn.RunRequest{})
	if got := reused(gone); got["e"] != "" || got["d"] == "" {
		t.Errorf("after deleting e's value: e reused from %q, d from %q; want e run, d reused", got["e"], got["d"])
	}
	if ok, _ := store.Has(t.Context(), second.Values["e"].Digest); !ok {
		t.Errorf("after e ran again, its value is not in the store")
	}
}

func equalValue(a, b cas.Value) bool { return a.Digest == b.Digest }

// TestMemoKeyParts changes what the cache key covers, one at a time: the
// salt, a knot's limits, the module's bytes and a granted knot's opt-in;
// each re-executes exactly the knots it affects.
func TestMemoKeyParts(t *testing.T) {
	t.Parallel()
	store, hist := cas.NewMemory(), lineage.NewMemory()
	cfg := pirn.Config{Store: store, History: hist, AllowUnpinned: true}
	e := open(t, cfg)
	path := memoPipeline(t, "", "", "")
	first := runMemo(t, e, path, pirn.RunRequest{})
	if again := reused(runMemo(t, e, path, pirn.RunRequest{})); again["d"] == "" || again["count"] != "" {
		t.Fatalf("second run: d reused from %q, count from %q; want d reused and count (granted, no opt-in) run", again["d"], again["count"])
	}

	salted := cfg
	salted.CacheSalt = "runtime-2"
	for id, from := range reused(runMemo(t, open(t, salted), path, pirn.RunRequest{})) {
		if from != "" {
			t.Errorf("with another salt: %s reused from %q, want none reused", id, from)
		}
	}

	limited := memoPipeline(t, "", "", "    limits: {timeout: 17s}")
	for id, from := range reused(runMemo(t, e, limited, pirn.RunRequest{})) {
		// d's output is the same value, so e's key is the same: reused.
		if wantRun := id == "d" || id == "x" || id == "k" || id == "sq" || id == "bad" || id == "off" || id == "count"; (from == "") != wantRun {
			t.Errorf("with d's timeout changed: %s reused from %q, want it run: %v", id, from, wantRun)
		}
	}

	// The same module with a custom section appended: another digest,
	// so every arith knot runs again.
	wasm, err := os.ReadFile("examples/wasm/go/arith/arith.wasm")
	if err != nil {
		t.Fatal(err)
	}
	wasm = append(wasm, 0x00, 0x06, 0x04, 'n', 'o', 't', 'e', '!')
	other := filepath.Join(t.TempDir(), "arith2.wasm")
	if err := os.WriteFile(other, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, r := range runMemo(t, e, memoPipeline(t, other, "", ""), pirn.RunRequest{}).Records {
		if r.Module == first.Records[2].Module {
			t.Fatalf("the changed module has the same digest")
		}
		if r.Reused() {
			t.Errorf("with arith's bytes changed: %s reused from %s, want it run", r.KnotID, r.ReusedFrom)
		}
	}
}
