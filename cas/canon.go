package cas

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/pirn-wasm/pirn/internal/pcbor"
)

// canonicalize re-encodes the one data item b in canonical form without
// decoding it into Go values: a value held as Go values takes up to 40
// times its encoded size (an empty list is one byte of CBOR and a boxed
// slice header of Go), so a guest's 64 MiB output of empty lists would
// take gigabytes. The output is never more than 9 bytes an item longer
// than the input, and besides it only the entries of the map being sorted
// are held at once. It writes exactly what the CBOR library's core
// deterministic encoder writes for the decoded value (FuzzCanonicalize
// compares the two).
func canonicalize(b []byte) ([]byte, error) {
	c := canonEncoder{in: b}
	out, n, err := c.item(make([]byte, 0, len(b)), 0, 0)
	if err == nil && n != len(b) {
		err = errors.New("extraneous data after the value (trailing bytes)")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotCanonical, err)
	}
	return out, nil
}

type canonEncoder struct {
	in  []byte
	tmp []byte // reused to reorder map entries
}

func (c *canonEncoder) head(off int) (major, ai byte, arg uint64, n int, err error) {
	major, ai, arg, n, err = pcbor.ReadHead(c.in[off:])
	if errors.Is(err, pcbor.ErrTruncated) {
		err = pcbor.ErrEOF
	}
	return major, ai, arg, n, err
}

// item appends the canonical encoding of the item at in[off:] to out and
// returns the offset after it.
func (c *canonEncoder) item(out []byte, off, level int) ([]byte, int, error) {
	major, ai, arg, n, err := c.head(off)
	if err != nil {
		return nil, 0, err
	}
	off += n
	switch major {
	case pcbor.Uint, pcbor.Neg:
		if arg > math.MaxInt64 {
			return nil, 0, fmt.Errorf("integer overflows int64")
		}
		return pcbor.AppendHead(out, major, arg), off, nil
	case pcbor.Bytes, pcbor.Text:
		if ai != 31 {
			if arg > uint64(len(c.in)-off) {
				return nil, 0, pcbor.ErrEOF
			}
			s := c.in[off : off+int(arg)]
			if major == pcbor.Text && !utf8.Valid(s) {
				return nil, 0, errors.New("text is not valid UTF-8")
			}
			return append(pcbor.AppendHead(out, major, arg), s...), off + int(arg), nil
		}
		// Chunks: concatenate them behind a head written once their
		// total is known.
		at := len(out)
		out = append(out, make([]byte, 9)...)
		for {
			if off >= len(c.in) {
				return nil, 0, pcbor.ErrEOF
			}
			if c.in[off] == 0xff {
				off++
				break
			}
			cm, cai, carg, cn, err := c.head(off)
			if err != nil {
				return nil, 0, err
			}
			if cm != major || cai == 31 || carg > uint64(len(c.in)-off-cn) {
				return nil, 0, errors.New("bad chunk in indefinite-length string")
			}
			out = append(out, c.in[off+cn:off+cn+int(carg)]...)
			off += cn + int(carg)
		}
		if major == pcbor.Text && !utf8.Valid(out[at+9:]) {
			return nil, 0, errors.New("text is not valid UTF-8")
		}
		return behindHead(out, at, major, uint64(len(out)-at-9)), off, nil
	case pcbor.Array, pcbor.Map:
		if level >= MaxNestedLevels {
			return nil, 0, fmt.Errorf("nested deeper than %d levels", MaxNestedLevels)
		}
		per := uint64(1)
		if major == pcbor.Map {
			per = 2
		}
		if ai != 31 && arg > MaxElements {
			return nil, 0, fmt.Errorf("%d entries: more than %d", arg, MaxElements)
		}
		if ai != 31 && arg*per > uint64(len(c.in)-off) {
			return nil, 0, fmt.Errorf("%w: %d entries in %d bytes", pcbor.ErrEOF, arg, len(c.in)-off)
		}
		at := len(out)
		out = append(out, make([]byte, 9)...) // the head, once the count is known
		var keys []span                       // a map's entries, as written to out
		count := uint64(0)
		for ; ai == 31 || count < arg; count++ {
			if ai == 31 {
				if off >= len(c.in) {
					return nil, 0, pcbor.ErrEOF
				}
				if c.in[off] == 0xff {
					off++
					break
				}
				if count >= MaxElements {
					return nil, 0, fmt.Errorf("more than %d entries", MaxElements)
				}
			}
			start := len(out)
			if out, off, err = c.item(out, off, level+1); err != nil {
				return nil, 0, err
			}
			if major == pcbor.Array {
				continue
			}
			if out[start]&0xe0 != pcbor.Text {
				return nil, 0, errors.New("cannot unmarshal map key: keys must be text")
			}
			key := len(out)
			if out, off, err = c.item(out, off, level+1); err != nil {
				return nil, 0, err
			}
			keys = append(keys, span{start, key, len(out)})
		}
		if major == pcbor.Map {
			if err := c.sortEntries(out, at+9, keys); err != nil {
				return nil, 0, err
			}
		}
		return behindHead(out, at, major, count), off, nil
	case pcbor.Tag:
		return nil, 0, errors.New("tags are not allowed")
	}
	switch ai {
	case 20, 21, 22: // false, true, null
		return append(out, major|ai), off, nil
	case 25, 26, 27:
		return pcbor.AppendFloat(out, pcbor.Float(ai, arg)), off, nil
	case 31:
		return nil, 0, errors.New("unexpected break")
	}
	return nil, 0, fmt.Errorf("simple value %d is not in the data model", arg)
}

// span is one map entry written to the output: its key is [start, key),
// its value [key, end).
type span struct{ start, key, end int }

// sortEntries puts the entries of a map, written to out from base on, in
// canonical order (by their encoded keys, bytewise) and refuses a key
// given twice.
func (c *canonEncoder) sortEntries(out []byte, base int, entries []span) error {
	sorted := slices.IsSortedFunc(entries, func(a, b span) int { return bytes.Compare(out[a.start:a.key], out[b.start:b.key]) })
	if !sorted {
		slices.SortFunc(entries, func(a, b span) int { return bytes.Compare(out[a.start:a.key], out[b.start:b.key]) })
	}
	for i := 1; i < len(entries); i++ {
		if bytes.Equal(out[entries[i-1].start:entries[i-1].key], out[entries[i].start:entries[i].key]) {
			return fmt.Errorf("duplicate map key %q", out[entries[i].start:entries[i].key])
		}
	}
	if sorted {
		return nil
	}
	c.tmp = c.tmp[:0]
	for _, e := range entries {
		c.tmp = append(c.tmp, out[e.start:e.end]...)
	}
	copy(out[base:], c.tmp)
	if cap(c.tmp) > 1<<20 {
		c.tmp = nil // do not keep a large buffer
	}
	return nil
}

// behindHead writes the shortest head of (major, n) into the 9 bytes
// reserved at out[at:], moving what follows them back over the unused
// part.
func behindHead(out []byte, at int, major byte, n uint64) []byte {
	var h [9]byte
	head := pcbor.AppendHead(h[:0], major, n)
	copy(out[at:], head)
	gap := 9 - len(head)
	if gap == 0 {
		return out
	}
	copy(out[at+len(head):], out[at+9:])
	return out[:len(out)-gap]
}
