package host_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/model"
)

func TestLoadRefuses(t *testing.T) {
	h := newHost(t, host.Config{Defaults: model.Limits{Timeout: time.Second}})
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"testdata/hostile/badversion.wasm", []string{"declares ABI version 2; this host speaks version 1"}},
		{"testdata/hostile/noexports.wasm", []string{
			"does not export pirn_invoke (is it a pirn knot module?)",
			"exports pirn_manifest with signature (i32) -> (i32), want () -> (i32)",
		}},
		{"testdata/hostile/badimport.wasm", []string{
			"imports env.abort, which the host does not provide (knots may import only pirn and wasi_snapshot_preview1)",
			"imports pirn.fetch, which the host does not provide",
			"imports pirn.output with signature (i64) -> (), want (i32, i32) -> ()",
			"imports wasi_snapshot_preview1.sock_connect, which the host does not provide",
			"imports memory env.memory",
		}},
		{"testdata/hostile/badmanifest.wasm", []string{`knot 0 ("a b"): invalid name`, `input "x": type "widget"`}},
		{"testdata/hostile/startloop.wasm", []string{"Timeout"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			wasm := readWasm(t, tc.file)
			start := time.Now()
			_, err := h.Load(t.Context(), "m.wasm", wasm)
			var le *host.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("Load error = %v, want *LoadError", err)
			}
			if le.Module != "m.wasm" || le.Digest != cas.Sum(wasm) || !strings.Contains(err.Error(), "module m.wasm (sha256:") {
				t.Errorf("error does not name the module and digest: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load error:\n%v\nwant it to contain %q", err, w)
				}
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("refusing took %s", d)
			}
		})
	}
	if _, err := h.Load(t.Context(), "junk", []byte("not wasm")); err == nil || !strings.Contains(err.Error(), "not a WebAssembly module") {
		t.Errorf("Load(junk) = %v, want it refused as no module", err)
	}
}

func TestUnknownKnot(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	m := load(t, h, arith)
	_, err := m.Knot(host.KnotConfig{Name: "triple"})
	if err == nil || !strings.Contains(err.Error(), `has no knot "triple" (it has: double, add, inc, square, sum, range, positive, sign, total)`) {
		t.Errorf("Knot(triple) error = %v", err)
	}
}

func TestLoadIsCachedByDigest(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	a := load(t, h, arith)
	b, err := h.Load(t.Context(), "again.wasm", readWasm(t, arith))
	if err != nil || a != b {
		t.Errorf("second Load = %p, %v; want the same module %p", b, err, a)
	}
}

func TestCompilationCacheOnDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	wasm := readWasm(t, arith)
	var durations []time.Duration
	for range 2 {
		h, err := host.New(host.Config{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := h.Load(t.Context(), "arith", wasm); err != nil {
			t.Fatal(err)
		}
		durations = append(durations, time.Since(start))
		h.Close(context.Background())
	}
	t.Logf("cold load %s, load from the on-disk cache %s", durations[0], durations[1])
	if durations[1] >= durations[0] {
		t.Errorf("loading from the compilation cache (%s) was not faster than compiling (%s)", durations[1], durations[0])
	}
}

func TestInstanceRecycling(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	m := load(t, h, misbehave)
	// "one" never grows memory, so only the invocation count recycles it.
	k := knot(t, m, "one", model.Limits{MaxInvocations: 3, MaxInstances: 1})
	for i := range 10 {
		if got := decode(t, k.Invoke(t.Context(), call())); got != int64(1) {
			t.Fatalf("call %d = %v", i, got)
		}
	}
	if n := host.Instantiations(k); n < 4 {
		t.Errorf("10 calls with MaxInvocations=3 made %d instances, want at least 4", n)
	}
}

func TestCancelledInvocation(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	m := load(t, h, misbehave)
	k := knot(t, m, "loop", model.Limits{Timeout: time.Minute})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	r := k.Invoke(ctx, call())
	if r.Error == nil || r.Error.Type != host.ErrCancelled {
		t.Fatalf("cancelled loop = %v %+v, want Cancelled", r.Outcome, r.Error)
	}
}
