package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/dispatch/dispatchtest"
)

// benchSpin is the n of each spin_seed knot of the Map benchmarks
// (PIRN_BENCH_SPIN_N; 50,000 rounds take about 5 ms on the CI machine).
func benchSpin() string {
	if n := os.Getenv("PIRN_BENCH_SPIN_N"); n != "" {
		return n
	}
	return "50000"
}

// benchCount is the Map's size (PIRN_BENCH_COUNT, default 10,000).
func benchCount() int {
	if n, err := strconv.Atoi(os.Getenv("PIRN_BENCH_COUNT")); err == nil && n > 0 {
		return n
	}
	return 10000
}

// BenchmarkDispatchMap runs a Map of CPU-bound knots (spinmap) with 1 and
// 2 worker processes of one slot each, and locally with 1 and 2 workers
// for comparison: each iteration is one whole pirn run.
func BenchmarkDispatchMap(b *testing.B) {
	args := []string{spinmap, "-p", fmt.Sprint("count=", benchCount()), "-p", "n=" + benchSpin()}
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("local/workers=%d", workers), func(b *testing.B) {
			for b.Loop() {
				if r, err := execPirn(append([]string{"run", "--memory", "--workers", fmt.Sprint(workers)}, args...)...); err != nil || r.code != 0 {
					b.Fatalf("%v %d %s", err, r.code, r.stderr)
				}
			}
		})
	}
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("nats/workers=%d", workers), func(b *testing.B) {
			e := &env{t: b, url: dispatchtest.Start(b).URL(), prefix: fmt.Sprintf("bench%d", prefixes.Add(1)), state: b.TempDir()}
			for range workers {
				e.startWorker()
			}
			for b.Loop() {
				r, err := execPirn(append(append([]string{"run", "--dispatch", e.url, "--state", e.state}, e.natsArgs()...), args...)...)
				if err != nil || r.code != 0 {
					b.Fatalf("%v %d %s", err, r.code, r.stderr)
				}
			}
			b.ReportMetric(float64(benchCount())*float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}

// BenchmarkDispatchRecovery is the time from SIGKILLing a worker that runs
// a long knot to the start of that knot on another worker: the ack wait
// (1s here; 10s by default), less the time since the last heartbeat.
func BenchmarkDispatchRecovery(b *testing.B) {
	url := dispatchtest.Start(b).URL()
	var total time.Duration
	for b.Loop() {
		e := &env{t: b, url: url, prefix: fmt.Sprintf("rec%d", prefixes.Add(1)), state: b.TempDir()}
		w1 := e.startWorker()
		done := make(chan result, 1)
		go func() {
			r, _ := execPirn(append(append([]string{"run", "--dispatch", e.url, "--state", e.state}, e.natsArgs()...), poison, "-p", "n=50000000")...)
			done <- r
		}()
		for !slices.Contains(w1.startedKnots(), "poison") {
			time.Sleep(time.Millisecond)
		}
		w2 := e.startWorker() // takes fine, then waits for poison to come back
		time.Sleep(1500 * time.Millisecond)
		killed := time.Now()
		w1.kill()
		for !slices.Contains(w2.startedKnots(), "poison") {
			time.Sleep(time.Millisecond)
		}
		total += time.Since(killed)
		<-done
		w2.kill()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-recover")
}
