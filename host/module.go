package host

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/model"
)

// LoadError reports a module the host refuses. It names the module and its
// digest.
type LoadError struct {
	Module string
	Digest cas.Digest
	Err    error
}

func (e *LoadError) Error() string {
	return fmt.Sprintf("module %s (%s): %v", e.Module, e.Digest, e.Err)
}

func (e *LoadError) Unwrap() error { return e.Err }

// ABI is how the host talks to a module.
type ABI string

// ABIs.
const (
	ABIPirn    ABI = "pirn"         // pirn's own ABI (docs/abi.md), the default
	ABIExtism  ABI = "extism"       // an Extism plugin: each function is a knot
	ABICommand ABI = "wasi-command" // a WASI program: stdin to stdout, one knot named "main"
)

// ABIs lists the ABIs the host speaks.
var ABIs = []ABI{ABIPirn, ABIExtism, ABICommand}

// LoadOptions say how to run a module.
type LoadOptions struct {
	ABI ABI // "" is ABIPirn
	// Format is the document encoding of an Extism plugin or a WASI
	// command. "" is the default: what an Extism plugin's manifest is
	// written in, else CBOR for a plugin and JSON for a command.
	Format Format
}

func (o LoadOptions) validate() error {
	if !slices.Contains(ABIs, o.ABI) {
		return fmt.Errorf("unknown ABI %q (want one of pirn, extism, wasi-command)", o.ABI)
	}
	switch {
	case o.Format != "" && o.Format != FormatCBOR && o.Format != FormatJSON:
		return fmt.Errorf("unknown format %q (want cbor or json)", o.Format)
	case o.Format != "" && o.ABI == ABIPirn:
		return errors.New("a format applies only to the extism and wasi-command ABIs (pirn modules speak CBOR)")
	}
	return nil
}

// Module is a compiled, handshaken knot module.
type Module struct {
	h        *Host
	name     string
	digest   cas.Digest
	wasm     []byte // what is compiled: the module, its tables bounded and its globals exported (scan)
	shape    shape
	manifest *abi.Manifest
	abi      ABI
	format   Format // of an Extism plugin's or a command's documents
	aware    bool   // an Extism plugin with a pirn manifest: its outputs are pirn responses

	exportDefs map[string]api.FunctionDefinition

	mu       sync.Mutex
	compiled map[classKey]wazero.CompiledModule
	pools    map[poolKey]*pool
	sigs     map[string]*abi.Signature // by knot name
}

// poolKey identifies a pool: instances are configured by their limits and
// their grants.
type poolKey struct {
	lim    model.Limits
	grants string // Grants.key
	state  model.State
}

// Name returns the name the module was first loaded under.
func (m *Module) Name() string { return m.name }

// Digest returns the SHA-256 of the module's bytes.
func (m *Module) Digest() cas.Digest { return m.digest }

// Manifest returns the module's manifest. The caller must not modify it.
func (m *Module) Manifest() *abi.Manifest { return m.manifest }

// ABI returns how the host talks to the module.
func (m *Module) ABI() ABI { return m.abi }

// Format returns the document encoding of an Extism plugin or a WASI
// command ("" for a pirn module).
func (m *Module) Format() Format { return m.format }

// MaxModuleBytes is the largest module the host loads (64 MiB: a Go
// module is 3-6 MiB, a whole language runtime tens of MiB).
const MaxModuleBytes = 64 << 20

// Load compiles wasm (once per digest per runtime), checks its imports and
// exports against ABI v1, and reads its manifest. name is used in messages
// and logs. Loading the same bytes again returns the same *Module. The
// module retains wasm (to compile it for other limit classes): the caller
// must not modify it afterwards.
func (h *Host) Load(ctx context.Context, name string, wasm []byte) (*Module, error) {
	return h.LoadWith(ctx, name, wasm, LoadOptions{})
}

