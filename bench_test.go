package pirn_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/model"
	"github.com/pirn-wasm/pirn/statedir"
)

// The original's scenarios, side by side (docs/performance.md): chains of
// trivial knots, a 1000-way fan-out, and runs recorded to SQLite on disk.
// Run them with scripts/bench.sh, which prints the table.

type guest struct{ name, module, knot string }

var guests = []guest{
	{"wat", "testdata/wasm/wat/ident.wasm", "ident"}, // no guest work: the host's own cost
	{"go", "examples/wasm/go/arith/arith.wasm", "inc"},
}

func chain(b *testing.B, e *pirn.Engine, g guest, n int) *pirn.Tapestry {
	return chainWith(b, e, g, n, model.StateDefault)
}

func chainWith(b *testing.B, e *pirn.Engine, g guest, n int, state model.State) *pirn.Tapestry {
	b.Helper()
	m, err := e.LoadModule(b.Context(), g.module)
	if err != nil {
		b.Fatal(err)
	}
	t := pirn.NewTapestry()
	prev := must[*pirn.Node](b)(t.Parameter(pirn.Param{Name: "x", Type: "int"}))
	for i := range n {
		k := m.Knot(g.knot)
		k.State = state
		prev, err = t.Knot(fmt.Sprintf("k%d", i), k, pirn.In{"x": prev})
		if err != nil {
			b.Fatal(err)
		}
	}
	return t
}

func runLoop(b *testing.B, e *pirn.Engine, t *pirn.Tapestry, knots int) {
	b.Helper()
	ctx := context.Background()
	cpu0, cpuOK := processCPU()
	for b.Loop() {
		res, err := e.Run(ctx, t, pirn.RunRequest{Params: map[string]any{"x": 1}})
		if err != nil || res.Status != lineage.Succeeded {
			b.Fatalf("run: %v %+v", err, res.Errors)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*knots), "ns/knot")
	// CPU time, the GC's and every goroutine's included: what the issue's
	// targets count (the wall time on 2 shared cores hides work done in
	// parallel).
	if cpu1, ok := processCPU(); ok && cpuOK {
		b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N*knots), "cpu-ns/knot")
	}
}

// BenchmarkChain runs a parameter followed by N knots in a line.
func BenchmarkChain(b *testing.B) {
	for _, g := range guests {
		for _, n := range []int{10, 100, 1000, 5000} {
			b.Run(fmt.Sprintf("%s/%d", g.name, n), func(b *testing.B) {
				e, err := pirn.Open(b.Context(), pirn.Config{})
				if err != nil {
					b.Fatal(err)
				}
				defer e.Close(context.Background())
				runLoop(b, e, chain(b, e, g, n), n)
			})
		}
	}
}

// BenchmarkInstanceState runs the 100-chain with each instance state: what
// making knots hermetic costs (docs/performance.md).
func BenchmarkInstanceState(b *testing.B) {
	for _, g := range guests {
		for _, state := range []model.State{model.StateKeep, model.StateReset, model.StateFresh} {
			b.Run(fmt.Sprintf("%s/%s", g.name, state), func(b *testing.B) {
				e, err := pirn.Open(b.Context(), pirn.Config{})
				if err != nil {
					b.Fatal(err)
				}
				defer e.Close(context.Background())
				runLoop(b, e, chainWith(b, e, g, 100, state), 100)
			})
		}
	}
}

