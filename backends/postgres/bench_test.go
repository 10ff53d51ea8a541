package postgres

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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
// second apart.
func chainRun(i, n int) *lineage.Run {
	id := fmt.Sprintf("run-%08d", i)
	at := lineagetest.Base.Add(time.Duration(i) * time.Second)
	module := "sha256:" + benchDigest(-1, 0).Hex()
	r := &lineage.Run{ID: id, Pipeline: "chain", Status: lineage.Succeeded, Terminals: []string{fmt.Sprintf("k%d", n-1)},
		Dispatcher: "local", Host: "bench-host", StartedAt: at, FinishedAt: at.Add(time.Duration(n) * time.Millisecond)}
	r.Records = make([]lineage.Record, n)
	for j := range n {
		rec := &r.Records[j]
		*rec = lineage.Record{RunID: id, KnotID: fmt.Sprintf("k%d", j), Kind: lineage.KindKnot, Module: module, Knot: "inc",
			ConfigHash: benchDigest(-2, j), Output: benchDigest(i, j), Outcome: lineage.OK, Dispatcher: "local",
			StartedAt: at.Add(time.Duration(j) * time.Millisecond), FinishedAt: at.Add(time.Duration(j+1) * time.Millisecond)}
		if j > 0 {
			rec.Inputs = []lineage.Input{{Name: "in", Parent: r.Records[j-1].KnotID, Digest: r.Records[j-1].Output}}
		}
	}
	return r
}

// BenchmarkByOutput fills a history with PIRN_BENCH_RECORDS records
// (1,000,000 unless set) in runs of 100 (a 100-knot chain each; every
// value is produced once and consumed once), then measures the cross-run
// queries: by-output and by-input find one record, by-knot one per run
// (10,000). It logs the fill rate and each query's plan (EXPLAIN ANALYZE).
// Filling a million records takes about a minute; docs/performance.md,
// "Postgres history", has the figures.
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
	schema := newSchema(b)
	h := openHistory(b, schema)

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
	conn := admin(b)
	// What autovacuum would do in time: set the hint bits of the new
	// rows, and the planner's statistics.
	for _, q := range []string{"SET search_path = " + pgx.Identifier{schema}.Sanitize(), "VACUUM ANALYZE lineage, runs"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	var size string
	if err := conn.QueryRow(ctx, "SELECT pg_size_pretty(pg_total_relation_size('lineage'))").Scan(&size); err != nil {
		b.Fatal(err)
	}
	b.Logf("filled %d records in %d runs in %v (%.0f records/s, 2 writers); lineage with its indexes: %s",
		runs*perRun, runs, fill.Round(time.Millisecond), float64(runs*perRun)/fill.Seconds(), size)

	mid := runs / 2
	out := benchDigest(mid, perRun/2)
	for _, q := range []struct {
		name, sql string
		arg       any
	}{{"by-output", byOutput, out[:]}, {"by-input", byInput, out[:]}, {"by-knot", byKnot, "k50"}} {
		b.Logf("EXPLAIN ANALYZE %s:\n%s", q.name, explain(b, conn, q.sql, q.arg, "ANALYZE", "BUFFERS"))
	}

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
}

// BenchmarkRecordRun records 10-knot runs, every value new, from one
// goroutine (serial) and from 2×GOMAXPROCS at once (parallel).
func BenchmarkRecordRun(b *testing.B) {
	const knots = 10
	for _, parallel := range []bool{false, true} {
		b.Run(map[bool]string{false: "serial", true: "parallel"}[parallel], func(b *testing.B) {
			h := openHistory(b, newSchema(b))
			var seq atomic.Int64
			var rnd [4]byte
			rand.Read(rnd[:])
			base := int(binary.LittleEndian.Uint32(rnd[:]))
			record := func() {
				r := chainRun(base+int(seq.Add(1)), knots)
				if err := h.RecordRun(b.Context(), r); err != nil {
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