// LoadWith is Load for a module of any ABI.
func (h *Host) LoadWith(ctx context.Context, name string, wasm []byte, opts LoadOptions) (*Module, error) {
	if len(wasm) > MaxModuleBytes {
		return nil, &LoadError{Module: name, Err: fmt.Errorf("is %d bytes, over the limit of %d", len(wasm), MaxModuleBytes)}
	}
	d := cas.Sum(wasm)
	code, shape, err := scan(wasm)
	if err != nil {
		return nil, &LoadError{Module: name, Digest: d, Err: err}
	}
	opts.ABI = cmpABI(opts.ABI)
	if err := opts.validate(); err != nil {
		return nil, &LoadError{Module: name, Digest: d, Err: err}
	}
	key := moduleKey{d, opts}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, errClosed
	}
	e, ok := h.modules[key]
	if !ok {
		e = &moduleEntry{}
		h.modules[key] = e
	}
	h.mu.Unlock()
	e.once.Do(func() {
		m := &Module{h: h, name: name, digest: d, wasm: code, shape: shape, abi: opts.ABI, format: opts.Format,
			compiled: map[classKey]wazero.CompiledModule{}, pools: map[poolKey]*pool{}}
		err := m.handshake(ctx)
		if err != nil {
			e.err = &LoadError{Module: name, Digest: d, Err: err}
			return
		}
		e.mod = m
	})
	if e.err != nil {
		// A failed load is not cached: the cause may be transient (a
		// cancelled context) and the bytes are cheap to re-check.
		h.mu.Lock()
		if h.modules[key] == e {
			delete(h.modules, key)
		}
		h.mu.Unlock()
		return nil, e.err
	}
	return e.mod, nil
}

