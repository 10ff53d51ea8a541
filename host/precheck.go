package host

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Bounds on a module's structure, checked before it is compiled. A module
// is untrusted input to the compiler and to every instance: each of these
// is something a small module could otherwise make the host spend without
// bound, in compile time or in host memory per instance (outside the
// Memory limit, which counts linear memory only).
const (
	// MaxFunctions bounds the functions a module defines (wazero keeps a
	// compiled body and per-instance state for each).
	MaxFunctions = 1 << 18
	// MaxFunctionBytes bounds one function's code: compile time grows
	// with it.
	MaxFunctionBytes = 2 << 20
	// MaxNesting bounds how deeply blocks, loops and ifs nest in one
	// function: the compiler's work grows with its square (Go's own
	// modules nest 550 deep; 2048 compiles in about 90 ms).
	MaxNesting = 2048
	// MaxBranchTargets bounds the targets of the br_tables of one
	// function (65,536 compile in about 0.35 s).
	MaxBranchTargets = 1 << 16
	// MaxCompileCost bounds the compile time a module may ask for, as
	// estimated from its code before compiling (see compileCost): 20 s of
	// this machine kind's compiler, against about 1 s for a Go module.
	MaxCompileCost = 20 * time.Second
	// MaxTableElements bounds each table, declared and grown (8 bytes of
	// host memory an element, per instance): a table without a maximum,
	// or with a larger one, gets this one, so table.grow fails past it as
	// the standard says it may.
	MaxTableElements = 1 << 20
	// MaxTables, MaxGlobals, MaxTypes and MaxSegmentElements bound the
	// rest of what an instance allocates on the host.
	MaxTables          = 16
	MaxGlobals         = 1 << 16
	MaxTypes           = 1 << 16
	MaxDataSegments    = 1 << 16
	MaxSegmentElements = 1 << 20 // in all element segments
	// MaxNameBytes bounds each name in the name section: traps quote them
	// once per stack frame.
	MaxNameBytes = 64 << 10
)

// shape is what scan measured of a module, against the bounds above.
type shape struct {
	Functions, Nesting, BranchTargets, FunctionBytes int
	Cost                                             time.Duration // estimated compile time
	// Globals are the module's own mutable globals, exported by the
	// bytes scan returns under globalExport names so that an instance's
	// state can be restored.
	Globals []uint32
	// Stateful says why an instance's state cannot be restored between
	// invocations ("" if it can): a table it can change, a segment it can
	// drop, a vector global.
	Stateful string
}

// globalExport is the name under which the host exports a module's
// mutable global idx, to save and restore it.
func globalExport(idx uint32) string { return fmt.Sprintf("pirn:global:%d", idx) }

// compileCost estimates the time the optimizing compiler takes over one
// function: linear in its code, quadratic in its nesting, and steep in
// its branch targets (measured with wazero v1.12 on the machine of
// docs/performance.md: 2 MiB of straight code 0.2 s, 8192 nested loops
// 1.2 s, a br_table of 262,144 targets 1.8 s).
func compileCost(bytes, nesting, targets int) time.Duration {
	return time.Duration(bytes)*100*time.Nanosecond + time.Duration(nesting*nesting)*17*time.Nanosecond +
		time.Duration(targets)*6*time.Microsecond
}

// scan reads a module's binary, refuses it if it passes a bound above,
// and returns the bytes to compile: the module itself, but with every
// table's maximum at most MaxTableElements. It does not validate the
// module (the compiler does); it reads just enough to bound it, and
// refuses what it cannot read. It also reports the module's shape.
func scan(wasm []byte) ([]byte, shape, error) {
	var st shape
	b, err := scanInto(wasm, &st)
	return b, st, err
}

