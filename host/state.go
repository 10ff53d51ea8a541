package host

import (
	"fmt"
	"math/rand/v2"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// GrantState is the grant lineage records for a knot whose instances keep
// their state (StateKeep): an invocation can see what an earlier one left,
// so the knot is not hermetic.
const GrantState = "state"

// snapshot is an instance's state once initialised, to restore after
// each invocation.
type snapshot struct {
	mem     *resetMemory
	globals []api.MutableGlobal
	values  []uint64
}

// take records the instance's state now.
func (s *snapshot) take(mod api.Module, globals []uint32) error {
	for _, g := range globals {
		mg, ok := mod.ExportedGlobal(globalExport(g)).(api.MutableGlobal)
		if !ok {
			return fmt.Errorf("global %d is not exported for resetting", g)
		}
		s.globals = append(s.globals, mg)
		s.values = append(s.values, mg.Get())
	}
	return s.mem.snapshot()
}

// restore puts the instance back in the recorded state. It reports false
// if it cannot (the memory grew), and the instance must be discarded.
func (s *snapshot) restore() bool {
	if !s.mem.restore() {
		return false
	}
	for i, g := range s.globals {
		g.Set(s.values[i])
	}
	return true
}

// resetMemory is a linear memory the host maps (every instance's, where
// reserve maps), which it can restore to a snapshot (StateReset). Its
// address never changes: the whole maximum is reserved up front (address
// space, not memory: pages are backed as they are touched; see
// reserve).
type resetMemory struct {
	buf   []byte // the reservation
	size  uint64 // the memory's length now
	saved []byte // the snapshot
}

var _ experimental.LinearMemory = (*resetMemory)(nil)

func (m *resetMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.buf)) {
		return nil
	}
	m.size = size
	return m.buf[:size:size]
}

func (m *resetMemory) Free() {
	release(m.buf)
	m.buf = nil
}

// snapshot records the memory as it is now.
func (m *resetMemory) snapshot() error {
	m.saved = append(m.saved[:0], m.buf[:m.size]...)
	return nil
}

// restore brings the memory back to its snapshot; false if it grew.
// (Measured against alternatives on the machine of docs/performance.md:
// copying back only the pages that differ was no faster, and dropping the
// written pages with madvise over a copy-on-write mapping of the snapshot,
// which the kernel then faults back in page by page, was slower: for a WAT
// knot 16 µs against 5.6 µs, for a Go knot 270 µs against 220 µs.)
func (m *resetMemory) restore() bool {
	if m.size != uint64(len(m.saved)) {
		return false
	}
	copy(m.buf, m.saved)
	return true
}

// allocator gives an instance's memory: inst's resetMemory.
type allocator struct{ mem **resetMemory }

func (a allocator) Allocate(cap, max uint64) experimental.LinearMemory {
	b := reserve(max)
	if b == nil {
		return nil
	}
	m := &resetMemory{buf: b}
	*a.mem = m
	return m
}

// fakeClock is the clock of an instance without the clock granted: a
// fixed epoch that advances a millisecond a reading, from the same point
// in every invocation.
type fakeClock struct{ readings int64 }

const fakeEpoch = 1640995200_000_000_000 // 2022-01-01T00:00:00Z, as wazero's fake clock

func (c *fakeClock) walltime() (sec int64, nsec int32) {
	ns := fakeEpoch + c.readings*1_000_000
	c.readings++
	return ns / 1e9, int32(ns % 1e9)
}

func (c *fakeClock) nanotime() int64 {
	ns := c.readings * 1_000_000
	c.readings++
	return ns
}

// fakeRandom is the random source of an instance without randomness
// granted: a fixed stream, from its start in every invocation.
type fakeRandom struct{ r *rand.ChaCha8 }

func newFakeRandom() *fakeRandom {
	return &fakeRandom{r: rand.NewChaCha8([32]byte{'p', 'i', 'r', 'n'})}
}

func (f *fakeRandom) Read(p []byte) (int, error) { return f.r.Read(p) }

func (f *fakeRandom) reset() { f.r.Seed([32]byte{'p', 'i', 'r', 'n'}) }
