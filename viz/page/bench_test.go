package page_test

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/viz/page"
)

// bigRun runs, with the Go PDK's arith module, a parameter and 5000 knots:
// in a chain (5001 layers of one node) or fanned out (one layer of 5000).
func bigRun(b *testing.B, fan bool) (*lineage.Run, cas.Store, lineage.History) {
	b.Helper()
	ctx := context.Background()
	store, hist := cas.NewMemory(), lineage.NewMemory()
	eng, err := pirn.Open(ctx, pirn.Config{Store: store, History: hist})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { eng.Close(context.Background()) })
	m, err := eng.LoadModule(ctx, "../../examples/wasm/go/arith/arith.wasm")
	if err != nil {
		b.Fatal(err)
	}
	t := pirn.NewTapestry()
	x, _ := t.Parameter(pirn.Param{Name: "x", Type: "int"})
	prev := x
	for i := range 5000 {
		n, err := t.Knot(fmt.Sprintf("k%d", i), m.Knot("inc"), pirn.In{"x": prev})
		if err != nil {
			b.Fatal(err)
		}
		if !fan {
			prev = n
		}
	}
	res, err := eng.Run(ctx, t, pirn.RunRequest{Params: map[string]any{"x": 1}})
	if err != nil || res.Status != lineage.Succeeded {
		b.Fatalf("run: %v", err)
	}
	return &res.Run, store, hist
}

type counter struct{ n int }

func (c *counter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

// BenchmarkRunPage5000 renders the page of a 5000-knot run (values
// decoded, other producers looked up in the in-memory history); it
// reports the page's size.
func BenchmarkRunPage5000(b *testing.B) {
	for _, shape := range []string{"chain", "fanout"} {
		b.Run(shape, func(b *testing.B) {
			run, store, hist := bigRun(b, shape == "fanout")
			var c counter
			for b.Loop() {
				c = counter{}
				if err := page.Run(b.Context(), &c, page.Config{}, run, store, hist); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(c.n)/(1<<20), "MiB/page")
		})
	}
}

var _ io.Writer = (*counter)(nil)
