package host

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/model"
)

// langCase is one language's example module and a trivial knot of it.
type langCase struct {
	lang string
	path string // from the repository root
	opts LoadOptions
	knot string
	args map[string]any
}

// LangCases are the modules of BenchmarkLanguages; benchtable reads their
// sizes from the same list (see docs/performance.md).
var langCases = []langCase{
	{"wat", "examples/wasm/wat/negate.wasm", LoadOptions{}, "negate", map[string]any{"x": 5}},
	{"go", "examples/wasm/go/arith/arith.wasm", LoadOptions{}, "inc", map[string]any{"x": 5}},
	{"rust", "examples/wasm/rust/stats.wasm", LoadOptions{}, "scale", map[string]any{"x": 2.0, "factor": 3.0}},
	{"c", "examples/wasm/c/text.wasm", LoadOptions{}, "upper", map[string]any{"s": "a"}},
	{"assemblyscript", "examples/wasm/assemblyscript/geo.wasm", LoadOptions{}, "clamp", map[string]any{"x": 5.0, "lo": 0.0, "hi": 1.0}},
	{"extism-go", "testdata/wasm/extism/plain/plain.wasm", LoadOptions{ABI: ABIExtism}, "size", map[string]any{"a": 1}},
	{"wasi-command-go", "examples/wasm/wasi-command/wc/wc.wasm", LoadOptions{ABI: ABICommand}, CommandKnot, map[string]any{"text": "a"}},
}

// BenchmarkLanguages measures, for one module per guest language: compiling
// it without a cache and from the on-disk cache, starting an instance, and
// invoking a trivial knot on a warm instance (with the default timeout
// armed). The numbers are comparable across languages because every case
// runs the same code.
func BenchmarkLanguages(b *testing.B) {
	ctx := context.Background()
	rcfg := func() wazero.RuntimeConfig {
		return wazero.NewRuntimeConfig().WithCoreFeatures(api.CoreFeaturesV2).WithCloseOnContextDone(true)
	}
	for _, lc := range langCases {
		wasm, err := os.ReadFile(filepath.Join("..", lc.path))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(lc.lang+"/compile-cold", func(b *testing.B) {
			rt := wazero.NewRuntimeWithConfig(ctx, rcfg())
			defer rt.Close(ctx)
			for b.Loop() {
				cm, err := rt.CompileModule(ctx, wasm)
				if err != nil {
					b.Fatal(err)
				}
				cm.Close(ctx) // with no cache, the next compile starts over
			}
		})
		b.Run(lc.lang+"/compile-cached", func(b *testing.B) {
			dir := b.TempDir()
			compile := func() {
				cache, err := wazero.NewCompilationCacheWithDir(dir)
				if err != nil {
					b.Fatal(err)
				}
				rt := wazero.NewRuntimeWithConfig(ctx, rcfg().WithCompilationCache(cache))
				if _, err := rt.CompileModule(ctx, wasm); err != nil {
					b.Fatal(err)
				}
				rt.Close(ctx)
				cache.Close(ctx)
			}
			compile() // fills the cache
			for b.Loop() {
				compile() // a new process's first compile: read from disk
			}
		})
		h, err := New(Config{CacheDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		m, err := h.LoadWith(ctx, filepath.Base(lc.path), wasm, lc.opts)
		if err != nil {
			b.Fatal(err)
		}
		if lc.opts.ABI != ABICommand {
			b.Run(lc.lang+"/instantiate", func(b *testing.B) {
				state, err := m.state(model.StateDefault)
				if err != nil {
					b.Fatal(err)
				}
				p, err := m.pool(ctx, withDefaults(model.Limits{}, h.cfg.Defaults), model.Grants{}, state, false)
				if err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					inst, err := p.newInstance(ctx)
					if err != nil {
						b.Fatal(err)
					}
					inst.close()
				}
			})
		}
		b.Run(lc.lang+"/invoke", func(b *testing.B) {
			k, err := m.Knot(KnotConfig{Name: lc.knot, Limits: model.Limits{MaxInvocations: 1 << 30}})
			if err != nil {
				b.Fatal(err)
			}
			c := &Call{RunID: "bench", KnotID: "k"}
			for name, v := range lc.args {
				enc, err := cas.Encode(v)
				if err != nil {
					b.Fatal(err)
				}
				c.Inputs = append(c.Inputs, abi.Arg{Name: name, Value: enc})
			}
			abi.SortArgs(c.Inputs)
			for b.Loop() {
				if r := k.Invoke(ctx, c); r.Outcome != abi.OutcomeOK {
					b.Fatalf("%v %+v", r.Outcome, r.Error)
				}
			}
		})
		h.Close(ctx)
	}
}

// TestLangCasesExist keeps the benchmark's module list in step with the
// examples.
func TestLangCasesExist(t *testing.T) {
	t.Parallel()
	var langs []string
	for _, lc := range langCases {
		if _, err := os.Stat(filepath.Join("..", lc.path)); err != nil {
			t.Error(err)
		}
		langs = append(langs, lc.lang)
	}
	if !slices.Contains(langs, "wat") || len(langs) != 7 {
		t.Errorf("languages = %v", langs)
	}
}
