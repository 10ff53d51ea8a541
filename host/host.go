package host

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/model"
)

// Log attribute keys used on every record about a guest.
const (
	AttrRun    = "run"
	AttrKnot   = "knot"
	AttrModule = "module"
	AttrStream = "stream"
)

const pageSize = 65536

// Built-in defaults.
const (
	DefaultTimeout        = 60 * time.Second
	DefaultMemory         = 256 << 20
	DefaultMaxInvocations = 100_000
	DefaultMaxOutput      = 64 << 20
	DefaultMaxLog         = 1 << 20
	DefaultMaxLogRecords  = 10_000
	DefaultMaxInput       = 64 << 20
	DefaultMaxDepth       = abi.MaxNestedLevels
	maxMemory             = 1 << 32
)

// withDefaults fills l's zero fields from d, then from the built-in
// defaults.
func withDefaults(l, d model.Limits) model.Limits {
	l.Timeout = cmp.Or(l.Timeout, d.Timeout, DefaultTimeout)
	l.Memory = cmp.Or(l.Memory, d.Memory, DefaultMemory)
	l.Memory = min((l.Memory+pageSize-1)/pageSize*pageSize, maxMemory)
	l.HighWater = cmp.Or(l.HighWater, d.HighWater, l.Memory/2)
	l.MaxInvocations = cmp.Or(l.MaxInvocations, d.MaxInvocations, DefaultMaxInvocations)
	l.MaxInstances = cmp.Or(l.MaxInstances, d.MaxInstances, runtime.GOMAXPROCS(0))
	l.MaxOutput = cmp.Or(l.MaxOutput, d.MaxOutput, DefaultMaxOutput)
	l.MaxLog = cmp.Or(l.MaxLog, d.MaxLog, DefaultMaxLog)
	l.MaxLogRecords = cmp.Or(l.MaxLogRecords, d.MaxLogRecords, DefaultMaxLogRecords)
	l.MaxInput = cmp.Or(l.MaxInput, d.MaxInput, DefaultMaxInput)
	l.MaxDepth = cmp.Or(l.MaxDepth, d.MaxDepth, DefaultMaxDepth)
	return l
}

// Config configures a [Host].
type Config struct {
	// CacheDir holds compiled code across processes. "" means
	// <user cache dir>/pirn/wazero; "-" disables the on-disk cache.
	CacheDir string
	// Logger receives guest output and host diagnostics; nil discards.
	Logger *slog.Logger
	// Defaults fill the zero fields of every knot's Limits.
	Defaults model.Limits
	// LoadTimeout bounds loading a module: its start function and its
	// manifest (default 10s).
	LoadTimeout time.Duration
	// CompileTimeout bounds compiling a module (default 60s). Modules are
	// also refused before compiling if their code would take too long
	// (MaxCompileCost); this catches what that estimate misses, between
	// one function and the next.
	CompileTimeout time.Duration
}

// Defaults of Config.LoadTimeout and Config.CompileTimeout.
const (
	DefaultLoadTimeout    = 10 * time.Second
	DefaultCompileTimeout = 60 * time.Second
)

var (
	errLoadTimeout    = errors.New("load timeout")
	errCompileTimeout = errors.New("compile timeout")
)

// Host compiles and runs knot modules.
type Host struct {
	cfg      Config
	cache    wazero.CompilationCache
	meterDir string // metered modules across processes ("" for none)

	mu       sync.Mutex
	runtimes map[classKey]*class
	modules  map[moduleKey]*moduleEntry
	closed   bool
	wg       sync.WaitGroup // background instance refills

	compiling atomic.Int32 // compiles under way (compileContext)
}

// classKey identifies a runtime configuration: wazero's memory limit and
// interruption are runtime-wide.
type classKey struct {
	pages         uint32
	interruptible bool
}

type class struct {
	key  classKey
	rt   wazero.Runtime
	wasi map[string]api.FunctionDefinition
}

// moduleKey identifies a loaded module: the same bytes may be loaded
// under different ABIs or formats.
type moduleKey struct {
	digest cas.Digest
	opts   LoadOptions
}

func cmpABI(a ABI) ABI {
	if a == "" {
		return ABIPirn
	}
	return a
}

type moduleEntry struct {
	once sync.Once
	mod  *Module
	err  error
}

// New returns a host. Close it to release compiled code and instances.
func New(cfg Config) (*Host, error) {
	if err := cfg.Defaults.Validate(); err != nil {
		return nil, fmt.Errorf("host: Defaults: %w", err)
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	cfg.LoadTimeout = cmp.Or(cfg.LoadTimeout, DefaultLoadTimeout)
	cfg.CompileTimeout = cmp.Or(cfg.CompileTimeout, DefaultCompileTimeout)
	h := &Host{cfg: cfg, runtimes: map[classKey]*class{}, modules: map[moduleKey]*moduleEntry{}}
	dir := cfg.CacheDir
	if dir == "" {
		if base, err := os.UserCacheDir(); err == nil {
			dir = filepath.Join(base, "pirn", "wazero")
		} else {
			cfg.Logger.Debug("no user cache dir; compiling without an on-disk cache", "err", err)
			dir = "-"
		}
	}
	if dir != "-" {
		c, err := wazero.NewCompilationCacheWithDir(dir)
		if err != nil {
			return nil, fmt.Errorf("host: compilation cache %s: %w", dir, err)
		}
		h.cache = c
		h.meterDir = filepath.Join(dir, "metered")
	} else {
		h.cache = wazero.NewCompilationCache()
	}
	return h, nil
}

// Close closes every instance, runtime and the compilation cache. Closing
// a closed host does nothing.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	rts := h.runtimes
	h.runtimes = map[classKey]*class{}
	mods := h.modules
	h.mu.Unlock()
	h.wg.Wait()
	var errs []error
	for _, e := range mods {
		if e.mod != nil {
			e.mod.closePools(ctx)
		}
	}
	for _, c := range rts {
		errs = append(errs, c.rt.Close(ctx))
	}
	errs = append(errs, h.cache.Close(ctx))
	return errors.Join(errs...)
}

var errClosed = errors.New("host: closed")

// class returns the runtime for the given limits, creating it on first use.
func (h *Host) class(ctx context.Context, lim model.Limits) (*class, error) {
	key := classKey{pages: uint32(lim.Memory / pageSize), interruptible: lim.Timeout >= 0}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errClosed
	}
	if c, ok := h.runtimes[key]; ok {
		return c, nil
	}
	rcfg := wazero.NewRuntimeConfig().
		WithCompilationCache(h.cache).
		// Modules are metered instead (meter.go): wazero's own
		// interruption costs an exit to Go at every loop iteration.
		WithCloseOnContextDone(false).
		WithMemoryLimitPages(key.pages).
		WithCoreFeatures(api.CoreFeaturesV2)
	rt := wazero.NewRuntimeWithConfig(ctx, rcfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("host: instantiate WASI: %w", err)
	}
	if _, err := hostModule(rt).Instantiate(ctx); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("host: instantiate pirn imports: %w", err)
	}
	if _, err := meterHostModule(rt).Instantiate(ctx); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("host: instantiate the meter: %w", err)
	}
	c := &class{key: key, rt: rt, wasi: rt.Module(abi.WASIModule).ExportedFunctionDefinitions()}
	h.runtimes[key] = c
	return c, nil
}
