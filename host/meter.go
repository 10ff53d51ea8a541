package host

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// Metering: how an invocation with a timeout is interrupted.
//
// A guest runs as native code that the Go scheduler cannot preempt, so
// something must make it return to Go now and then, both to notice its
// deadline and to let the runtime stop the world for a collection. wazero
// does this with WithCloseOnContextDone: an exit to Go at every loop
// iteration (about 25 ns each; a Go guest takes thousands of them per
// invocation) and a goroutine per call to watch the context. pirn instead
// rewrites the module before compiling it: a counter (a mutable i64 global
// the module cannot name) is decremented at every function entry and loop
// iteration by the number of instructions the function or the loop body
// holds outside its inner loops, and when it goes negative the code calls
// the host's meter function, which ends the invocation if its context is
// done and otherwise refills the counter. The guarantee is wazero's and
// more: the check covers calls as well as loops, so code that runs long
// through calls without looping (a call tree of exponential size) is
// stopped too, which wazero's loop checks miss.
//
// Between two meter calls a guest runs at most meterBudget counted
// instructions plus one loop body or function's straight-line code; a
// counted instruction is a single Wasm instruction, a few nanoseconds at
// most except for bulk memory instructions, which are bounded by the
// memory limit.
const (
	meterModule = "pirn:meter"
	meterFunc   = "tick"
	meterBudget = 1 << 20
)

// meter returns wasm rewritten so that it calls meterModule.meterFunc at
// least once every meterBudget counted instructions. It refuses a module
// that imports from meterModule itself, or whose code names a function or
// global it does not have (the new ones would otherwise be reachable).
// wasm must have passed scan.
func meter(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 {
		return nil, errors.New("not a WebAssembly module")
	}
	m := &meterer{}
	out := make([]byte, 0, len(wasm)+len(wasm)/4+64) // a Go module grows by 10-15%
	out = append(out, wasm[:8]...)
	r := &reader{b: wasm, off: 8, st: &shape{}}
	for r.off < len(r.b) {
		start := r.off
		id := r.byte()
		size := r.u32()
		if r.err != nil || uint64(size) > uint64(len(r.b)-r.off) {
			return nil, fmt.Errorf("malformed module: the section at byte %d runs past its end", start)
		}
		sec := &reader{b: r.b[r.off : r.off+int(size)], base: r.off, st: r.st}
		r.off += int(size)
		if id != 0 {
			out = m.missing(out, order(id))
		}
		var body []byte
		var err error
		switch id {
		case 0:
			body, err = m.custom(sec)
			if body == nil && err == nil {
				continue // dropped
			}
		case 1:
			body, err = m.typeSection(sec)
		case 2:
			body, err = m.importSection(sec)
		case 3:
			m.funcs += sec.u32()
			body = sec.b
		case 6:
			body, err = m.globalSection(sec)
		case 7:
			body, err = m.exportSection(sec)
		case 8:
			idx := sec.u32()
			if err = m.checkFunc(idx); err == nil && sec.err == nil {
				body = binary.AppendUvarint(nil, uint64(m.fn(idx)))
			}
		case 9:
			body, err = m.elementSection(sec)
		case 10:
			// Written in place: the largest section by far.
			out, err = m.codeSection(sec, out)
			if err == nil && sec.err != nil {
				err = sec.fail("")
			}
			if err != nil {
				return nil, err
			}
			continue
		default:
			body = sec.b
		}
		if err == nil && sec.err != nil {
			err = sec.fail("")
		}
		if err != nil {
			return nil, err
		}
		out = append(binary.AppendUvarint(append(out, id), uint64(len(body))), body...)
	}
	return m.missing(out, order(11)+1), nil
}

// meterer carries what the rewrite has learnt of the module so far.
type meterer struct {
	types         uint32 // types declared (the meter's type is the next)
	importedFuncs uint32 // functions imported: the meter's index
	funcs         uint32 // functions, imported and defined, before the rewrite
	globals       uint32 // globals, imported and defined: the counter's index
	done          [3]bool
}

// order ranks a known section by where it must appear.
func order(id byte) int {
	switch id {
	case 12: // data count, between element and code
		return 10
	case 10:
		return 11
	case 11:
		return 12
	}
	return int(id)
}