// compile returns the module compiled for class c.
func (m *Module) compile(ctx context.Context, c *class) (wazero.CompiledModule, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cm, ok := m.compiled[c.key]; ok {
		return cm, nil
	}
	code := m.wasm
	if c.key.interruptible && m.abi != ABIExtism { // a plugin runs in Extism's own runtime
		// Not kept: a Go module's metered bytes are megabytes, and a
		// second class finds them in the cache directory.
		metered, err := m.h.meter(m.wasm)
		if err != nil {
			return nil, err
		}
		code = metered
	}
	cctx, cancel := m.h.compileContext(ctx)
	defer cancel()
	cm, err := c.rt.CompileModule(cctx, code)
	if context.Cause(cctx) == errCompileTimeout {
		return nil, fmt.Errorf("compile: did not finish within the compile timeout of %s", m.h.cfg.CompileTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	check := checkShape
	switch m.abi {
	case ABIExtism:
		check = checkExtismShape
	case ABICommand:
		check = checkCommandShape
	}
	if err := check(cm, c.wasi); err != nil {
		cm.Close(ctx)
		return nil, err
	}
	m.exportDefs = cm.ExportedFunctions()
	m.compiled[c.key] = cm
	return cm, nil
}

var exportSigs = map[string][2][]api.ValueType{
	abi.ExportVersion:  {nil, {api.ValueTypeI32}},
	abi.ExportManifest: {nil, {api.ValueTypeI32}},
	abi.ExportInvoke:   {{api.ValueTypeI32}, {api.ValueTypeI32}},
}

// checkShape verifies imports and exports against the ABI, reporting every
// problem.
func checkShape(cm wazero.CompiledModule, wasi map[string]api.FunctionDefinition) error {
	var errs []error
	foreign := map[string][]string{} // imports of modules the ABI has not, by module
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		switch mod {
		case abi.ImportModule:
			sig, ok := importSigs[name]
			if !ok {
				errs = append(errs, fmt.Errorf("imports %s.%s, which the host does not provide (it provides %s.input, .output, .log, and the capabilities .http and .http_response)", mod, name, mod))
			} else if !sameSig(f, sig) {
				errs = append(errs, fmt.Errorf("imports %s.%s with signature %s, want %s", mod, name, sigString(f.ParamTypes(), f.ResultTypes()), sigString(sig[0], sig[1])))
			}
		case meterModule: // added by meter, refused in a module by scan
			continue
		case abi.WASIModule:
			def, ok := wasi[name]
			if !ok {
				errs = append(errs, fmt.Errorf("imports %s.%s, which the host does not provide", mod, name))
			} else if !sameSig(f, [2][]api.ValueType{def.ParamTypes(), def.ResultTypes()}) {
				errs = append(errs, fmt.Errorf("imports %s.%s with the wrong signature", mod, name))
			}
		default:
			if !slices.Contains(foreign[mod], name) {
				foreign[mod] = append(foreign[mod], name)
			}
		}
	}
	for _, mod := range slices.Sorted(maps.Keys(foreign)) {
		names := foreign[mod]
		if len(names) == 1 {
			errs = append(errs, fmt.Errorf("imports %s.%s, which the host does not provide (knots may import only %s and %s)", mod, names[0], abi.ImportModule, abi.WASIModule))
			continue
		}
		errs = append(errs, fmt.Errorf("imports %d functions of %s (%s), which the host does not provide (knots may import only %s and %s)",
			len(names), mod, strings.Join(names, ", "), abi.ImportModule, abi.WASIModule))
	}
	for _, mem := range cm.ImportedMemories() {
		mod, name, _ := mem.Import()
		errs = append(errs, fmt.Errorf("imports memory %s.%s; a knot must define and export its own memory", mod, name))
	}
	if _, ok := cm.ExportedMemories()[abi.ExportMemory]; !ok {
		errs = append(errs, fmt.Errorf("does not export its memory as %q", abi.ExportMemory))
	}
	exports := cm.ExportedFunctions()
	if _, ok := exports[abi.ExportInvoke]; !ok {
		// Not a pirn module at all: say what it looks like.
		switch _, start := exports["_start"]; {
		case len(foreign[extismEnv]) > 0:
			errs = append([]error{fmt.Errorf("it looks like an Extism plugin (it imports %s): load it with abi: extism (pirn inspect --abi extism)", extismEnv)}, errs...)
		case start:
			errs = append([]error{errors.New("it looks like a WASI command (it exports _start): load it with abi: wasi-command (pirn inspect --abi wasi-command)")}, errs...)
		}
	}
	for _, name := range []string{abi.ExportVersion, abi.ExportManifest, abi.ExportInvoke} {
		f, ok := exports[name]
		sig := exportSigs[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("does not export %s (is it a pirn knot module?)", name))
		case !sameSig(f, sig):
			errs = append(errs, fmt.Errorf("exports %s with signature %s, want %s", name, sigString(f.ParamTypes(), f.ResultTypes()), sigString(sig[0], sig[1])))
		}
	}
	return errors.Join(errs...)
}

func sameSig(f api.FunctionDefinition, sig [2][]api.ValueType) bool {
	return slices.Equal(f.ParamTypes(), sig[0]) && slices.Equal(f.ResultTypes(), sig[1])
}

func sigString(params, results []api.ValueType) string {
	names := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return strings.Join(s, ", ")
	}
	return "(" + names(params) + ") -> (" + names(results) + ")"
}

// handshake compiles the module for the default class, checks its shape,
// version and manifest, and keeps the instance it used as the first
// instance of the default pool.
func (m *Module) handshake(ctx context.Context) error {
	// Compiling is the host's work, bounded by the module's size; only
	// what the guest runs (its start function and manifest) gets
	// LoadTimeout, however long its knots may later run.
	state, _ := m.state(model.StateDefault)
	p, err := m.pool(ctx, withDefaults(model.Limits{}, m.h.cfg.Defaults), model.Grants{}, state, false)
	if err != nil {
		return err
	}
	hctx, cancel := context.WithTimeoutCause(ctx, m.h.cfg.LoadTimeout, errLoadTimeout)
	defer cancel()
	err = m.greet(hctx, p)
	if context.Cause(hctx) == errLoadTimeout {
		err = fmt.Errorf("did not finish loading within the load timeout of %s (its start function or manifest never returned): %w", m.h.cfg.LoadTimeout, err)
	}
	return err
}

