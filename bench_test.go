package pirn_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/lineage"
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
	b.Helper()
	m, err := e.LoadModule(b.Context(), g.module)
	if err != nil {
		b.Fatal(err)
	}
	t := pirn.NewTapestry()
	prev, _ := t.Parameter(pirn.Param{Name: "x", Type: "int"})
	for i := range n {
		prev, err = t.Knot(fmt.Sprintf("k%d", i), m.Knot(g.knot), pirn.In{"x": prev})
		if err != nil {
			b.Fatal(err)
		}
	}
	return t
}

func runLoop(b *testing.B, e *pirn.Engine, t *pirn.Tapestry, knots int) {
	b.Helper()
	ctx := context.Background()
	for b.Loop() {
		res, err := e.Run(ctx, t, pirn.RunRequest{Params: map[string]any{"x": 1}})
		if err != nil || res.Status != lineage.Succeeded {
			b.Fatalf("run: %v %+v", err, res.Errors)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*knots), "ns/knot")
}

// BenchmarkChain runs a parameter followed by N knots in a line.
func BenchmarkChain(b *testing.B) {
	for _, g := range guests {
		for _, n := range []int{10, 100, 1000, 5000} {
			b.Run(fmt.Sprintf("%s/%d", g.name, n), func(b *testing.B) {
				e, err := pirn.Open(b.Context(), pirn.Config{InMemory: true})
				if err != nil {
					b.Fatal(err)
				}
				defer e.Close(context.Background())
				runLoop(b, e, chain(b, e, g, n), n)
			})
		}
	}
}

// BenchmarkFanOut feeds one parameter to 1000 knots whose outputs one knot
// sums.
func BenchmarkFanOut(b *testing.B) {
	for _, g := range guests {
		b.Run(g.name+"/1000", func(b *testing.B) {
			e, err := pirn.Open(b.Context(), pirn.Config{InMemory: true})
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
			x, _ := t.Parameter(pirn.Param{Name: "x", Type: "int"})
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
			e, err := pirn.Open(b.Context(), pirn.Config{StateDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close(context.Background())
			t := chain(b, e, g, 10)
			runLoop(b, e, t, 10)
			b.ReportMetric(float64(b.N*11)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
