package s3

import (
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/pirn-wasm/pirn/cas"
)

// valueMaker makes distinct values of one size cheaply: a fixed body and an
// 8-byte counter at the end, hashed from the body's saved SHA-256 state, so
// that a Put benchmark measures the store, not the hashing of its input.
type valueMaker struct {
	body  []byte
	state []byte // SHA-256 state after body
	next  atomic.Uint64
}

func newValueMaker(b *testing.B, size int) *valueMaker {
	body := make([]byte, size-8)
	for i := range body {
		body[i] = byte(i*31 + i>>8)
	}
	h := sha256.New()
	h.Write(body)
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	return &valueMaker{body: body, state: state}
}

// buffer returns a value-sized buffer holding the body.
func (m *valueMaker) buffer() []byte {
	return append(make([]byte, 0, len(m.body)+8), m.body...)
}

// fill ends buf (from buffer) with a new counter and returns its digest.
func (m *valueMaker) fill(b *testing.B, buf []byte) ([]byte, cas.Digest) {
	buf = binary.BigEndian.AppendUint64(buf[:len(m.body)], m.next.Add(1))
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(m.state); err != nil {
		b.Fatal(err)
	}
	h.Write(buf[len(m.body):])
	return buf, cas.Digest(h.Sum(nil))
}

// BenchmarkStore measures Put (of a new value: a HEAD and a PUT) and Get
// (a GET and the digest check) against the in-process server, by one
// goroutine and by 16 at once. Throughput is over the values' bytes. Each
// round has a fresh server, holding only that round's values.
//
//	go test -run '^$' -bench Store -benchtime 2s ./backends/s3
func BenchmarkStore(b *testing.B) {
	par := max(1, 16/runtime.GOMAXPROCS(0)) // RunParallel runs par×GOMAXPROCS goroutines
	for _, size := range []struct {
		name string
		n    int
	}{{"1KB", 1000}, {"10MB", 10_000_000}} {
		for _, conc := range []int{1, par * runtime.GOMAXPROCS(0)} {
			// each runs op from conc goroutines until the benchmark's
			// iterations are done.
			each := func(b *testing.B, op func()) {
				b.SetBytes(int64(size.n))
				b.ResetTimer()
				if conc == 1 {
					for b.Loop() {
						op()
					}
					return
				}
				b.SetParallelism(par)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						op()
					}
				})
			}
			b.Run(fmt.Sprintf("put-%s/conc=%d", size.name, conc), func(b *testing.B) {
				s := open(b, newFakeS3(b).config("bench"))
				m := newValueMaker(b, size.n)
				bufs := make(chan []byte, conc)
				for range conc {
					bufs <- m.buffer()
				}
				each(b, func() {
					buf := <-bufs
					v, d := m.fill(b, buf)
					if err := s.Put(b.Context(), d, v); err != nil {
						b.Error(err)
					}
					bufs <- buf
				})
			})
			b.Run(fmt.Sprintf("get-%s/conc=%d", size.name, conc), func(b *testing.B) {
				s := open(b, newFakeS3(b).config("bench"))
				m := newValueMaker(b, size.n)
				var ds []cas.Digest
				for range 16 {
					v, d := m.fill(b, m.buffer())
					if err := s.Put(b.Context(), d, v); err != nil {
						b.Fatal(err)
					}
					ds = append(ds, d)
				}
				var i atomic.Uint64
				each(b, func() {
					if _, err := s.Get(b.Context(), ds[i.Add(1)%uint64(len(ds))]); err != nil {
						b.Error(err)
					}
				})
			})
		}
	}
}