// greet instantiates the module and reads its version and manifest.
func (m *Module) greet(ctx context.Context, p *pool) error {
	if m.abi == ABICommand {
		m.manifest = commandManifest(m.name)
		m.format = cmpFormat(m.format, FormatJSON)
		return nil
	}
	inst, err := p.get(ctx)
	if err != nil {
		return err
	}
	keep := false
	defer func() { p.release(inst, keep) }()
	if m.abi == ABIExtism {
		if m.manifest, m.format, m.aware, err = m.pluginManifest(ctx, inst, m.format); err != nil {
			return err
		}
		keep = true
		return nil
	}

	res, err := inst.enter(ctx, abi.ExportVersion)
	if err != nil {
		return err
	}
	if v := int32(res); v != abi.Version {
		return fmt.Errorf("declares ABI version %d; this host speaks version %d", v, abi.Version)
	}
	rc, err := inst.enter(ctx, abi.ExportManifest)
	if err != nil {
		return err
	}
	if int32(rc) != 0 {
		return fmt.Errorf("%s returned %d", abi.ExportManifest, int32(rc))
	}
	if !inst.outputSet {
		return fmt.Errorf("%s returned without calling %s.%s", abi.ExportManifest, abi.ImportModule, abi.ImportOutput)
	}
	man, err := abi.DecodeManifest(inst.resp)
	if err != nil {
		return err
	}
	m.manifest = man
	keep = true
	return nil
}

// pool returns the pool for lim (already defaulted) and g (already
// validated), creating it. A new pool is pre-warmed with one instance
// unless warm is false.
func (m *Module) pool(ctx context.Context, lim model.Limits, g model.Grants, state model.State, warm bool) (*pool, error) {
	key := poolKey{lim, grantsKey(g), state}
	m.mu.Lock()
	p, ok := m.pools[key]
	m.mu.Unlock()
	if ok {
		return p, nil
	}
	c, err := m.h.class(ctx, lim)
	if err != nil {
		return nil, err
	}
	cm, err := m.compile(ctx, c)
	if err != nil {
		return nil, err
	}
	fresh := newPool(m, c, cm, lim)
	fresh.grants, fresh.state = g, state
	if fresh.fsc, fresh.roots, err = fsConfig(g); err != nil {
		return nil, err
	}
	if m.abi == ABIExtism {
		if fresh.plugin, err = m.compiledPlugin(ctx, lim); err != nil {
			fresh.close(ctx)
			return nil, err
		}
	}
	m.mu.Lock()
	if p, ok = m.pools[key]; !ok {
		p = fresh
		m.pools[key] = p
	}
	m.mu.Unlock()
	if ok { // another caller made it first
		fresh.close(ctx)
	}
	if warm && !ok && m.abi != ABICommand {
		p.refill()
	}
	return p, nil
}

func (m *Module) closePools(ctx context.Context) {
	m.mu.Lock()
	pools := m.pools
	m.pools = map[poolKey]*pool{}
	m.mu.Unlock()
	for _, p := range pools {
		p.close(ctx)
	}
}

// KnotConfig selects a knot of a module and how it runs.
type KnotConfig struct {
	Name   string       // the knot's name in the manifest
	Limits model.Limits // zero fields take the host's defaults
	// NoTypeCheck passes inputs and outputs through without checking them
	// against the manifest's types (the original's validate_io: false).
	NoTypeCheck bool
	// Grants are the knot's capabilities; none by default.
	Grants model.Grants
	// State says what an instance keeps between invocations (see
	// model.State; by default everything, recorded as GrantState).
	State model.State
}

