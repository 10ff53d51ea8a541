package pirn_test

import (
	"context"
	"testing"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/internal/memtest"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/model"
	"github.com/pirn-wasm/pirn/statedir"
)

// BenchmarkMemo runs the 5000-knot chain of a trivial hermetic Wasm knot
// (arith's inc in Go, or the WAT ident for scale; instances reset), on the in-memory state and on the
// embedded default (SQLite history, disk data store): "run" executes
// every knot (NoCache: what a first run costs, keys recorded), "reused"
// executes none (every knot reused from the run before). It reports the
// time per knot and the process's peak RSS (docs/performance.md,
// "Memoisation").
//
//	go test -run '^$' -bench BenchmarkMemo -benchtime 5x .
func BenchmarkMemo(b *testing.B) {
	const n = 5000
	for _, c := range []struct {
		g           guest
		where, mode string
	}{
		{guests[1], "memory", "run"}, {guests[1], "memory", "reused"},
		{guests[1], "sqlite", "run"}, {guests[1], "sqlite", "reused"},
		{guests[0], "memory", "run"}, // the cheapest knot there is, for scale
	} {
		g, where, mode := c.g, c.where, c.mode
		{
			b.Run(g.name+"/"+where+"/"+mode, func(b *testing.B) {
				var cfg pirn.Config
				if where == "sqlite" {
					st, err := statedir.Open(b.Context(), b.TempDir())
					if err != nil {
						b.Fatal(err)
					}
					defer st.Close()
					cfg = pirn.Config{Store: st.Store, History: st.History}
				}
				e, err := pirn.Open(b.Context(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer e.Close(context.Background())
				t := chainWith(b, e, g, n, model.StateReset)
				ctx := context.Background()
				req := pirn.RunRequest{Params: map[string]any{"x": 1}, NoCache: mode == "run"}
				first, err := e.Run(ctx, t, pirn.RunRequest{Params: map[string]any{"x": 1}})
				if err != nil || first.Status != lineage.Succeeded {
					b.Fatalf("first run: %v %+v", err, first.Errors)
				}
				peaked := memtest.ResetPeak()
				for b.Loop() {
					res, err := e.Run(ctx, t, req)
					if err != nil || res.Status != lineage.Succeeded {
						b.Fatalf("run: %v %+v", err, res.Errors)
					}
					if reused := res.Records[n].Reused(); reused != (mode == "reused") {
						b.Fatalf("%s: the last knot reused: %v", mode, reused)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n)/1e3, "µs/knot")
				if peak, ok := memtest.Peak(); ok && peaked {
					b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
				}
			})
		}
	}
}
