package host

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
)

// TestPrecheckAcceptsEveryModule runs the structural check on every
// module the repository commits but the deliberately malformed ones: each
// passes, and the log shows how far each is from the bounds.
func TestPrecheckAcceptsEveryModule(t *testing.T) {
	t.Parallel()
	var worst shape
	filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".wasm") || strings.Contains(p, "/target/") || strings.Contains(p, "node_modules") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		_, st, err := scan(b)
		if err != nil {
			if strings.Contains(p, "hostile/bad") {
				return nil
			}
			t.Errorf("%s: %v", p, err)
			return nil
		}
		t.Logf("%-60s %d functions, nesting %d, br_table targets %d, largest function %d bytes, cost %v; %d mutable globals; stateful: %q",
			p, st.Functions, st.Nesting, st.BranchTargets, st.FunctionBytes, st.Cost.Round(time.Millisecond), len(st.Globals), st.Stateful)
		worst = shape{Functions: max(worst.Functions, st.Functions), Nesting: max(worst.Nesting, st.Nesting),
			BranchTargets: max(worst.BranchTargets, st.BranchTargets), FunctionBytes: max(worst.FunctionBytes, st.FunctionBytes),
			Cost: max(worst.Cost, st.Cost)}
		return nil
	})
	t.Logf("largest of all: %+v", worst)
}

// TestMergeData: scan joins data segments a short run of zeros apart into
// one (Go modules have tens of thousands), and the instance's memory is
// the same, for segments in order, out of order and overlapping; sections
// it must not touch (a data count, so code may name a segment; a passive
// segment; an imported memory; a negative offset) are left as they are.
func TestMergeData(t *testing.T) {
	t.Parallel()
	sect := func(id byte, payload ...byte) []byte {
		return append(binary.AppendUvarint([]byte{id}, uint64(len(payload))), payload...)
	}
	active := func(off int32, data string) []byte {
		b := appendSleb([]byte{0, 0x41}, int64(off))
		b = append(b, 0x0b)
		b = binary.AppendUvarint(b, uint64(len(data)))
		return append(b, data...)
	}
	data := func(segs ...[]byte) []byte {
		b := binary.AppendUvarint(nil, uint64(len(segs)))
		for _, s := range segs {
			b = append(b, s...)
		}
		return sect(11, b...)
	}
	mod := func(secs ...[]byte) []byte {
		b := []byte("\x00asm\x01\x00\x00\x00")
		for _, s := range secs {
			b = append(b, s...)
		}
		return b
	}
	memory := sect(5, 1, 0, 1)                                            // one memory of one page
	export := sect(7, 1, 3, 'm', 'e', 'm', 2, 0)                          // exported as "mem"
	segs := [][]byte{active(0, "ab"), active(10, "cd"), active(74, "ef"), // 8 and 62 zeros apart: one segment
		active(200, "gh"), active(100, "ij"), active(101, "XY"), active(103, "z")} // far, before, overlapping, right after
	orig := mod(memory, export, data(segs...))
	got, _, err := scan(orig)
	if err != nil {
		t.Fatal(err)
	}
	if n := dataSegments(t, got); n != 4 {
		t.Errorf("%d segments after the merge, want 4 (0-75, 200, 100, 101-103)", n)
	}
	ctx := t.Context()
	read := func(b []byte) []byte {
		rt := wazero.NewRuntime(ctx)
		defer rt.Close(ctx)
		m, err := rt.Instantiate(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		mem, _ := m.ExportedMemory("mem").Read(0, 300)
		return bytes.Clone(mem)
	}
	if a, b := read(orig), read(got); !bytes.Equal(a, b) {
		t.Errorf("memory differs after the merge:\n%x\n%x", a, b)
	}

	for name, m := range map[string][]byte{
		"data count":      mod(memory, export, sect(12, 2), data(active(0, "a"), active(2, "b"))),
		"passive":         mod(memory, export, data(active(0, "a"), append([]byte{1}, 1, 'p'), active(2, "b"))),
		"imported memory": mod(sect(2, 1, 1, 'e', 1, 'm', 2, 0, 1), data(active(0, "a"), active(2, "b"))),
		"negative offset": mod(memory, export, data(active(0, "a"), active(-1, "b"))),
		"one segment":     mod(memory, export, data(active(0, "a"))),
	} {
		got, _, err := scan(m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(got, m) {
			t.Errorf("%s: scan changed the module", name)
		}
	}
}

// dataSegments returns the count of a module's data section.
func dataSegments(t *testing.T, m []byte) int {
	r := &reader{b: m, off: 8}
	for r.off < len(r.b) {
		id := r.byte()
		size := int(r.u32())
		if id == 11 {
			return int(r.u32())
		}
		r.skip(size)
	}
	t.Fatal("no data section")
	return 0
}
