package host

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// meterRuntime returns a runtime that runs metered modules as the host's
// interruptible classes do, and the module of testdata/hostile/meter.wasm
// metered and instantiated in it.
func meterRuntime(t *testing.T) api.Module {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(false))
	t.Cleanup(func() { rt.Close(ctx) })
	if _, err := meterHostModule(rt).Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile("../testdata/hostile/meter.wasm")
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := scan(wasm)
	if err != nil {
		t.Fatal(err)
	}
	metered, err := meter(code)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, metered, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatal(err)
	}
	return mod
}

// TestMeterStopsEndlessCode: each shape of endless code ends with its
// context's deadline or cancellation, including a call tree without a
// loop (which wazero's own loop checks never stop), and the module is
// unchanged otherwise.
func TestMeterStopsEndlessCode(t *testing.T) {
	t.Parallel()
	mod := meterRuntime(t)
	for _, name := range []string{"spin", "tree", "indirect"} {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		start := time.Now()
		_, err := mod.ExportedFunction(name).Call(ctx)
		cancel()
		var exit *sys.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != sys.ExitCodeDeadlineExceeded {
			t.Errorf("%s: err = %v, want the deadline's exit", name, err)
		}
		t.Logf("%s stopped after %s", name, time.Since(start))
	}
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := mod.ExportedFunction("spin").Call(ctx)
	var exit *sys.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != sys.ExitCodeContextCanceled {
		t.Errorf("spin cancelled: err = %v, want the cancellation's exit", err)
	}
	// A guest that ends is not disturbed, over many refills of the counter.
	const k = 5 * meterBudget
	res, err := mod.ExportedFunction("count").Call(t.Context(), k)
	if err != nil || res[0] != k {
		t.Errorf("count(%d) = %v, %v", k, res, err)
	}
}

// TestMeterLeavesTheRuntimeRunning: guests spinning on every processor
// still let the Go runtime stop the world (a collection here), and its
// timers fire. Unmetered native code holds its processor until it
// returns: without the meter this test deadlocks the whole process (the
// test binary's own timeout cannot fire either).
func TestMeterLeavesTheRuntimeRunning(t *testing.T) {
	mod := meterRuntime(t)
	var wg sync.WaitGroup
	var running, ended atomic.Int32
	n := runtime.GOMAXPROCS(0)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for range n {
		wg.Go(func() {
			running.Add(1)
			mod.ExportedFunction("spin").Call(ctx)
			ended.Add(1)
		})
	}
	for running.Load() < int32(n) {
		runtime.Gosched()
	}
	time.Sleep(50 * time.Millisecond) // well inside the spins
	runtime.GC()
	fired := make(chan struct{})
	time.AfterFunc(10*time.Millisecond, func() { close(fired) })
	<-fired
	if ended.Load() != 0 {
		t.Errorf("%d spins ended before their deadline", ended.Load())
	}
	cancel()
	wg.Wait()
}