// Knot returns a handle for invoking a knot of the module. It checks cfg
// (limits, grants and their directories, state) but starts nothing: the
// knot's instances, and the module's compilation under its limits, come
// with [Knot.Prepare] or its first invocation.
func (m *Module) Knot(cfg KnotConfig) (*Knot, error) {
	spec, ok := m.manifest.Knot(cfg.Name)
	if !ok {
		return nil, &LoadError{Module: m.name, Digest: m.digest,
			Err: fmt.Errorf("has no knot %q (it has: %s)", cfg.Name, strings.Join(m.manifest.KnotNames(), ", "))}
	}
	lim := withDefaults(cfg.Limits, m.h.cfg.Defaults)
	if err := lim.Validate(); err != nil {
		return nil, fmt.Errorf("knot %s: limits: %w", cfg.Name, err)
	}
	grants, err := validateGrants(cfg.Grants)
	if err != nil {
		return nil, fmt.Errorf("knot %s: grants: %w", cfg.Name, err)
	}
	if err := m.checkGrants(cfg.Name, grants); err != nil {
		return nil, &LoadError{Module: m.name, Digest: m.digest, Err: err}
	}
	state, err := m.state(cfg.State)
	if err != nil {
		return nil, fmt.Errorf("knot %s: %w", cfg.Name, err)
	}
	sig, err := m.signature(spec)
	if err != nil { // the manifest was validated at load, so its types parse
		return nil, &LoadError{Module: m.name, Digest: m.digest, Err: err}
	}
	return &Knot{mod: m, spec: spec, lim: lim, grants: grants, state: state, check: !cfg.NoTypeCheck, sig: sig}, nil
}

// signature returns spec's parsed types, parsed once per knot of the
// module: a Signature is read-only, and a pipeline of 5000 nodes running
// one knot would otherwise hold 5000 copies (2 MB; docs/performance.md).
func (m *Module) signature(spec *abi.KnotSpec) (*abi.Signature, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if sig, ok := m.sigs[spec.Name]; ok {
		return sig, nil
	}
	sig, err := abi.NewSignature(spec)
	if err != nil {
		return nil, err
	}
	if m.sigs == nil {
		m.sigs = map[string]*abi.Signature{}
	}
	m.sigs[spec.Name] = sig
	return sig, nil
}

// state resolves a knot's State for this module.
func (m *Module) state(s model.State) (model.State, error) {
	switch {
	case m.abi == ABICommand:
		return model.StateFresh, nil // a command runs once per instance
	case m.abi == ABIExtism && s == model.StateReset:
		return 0, fmt.Errorf("an Extism plugin's instance cannot be reset (its memory belongs to the Extism SDK): use fresh or keep")
	case s == model.StateDefault:
		return model.StateKeep, nil
	case s == model.StateReset:
		if m.shape.Stateful != "" {
			return model.StateFresh, nil // the host cannot restore what this module changes
		}
		return model.StateReset, nil
	}
	return s, nil
}

// checkGrants refuses a knot whose module needs a capability the knot is
// not granted, or that is granted one its ABI cannot carry.
func (m *Module) checkGrants(knot string, g model.Grants) error {
	if m.importsHTTP() && len(g.HTTP) == 0 {
		return fmt.Errorf("imports %s.%s (outbound HTTP), which knot %s is not granted: grant it hosts with grants: {http: [{host: ..., methods: [...]}]}",
			abi.ImportModule, abi.ImportHTTP, knot)
	}
	if len(g.HTTP) > 0 && m.abi != ABIPirn {
		return fmt.Errorf("knot %s: an http grant needs a pirn module (the %s ABI has no pirn.http)", knot, m.abi)
	}
	return nil
}

// importsHTTP reports whether the module imports the HTTP capability.
func (m *Module) importsHTTP() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, cm := range m.compiled {
		for _, f := range cm.ImportedFunctions() {
			if mod, name, _ := f.Import(); mod == abi.ImportModule && (name == abi.ImportHTTP || name == abi.ImportHTTPResponse) {
				return true
			}
		}
		break
	}
	return false
}

