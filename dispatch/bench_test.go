package dispatch_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/dispatch"
	"github.com/pirn-wasm/pirn/dispatch/dispatchtest"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/host/hosttest"
	"github.com/pirn-wasm/pirn/scheduler"
)

// knotFn adapts a host knot to the scheduler as internal/loom does, so
// that a coordinator ships it.
type knotFn struct{ k *host.Knot }

func (f knotFn) Invoke(ctx context.Context, c *scheduler.Call) abi.Response {
	return f.k.Invoke(ctx, (*host.Call)(c))
}
func (f knotFn) HostKnot() *host.Knot { return f.k }

// benchCluster starts an embedded server and n in-process workers of one
// slot that run modules from a memory store holding wasm.
func benchCluster(b *testing.B, wasm []byte, n int) *dispatch.Coordinator {
	ctx := context.Background()
	store := cas.NewMemory()
	if err := store.Put(ctx, cas.Sum(wasm), wasm); err != nil {
		b.Fatal(err)
	}
	h, err := host.New(host.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close(ctx) })
	return dispatchtest.Setup(b, dispatchtest.Start(b).URL(), dispatch.Config{}, store, dispatch.NewModules(h, store), nil, n, 1)
}

// BenchmarkRemoteKnot is the cost of one invocation of a trivial Go knot
// (arith's double), one after another: on the local pool (the host knot
// itself) and on an in-process worker with one slot over an embedded NATS
// server, with the data store in memory. The difference is the overhead
// of a remote knot: the job's publish, the worker's fetch, memo lookup,
// store reads and writes, the result's publish and the ack.
func BenchmarkRemoteKnot(b *testing.B) {
	ctx := context.Background()
	wasm, err := os.ReadFile("../examples/wasm/go/arith/arith.wasm")
	if err != nil {
		b.Fatal(err)
	}
	mod := hosttest.Load(b, host.Config{}, "../examples/wasm/go/arith/arith.wasm")
	k := hosttest.Knot(b, mod, host.KnotConfig{Name: "double"})
	b.Run("local", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			if r := k.Invoke(ctx, hosttest.Call(b, "x", int64(i))); r.Error != nil {
				b.Fatal(r.Error)
			}
		}
	})
	b.Run("nats", func(b *testing.B) {
		coord := benchCluster(b, wasm, 1)
		end, err := coord.StartRun(ctx, "bench")
		if err != nil {
			b.Fatal(err)
		}
		defer end()
		fn := &scheduler.Fn{Invoker: knotFn{k}}
		i := 0
		for b.Loop() {
			i++
			c := hosttest.Call(b, "x", int64(i))
			r, ok := coord.Dispatch(ctx, fn, &scheduler.Call{RunID: "bench", KnotID: fmt.Sprint("d", i), Inputs: c.Inputs})
			if !ok || r.Error != nil {
				b.Fatal(ok, r.Error)
			}
		}
	})
}

// BenchmarkRemoteMap dispatches b.N invocations at once (as a Map's
// elements are) to workers of one slot each: the throughput of the
// remote path for a trivial knot.
func BenchmarkRemoteMap(b *testing.B) {
	ctx := context.Background()
	wasm, err := os.ReadFile("../examples/wasm/go/arith/arith.wasm")
	if err != nil {
		b.Fatal(err)
	}
	mod := hosttest.Load(b, host.Config{}, "../examples/wasm/go/arith/arith.wasm")
	k := hosttest.Knot(b, mod, host.KnotConfig{Name: "double"})
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			coord := benchCluster(b, wasm, workers)
			fn := &scheduler.Fn{Invoker: knotFn{k}}
			run := 0
			for b.Loop() {
				run++
				id := fmt.Sprint("bench", run)
				end, err := coord.StartRun(ctx, id)
				if err != nil {
					b.Fatal(err)
				}
				var wg sync.WaitGroup
				sem := make(chan struct{}, scheduler.RemoteWorkers)
				for i := range 1000 {
					sem <- struct{}{}
					wg.Go(func() {
						defer func() { <-sem }()
						c := hosttest.Call(b, "x", int64(i))
						if r, ok := coord.Dispatch(ctx, fn, &scheduler.Call{RunID: id, KnotID: fmt.Sprint("d", i), Inputs: c.Inputs}); !ok || r.Error != nil {
							b.Error(ok, r.Error)
						}
					})
				}
				wg.Wait()
				end()
			}
			b.ReportMetric(1000*float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}
