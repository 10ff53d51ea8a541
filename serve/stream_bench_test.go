package serve_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/serve"
)

// BenchmarkStreamFile streams 1000 JSON lines from a file (a tail from
// its start) through the one-knot negate pipeline, one run per value,
// with the history and data store in memory: values/s is the figure in
// docs/performance.md.
//
//	go test -run '^$' -bench StreamFile -benchtime 5x ./serve
func BenchmarkStreamFile(b *testing.B) {
	const n = 1000
	path := filepath.Join(b.TempDir(), "in.jsonl")
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, "%d\n", i)
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	e, err := pirn.Open(context.Background(), pirn.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(context.Background())
	p := negate(b, e)
	for _, conc := range []int{1, 4} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			r := serve.NewRunner(e, p, serve.RunnerConfig{Concurrency: conc})
			defer r.Close(context.Background())
			for b.Loop() {
				src, err := serve.NewFileTail(serve.FileTailConfig{Path: path, FromStart: true, Poll: emit.Duration(1e6)})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				seen := 0
				err = serve.RunStream(ctx, r, src, serve.StreamOptions{Param: "x", OnRun: func(sr serve.StreamRun) {
					if sr.Err != nil {
						b.Error(sr.Err)
					}
					if seen++; seen == n {
						cancel() // a tail never ends: stop at the last line
					}
				}})
				cancel()
				src.Close()
				if err != nil || seen != n {
					b.Fatalf("RunStream: %v after %d runs", err, seen)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "values/s")
		})
	}
}
