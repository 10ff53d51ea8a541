package cas_test

import (
	"bytes"
	"testing"

	"github.com/pirn-wasm/pirn/cas"
)

// BenchmarkHash hashes the original's scenarios: a small map, a
// 10,000-item list, and 1 MiB and 10 MiB of bytes. Throughput is over the
// canonical encoding's length.
func BenchmarkHash(b *testing.B) {
	list := make([]any, 10000)
	for i := range list {
		list[i] = i
	}
	cases := []struct {
		name string
		v    any
	}{
		{"small-map", map[string]any{"id": 42, "name": "alice", "tags": []any{"a", "b"}, "score": 0.5, "nested": map[string]any{"k": true}, "digest": bytes.Repeat([]byte{1}, 32)}},
		{"list-10k", list},
		{"bytes-1MiB", bytes.Repeat([]byte{7}, 1<<20)},
		{"bytes-10MiB", bytes.Repeat([]byte{7}, 10<<20)},
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
