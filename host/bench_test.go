package host_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/host"
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
	}{
		{"wat/one", wat, "one", call(arg(b, "x", 5)), 0},
		{"wat/one/no-timeout", wat, "one", call(arg(b, "x", 5)), -1},
		{"wat/echo", wat, "echo", call(arg(b, "x", 5)), 0},
		{"go/inc", ar, "inc", call(arg(b, "x", 5)), 0},
		{"go/inc/no-timeout", ar, "inc", call(arg(b, "x", 5)), -1},
		{"go/len-1MiB", by, "len", call(arg(b, "data", bytes.Repeat([]byte{1}, 1<<20))), 0},
		{"go/len-1MiB/no-timeout", by, "len", call(arg(b, "data", bytes.Repeat([]byte{1}, 1<<20))), -1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			k := knot(b, tc.m, tc.knot, host.Limits{Timeout: tc.timeout, MaxInvocations: 1 << 30})
			ctx := b.Context()
			for b.Loop() {
				if r := k.Invoke(ctx, tc.c); r.Outcome != abi.OutcomeOK {
					b.Fatalf("%v %+v", r.Outcome, r.Error)
				}
			}
		})
	}
}
