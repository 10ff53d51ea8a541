package cas

// This file encodes values built from the data model's own Go types (nil,
// bool, integers, floats, string, []byte, []any, map[string]any) without
// reflection, checking that they are inside the data model in the same
// walk, and streams the encoding into SHA-256 as it goes for Hash. It
// writes exactly what the CBOR library's core deterministic encoder writes
// (TestEncoderMatchesLibrary compares them); for any other value it
// reports failure and the caller takes the library's path.

import (
	"cmp"
	"crypto/sha256"
	"hash"
	"math"
	"slices"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/pirn-wasm/pirn/internal/pcbor"
)

const (
	// flushAt is how much encoding a hashing encoder holds before it
	// hashes it: small enough to stay in the first-level cache.
	flushAt = 8 << 10
	// directAt is the length from which a hashing encoder hashes a byte
	// or text string where it lies instead of copying it.
	directAt = 512
	// maxFastDepth bounds the nesting this encoder walks; deeper values
	// take the library's path, which applies the decoders' limit.
	maxFastDepth = 32
	// keepBuf is the largest buffer kept for reuse.
	keepBuf = 1 << 20
)

// encoder appends canonical encodings to buf, or, streaming, hashes them
// into h as it goes.
type encoder struct {
	buf     []byte
	h       hash.Hash
	stream  bool    // hash into h; otherwise the whole encoding stays in buf
	begun   bool    // h holds the start of the encoding (reset once used)
	sum     Digest  // h's sum, here so that it does not escape
	entries []entry // a stack of the maps being written, sorted by key
}

type entry struct {
	k string
	v any
}

var encoders = sync.Pool{New: func() any { return &encoder{h: sha256.New()} }}

func getEncoder(stream bool) *encoder {
	e := encoders.Get().(*encoder)
	e.buf = e.buf[:0]
	e.stream, e.begun = stream, false
	return e
}

func putEncoder(e *encoder) {
	if cap(e.buf) > keepBuf {
		e.buf = nil
	}
	clear(e.entries[:cap(e.entries)]) // hold no values alive
	e.entries = e.entries[:0]
	if cap(e.entries) > keepBuf/32 {
		e.entries = nil
	}
	encoders.Put(e)
}

// encodeFast returns the canonical encoding of v, or ok=false if v is not
// built from the data model's Go types alone or is outside the model.
func encodeFast(v any) (b []byte, ok bool) {
	e := getEncoder(false)
	defer putEncoder(e)
	if !e.value(v, 0) {
		return nil, false
	}
	return slices.Clone(e.buf), true
}

// hashFast returns the digest of v's canonical encoding without holding
// all of it, or ok=false as encodeFast.
func hashFast(v any) (d Digest, ok bool) {
	e := getEncoder(true)
	defer putEncoder(e)
	if !e.value(v, 0) {
		return Digest{}, false
	}
	if !e.begun { // a small value: hashed whole
		return sha256.Sum256(e.buf), true
	}
	e.h.Write(e.buf)
	e.h.Sum(e.sum[:0])
	return e.sum, true
}

// value appends v's encoding; false means v needs the library's path.
func (e *encoder) value(v any, depth int) bool {
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, 0xf6)
	case bool:
		e.buf = append(e.buf, 0xf4|b2u(x))
	case string:
		if !validText(x) {
			return false
		}
		e.text(pcbor.Text, unsafe.Slice(unsafe.StringData(x), len(x)))
	case []byte:
		if x == nil {
			e.buf = append(e.buf, 0xf6) // as the library writes a nil slice
			return true
		}
		e.text(pcbor.Bytes, x)
	case int:
		e.int(int64(x))
	case int64:
		e.int(x)
	case int32:
		e.int(int64(x))
	case int16:
		e.int(int64(x))
	case int8:
		e.int(int64(x))
	case uint8:
		e.int(int64(x))
	case uint16:
		e.int(int64(x))
	case uint32:
		e.int(int64(x))
	case uint:
		if uint64(x) > math.MaxInt64 {
			return false
		}
		e.int(int64(x))
	case uint64:
		if x > math.MaxInt64 {
			return false
		}
		e.int(int64(x))
	case float64:
		e.buf = pcbor.AppendFloat(e.buf, x)
	case float32:
		e.buf = pcbor.AppendFloat(e.buf, float64(x))
	case []any:
		if x == nil {
			e.buf = append(e.buf, 0xf6)
			return true
		}
		if depth >= maxFastDepth {
			return false
		}
		e.buf = pcbor.AppendHead(e.buf, pcbor.Array, uint64(len(x)))
		for _, el := range x {
			if !e.value(el, depth+1) {
				return false
			}
			e.flush()
		}
	case map[string]any:
		if x == nil {
			e.buf = append(e.buf, 0xf6)
			return true
		}
		if depth >= maxFastDepth {
			return false
		}
		return e.dict(x, depth)
	default:
		return false
	}
	return true
}