// Knot invokes one knot of a module.
type Knot struct {
	mod    *Module
	spec   *abi.KnotSpec
	lim    model.Limits
	grants model.Grants
	state  model.State // resolved: StateReset, StateFresh or StateKeep
	check  bool
	sig    *abi.Signature

	pool   atomic.Pointer[pool] // set once, by acquire
	poolMu sync.Mutex           // held while acquire makes the pool
}

// Prepare makes the knot ready to run: it compiles the module under the
// knot's limits (if no knot with the same limits did) and starts an
// instance, unless its pool has one. Invoke prepares the knot itself if
// need be; Prepare lets a caller pay that cost, and meet its errors, before
// the first invocation.
func (k *Knot) Prepare(ctx context.Context) error {
	p, err := k.acquire(ctx)
	if err != nil || k.mod.abi == ABICommand {
		return err
	}
	if err := p.warm(ctx); err != nil {
		return &LoadError{Module: k.mod.name, Digest: k.mod.digest, Err: err}
	}
	return nil
}

// acquire returns the knot's pool, making it the first time.
func (k *Knot) acquire(ctx context.Context) (*pool, error) {
	if p := k.pool.Load(); p != nil {
		return p, nil
	}
	k.poolMu.Lock()
	defer k.poolMu.Unlock()
	if p := k.pool.Load(); p != nil {
		return p, nil
	}
	p, err := k.mod.pool(ctx, k.lim, k.grants, k.state, false)
	if err != nil {
		return nil, &LoadError{Module: k.mod.name, Digest: k.mod.digest, Err: err}
	}
	k.pool.Store(p)
	return p, nil
}

// Spec returns the knot's manifest entry.
func (k *Knot) Spec() *abi.KnotSpec { return k.spec }

// Module returns the knot's module.
func (k *Knot) Module() *Module { return k.mod }

// State returns what the knot's instances keep between invocations:
// StateReset, StateFresh or StateKeep.
func (k *Knot) State() model.State { return k.state }

// Lineage returns the knot's grants as lineage records them: Grants'
// Describe, and GrantState if its instances keep their state.
func (k *Knot) Lineage() []string {
	d := k.grants.Describe()
	if k.state == model.StateKeep {
		d = append(d, GrantState)
		slices.Sort(d)
	}
	return d
}

// TypeChecked reports whether inputs and outputs are checked against the
// manifest's types (KnotConfig.NoTypeCheck unset).
func (k *Knot) TypeChecked() bool { return k.check }

// Limits returns the knot's effective limits.
func (k *Knot) Limits() model.Limits { return k.lim }

// Grants returns the knot's capabilities, normalised (directories made
// absolute).
func (k *Knot) Grants() model.Grants { return k.grants }

// Call is one invocation's arguments.
type Call struct {
	RunID  string // for logs
	KnotID string // for logs: the knot's id in the pipeline
	Inputs []abi.Arg
	Config []abi.Arg
}

// Invoke runs the knot once. Inputs and Config must be sorted with
// abi.SortArgs and hold canonical values. The response's Value (and any
// error Detail) is canonical. Invoke never panics; every failure, including
// cancellation of ctx, is an err response. Its text is clipped to the
// bounds of abi.Response.Clip.
func (k *Knot) Invoke(ctx context.Context, c *Call) abi.Response {
	r := k.invoke(ctx, c)
	r.Clip()
	return r
}

