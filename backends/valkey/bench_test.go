package valkey_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	vk "github.com/valkey-io/valkey-go"

	"github.com/pirn-wasm/pirn/backends/valkey"
	"github.com/pirn-wasm/pirn/cas"
)

// smallValue returns the n-th of a series of distinct 64-byte values.
func smallValue(n uint64) cas.Value {
	b := make([]byte, 64)
	b[0] = 0x58 // CBOR: bytes, one-byte length
	b[1] = 62
	binary.LittleEndian.PutUint64(b[2:], n)
	return cas.Value{Digest: cas.Sum(b), Bytes: b}
}

var seq atomic.Uint64 // distinct values across benchmark runs

func reportRate(b *testing.B, values int) {
	b.ReportMetric(float64(values)/b.Elapsed().Seconds(), "values/s")
}

// BenchmarkPut writes distinct 64-byte values: from one goroutine, from
// many (the client pipelines their commands on shared connections), and
// in batches with PutMany.
//
//	go test -run '^$' -bench . -benchtime 100000x ./backends/valkey
func BenchmarkPut(b *testing.B) {
	for _, ttl := range []time.Duration{0, time.Hour} {
		for _, par := range []int{1, 8, 64, 256} {
			b.Run(fmt.Sprintf("ttl=%v/goroutines=%d", ttl, par), func(b *testing.B) {
				admin(b)
				s := open(b, valkey.Config{TTL: ttl})
				ctx := context.Background()
				if par == 1 {
					for b.Loop() {
						v := smallValue(seq.Add(1))
						if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
							b.Fatal(err)
						}
					}
					reportRate(b, b.N)
					return
				}
				b.SetParallelism((par + 1) / 2) // × GOMAXPROCS, 2 here
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						v := smallValue(seq.Add(1))
						if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
							b.Error(err)
							return
						}
					}
				})
				reportRate(b, b.N)
			})
		}
		for _, batch := range []int{100, 1000} {
			b.Run(fmt.Sprintf("ttl=%v/PutMany=%d", ttl, batch), func(b *testing.B) {
				admin(b)
				s := open(b, valkey.Config{TTL: ttl})
				ctx := context.Background()
				vs := make([]cas.Value, batch)
				for b.Loop() {
					for i := range vs {
						vs[i] = smallValue(seq.Add(1))
					}
					if err := s.PutMany(ctx, vs); err != nil {
						b.Fatal(err)
					}
				}
				reportRate(b, b.N*batch)
			})
		}
	}
}

// BenchmarkGet reads one small value over and over, through the store
// (a round trip, a copy and a SHA-256 each time) and, for the decision
// recorded in docs/rationale.md, through valkey-go's client-side cache
// (DoCache, a hit after the first read), which the store does not use.
func BenchmarkGet(b *testing.B) {
	admin(b)
	v := smallValue(seq.Add(1))
	ctx := context.Background()
	b.Run("store", func(b *testing.B) {
		s := open(b, valkey.Config{})
		if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
			b.Fatal(err)
		}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Get(ctx, v.Digest); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRate(b, b.N)
	})
	b.Run("DoCache", func(b *testing.B) {
		opt, err := vk.ParseURL(testURL())
		if err != nil {
			b.Fatal(err)
		}
		c, err := vk.NewClient(opt)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		key := valkey.DefaultPrefix + v.Digest.String()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				s, err := c.DoCache(ctx, c.B().Get().Key(key).Cache(), time.Hour).ToString()
				if err != nil {
					b.Error(err)
					return
				}
				if cas.Sum([]byte(s)) != v.Digest {
					b.Error("corrupt")
					return
				}
			}
		})
		reportRate(b, b.N)
	})
}
