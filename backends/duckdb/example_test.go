//go:build duckdb

package duckdb_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/pirn-wasm/pirn/backends/duckdb"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

// The slowest knots across the last 1,000 runs: five runs of a
// three-knot pipeline are recorded to a DuckDB file, then one query
// ranks the knots by their mean duration.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "pirn-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	h, err := duckdb.Open(ctx, duckdb.Config{Path: filepath.Join(dir, "history.duckdb")})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()

	start := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	for i := range 5 {
		id := fmt.Sprintf("run-%d", i)
		at := start.Add(time.Duration(i) * time.Minute)
		run := &lineage.Run{ID: id, Pipeline: "etl", Status: lineage.Succeeded, StartedAt: at}
		// fetch takes 200 ms + 10 ms × i, parse 30 ms, load 80 ms.
		for _, k := range []struct {
			id   string
			took time.Duration
		}{{"fetch", 200*time.Millisecond + time.Duration(i)*10*time.Millisecond}, {"parse", 30 * time.Millisecond}, {"load", 80 * time.Millisecond}} {
			out, err := cas.Hash(id + "/" + k.id)
			if err != nil {
				log.Fatal(err)
			}
			run.Records = append(run.Records, lineage.Record{RunID: id, KnotID: k.id, Kind: lineage.KindKnot, Knot: k.id,
				Output: out, Outcome: lineage.OK, StartedAt: at, FinishedAt: at.Add(k.took)})
			at = at.Add(k.took)
		}
		run.FinishedAt = at
		if err := h.RecordRun(ctx, run); err != nil {
			log.Fatal(err)
		}
	}

	slowest, err := h.SlowestKnots(ctx, 1000, 2)
	if err != nil {
		log.Fatal(err)
	}
	for _, k := range slowest {
		fmt.Printf("%-6s %d runs  mean %v  p95 %v  max %v\n", k.KnotID, k.Records, k.Mean, k.P95, k.Max)
	}
	// Output:
	// fetch  5 runs  mean 220ms  p95 238ms  max 240ms
	// load   5 runs  mean 80ms  p95 80ms  max 80ms
}