// missing adds the type, import and global sections the rewrite needs but
// the module lacks, before a section of rank next.
func (m *meterer) missing(out []byte, next int) []byte {
	if !m.done[0] && next > 1 {
		out = append(out, section(1, m.appendType(binary.AppendUvarint(nil, 1)))...)
		m.done[0] = true
	}
	if !m.done[1] && next > 2 {
		out = append(out, section(2, m.appendImport(binary.AppendUvarint(nil, 1)))...)
		m.done[1] = true
	}
	if !m.done[2] && next > 6 {
		out = append(out, section(6, appendCounter(binary.AppendUvarint(nil, 1)))...)
		m.done[2] = true
	}
	return out
}

// fn maps a function index of the module to the rewritten module's.
func (m *meterer) fn(idx uint32) uint32 {
	if idx < m.importedFuncs {
		return idx
	}
	return idx + 1
}

func (m *meterer) checkFunc(idx uint32) error {
	if idx >= m.funcs {
		return fmt.Errorf("names function %d, and it has only %d", idx, m.funcs)
	}
	return nil
}

func (m *meterer) checkGlobal(idx uint32) error {
	if idx >= m.globals {
		return fmt.Errorf("names global %d, and it has only %d", idx, m.globals)
	}
	return nil
}

// appendType appends the meter's type, () -> i64.
func (m *meterer) appendType(b []byte) []byte { return append(b, 0x60, 0x00, 0x01, 0x7e) }

// appendImport appends the meter's import.
func (m *meterer) appendImport(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(meterModule)))
	b = append(b, meterModule...)
	b = binary.AppendUvarint(b, uint64(len(meterFunc)))
	b = append(b, meterFunc...)
	b = append(b, 0x00)
	return binary.AppendUvarint(b, uint64(m.types))
}

// appendCounter appends the counter: a mutable i64 starting at the budget.
func appendCounter(b []byte) []byte {
	b = append(b, 0x7e, 0x01, 0x42)
	b = appendSleb(b, meterBudget)
	return append(b, 0x0b)
}

func (m *meterer) typeSection(r *reader) ([]byte, error) {
	m.types = r.u32()
	m.done[0] = true
	out := binary.AppendUvarint(nil, uint64(m.types)+1)
	out = append(out, r.b[r.off:]...)
	return m.appendType(out), nil
}

func (m *meterer) importSection(r *reader) ([]byte, error) {
	n := r.u32()
	body := r.off
	for i := uint32(0); i < n && r.err == nil; i++ {
		if string(r.bytes()) == meterModule { // refused by scan too
			return nil, fmt.Errorf("imports from %s, which only the host may use", meterModule)
		}
		r.skip(int(r.u32()))
		switch kind, _ := r.importDesc(); kind {
		case 0:
			m.importedFuncs++
		case 3:
			m.globals++
		}
	}
	if r.err != nil {
		return nil, r.fail("")
	}
	m.done[1] = true
	m.funcs = m.importedFuncs
	out := binary.AppendUvarint(nil, uint64(n)+1)
	out = append(out, r.b[body:]...)
	return m.appendImport(out), nil
}

func (m *meterer) globalSection(r *reader) ([]byte, error) {
	n := r.u32()
	body := r.off
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.byte()
		r.byte()
		if err := m.constExpr(r, nil); err != nil {
			return nil, err
		}
	}
	if r.err != nil {
		return nil, r.fail("")
	}
	m.globals += n
	m.done[2] = true
	out := binary.AppendUvarint(nil, uint64(n)+1)
	out = append(out, r.b[body:]...)
	return appendCounter(out), nil
}

func (m *meterer) exportSection(r *reader) ([]byte, error) {
	n := r.u32()
	out := binary.AppendUvarint(nil, uint64(n))
	for i := uint32(0); i < n && r.err == nil; i++ {
		name := r.bytes()
		kind := r.byte()
		idx := r.u32()
		if r.err != nil {
			break
		}
		switch kind {
		case 0:
			if err := m.checkFunc(idx); err != nil {
				return nil, err
			}
			idx = m.fn(idx)
		case 3:
			if err := m.checkGlobal(idx); err != nil {
				return nil, err
			}
		}
		out = binary.AppendUvarint(out, uint64(len(name)))
		out = append(out, name...)
		out = append(out, kind)
		out = binary.AppendUvarint(out, uint64(idx))
	}
	if r.err != nil {
		return nil, r.fail("")
	}
	return out, nil
}