func scanInto(wasm []byte, st *shape) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, errors.New("not a WebAssembly module (no \\0asm header)")
	}
	r := &reader{b: wasm, off: 8, st: st}
	var imports imported
	var dataCount bool  // a data count section: code may name data segments
	var edits []edit    // sections to replace, in order
	exportAt := -1      // where a new export section would go
	var exports *reader // the export section, if any
	var exportsAt edit
	for r.off < len(r.b) {
		start := r.off
		id := r.byte()
		size := r.u32()
		if r.err != nil || uint64(size) > uint64(len(r.b)-r.off) {
			return nil, fmt.Errorf("malformed module: the section at byte %d runs past its end", start)
		}
		sec := &reader{b: r.b[r.off : r.off+int(size)], base: r.off, st: st}
		r.off += int(size)
		if id > 7 && id != 12 && exportAt < 0 { // the first section after exports' place
			exportAt = start
		}
		var err error
		switch id {
		case 0:
			err = sec.names()
		case 1:
			err = sec.count("types", MaxTypes)
		case 2:
			imports, err = sec.imports()
		case 3:
			err = sec.count("functions", MaxFunctions)
		case 4:
			var clamped []byte
			if clamped, err = sec.tables(imports.tables); err == nil && clamped != nil {
				edits = append(edits, edit{start, r.off, section(4, clamped)})
			}
		case 6:
			err = sec.globals(imports.globals)
		case 7:
			exports, exportsAt = sec, edit{start: start, end: r.off}
		case 9:
			err = sec.elements()
		case 10:
			err = sec.code()
		case 11:
			if err = sec.count("data segments", MaxDataSegments); err == nil && !dataCount && imports.memories == 0 {
				if merged := mergeData(sec.b); merged != nil {
					edits = append(edits, edit{start, r.off, section(11, merged)})
				}
			}
		case 12:
			dataCount = true
		}
		if err != nil {
			return nil, err
		}
	}
	if exportAt < 0 {
		exportAt = len(wasm)
	}
	if len(st.Globals) > 0 {
		// Export every mutable global of the module's own, so that the
		// host can save and restore it.
		var count uint32
		var body []byte
		if exports != nil {
			count = exports.u32()
			body = exports.b[exports.off:]
			exportAt = -1
		}
		out := binary.AppendUvarint(nil, uint64(count)+uint64(len(st.Globals)))
		out = append(out, body...)
		for _, g := range st.Globals {
			name := globalExport(g)
			out = binary.AppendUvarint(out, uint64(len(name)))
			out = append(out, name...)
			out = append(out, 3) // a global
			out = binary.AppendUvarint(out, uint64(g))
		}
		if exports != nil {
			exportsAt.with = section(7, out)
			edits = append(edits, exportsAt)
		} else {
			edits = append(edits, edit{exportAt, exportAt, section(7, out)})
		}
	}
	if len(edits) == 0 {
		return wasm, nil
	}
	slices.SortFunc(edits, func(a, b edit) int { return a.start - b.start })
	out := make([]byte, 0, len(wasm)+256)
	at := 0
	for _, e := range edits {
		out = append(out, wasm[at:e.start]...)
		out = append(out, e.with...)
		at = e.end
	}
	return append(out, wasm[at:]...), nil
}

// mergeGap is the longest run of zeros mergeData writes to join two data
// segments: Go's linker starts a new segment at every run of 16 zero bytes
// or so, tens of thousands in a Go module.
const mergeGap = 64

