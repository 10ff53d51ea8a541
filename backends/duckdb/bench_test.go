//go:build duckdb

package duckdb

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/lineagetest"
)

// benchDigest is the digest of a value of the benchmark histories: what
// record j of run i produced.
func benchDigest(i, j int) cas.Digest {
	var b [17]byte
	b[0] = 'v'
	binary.LittleEndian.PutUint64(b[1:], uint64(i))
	binary.LittleEndian.PutUint64(b[9:], uint64(j))
	return cas.Sum(b[:])
}

// chainRun is run i of a benchmark history: n records, a chain in which
// record j consumes record j-1's output; every value is new. Runs start a
// second apart, and knot j takes (j%7+1) ms. (The Postgres benchmarks'
// runs, with durations that differ by knot.)
func chainRun(i, n int) *lineage.Run {
	id := fmt.Sprintf("run-%08d", i)
	at := lineagetest.Base.Add(time.Duration(i) * time.Second)
	module := "sha256:" + benchDigest(-1, 0).Hex()
	r := &lineage.Run{ID: id, Pipeline: "chain", Status: lineage.Succeeded, Terminals: []string{fmt.Sprintf("k%d", n-1)},
		Dispatcher: "local", Host: "bench-host", StartedAt: at}
	r.Records = make([]lineage.Record, n)
	for j := range n {
		took := time.Duration(j%7+1) * time.Millisecond
		rec := &r.Records[j]
		*rec = lineage.Record{RunID: id, KnotID: fmt.Sprintf("k%d", j), Kind: lineage.KindKnot, Module: module, Knot: "inc",
			ConfigHash: benchDigest(-2, j), Output: benchDigest(i, j), Outcome: lineage.OK, Dispatcher: "local",
			StartedAt: at, FinishedAt: at.Add(took)}
		if j > 0 {
			rec.Inputs = []lineage.Input{{Name: "in", Parent: r.Records[j-1].KnotID, Digest: r.Records[j-1].Output}}
		}
		at = at.Add(took)
	}
	r.FinishedAt = at
	return r
}

// BenchmarkRecordRun records 10-knot runs, every value new, from one
// goroutine (serial) and from 2×GOMAXPROCS at once (parallel; they take
// turns at the write).
func BenchmarkRecordRun(b *testing.B) {
	const knots = 10
	for _, parallel := range []bool{false, true} {
		b.Run(map[bool]string{false: "serial", true: "parallel"}[parallel], func(b *testing.B) {
			h := openTest(b, filepath.Join(b.TempDir(), "history.duckdb"))
			var seq atomic.Int64
			var rnd [4]byte
			rand.Read(rnd[:])
			base := int(binary.LittleEndian.Uint32(rnd[:]) >> 1)
			record := func() {
				if err := h.RecordRun(b.Context(), chainRun(base+int(seq.Add(1)), knots)); err != nil {
					b.Error(err)
				}
			}
			if !parallel {
				for b.Loop() {
					record()
				}
			} else {
				b.SetParallelism(2)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						record()
					}
				})
			}
			b.ReportMetric(float64(b.N*knots)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkByOutput fills a history with PIRN_BENCH_RECORDS records
// (1,000,000 unless set) in runs of 100 (a 100-knot chain each; every
// value is produced once and consumed once), then measures the cross-run
// queries: by-output and by-input find one record, run reads one run
// (100 records), by-knot one record per run (10,000 at 1M records), and
// slowest-knots ranks the knots of the last
// 1,000 runs (100,000 records). It logs the fill rate and the file's
// size. docs/performance.md, "DuckDB history", has the figures.
func BenchmarkByOutput(b *testing.B) {
	records := 1_000_000
	if s := os.Getenv("PIRN_BENCH_RECORDS"); s != "" {
		var err error
		if records, err = strconv.Atoi(s); err != nil {
			b.Fatalf("PIRN_BENCH_RECORDS=%q: %v", s, err)
		}
	}
	const perRun = 100
	runs := max(1, records/perRun)
	ctx := b.Context()
	path := filepath.Join(b.TempDir(), "history.duckdb")
	h := openTest(b, path)

	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < runs; i = int(next.Add(1) - 1) {
				if err := h.RecordRun(ctx, chainRun(i, perRun)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	fill := time.Since(start)
	if _, err := h.db.ExecContext(ctx, "CHECKPOINT"); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("filled %d records in %d runs in %v (%.0f records/s, 2 writers taking turns); file after CHECKPOINT: %d MB",
		runs*perRun, runs, fill.Round(time.Millisecond), float64(runs*perRun)/fill.Seconds(), fi.Size()>>20)

	// Each iteration asks for a value of another run, so that the pages
	// read are not always the same few.
	b.Run("by-output", func(b *testing.B) {
		i := 0
		for b.Loop() {
			recs, err := h.ByOutput(ctx, benchDigest(i*7919%runs, i%perRun))
			if err != nil || len(recs) != 1 {
				b.Fatalf("ByOutput = %d records, %v; want 1", len(recs), err)
			}
			i++
		}
	})
	b.Run("by-input", func(b *testing.B) {
		i := 0
		for b.Loop() {
			recs, err := h.ByInput(ctx, benchDigest(i*7919%runs, i%(perRun-1)))
			if err != nil || len(recs) != 1 {
				b.Fatalf("ByInput = %d records, %v; want 1", len(recs), err)
			}
			i++
		}
	})
	b.Run("run", func(b *testing.B) {
		i := 0
		for b.Loop() {
			r, err := h.Run(ctx, fmt.Sprintf("run-%08d", i*7919%runs))
			if err != nil || len(r.Records) != perRun {
				b.Fatalf("Run = %v; want %d records", err, perRun)
			}
			i++
		}
	})
	b.Run("by-knot", func(b *testing.B) {
		i := 0
		for b.Loop() {
			recs, err := h.ByKnot(ctx, fmt.Sprint("k", i%perRun))
			if err != nil || len(recs) != runs {
				b.Fatalf("ByKnot = %d records, %v; want %d", len(recs), err, runs)
			}
			i++
		}
	})
	b.Run("slowest-knots", func(b *testing.B) {
		for b.Loop() {
			ks, err := h.SlowestKnots(ctx, 1000, 10)
			if err != nil || len(ks) != 10 || ks[0].Mean != 7*time.Millisecond {
				b.Fatalf("SlowestKnots = %+v, %v; want 10 knots, the slowest 7 ms", ks, err)
			}
		}
	})
}