// TestMeterRefusesAliases: the rewrite adds a function and a global; a
// module whose code names either (indices it does not have) could reach
// the counter, and is refused, as is one importing the meter itself.
func TestMeterRefusesAliases(t *testing.T) {
	t.Parallel()
	// (func (export "f") (global.set 0 (i64.const 0))) with no global.
	body := []byte{0x00, 0x42, 0x00, 0x24, 0x00, 0x0b}
	noGlobal := module(
		sec(1, 1, 0x60, 0, 0),
		sec(3, 1, 0),
		sec(10, append([]byte{1, byte(len(body))}, body...)...),
	)
	// (func (call 1)) with one function.
	callOut := module(
		sec(1, 1, 0x60, 0, 0),
		sec(3, 1, 0),
		sec(10, 1, 4, 0x00, 0x10, 0x01, 0x0b),
	)
	imp := append([]byte{1}, name(meterModule)...)
	imp = append(imp, name(meterFunc)...)
	imp = append(imp, 0x00, 0x00)
	importsMeter := module(sec(1, 1, 0x60, 0, 1, 0x7e), sec(2, imp...))
	for _, tc := range []struct {
		name, wasm, want string
	}{
		{"global", string(noGlobal), "names global 0, and it has only 0"},
		{"call", string(callOut), "names function 1, and it has only 1"},
		{"import", string(importsMeter), "imports from pirn:meter"},
	} {
		_, err := meter([]byte(tc.wasm))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, _, err := scan(importsMeter); err == nil || !strings.Contains(err.Error(), "imports from pirn:meter") {
		t.Errorf("scan of a module importing the meter: %v", err)
	}
}

// TestMeterEveryModule meters every module in the repository and compiles
// the result (but the large Go modules, which the other tests run
// metered): the rewrite keeps every module valid.
func TestMeterEveryModule(t *testing.T) {
	t.Parallel()
	var files []string
	for _, pattern := range []string{"../testdata/*/*.wasm", "../testdata/*/*/*.wasm", "../examples/wasm/*/*/*.wasm", "../examples/wasm/*/*.wasm"} {
		m, _ := filepath.Glob(pattern)
		files = append(files, m...)
	}
	if len(files) < 20 {
		t.Fatalf("found only %d modules", len(files))
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCoreFeatures(api.CoreFeaturesV2))
	defer rt.Close(ctx)
	for _, f := range files {
		wasm, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		code, _, err := scan(wasm)
		if err != nil {
			continue // refused before metering: the hostile suite's
		}
		metered, err := meter(code)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if len(wasm) > 1<<20 {
			continue // a Go module: every Go knot test compiles one metered
		}
		if cm, err := rt.CompileModule(ctx, metered); err != nil {
			t.Errorf("%s metered does not compile: %v", f, err)
		} else {
			if len(cm.ImportedFunctions()) == 0 {
				t.Errorf("%s metered imports nothing", f)
			}
			cm.Close(ctx)
		}
	}
}

func module(sections ...[]byte) []byte {
	b := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range sections {
		b = append(b, s...)
	}
	return b
}

func sec(id byte, payload ...byte) []byte {
	return append(binary.AppendUvarint([]byte{id}, uint64(len(payload))), payload...)
}

func name(s string) []byte { return append([]byte{byte(len(s))}, s...) }

// TestMeterRewrite checks the rewrite of one function byte by byte: a
// check on entry weighing the function's own instructions, one at the top
// of the loop weighing its body, and the call renumbered past the meter.
func TestMeterRewrite(t *testing.T) {
	t.Parallel()
	// (func $f (loop (call $f) (br 0)))
	body := []byte{0x00, 0x03, 0x40, 0x10, 0x00, 0x0c, 0x00, 0x0b, 0x0b}
	got, err := meter(module(sec(1, 1, 0x60, 0, 0), sec(3, 1, 0), sec(10, append([]byte{1, byte(len(body))}, body...)...)))
	if err != nil {
		t.Fatal(err)
	}
	check := func(w byte) []byte {
		// the counter is global 0, the meter function 0
		return []byte{0x23, 0, 0x42, w, 0x7d, 0x24, 0, 0x23, 0, 0x42, 0, 0x53, 0x04, 0x40, 0x10, 0, 0x24, 0, 0x0b}
	}
	want := []byte{0x00}
	want = append(want, check(2)...) // the loop and the final end
	want = append(want, 0x03, 0x40)
	want = append(want, check(3)...) // call, br, end
	want = append(want, 0x10, 0x01, 0x0c, 0x00, 0x0b, 0x0b)
	if !strings.Contains(string(got), string(want)) {
		t.Errorf("metered module\n%x\nholds no body\n%x", got, want)
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	if _, err := rt.CompileModule(ctx, got); err != nil {
		t.Errorf("metered module does not compile: %v", err)
	}
}

// BenchmarkMeter meters a Go module (done once per module and process).
func BenchmarkMeter(b *testing.B) {
	wasm, err := os.ReadFile("../examples/wasm/go/arith/arith.wasm")
	if err != nil {
		b.Fatal(err)
	}
	code, _, err := scan(wasm)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(code)))
	for b.Loop() {
		if _, err := meter(code); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMeterCache: a module metered once is read back by the next host
// from the cache directory; a damaged cached copy is metered again.
func TestMeterCache(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	wasm, err := os.ReadFile("../testdata/wasm/wat/ident.wasm")
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := scan(wasm)
	if err != nil {
		t.Fatal(err)
	}
	want, err := meter(code)
	if err != nil {
		t.Fatal(err)
	}
	for i, damage := range []func(path string){
		func(string) {},
		func(string) {}, // read back
		func(path string) { os.WriteFile(path, []byte("\x00asm\x01\x00\x00\x00"), 0o644) },
		func(path string) { b, _ := os.ReadFile(path); os.WriteFile(path, b[:len(b)-1], 0o644) },
	} {
		files, _ := filepath.Glob(filepath.Join(dir, "metered", "*.wasm"))
		if len(files) == 1 {
			damage(files[0])
		}
		h, err := New(Config{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Load(t.Context(), "ident", wasm); err != nil {
			t.Fatalf("load %d: %v", i, err)
		}
		if got, err := h.meter(code); err != nil || string(got) != string(want) {
			t.Errorf("load %d: metered bytes differ from meter's (%v)", i, err)
		}
		h.Close(t.Context())
		files, _ = filepath.Glob(filepath.Join(dir, "metered", "*.wasm"))
		if len(files) != 1 {
			t.Fatalf("load %d: cached files %v", i, files)
		}
		b, _ := os.ReadFile(files[0])
		if string(b[:len(b)-32]) != string(want) {
			t.Errorf("load %d: the cached file is not the metered module and its sum", i)
		}
	}
}
