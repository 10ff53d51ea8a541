package host_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/model"
)

func BenchmarkInvoke(b *testing.B) {
	h := newHost(b, host.Config{})
	ar := load(b, h, arith)
	by := load(b, h, bytesMod)
	wat := load(b, h, misbehave)
	for _, tc := range []struct {
		name    string
		m       *host.Module
		knot    string
		c       *host.Call
		timeout time.Duration
		fresh   bool // a fresh instance per invocation (max_invocations: 1)
	}{
		{"wat/one", wat, "one", call(arg(b, "x", 5)), 0, false},
		{"wat/one/no-timeout", wat, "one", call(arg(b, "x", 5)), -1, false},
		{"wat/echo", wat, "echo", call(arg(b, "x", 5)), 0, false},
		{"go/inc", ar, "inc", call(arg(b, "x", 5)), 0, false},
		{"go/inc/no-timeout", ar, "inc", call(arg(b, "x", 5)), -1, false},
		{"go/len-1MiB", by, "len", call(arg(b, "data", bytes.Repeat([]byte{1}, 1<<20))), 0, false},
		{"go/len-1MiB/no-timeout", by, "len", call(arg(b, "data", bytes.Repeat([]byte{1}, 1<<20))), -1, false},
		{"wat/one/fresh-instance", wat, "one", call(arg(b, "x", 5)), 0, true},
		{"go/inc/fresh-instance", ar, "inc", call(arg(b, "x", 5)), 0, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			lim := model.Limits{Timeout: tc.timeout, MaxInvocations: 1 << 30}
			if tc.fresh {
				// One instance at a time, so that each call waits for the
				// replacement of the one before: the full cost of the policy.
				lim.MaxInvocations, lim.MaxInstances = 1, 1
			}
			k := knot(b, tc.m, tc.knot, lim)
			ctx := b.Context()
			for b.Loop() {
				if r := k.Invoke(ctx, tc.c); r.Outcome != abi.OutcomeOK {
					b.Fatalf("%v %+v", r.Outcome, r.Error)
				}
			}
		})
	}
}

// BenchmarkLoadCold loads the Go module arith with no compilation cache:
// what the first run of a Go knot costs (compiling, instantiating, reading
// the manifest). It reports the CPU time too: on a shared machine the wall
// time depends on what else runs.
func BenchmarkLoadCold(b *testing.B) {
	wasm := readWasm(b, arith)
	cpu0, cpuOK := processCPU()
	for b.Loop() {
		h, err := host.New(host.Config{CacheDir: "-"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := h.Load(b.Context(), "arith", wasm); err != nil {
			b.Fatal(err)
		}
		h.Close(b.Context())
	}
	if cpu1, ok := processCPU(); cpuOK && ok {
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
	}
}
