package host_test

import (
	"encoding/binary"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/host/hosttest"
	"github.com/pirn-wasm/pirn/model"
)

// wasmModule assembles a module from its sections (id, payload).
func wasmModule(sections ...[]byte) []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range sections {
		m = append(m, s[0])
		m = binary.AppendUvarint(m, uint64(len(s)-1))
		m = append(m, s[1:]...)
	}
	return m
}

func section(id byte, parts ...[]byte) []byte {
	s := []byte{id}
	for _, p := range parts {
		s = append(s, p...)
	}
	return s
}

func uv(n int) []byte { return binary.AppendUvarint(nil, uint64(n)) }

func rep(b []byte, n int) []byte {
	var out []byte
	for range n {
		out = append(out, b...)
	}
	return out
}

// withBodies makes a module of n functions () -> () with the given body
// (without its trailing end).
func withBodies(n int, body []byte) []byte {
	body = append(body, 0x0b)
	fn := append(uv(len(body)+1), 0) // size, no locals
	fn = append(fn, body...)
	return wasmModule(
		section(1, uv(1), []byte{0x60, 0, 0}),
		section(3, uv(n), rep([]byte{0}, n)),
		section(10, uv(n), rep(fn, n)),
	)
}

func nestedLoops(d int) []byte { return append(rep([]byte{0x03, 0x40}, d), rep([]byte{0x0b}, d)...) }

// TestStructureBounds loads modules made to exhaust the compiler or the
// host's memory per instance: each is refused before it is compiled,
// quickly, with the bound it passes named.
func TestStructureBounds(t *testing.T) {
	h := newHost(t, host.Config{})
	brTable := func(n int) []byte {
		b := []byte{0x02, 0x40, 0x41, 0x00, 0x0e}
		b = append(b, uv(n)...)
		b = append(b, rep([]byte{0}, n+1)...)
		return append(b, 0x0b)
	}
	for _, tc := range []struct {
		name string
		wasm []byte
		want string
	}{
		{"loops nested 40,000 deep (120 KB, 72 s to compile)", withBodies(1, nestedLoops(40000)), "nests blocks 2049 deep, over the limit of 2048"},
		{"a br_table of a million targets", withBodies(1, brTable(1_000_000)), "br_tables of more than 65536 targets in all"},
		{"400 functions nested 2000 deep", withBodies(400, nestedLoops(2000)), "is too costly to compile"},
		{"a table of 2^30 elements", wasmModule(section(4, uv(1), []byte{0x70, 0}, uv(1<<30))), "declares a table of 1073741824 elements, over the limit of 1048576"},
		{"300,000 functions", withBodies(300_000, nil), "declares 300000 functions, over the limit of 262144"},
		{"100,000 globals", wasmModule(section(6, uv(100_000), rep([]byte{0x7f, 0, 0x41, 0, 0x0b}, 100_000))), "declares 100000 globals, over the limit of 65536"},
		{"two million elements", wasmModule(section(9, uv(1), uv(1), []byte{0}, uv(2_000_000), rep([]byte{0}, 2_000_000))), "element segments hold more than 1048576 elements"},
		{"100,000 data segments", wasmModule(section(11, uv(100_000), rep([]byte{1, 0}, 100_000))), "declares 100000 data segments, over the limit of 65536"},
		{"an unknown instruction", withBodies(1, []byte{0xfe, 0x00}), "uses instruction 0xfe"},
		{"a truncated code section", withBodies(1, nestedLoops(10))[:30], "malformed module"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := h.Load(t.Context(), "hostile", tc.wasm)
			d := time.Since(start)
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load (%d bytes) = %v, want an error containing %q", len(tc.wasm), err, tc.want)
			}
			if d > time.Second*slack {
				t.Errorf("refused after %v", d)
			}
			// Refusing costs a few times the module's size, whatever
			// compiling or instantiating it would have.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*uint64(len(tc.wasm))+8<<20 {
				t.Errorf("refusing allocated %d KiB for a module of %d KiB", alloc>>10, len(tc.wasm)>>10)
			}
		})
	}
}

// TestTableGrowthBounded runs a knot that grows a table declared without a
// maximum until table.grow refuses: it stops at MaxTableElements (8 MiB of
// host memory), where it would have gone on to 2^32 elements, and the
// process survives to run its sibling.
func TestTableGrowthBounded(t *testing.T) {
	h := newHost(t, host.Config{})
	m := load(t, h, "testdata/hostile/tables.wasm")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got := decode(t, hosttest.Knot(t, m, host.KnotConfig{Name: "grow", Limits: model.Limits{Timeout: 10 * time.Second}}).Invoke(t.Context(), call()))
	runtime.ReadMemStats(&after)
	if n, _ := got.(int64); n > host.MaxTableElements || n <= host.MaxTableElements-65536 {
		t.Errorf("grow stopped at %v elements, want the last step of 65,536 before %d", got, host.MaxTableElements)
	}
	if grown := int64(after.TotalAlloc - before.TotalAlloc); grown > 256<<20 {
		t.Errorf("growing the table allocated %d MiB", grown>>20)
	}
	if r := hosttest.Knot(t, m, host.KnotConfig{Name: "one"}).Invoke(t.Context(), call()); r.Outcome != abi.OutcomeOK {
		t.Errorf("the sibling knot: %v %+v", r.Outcome, r.Error)
	}
}

// TestCompileTimeout: what the estimate lets through is still bounded in
// time: a compile that outlasts Config.CompileTimeout is abandoned (between
// one function and the next) and the module refused, naming the timeout.
func TestCompileTimeout(t *testing.T) {
	h := newHost(t, host.Config{CacheDir: "-", CompileTimeout: 50 * time.Millisecond})
	wasm := readWasm(t, "examples/wasm/go/arith/arith.wasm")
	start := time.Now()
	cpu0, cpuOK := processCPU()
	_, err := h.Load(t.Context(), "arith", wasm)
	if err == nil || !strings.Contains(err.Error(), "did not finish within the compile timeout of 50ms") {
		t.Errorf("Load = %v, want the compile timeout", err)
	}
	// Reading and validating the module before compiling is linear in its
	// size, and not interrupted.
	if d := time.Since(start); d > 10*time.Second*slack {
		t.Errorf("refused after %v", d)
	}
	// The compile itself stops soon after the timeout, not at its end: the
	// whole of it takes about 1.7 s of CPU (8 s or more under the race
	// detector), reading the module some tens of milliseconds.
	if cpu1, ok := processCPU(); cpuOK && ok && cpu1-cpu0 > 500*time.Millisecond*slack {
		t.Errorf("refusing took %v of CPU: the compile ran past its timeout", cpu1-cpu0)
	}
}