// dict writes a map with its keys in canonical order: by their encoding,
// which for text is shorter keys first, then bytewise.
func (e *encoder) dict(m map[string]any, depth int) bool {
	base := len(e.entries)
	for k, v := range m {
		if !validText(k) {
			e.entries = e.entries[:base]
			return false
		}
		e.entries = append(e.entries, entry{k, v})
	}
	sortEntries(e.entries[base:])
	e.buf = pcbor.AppendHead(e.buf, pcbor.Map, uint64(len(m)))
	end := len(e.entries)
	for i := base; i < end; i++ {
		en := e.entries[i] // re-read: nested maps may move the stack
		if len(en.k) < 24 {
			e.buf = append(append(e.buf, pcbor.Text|byte(len(en.k))), en.k...)
		} else {
			e.text(pcbor.Text, unsafe.Slice(unsafe.StringData(en.k), len(en.k)))
		}
		if !e.value(en.v, depth+1) {
			e.entries = e.entries[:base]
			return false
		}
		e.flush()
	}
	clear(e.entries[base:end])
	e.entries = e.entries[:base]
	return true
}

// keyLess orders map keys by their encoding: shorter first, then bytewise.
func keyLess(a, b string) bool { return len(a) < len(b) || len(a) == len(b) && a < b }

// sortEntries sorts a map's entries by key, small maps by insertion.
func sortEntries(es []entry) {
	if len(es) > 12 {
		slices.SortFunc(es, func(a, b entry) int {
			if len(a.k) != len(b.k) {
				return cmp.Compare(len(a.k), len(b.k))
			}
			return cmp.Compare(a.k, b.k)
		})
		return
	}
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && keyLess(es[j].k, es[j-1].k); j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

// validText is utf8.ValidString, with short ASCII text checked inline.
func validText(s string) bool {
	if len(s) > 16 {
		return utf8.ValidString(s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return utf8.ValidString(s[i:])
		}
	}
	return true
}

func (e *encoder) int(x int64) {
	if x >= 0 {
		e.buf = pcbor.AppendHead(e.buf, pcbor.Uint, uint64(x))
	} else {
		e.buf = pcbor.AppendHead(e.buf, pcbor.Neg, uint64(-1-x))
	}
}

// text writes a byte or text string; a hashing encoder hashes a long one
// where it lies. s is only read.
func (e *encoder) text(major byte, s []byte) {
	e.buf = pcbor.AppendHead(e.buf, major, uint64(len(s)))
	if !e.stream || len(s) < directAt {
		e.buf = append(e.buf, s...)
		return
	}
	e.write(e.buf)
	e.buf = e.buf[:0]
	e.write(s)
}

// flush hashes what a hashing encoder holds once it is flushAt or more.
func (e *encoder) flush() {
	if e.stream && len(e.buf) >= flushAt {
		e.write(e.buf)
		e.buf = e.buf[:0]
	}
}

// write hashes b, after what was hashed before.
func (e *encoder) write(b []byte) {
	if !e.begun {
		e.h.Reset()
		e.begun = true
	}
	e.h.Write(b)
}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}
