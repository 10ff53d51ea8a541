package pirn

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/internal/loom"
	"github.com/pirn-wasm/pirn/model"
)

// Module is a loaded knot module.
type Module struct {
	m *host.Module
}

// LoadModule loads the module file at path.
func (e *Engine) LoadModule(ctx context.Context, path string) (*Module, error) {
	return e.LoadModuleWith(ctx, path, ModuleOptions{})
}

// LoadModuleBytes loads a module from its bytes; name is used in messages
// and logs.
func (e *Engine) LoadModuleBytes(ctx context.Context, name string, wasm []byte) (*Module, error) {
	return e.LoadModuleBytesWith(ctx, name, wasm, ModuleOptions{})
}

// ModuleOptions say how to run a module that does not speak pirn's own
// ABI: an Extism plugin (each function a knot) or a WASI command (one
// knot, "main"), and the encoding of its documents.
type ModuleOptions = host.LoadOptions

// LoadModuleWith loads the module file at path with opts.
func (e *Engine) LoadModuleWith(ctx context.Context, path string, opts ModuleOptions) (*Module, error) {
	b, err := loom.ReadModule(path)
	if err != nil {
		return nil, fmt.Errorf("load module: %w", err)
	}
	return e.LoadModuleBytesWith(ctx, filepath.Base(path), b, opts)
}

// LoadModuleBytesWith loads a module from its bytes with opts, and keeps
// them in the engine's store under the digest lineage names it by.
func (e *Engine) LoadModuleBytesWith(ctx context.Context, name string, wasm []byte, opts ModuleOptions) (*Module, error) {
	m, err := e.host.LoadWith(ctx, name, wasm, opts)
	if err == nil {
		err = loom.KeepModule(ctx, e.store, m.Digest(), wasm)
	}
	if err != nil {
		return nil, err
	}
	return &Module{m: m}, nil
}

// Manifest returns the module's manifest.
func (m *Module) Manifest() *abi.Manifest { return m.m.Manifest() }

// ABI returns how the host talks to the module.
func (m *Module) ABI() host.ABI { return m.m.ABI() }

// Format returns the document encoding of an Extism plugin or a WASI
// command ("" for a pirn module).
func (m *Module) Format() host.Format { return m.m.Format() }

// Digest returns "sha256:…" of the module's bytes.
func (m *Module) Digest() string { return m.m.Digest().String() }

// Knot names a knot of the module, to be added to a tapestry. Zero Limits
// fields take the engine's defaults.
func (m *Module) Knot(name string) KnotRef { return KnotRef{Module: m, Name: name} }

// KnotRef is a knot of a WebAssembly module.
type KnotRef struct {
	Module *Module
	Name   string
	Limits model.Limits
	// NoTypeCheck turns off checking inputs and outputs against the
	// manifest's types (validate_io: false).
	NoTypeCheck bool
	// Grants are the knot's capabilities (files, environment, clock,
	// randomness, HTTP); none by default, which makes the knot hermetic.
	Grants model.Grants
	// State says what the knot's instances keep between invocations
	// (see model.State): by default they are kept as invocations leave
	// them, which lineage records as the grant "state".
	State model.State
	// Cache says whether the knot's results may be reused by later
	// invocations with the same cache key: by default when it has no
	// grants (and its State is reset or fresh, not kept); see model.Cache.
	Cache model.Cache
}

func (r KnotRef) loomFn() loom.Fn {
	var m *host.Module
	if r.Module != nil {
		m = r.Module.m
	}
	return loom.ModuleKnot{Module: m, Config: host.KnotConfig{Name: r.Name, Limits: r.Limits, NoTypeCheck: r.NoTypeCheck, Grants: r.Grants, State: r.State}, Cache: r.Cache}
}