func (m *meterer) elementSection(r *reader) ([]byte, error) {
	n := r.u32()
	out := binary.AppendUvarint(nil, uint64(n))
	for i := uint32(0); i < n && r.err == nil; i++ {
		mode := r.u32()
		if mode > 7 {
			return nil, fmt.Errorf("unknown element segment mode %d", mode)
		}
		out = binary.AppendUvarint(out, uint64(mode))
		if mode&2 != 0 && mode&1 == 0 {
			out = binary.AppendUvarint(out, uint64(r.u32()))
		}
		var err error
		if mode&1 == 0 {
			if out, err = m.constExprTo(r, out); err != nil {
				return nil, err
			}
		}
		if mode&3 != 0 {
			out = append(out, r.byte())
		}
		count := r.u32()
		out = binary.AppendUvarint(out, uint64(count))
		for range count {
			if r.err != nil {
				break
			}
			if mode&4 != 0 {
				if out, err = m.constExprTo(r, out); err != nil {
					return nil, err
				}
				continue
			}
			idx := r.u32()
			if err := m.checkFunc(idx); err != nil && r.err == nil {
				return nil, err
			}
			out = binary.AppendUvarint(out, uint64(m.fn(idx)))
		}
	}
	if r.err != nil {
		return nil, r.fail("")
	}
	return out, nil
}

// constExprTo copies a constant expression to out, renumbering ref.func.
func (m *meterer) constExprTo(r *reader, out []byte) ([]byte, error) {
	start := r.off
	var refs []int // offsets of ref.func immediates
	if err := m.constExpr(r, &refs); err != nil {
		return nil, err
	}
	at := start
	for _, off := range refs {
		out = append(out, r.b[at:off]...)
		rr := &reader{b: r.b, off: off}
		idx := rr.u32()
		out = binary.AppendUvarint(out, uint64(m.fn(idx)))
		at = rr.off
	}
	return append(out, r.b[at:r.off]...), nil
}

// constExpr reads a constant expression through its end, checking the
// indices it names and noting where its ref.func immediates are.
func (m *meterer) constExpr(r *reader, refs *[]int) error {
	for r.err == nil {
		op := r.byte()
		switch op {
		case 0x0b:
			return nil
		case 0x23: // global.get
			if err := m.checkGlobal(r.u32()); err != nil && r.err == nil {
				return err
			}
		case 0xd2: // ref.func
			at := r.off
			if err := m.checkFunc(r.u32()); err != nil && r.err == nil {
				return err
			}
			if refs != nil {
				*refs = append(*refs, at)
			}
		default:
			if err := r.immediates(op, nil); err != nil {
				return err
			}
		}
	}
	return r.fail("")
}