// mergeData returns the payload of a data section whose segments, each
// separated from the one before it by at most mergeGap bytes, are joined
// into one, the bytes between them zero; or nil if it would change nothing
// or the section has a segment other than an active one of memory 0 at a
// constant offset. It is for modules that define their own memory and no
// data count (so no code names a segment): a fresh memory is zero, so the
// instance's memory is the same, and the host and wazero keep a few
// segments rather than one each (about 100 bytes, and 24 more per
// instance) for every piece of the Go runtime's data.
func mergeData(payload []byte) []byte {
	type seg struct {
		off  uint32
		data []byte
	}
	r := &reader{b: payload}
	n := r.u32()
	segs := make([]seg, 0, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		if r.u32() != 0 || r.byte() != 0x41 { // active, memory 0, i32.const
			return nil
		}
		off, ok := r.sleb32()
		if !ok || off < 0 || r.byte() != 0x0b {
			return nil // not a lone non-negative constant
		}
		segs = append(segs, seg{uint32(off), r.bytes()})
	}
	if r.err != nil || r.off != len(r.b) || len(segs) < 2 {
		return nil
	}
	var out []seg
	for _, s := range segs {
		if k := len(out) - 1; k >= 0 {
			last := &out[k]
			end := uint64(last.off) + uint64(len(last.data))
			if uint64(s.off) >= end && uint64(s.off)-end <= mergeGap {
				last.data = append(last.data, make([]byte, uint64(s.off)-end)...)
				last.data = append(last.data, s.data...)
				continue
			}
		}
		out = append(out, seg{s.off, slices.Clip(s.data)})
	}
	if len(out) == len(segs) {
		return nil
	}
	b := binary.AppendUvarint(nil, uint64(len(out)))
	for _, s := range out {
		b = append(b, 0, 0x41)
		b = appendSleb(b, int64(s.off))
		b = append(b, 0x0b)
		b = binary.AppendUvarint(b, uint64(len(s.data)))
		b = append(b, s.data...)
	}
	return b
}

// sleb32 reads a signed LEB128 of at most 32 bits.
func (r *reader) sleb32() (int32, bool) {
	var v int64
	for shift := uint(0); shift < 35; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0, false
		}
		v |= int64(c&0x7f) << shift
		if c&0x80 == 0 {
			if c&0x40 != 0 {
				v |= -1 << (shift + 7) // sign-extend
			}
			return int32(v), v >= -1<<31 && v < 1<<31
		}
	}
	r.err = errors.New("integer too long")
	return 0, false
}

// edit replaces wasm[start:end] with with.
type edit struct {
	start, end int
	with       []byte
}

// section encodes a section.
func section(id byte, payload []byte) []byte {
	s := binary.AppendUvarint([]byte{id}, uint64(len(payload)))
	return append(s, payload...)
}

// imported counts what a module imports.
type imported struct{ tables, memories, globals int }

// reader reads a module's binary; the first error sticks.
type reader struct {
	b    []byte
	off  int
	base int // offset of b in the module, for messages
	err  error
	st   *shape
}

var errTruncated = errors.New("truncated")

