package cas_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/pirn-wasm/pirn/cas"
)

// BenchmarkHash hashes the original's scenarios: a small map, a
// 10,000-item list, and 1 MiB and 10 MiB of bytes, and a list of 10,000
// small records. Throughput is over the canonical encoding's length; the
// sha256 rows hash the bytes alone, the ceiling on this CPU.
func BenchmarkHash(b *testing.B) {
	list := make([]any, 10000)
	records := make([]any, 10000)
	for i := range list {
		list[i] = i
		records[i] = map[string]any{"id": i, "name": fmt.Sprintf("item-%d", i), "ok": true}
	}
	cases := []struct {
		name string
		v    any
	}{
		{"small-map", map[string]any{"id": 42, "name": "alice", "tags": []any{"a", "b"}, "score": 0.5, "nested": map[string]any{"k": true}, "digest": bytes.Repeat([]byte{1}, 32)}},
		{"list-10k", list},
		{"bytes-1MiB", bytes.Repeat([]byte{7}, 1<<20)},
		{"bytes-10MiB", bytes.Repeat([]byte{7}, 10<<20)},
		{"maps-10k", records},
	}
	for _, tc := range cases {
		enc, err := cas.Encode(tc.v)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				if _, err := cas.Hash(tc.v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, n := range []int{1 << 20, 10 << 20} {
		data := bytes.Repeat([]byte{7}, n)
		b.Run(fmt.Sprintf("sha256-%dMiB", n>>20), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				sha256.Sum256(data)
			}
		})
	}
}

// BenchmarkCanonicalValue checks that a guest's output is canonical, copies
// and hashes it: in two passes (Canonicalize, then CanonicalValue) and in
// one (CanonicalizeValue).
func BenchmarkCanonicalValue(b *testing.B) {
	records := make([]any, 10000)
	for i := range records {
		records[i] = map[string]any{"id": i, "name": fmt.Sprintf("item-%d", i), "ok": true}
	}
	for _, tc := range []struct {
		name string
		v    any
	}{
		{"maps-10k", records},
		{"bytes-10MiB", bytes.Repeat([]byte{7}, 10<<20)},
		{"text-1MiB", string(bytes.Repeat([]byte("é"), 1<<19))},
	} {
		enc, err := cas.Encode(tc.v)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("two-pass/"+tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				c, err := cas.Canonicalize(enc)
				if err != nil {
					b.Fatal(err)
				}
				_ = cas.CanonicalValue(c)
			}
		})
		b.Run("one-pass/"+tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				if _, err := cas.CanonicalizeValue(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDiskPut writes distinct small values to a disk store.
func BenchmarkDiskPut(b *testing.B) {
	for _, sync := range []bool{false, true} {
		b.Run(map[bool]string{false: "nosync", true: "sync"}[sync], func(b *testing.B) {
			s, err := cas.NewDisk(cas.DiskConfig{Dir: b.TempDir(), Sync: sync})
			if err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				v, err := cas.NewValue(i)
				if err != nil {
					b.Fatal(err)
				}
				i++
				if err := s.Put(b.Context(), v.Digest, v.Bytes); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
