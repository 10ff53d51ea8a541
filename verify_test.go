package pirn_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

// hermeticYAML writes a pipeline whose module knots run hermetic: a
// parameter, a knot, two Maps of module knots, a Map of an expression
// and a knot over a Map's list.
func hermeticYAML(t testing.TB, extra string) string {
	t.Helper()
	arith, _ := filepath.Abs("examples/wasm/go/arith/arith.wasm")
	p := filepath.Join(t.TempDir(), "hermetic.yaml")
	yaml := "name: hermetic\ninstance: reset\nmodules: {arith: " + arith + "}\nnodes:\n" +
		"  - {id: n, type: parameter, type_: int, default: 4}\n" +
		"  - {id: numbers, type: knot, module: arith, knot: range, parents: {n: n}}\n" +
		"  - {id: squares, type: map, over: numbers, each: {module: arith, knot: square}}\n" +
		"  - {id: shifted, type: map, over: numbers, each: {module: arith, knot: add}, bind: a, parents: {b: n}}\n" +
		"  - {id: halves, type: map, over: numbers, each: \"item / 2\"}\n" +
		"  - {id: total, type: knot, module: arith, knot: total, parents: {xs: squares}}\n" + extra
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEngineVerifyAndReplay: the library API behind pirn verify and pirn
// replay, on an in-memory engine.
func TestEngineVerifyAndReplay(t *testing.T) {
	ctx := t.Context()
	eng, err := pirn.Open(ctx, pirn.Config{AllowUnpinned: true, CacheDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	p, err := eng.LoadPipeline(ctx, hermeticYAML(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	res, err := eng.Run(ctx, p.Tapestry, pirn.RunRequest{Params: map[string]any{"n": 3}})
	if err != nil || !res.Succeeded() {
		t.Fatalf("run: %v %v", res.Status, err)
	}

	rep, err := eng.Verify(ctx, res.ID, pirn.VerifyOptions{})
	if err != nil || !rep.OK() || rep.Verified != 10 || len(rep.Results) != 10 {
		t.Fatalf("Verify = %+v, %v; want 10 verified", rep, err)
	}
	rep, err = eng.Verify(ctx, res.ID, pirn.VerifyOptions{Sample: 4, Seed: 1})
	if err != nil || rep.Verified != 4 || rep.NotSampled != 6 || rep.Seed != 1 {
		t.Errorf("Verify (Sample 4) = %+v, %v", rep, err)
	}
	if _, err := eng.Verify(ctx, res.ID, pirn.VerifyOptions{Knot: "nope"}); !errors.Is(err, pirn.ErrUnknownKnot) {
		t.Errorf("Verify (Knot nope): %v, want ErrUnknownKnot", err)
	}
	if _, err := eng.Verify(ctx, "run-none", pirn.VerifyOptions{}); !errors.Is(err, lineage.ErrNotFound) {
		t.Errorf("Verify (unknown run): %v, want lineage.ErrNotFound", err)
	}

	// Replay with an override: a new run labelled with the original.
	rp, err := eng.Replay(ctx, res.ID, pirn.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rp.Request.Params["n"] != int64(3) {
		t.Errorf("replay params = %v, want n = 3", rp.Request.Params)
	}
	if err := rp.Override(map[string]any{"m": 1}); err == nil || !strings.Contains(err.Error(), `no parameter "m"`) {
		t.Errorf("Override(m): %v", err)
	}
	if err := rp.Override(map[string]any{"n": 5}); err != nil {
		t.Fatal(err)
	}
	res2, err := eng.Run(ctx, rp.Pipeline.Tapestry, rp.Request)
	if err != nil || res2.Outputs["total"] != int64(30) || res2.Labels[pirn.LabelReplayOf] != res.ID || res2.PipelineDigest != res.PipelineDigest {
		t.Errorf("replayed run: %v %v, labels %v, %v", res2.Outputs, res2.PipelineDigest, res2.Labels, err)
	}

	// A record whose output digest was changed in the history.
	run, err := eng.History().Run(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i := range run.Records {
		if run.Records[i].KnotID == "squares:1" {
			run.Records[i].Output, _ = cas.Hash(int64(2))
		}
	}
	if err := eng.History().RecordRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	rep, err = eng.Verify(ctx, res.ID, pirn.VerifyOptions{Knot: "squares"})
	if err != nil || rep.Mismatches != 2 || rep.Verified != 2 {
		t.Errorf("Verify of a tampered element = %+v, %v; want the element and its map's list mismatched", rep, err)
	}

	// A tapestry built in Go names no pipeline to load again.
	arith, err := eng.LoadModule(ctx, "examples/wasm/go/arith/arith.wasm")
	if err != nil {
		t.Fatal(err)
	}
	gt := pirn.NewTapestry()
	x, _ := gt.Parameter(pirn.Param{Name: "x", Type: "int"})
	gt.Knot("d", arith.Knot("double"), pirn.In{"x": x})
	gres, err := eng.Run(ctx, gt, pirn.RunRequest{Params: map[string]any{"x": 2}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Replay(ctx, gres.ID, pirn.ReplayOptions{}); !errors.Is(err, pirn.ErrNoPipeline) {
		t.Errorf("Replay of a Go-built run: %v, want ErrNoPipeline", err)
	}
	rep, err = eng.Verify(ctx, gres.ID, pirn.VerifyOptions{})
	if err != nil || rep.OK() || rep.Unverifiable != 1 {
		t.Errorf("Verify of a Go-built run = %+v, %v; want 1 unverifiable", rep, err)
	}
}

// BenchmarkVerify is the cost of pirn verify per record: runs of n
// hermetic Map elements (arith's square, a Go knot whose instance is
// reset after every invocation) and the Map's list, verified from an
// in-memory history and store. Each Verify also loads the pipeline from
// the store once, a cost per run that the larger run spreads thinner.
func BenchmarkVerify(b *testing.B) {
	for _, n := range []int{16, 256} {
		b.Run(fmt.Sprintf("elements=%d", n), func(b *testing.B) {
			ctx := context.Background()
			eng, err := pirn.Open(ctx, pirn.Config{AllowUnpinned: true})
			if err != nil {
				b.Fatal(err)
			}
			defer eng.Close(ctx)
			arith, _ := filepath.Abs("examples/wasm/go/arith/arith.wasm")
			p := filepath.Join(b.TempDir(), "v.yaml")
			os.WriteFile(p, []byte("name: v\ninstance: reset\nmodules: {arith: "+arith+"}\nnodes:\n"+
				"  - {id: n, type: parameter, type_: int}\n"+
				"  - {id: numbers, type: knot, module: arith, knot: range, parents: {n: n}}\n"+
				"  - {id: squares, type: map, over: numbers, each: {module: arith, knot: square}}\n"), 0o644)
			pl, err := eng.LoadPipeline(ctx, p)
			if err != nil {
				b.Fatal(err)
			}
			res, err := eng.Run(ctx, pl.Tapestry, pirn.RunRequest{Params: map[string]any{"n": n}})
			if err != nil {
				b.Fatal(err)
			}
			records := 0
			for b.Loop() {
				rep, err := eng.Verify(ctx, res.ID, pirn.VerifyOptions{})
				if err != nil || !rep.OK() {
					b.Fatal(fmt.Sprint(rep, err))
				}
				records = len(rep.Results)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*records), "µs/record")
		})
	}
}