func (r *reader) byte() byte {
	if r.err != nil || r.off >= len(r.b) {
		r.err = errTruncated
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

// uleb reads an unsigned LEB128 of at most bits bits.
func (r *reader) uleb(bits uint) uint64 {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		if shift >= bits+7 {
			r.err = errors.New("integer too long")
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
}

func (r *reader) u32() uint32 { return uint32(r.uleb(32)) }

// sleb skips a signed LEB128 of at most bits bits.
func (r *reader) sleb(bits uint) { r.uleb(bits) }

func (r *reader) skip(n int) {
	if r.err != nil || n < 0 || n > len(r.b)-r.off {
		r.err = errTruncated
		return
	}
	r.off += n
}

func (r *reader) fail(format string, args ...any) error {
	if r.err != nil {
		return fmt.Errorf("malformed module at byte %d: %v", r.base+r.off, r.err)
	}
	return fmt.Errorf(format, args...)
}

// count checks a section's leading count against a bound.
func (r *reader) count(what string, limit int) error {
	n := r.u32()
	if r.err != nil {
		return r.fail("")
	}
	if n > uint32(limit) {
		return fmt.Errorf("declares %d %s, over the limit of %d", n, what, limit)
	}
	return nil
}

// limits reads a table's or memory's limits.
func (r *reader) limits() (lo uint64, hi uint64, hasMax bool) {
	flag := r.byte()
	lo = r.uleb(32)
	if flag&1 != 0 {
		hi, hasMax = r.uleb(32), true
	}
	return lo, hi, hasMax
}

// imports counts the tables and globals a module imports, and bounds the
// tables.
func (r *reader) imports() (imported, error) {
	n := r.u32()
	var im imported
	for i := uint32(0); i < n && r.err == nil; i++ {
		if string(r.bytes()) == meterModule {
			return im, fmt.Errorf("imports from %s, which only the host may use", meterModule)
		}
		r.skip(int(r.u32())) // the field's name
		switch kind, lo := r.importDesc(); kind {
		case 1: // table
			if lo > MaxTableElements {
				return im, fmt.Errorf("imports a table of %d elements, over the limit of %d", lo, MaxTableElements)
			}
			im.tables++
		case 2: // memory
			im.memories++
		case 3: // global
			im.globals++
		}
	}
	if r.err != nil {
		return im, r.fail("")
	}
	return im, nil
}

// importDesc reads an import's descriptor and returns its kind (0
// function, 1 table, 2 memory, 3 global) and, for a table or memory, its
// lower limit.
func (r *reader) importDesc() (kind byte, lo uint64) {
	switch kind = r.byte(); kind {
	case 0: // a type index
		r.u32()
	case 1: // a reference type and limits
		r.byte()
		lo, _, _ = r.limits()
	case 2:
		lo, _, _ = r.limits()
	case 3: // a value type and mutability
		r.byte()
		r.byte()
	default:
		r.err = errors.New("unknown import kind")
	}
	return kind, lo
}

// globals bounds the global section and lists the mutable globals.
func (r *reader) globals(imported int) error {
	if err := r.count("globals", MaxGlobals); err != nil {
		return err
	}
	r.off = 0
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		typ, mut := r.byte(), r.byte()
		if mut == 1 {
			if typ == 0x7b {
				r.st.stateful("it has a mutable v128 global")
			}
			r.st.Globals = append(r.st.Globals, uint32(imported)+i)
		}
		if err := r.constExpr(); err != nil {
			return err
		}
	}
	if r.err != nil {
		return r.fail("")
	}
	return nil
}

// stateful notes the first reason an instance cannot be reset.
func (st *shape) stateful(why string) {
	if st.Stateful == "" {
		st.Stateful = why
	}
}

// tables checks the table section and returns it re-encoded if a table
// needed a maximum (nil if none did).
func (r *reader) tables(imported int) ([]byte, error) {
	n := r.u32()
	if r.err == nil && int(n)+imported > MaxTables {
		return nil, fmt.Errorf("declares %d tables, over the limit of %d", int(n)+imported, MaxTables)
	}
	out := binary.AppendUvarint(nil, uint64(n))
	changed := false
	for i := uint32(0); i < n && r.err == nil; i++ {
		ref := r.byte()
		lo, hi, hasMax := r.limits()
		if r.err != nil {
			break
		}
		if lo > MaxTableElements {
			return nil, fmt.Errorf("declares a table of %d elements, over the limit of %d", lo, MaxTableElements)
		}
		if !hasMax || hi > MaxTableElements {
			hi, changed = MaxTableElements, true
		}
		out = append(out, ref, 1)
		out = binary.AppendUvarint(out, lo)
		out = binary.AppendUvarint(out, hi)
	}
	if r.err != nil || r.off != len(r.b) {
		if r.err == nil {
			r.err = errors.New("trailing bytes")
		}
		return nil, r.fail("")
	}
	if !changed {
		return nil, nil
	}
	return out, nil
}

// elements counts the elements of all element segments.
func (r *reader) elements() error {
	n := r.u32()
	total := uint64(0)
	for i := uint32(0); i < n && r.err == nil; i++ {
		mode := r.u32()
		if mode > 7 {
			r.err = fmt.Errorf("unknown element segment mode %d", mode)
			break
		}
		if mode&2 != 0 && mode&1 == 0 { // an explicit table index
			r.u32()
		}
		if mode&1 == 0 { // active: an offset expression
			if err := r.constExpr(); err != nil {
				return err
			}
		}
		if mode&3 != 0 { // an element kind or reference type
			r.byte()
		}
		count := uint64(r.u32())
		if total += count; total > MaxSegmentElements {
			return fmt.Errorf("element segments hold more than %d elements", MaxSegmentElements)
		}
		for range count {
			if r.err != nil {
				break
			}
			if mode&4 != 0 {
				if err := r.constExpr(); err != nil {
					return err
				}
			} else {
				r.u32()
			}
		}
	}
	if r.err != nil {
		return r.fail("")
	}
	return nil
}

// constExpr skips a constant expression through its end.
func (r *reader) constExpr() error {
	depth := 1
	for r.err == nil && depth > 0 {
		op := r.byte()
		switch op {
		case 0x0b:
			depth--
		default:
			if err := r.immediates(op, nil); err != nil {
				return err
			}
		}
	}
	if r.err != nil {
		return r.fail("")
	}
	return nil
}

// code checks each function body: its size, its nesting and its branch
// tables.
func (r *reader) code() error {
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		size := r.u32()
		if r.err != nil {
			break
		}
		if size > MaxFunctionBytes {
			return fmt.Errorf("function %d has %d bytes of code, over the limit of %d", i, size, MaxFunctionBytes)
		}
		if uint64(size) > uint64(len(r.b)-r.off) {
			r.err = errTruncated
			break
		}
		body := &reader{b: r.b[r.off : r.off+int(size)], base: r.base + r.off, st: r.st}
		r.off += int(size)
		r.st.Functions++
		r.st.FunctionBytes = max(r.st.FunctionBytes, int(size))
		if err := body.function(i); err != nil {
			return err
		}
		if r.st.Cost > MaxCompileCost {
			return fmt.Errorf("is too costly to compile: its code's size, nesting and branch tables come to more than an estimated %s of compilation, the limit", MaxCompileCost)
		}
	}
	if r.err != nil {
		return r.fail("")
	}
	return nil
}

// function walks one function body.
func (r *reader) function(index uint32) error {
	locals := r.u32()
	for i := uint32(0); i < locals && r.err == nil; i++ {
		r.u32()
		r.byte()
	}
	depth, deepest := 1, 1
	targets := 0
	for r.err == nil && r.off < len(r.b) {
		op := r.byte()
		switch op {
		case 0x02, 0x03, 0x04: // block, loop, if
			r.blockType()
			if depth++; depth > deepest {
				deepest = depth
				r.st.Nesting = max(r.st.Nesting, deepest)
				if deepest > MaxNesting {
					return fmt.Errorf("function %d nests blocks %d deep, over the limit of %d", index, deepest, MaxNesting)
				}
			}
		case 0x0b: // end
			depth--
		case 0x0e: // br_table
			n := r.u32()
			if targets += int(n); targets > MaxBranchTargets {
				return fmt.Errorf("function %d has br_tables of more than %d targets in all, the limit", index, MaxBranchTargets)
			}
			r.st.BranchTargets = max(r.st.BranchTargets, targets)
			for j := uint32(0); j <= n && r.err == nil; j++ {
				r.u32()
			}
		default:
			if err := r.immediates(op, &index); err != nil {
				return err
			}
		}
	}
	if r.err != nil {
		return r.fail("")
	}
	r.st.Cost += compileCost(len(r.b), deepest, targets)
	return nil
}

func (r *reader) blockType() {
	c := r.byte()
	if c == 0x40 || c >= 0x6f && c <= 0x7f { // empty, or a value type
		return
	}
	r.off--
	r.sleb(33) // a type index
}

func (r *reader) memarg() {
	r.u32()
	r.u32()
}

// immediates skips the immediates of op (other than the control
// instructions function handles). fn names the function for messages; nil
// in a constant expression.
func (r *reader) immediates(op byte, fn *uint32) error {
	switch {
	case op == 0x00, op == 0x01, op == 0x05, op == 0x0f, op == 0x1a, op == 0x1b, op == 0xd1,
		op >= 0x45 && op <= 0xc4:
		// no immediates
	case op == 0x26: // table.set
		r.st.stateful("it changes a table (table.set)")
		r.u32()
	case op == 0x0c, op == 0x0d, op == 0x10, op == 0xd2, op >= 0x20 && op <= 0x25:
		r.u32()
	case op == 0x11: // call_indirect
		r.u32()
		r.u32()
	case op == 0x1c: // select with types
		n := r.u32()
		r.skip(int(n))
	case op >= 0x28 && op <= 0x3e:
		r.memarg()
	case op == 0x3f, op == 0x40, op == 0xd0:
		r.byte()
	case op == 0x41:
		r.sleb(32)
	case op == 0x42:
		r.sleb(64)
	case op == 0x43:
		r.skip(4)
	case op == 0x44:
		r.skip(8)
	case op == 0xfc:
		sub := r.u32()
		switch sub {
		case 9, 13:
			r.st.stateful("it drops a segment (data.drop or elem.drop)")
		case 12, 14, 15, 17:
			r.st.stateful("it changes a table (table.init, table.copy, table.grow or table.fill)")
		}
		switch {
		case sub <= 7:
		case sub == 8, sub == 10, sub == 12, sub == 14:
			r.u32()
			r.u32()
		case sub == 9, sub == 11, sub == 13, sub >= 15 && sub <= 17:
			r.u32()
		default:
			return r.unknown(fmt.Sprintf("0xfc %d", sub), fn)
		}
	case op == 0xfd:
		switch sub := r.u32(); {
		case sub <= 11, sub == 92, sub == 93:
			r.memarg()
		case sub == 12, sub == 13:
			r.skip(16)
		case sub >= 21 && sub <= 34:
			r.byte()
		case sub >= 84 && sub <= 91:
			r.memarg()
			r.byte()
		case sub <= 0xff:
		default:
			return r.unknown(fmt.Sprintf("0xfd %d", sub), fn)
		}
	default:
		return r.unknown(fmt.Sprintf("0x%02x", op), fn)
	}
	return nil
}

func (r *reader) unknown(op string, fn *uint32) error {
	if fn != nil {
		return fmt.Errorf("function %d uses instruction %s, which pirn does not run", *fn, op)
	}
	return fmt.Errorf("a constant expression uses instruction %s, which pirn does not run", op)
}

// names checks the names of the name section (the host reads no other
// custom section). A malformed name section is left to the compiler.
func (r *reader) names() error {
	l := r.u32()
	if r.err != nil || uint64(l) > uint64(len(r.b)-r.off) || string(r.b[r.off:r.off+int(l)]) != "name" {
		return nil
	}
	r.off += int(l)
	for r.err == nil && r.off < len(r.b) {
		id := r.byte()
		size := r.u32()
		if r.err != nil || uint64(size) > uint64(len(r.b)-r.off) {
			return nil
		}
		sub := &reader{b: r.b[r.off : r.off+int(size)], base: r.base + r.off}
		r.off += int(size)
		var err error
		switch id {
		case 0: // the module's name
			err = sub.name()
		case 2, 3, 10: // locals, labels, fields: a map of maps
			err = sub.nameMap(true)
		default: // functions, types, tables, memories, globals, ...
			err = sub.nameMap(false)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *reader) name() error {
	l := r.u32()
	if l > MaxNameBytes {
		return fmt.Errorf("its name section holds a name of %d bytes, over the limit of %d", l, MaxNameBytes)
	}
	r.skip(int(l))
	return nil
}

// nameMap reads (index, name) pairs, or with indirect (index, name map).
func (r *reader) nameMap(indirect bool) error {
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.u32()
		var err error
		if indirect {
			err = r.nameMap(false)
		} else {
			err = r.name()
		}
		if err != nil {
			return err
		}
	}
	return nil
}