// codeSection appends the code section to out, every function body
// rewritten. Its size goes in a padded five-byte LEB128, written last.
func (m *meterer) codeSection(r *reader, out []byte) ([]byte, error) {
	out = append(out, 10, 0x80, 0x80, 0x80, 0x80, 0x00)
	sizeAt := len(out) - 5
	n := r.u32()
	out = binary.AppendUvarint(out, uint64(n))
	var body []byte
	var w walk
	for i := uint32(0); i < n && r.err == nil; i++ {
		size := r.u32()
		if r.err != nil || uint64(size) > uint64(len(r.b)-r.off) {
			r.err = errTruncated
			break
		}
		fr := &reader{b: r.b[r.off : r.off+int(size)], base: r.base + r.off, st: r.st}
		r.off += int(size)
		var err error
		if body, err = m.function(fr, i, body[:0], &w); err != nil {
			return nil, err
		}
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	if r.err != nil {
		return nil, r.fail("")
	}
	size := len(out) - sizeAt - 5
	if size >= 1<<32 {
		return nil, errors.New("the metered code section is over 4 GiB")
	}
	for i := range 5 {
		out[sizeAt+i] = byte(size>>(7*i))&0x7f | 0x80
	}
	out[sizeAt+4] &= 0x7f
	return out, nil
}

// walk is one function's instructions as the rewrite needs them.
type walk struct {
	weights []int64 // counted instructions: [0] the function's, then each loop's in order
	loops   []int   // offset just past each loop's block type
	calls   []int   // offsets of call and ref.func immediates
	frames  []int   // per open block: its loop's ordinal, or -1
	open    []int   // the loops open, innermost last ([0]: the function)
}

// function rewrites one body into out: a check on entry and at the top of
// every loop, and calls renumbered.
func (m *meterer) function(r *reader, index uint32, out []byte, w *walk) ([]byte, error) {
	locals := r.u32()
	for i := uint32(0); i < locals && r.err == nil; i++ {
		r.u32()
		r.byte()
	}
	if r.err != nil {
		return nil, r.fail("")
	}
	code := r.off
	w.weights, w.loops, w.calls = append(w.weights[:0], 0), w.loops[:0], w.calls[:0]
	frames, open := append(w.frames[:0], -1), append(w.open[:0], 0)
	defer func() { w.frames, w.open = frames, open }()
	for r.err == nil && r.off < len(r.b) {
		if len(frames) == 0 {
			r.err = errors.New("code after the body's final end")
			break
		}
		op := r.byte()
		w.weights[open[len(open)-1]]++
		switch op {
		case 0x02, 0x04: // block, if
			r.blockType()
			frames = append(frames, -1)
		case 0x03: // loop
			r.blockType()
			frames = append(frames, len(w.weights))
			open = append(open, len(w.weights))
			w.weights = append(w.weights, 0)
			w.loops = append(w.loops, r.off)
		case 0x0b: // end
			if len(frames) == 0 {
				r.err = errors.New("an end without a block")
				break
			}
			if frames[len(frames)-1] >= 0 {
				open = open[:len(open)-1]
			}
			frames = frames[:len(frames)-1]
		case 0x0e: // br_table
			n := r.u32()
			for j := uint32(0); j <= n && r.err == nil; j++ {
				r.u32()
			}
		case 0x10, 0xd2: // call, ref.func
			w.calls = append(w.calls, r.off)
			if err := m.checkFunc(r.u32()); err != nil && r.err == nil {
				return nil, fmt.Errorf("function %d %w", index, err)
			}
		case 0x23, 0x24: // global.get, global.set
			if err := m.checkGlobal(r.u32()); err != nil && r.err == nil {
				return nil, fmt.Errorf("function %d %w", index, err)
			}
		default:
			if err := r.immediates(op, &index); err != nil {
				return nil, err
			}
		}
	}
	if r.err == nil && len(frames) != 0 {
		r.err = errors.New("a body without its final end")
	}
	if r.err != nil {
		return nil, r.fail("")
	}
	out = append(out, r.b[:code]...)
	out = m.check(out, w.weights[0])
	at, loop, call := code, 0, 0
	for loop < len(w.loops) || call < len(w.calls) {
		if call == len(w.calls) || loop < len(w.loops) && w.loops[loop] <= w.calls[call] {
			out = append(out, r.b[at:w.loops[loop]]...)
			out = m.check(out, w.weights[loop+1])
			at = w.loops[loop]
			loop++
			continue
		}
		out = append(out, r.b[at:w.calls[call]]...)
		rr := &reader{b: r.b, off: w.calls[call]}
		out = binary.AppendUvarint(out, uint64(m.fn(rr.u32())))
		at = rr.off
		call++
	}
	return append(out, r.b[at:]...), nil
}

// check appends the metering of weight counted instructions:
//
//	global.get C; i64.const weight; i64.sub; global.set C
//	global.get C; i64.const 0; i64.lt_s
//	if; call meter; global.set C; end
func (m *meterer) check(out []byte, weight int64) []byte {
	c := uint64(m.globals)
	out = binary.AppendUvarint(append(out, 0x23), c)
	out = appendSleb(append(out, 0x42), weight)
	out = append(out, 0x7d)
	out = binary.AppendUvarint(append(out, 0x24), c)
	out = binary.AppendUvarint(append(out, 0x23), c)
	out = append(out, 0x42, 0x00, 0x53, 0x04, 0x40, 0x10)
	out = binary.AppendUvarint(out, uint64(m.importedFuncs))
	out = binary.AppendUvarint(append(out, 0x24), c)
	return append(out, 0x0b)
}

// custom keeps a custom section, renumbering the functions of the name
// section; it drops DWARF (its code offsets no longer hold) and a name
// section it cannot read (nil, nil).
func (m *meterer) custom(r *reader) ([]byte, error) {
	name := string(r.bytes())
	if r.err != nil {
		return nil, r.fail("")
	}
	switch {
	case strings.HasPrefix(name, ".debug_"):
		return nil, nil
	case name != "name":
		return r.b, nil
	}
	out := binary.AppendUvarint(nil, uint64(len(name)))
	out = append(out, name...)
	for r.err == nil && r.off < len(r.b) {
		id := r.byte()
		size := r.u32()
		if r.err != nil || uint64(size) > uint64(len(r.b)-r.off) {
			return nil, nil
		}
		sub := &reader{b: r.b[r.off : r.off+int(size)]}
		r.off += int(size)
		body := sub.b
		if id == 1 || id == 2 || id == 3 { // keyed by function: functions, locals, labels
			body = m.renameFuncs(sub, id != 1)
			if body == nil {
				return nil, nil
			}
		}
		out = append(out, id)
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	return out, nil
}

// renameFuncs renumbers the function indices of a name map (or, with
// indirect, of a map of name maps); nil if it is malformed.
func (m *meterer) renameFuncs(r *reader, indirect bool) []byte {
	n := r.u32()
	out := binary.AppendUvarint(nil, uint64(n))
	for i := uint32(0); i < n && r.err == nil; i++ {
		out = binary.AppendUvarint(out, uint64(m.fn(r.u32())))
		start := r.off
		if indirect {
			inner := r.u32()
			for j := uint32(0); j < inner && r.err == nil; j++ {
				r.u32()
				r.skip(int(r.u32()))
			}
		} else {
			r.skip(int(r.u32()))
		}
		if r.err == nil {
			out = append(out, r.b[start:r.off]...)
		}
	}
	if r.err != nil || r.off != len(r.b) {
		return nil
	}
	return out
}

// bytes reads a length-prefixed byte string.
func (r *reader) bytes() []byte {
	n := int(r.u32())
	start := r.off
	r.skip(n)
	if r.err != nil {
		return nil
	}
	return r.b[start:r.off]
}

func appendSleb(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// meterHostModule provides the meter function to metered modules. It ends
// the invocation if its context is done (a timeout or the caller's
// cancellation: the instance's callCtx, or a load's context), as an exit
// error that classify reports; otherwise it refills the counter.
func meterHostModule(rt wazero.Runtime) wazero.HostModuleBuilder {
	return rt.NewHostModuleBuilder(meterModule).NewFunctionBuilder().
		WithGoFunction(api.GoFunc(tick), nil, []api.ValueType{api.ValueTypeI64}).
		Export(meterFunc)
}

func tick(ctx context.Context, stack []uint64) {
	if err := ctx.Err(); err != nil {
		code := sys.ExitCodeDeadlineExceeded
		if errors.Is(err, context.Canceled) {
			code = sys.ExitCodeContextCanceled
		}
		panic(sys.NewExitError(code))
	}
	stack[0] = meterBudget
}

// meterVersion names the rewrite in the on-disk cache; change it with
// anything that changes meter's output.
const meterVersion = "meter-1"

// meter returns code metered, from the cache directory if an earlier
// process metered the same bytes (metering a Go module takes tens of
// milliseconds; reading it back, a few). A cached file ends with the
// SHA-256 of what precedes it; one that does not (damaged, or cut short)
// is metered again and replaced.
func (h *Host) meter(code []byte) ([]byte, error) {
	if h.meterDir == "" {
		return meter(code)
	}
	key := sha256.Sum256(code)
	path := filepath.Join(h.meterDir, hex.EncodeToString(key[:])+"-"+meterVersion+".wasm")
	if b, err := os.ReadFile(path); err == nil && len(b) > sha256.Size {
		body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
		if s := sha256.Sum256(body); string(s[:]) == string(sum) {
			return body, nil
		}
	}
	metered, err := meter(code)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(metered)
	if err := writeAtomic(path, append(metered, sum[:]...)); err != nil {
		h.cfg.Logger.Debug("metered module not cached", "path", path, "err", err)
	}
	return metered, nil
}

// writeAtomic writes b to path through a temporary file, so that a reader
// sees all of it or nothing.
func writeAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