func (k *Knot) invoke(ctx context.Context, c *Call) abi.Response {
	if r, ok := k.checkSize(c); !ok {
		return r
	}
	if k.check {
		var r abi.Response
		var ok bool
		if c, r, ok = k.checkInputs(c); !ok {
			return r
		}
	}
	p, err := k.acquire(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return fail(ErrCancelled, "cancelled before the knot was ready: "+context.Cause(ctx).Error(), "")
		}
		return fail(ErrInstantiate, err.Error(), "")
	}
	if k.mod.abi == ABICommand {
		r := p.runCommand(ctx, c)
		return k.checkOutput(r)
	}
	inst, err := p.get(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return fail(ErrCancelled, "cancelled before an instance was free: "+context.Cause(ctx).Error(), "")
		}
		return fail(ErrInstantiate, err.Error(), "")
	}
	var r abi.Response
	var keep bool
	if inst.plugin != nil {
		r, keep = inst.callPlugin(ctx, k.spec.Name, c)
	} else {
		r, keep = inst.call(ctx, k.spec.Name, c)
	}
	r.Logs = inst.kept.Take()
	p.release(inst, keep)
	return k.checkOutput(r)
}

// checkOutput coerces an ok response's value to the declared output type.
func (k *Knot) checkOutput(r abi.Response) abi.Response {
	if k.check && r.Outcome == abi.OutcomeOK {
		v, err := k.sig.CoerceOutput(r.Value)
		if err != nil {
			return fail(ErrType, err.Error(), "")
		}
		r.Value = v
	}
	return r
}

// checkSize enforces MaxInput and MaxDepth on a call's arguments.
func (k *Knot) checkSize(c *Call) (abi.Response, bool) {
	lim := k.lim
	size := 16 + len(k.spec.Name)
	for _, args := range [2][]abi.Arg{c.Inputs, c.Config} {
		for _, a := range args {
			size += 2 + len(a.Name) + len(a.Value)
		}
	}
	if size > lim.MaxInput {
		return fail(ErrLimit, fmt.Sprintf("knot %s: the inputs take %d bytes, over the limit MaxInput=%d", k.spec.Name, size, lim.MaxInput), ""), false
	}
	if lim.MaxDepth < abi.MaxNestedLevels { // values are already bounded by the ABI's own depth
		for _, args := range [2][]abi.Arg{c.Inputs, c.Config} {
			for _, a := range args {
				if d := abi.Depth(a.Value); d > lim.MaxDepth {
					return fail(ErrLimit, fmt.Sprintf("knot %s: input %q is nested %d levels deep, over the limit MaxDepth=%d", k.spec.Name, a.Name, d, lim.MaxDepth), ""), false
				}
			}
		}
	}
	return abi.Response{}, true
}

// checkInputs coerces each argument to its declared type, copying the call
// if anything changes (its slices may be shared).
func (k *Knot) checkInputs(c *Call) (*Call, abi.Response, bool) {
	inputs, config, err := k.sig.CoerceRequest(c.Inputs, c.Config)
	if err != nil {
		return nil, fail(ErrType, err.Error(), ""), false
	}
	if !sameArgs(inputs, c.Inputs) || !sameArgs(config, c.Config) {
		cp := *c
		cp.Inputs, cp.Config = inputs, config
		c = &cp
	}
	return c, abi.Response{}, true
}

// sameArgs reports whether a and b are one slice.
func sameArgs(a, b []abi.Arg) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// KnotStats describes the instances behind a knot: those of its module
// under its limits, shared with every knot of the module that has the
// same limits.
type KnotStats struct {
	Created int64 // instances ever started
	Idle    int   // instances waiting for an invocation
	// IdleMemory is the linear memory of the idle instances, in bytes (for
	// an Extism plugin, the memory of its Extism kernel).
	IdleMemory uint64
}

// Stats reports on the knot's instances. It takes the idle instances out
// of the pool for a moment, so an invocation starting meanwhile may start
// a new one.
func (k *Knot) Stats() KnotStats {
	p := k.pool.Load()
	if p == nil {
		return KnotStats{}
	}
	st := KnotStats{Created: p.created.Load()}
	var held []*instance
	for {
		select {
		case inst := <-p.idle:
			held = append(held, inst)
			continue
		default:
		}
		break
	}
	for _, inst := range held {
		st.Idle++
		if inst.mem != nil {
			st.IdleMemory += uint64(inst.mem.Size())
		}
		p.idle <- inst
	}
	return st
}