// BenchmarkFanOut feeds one parameter to 1000 knots whose outputs one knot
// sums.
func BenchmarkFanOut(b *testing.B) {
	for _, g := range guests {
		b.Run(g.name+"/1000", func(b *testing.B) {
			e, err := pirn.Open(b.Context(), pirn.Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close(context.Background())
			m, err := e.LoadModule(b.Context(), g.module)
			if err != nil {
				b.Fatal(err)
			}
			arith, err := e.LoadModule(b.Context(), "examples/wasm/go/arith/arith.wasm")
			if err != nil {
				b.Fatal(err)
			}
			t := pirn.NewTapestry()
			x := must[*pirn.Node](b)(t.Parameter(pirn.Param{Name: "x", Type: "int"}))
			in := pirn.In{}
			for i := range 1000 {
				k, err := t.Knot(fmt.Sprintf("k%d", i), m.Knot(g.knot), pirn.In{"x": x})
				if err != nil {
					b.Fatal(err)
				}
				in[fmt.Sprintf("v%d", i)] = k
			}
			if _, err := t.Knot("total", arith.Knot("sum"), in); err != nil {
				b.Fatal(err)
			}
			runLoop(b, e, t, 1001)
		})
	}
}

// BenchmarkRecordedRuns runs a 10-knot chain on the embedded default state:
// every run is recorded to the SQLite history and every value written to
// the disk data store.
func BenchmarkRecordedRuns(b *testing.B) {
	for _, g := range guests {
		b.Run(g.name+"/10", func(b *testing.B) {
			e := recordingEngine(b)
			t := chain(b, e, g, 10)
			runLoop(b, e, t, 10)
			b.ReportMetric(float64(b.N*11)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkRecordedChain runs the 100-chain on the embedded default state
// (SQLite history and disk data store), as `pirn run` does: what recording
// costs per knot against BenchmarkChain's in-memory history.
func BenchmarkRecordedChain(b *testing.B) {
	for _, g := range guests {
		b.Run(g.name+"/100", func(b *testing.B) {
			e := recordingEngine(b)
			runLoop(b, e, chain(b, e, g, 100), 100)
		})
	}
}

// recordingEngine opens an engine on the embedded default state in a
// fresh directory, closed when the benchmark ends.
func recordingEngine(b *testing.B) *pirn.Engine {
	b.Helper()
	st, err := statedir.Open(b.Context(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	e, err := pirn.Open(b.Context(), pirn.Config{Store: st.Store, History: st.History})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close(context.Background()) })
	return e
}

// BenchmarkMapReduce maps a trivial Wasm knot over 10,000 elements, then
// sums them with an expression (the original: ~800 ms).
func BenchmarkMapReduce(b *testing.B) {
	e, err := pirn.Open(b.Context(), pirn.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(context.Background())
	m := loadModules(b, e)
	t := pirn.NewTapestry()
	xs := must[*pirn.Node](b)(t.Parameter(pirn.Param{Name: "xs", Type: "list[int]"}))
	mapped, err := t.Map(pirn.MapDef{ID: "mapped", Over: xs, Each: m.ident.Knot("ident"), Bind: "x"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := t.Reduce(pirn.ReduceDef{ID: "total", Of: mapped, Combine: pirn.Expr("sum(items)")}); err != nil {
		b.Fatal(err)
	}
	items := make([]any, 10000)
	for i := range items {
		items[i] = i
	}
	ctx := context.Background()
	for b.Loop() {
		res, err := e.Run(ctx, t, pirn.RunRequest{Params: map[string]any{"xs": items}})
		if err != nil || res.Outputs["total"] != int64(49995000) {
			b.Fatalf("run: %v %v %+v", err, res.Outputs["total"], res.Errors)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*10000), "ns/element")
}

// BenchmarkAggregatorFanOut feeds one parameter to 1000 trivial Wasm knots
// whose outputs one Aggregator collects (the original: ~52 ms).
func BenchmarkAggregatorFanOut(b *testing.B) {
	for _, combine := range []struct {
		name string
		knot pirn.Fn
	}{{"collect", nil}, {"cel-sum", pirn.Expr("sum(inputs)")}} {
		b.Run(combine.name, func(b *testing.B) {
			e, err := pirn.Open(b.Context(), pirn.Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close(context.Background())
			m := loadModules(b, e)
			t := pirn.NewTapestry()
			x := must[*pirn.Node](b)(t.Parameter(pirn.Param{Name: "x", Type: "int"}))
			in := pirn.In{}
			for i := range 1000 {
				k, err := t.Knot(fmt.Sprintf("k%d", i), m.ident.Knot("ident"), pirn.In{"x": x})
				if err != nil {
					b.Fatal(err)
				}
				in[fmt.Sprintf("v%d", i)] = k
			}
			if _, err := t.Add(pirn.KnotDef{ID: "all", Kind: pirn.KindAggregator, Knot: combine.knot, In: in}); err != nil {
				b.Fatal(err)
			}
			runLoop(b, e, t, 1001)
		})
	}
}

// BenchmarkGateBranchNodes runs a Gate and a Branch whose predicate and
// selector are expressions, end to end through the scheduler.
func BenchmarkGateBranchNodes(b *testing.B) {
	e, err := pirn.Open(b.Context(), pirn.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(context.Background())
	t := pirn.NewTapestry()
	x := must[*pirn.Node](b)(t.Parameter(pirn.Param{Name: "x", Type: "any"}))
	g, err := t.Gate(pirn.GateDef{ID: "g", Input: x, Predicate: pirn.Expr("x.score > 0.5")})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := t.Branch(pirn.BranchDef{ID: "route", Input: g, Selector: pirn.Expr("g.type"), Arms: []string{"tool", "text"}}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	params := map[string]any{"x": map[string]any{"score": 0.7, "type": "tool"}}
	for b.Loop() {
		res, err := e.Run(ctx, t, pirn.RunRequest{Params: params})
		if err != nil || res.Status != lineage.Succeeded || res.Outputs["route"] != "tool" {
			b.Fatalf("run: %v %v %+v", err, res.Outputs["route"], res.Errors)
		}
	}
}
