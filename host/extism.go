package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/model"
)

// Extism plugins (ABI extism) run through the Extism Go SDK. Each exported
// function of the plugin is a knot. The host hands it one input document:
// a map from input name to value, in the module's format (CBOR unless
// the plugin or the pipeline says JSON), and reads its output the same
// way.
//
// A plugin may describe itself: if it exports an Extism function
// pirn_manifest, the host calls it once at load and reads a pirn manifest
// (docs/abi.md §3) from its output, in CBOR or JSON — whichever the
// plugin wrote is its format. Such a plugin's knots are typed by the
// manifest, and each call's output is a pirn response ({"ok": v},
// {"err": {...}} or {"skip": {...}}). A plugin without one has a knot per
// exported function, taking any named inputs and returning the output
// document as the value; an error it sets (extism's error_set) makes the
// knot err with type PluginError.

// extismManifestFn is the plugin function that returns a pirn manifest.
const extismManifestFn = "pirn_manifest"

// ErrPlugin is the err type of an Extism plugin call that failed by the
// plugin's own account (it set an error or returned non-zero).
const ErrPlugin = "PluginError"

// extismEnv is the import namespace of the Extism kernel's functions.
const extismEnv = "extism:host/env"

// extismLogOnce raises the Extism SDK's process-wide plugin log level from
// its default, off, to info: plugin logs at info and above reach the
// host's logger. (Its debug level would log every call.)
var extismLogOnce sync.Once

// checkExtismShape verifies that a plugin imports only what the Extism
// kernel and WASI provide and exports at least one function.
func checkExtismShape(cm wazero.CompiledModule, wasi map[string]api.FunctionDefinition) error {
	var errs []error
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		switch mod {
		case extismEnv:
		case abi.WASIModule:
			if _, ok := wasi[name]; !ok {
				errs = append(errs, fmt.Errorf("imports %s.%s, which the host does not provide", mod, name))
			}
		default:
			errs = append(errs, fmt.Errorf("imports %s.%s, which the host does not provide (an Extism plugin may import only %s and %s)", mod, name, extismEnv, abi.WASIModule))
		}
	}
	if len(pluginFunctions(cm.ExportedFunctions())) == 0 {
		errs = append(errs, errors.New("exports no plugin function (an Extism function takes no parameters and returns an i32)"))
	}
	return errors.Join(errs...)
}

// pluginFunctions lists the exports that can be knots: Extism functions
// (no parameters, an i32 result or none) with a valid knot name that do
// not start with "_" (runtime entry points such as _start and
// _initialize).
func pluginFunctions(exports map[string]api.FunctionDefinition) []string {
	var names []string
	for name, f := range exports {
		if strings.HasPrefix(name, "_") || name == extismManifestFn || !abi.ValidKnotName(name) {
			continue
		}
		if len(f.ParamTypes()) != 0 || len(f.ResultTypes()) > 1 ||
			(len(f.ResultTypes()) == 1 && f.ResultTypes()[0] != api.ValueTypeI32) {
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// compiledPlugin compiles the plugin for one set of limits. Each has its
// own wazero runtime (the SDK's design), sharing the host's compilation
// cache.
func (m *Module) compiledPlugin(ctx context.Context, lim model.Limits) (*extism.CompiledPlugin, error) {
	extismLogOnce.Do(func() { extism.SetLogLevel(extism.LogLevelInfo) })
	rcfg := wazero.NewRuntimeConfig().
		WithCompilationCache(m.h.cache).
		WithCloseOnContextDone(lim.Timeout >= 0).
		WithMemoryLimitPages(uint32(lim.Memory / pageSize)).
		WithCoreFeatures(api.CoreFeaturesV2)
	man := extism.Manifest{
		Wasm: []extism.Wasm{extism.WasmData{Data: m.wasm, Name: "main"}},
		// Plugin variables would carry state from one call to the next
		// through a pooled instance: none are allowed. No hosts, no paths.
		Memory: &extism.ManifestMemory{MaxPages: uint32(lim.Memory / pageSize), MaxVarBytes: 0},
	}
	cctx, cancel := m.h.compileContext(ctx)
	defer cancel()
	cp, err := extism.NewCompiledPlugin(cctx, man, extism.PluginConfig{RuntimeConfig: rcfg, EnableWasi: true}, nil)
	if context.Cause(cctx) == errCompileTimeout {
		return nil, fmt.Errorf("compile: did not finish within the compile timeout of %s", m.h.cfg.CompileTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("extism: %w", err)
	}
	return cp, nil
}

// newPluginInstance starts one plugin instance.
func (p *pool) newPluginInstance(ctx context.Context, inst *instance) (*instance, error) {
	cfg := p.configure(wazero.NewModuleConfig().WithStdout(inst.stdout).WithStderr(inst.stderr), inst)
	inst.begin("", "")
	cctx, cancel := inst.callContext(ctx)
	pl, err := p.plugin.Instance(cctx, extism.PluginInstanceConfig{ModuleConfig: cfg})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	pl.SetLogger(func(level extism.LogLevel, msg string) {
		if v := inst.charge(len(msg), true); v != nil {
			panic(v) // ends the invocation now: a flood is not waited out
		}
		inst.keep(extismLevel(level), msg)
		inst.log(context.Background(), extismLevel(level), msg, slog.String(AttrStream, "log"))
	})
	p.created.Add(1)
	inst.plugin = pl
	inst.mem = pl.Memory()
	return inst, nil
}

func extismLevel(l extism.LogLevel) slog.Level {
	switch {
	case l >= extism.LogLevelError:
		return slog.LevelError
	case l >= extism.LogLevelWarn:
		return slog.LevelWarn
	case l >= extism.LogLevelInfo:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// pluginManifest reads the plugin's self-description or, for a plugin
// without one, makes a manifest with a knot per plugin function taking any
// inputs and returning any value. It returns the format the plugin speaks.
func (m *Module) pluginManifest(ctx context.Context, inst *instance, format Format) (*abi.Manifest, Format, bool, error) {
	_, hasManifest := m.exportDefs[extismManifestFn]
	fns := pluginFunctions(m.exportDefs)
	if !hasManifest {
		man := &abi.Manifest{ABI: abi.Version}
		for _, fn := range fns {
			man.Knots = append(man.Knots, abi.KnotSpec{Name: fn, Doc: "Extism plugin function " + fn,
				Inputs: []abi.InputSpec{}, Rest: "any", Output: "any"})
		}
		return man, cmpFormat(format, FormatCBOR), false, nil
	}
	inst.begin("", "")
	cctx, stop := inst.arm(ctx)
	rc, out, err := inst.plugin.CallWithContext(cctx, extismManifestFn, nil)
	stop()
	inst.stdout.flush()
	inst.stderr.flush()
	if err != nil || rc != 0 {
		r := inst.pluginFailure(ctx, rc, err)
		return nil, "", false, fmt.Errorf("%s: %s: %s", extismManifestFn, r.Error.Type, r.Error.Message)
	}
	declared := FormatCBOR
	if t := bytes.TrimLeft(out, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		declared = FormatJSON
	}
	if format != "" && format != declared {
		return nil, "", false, fmt.Errorf("the pipeline says format %s, but the plugin's %s is %s", format, extismManifestFn, declared)
	}
	b := out
	if declared == FormatJSON {
		if b, err = decodeDocument(FormatJSON, out); err != nil {
			return nil, "", false, fmt.Errorf("%s: %w", extismManifestFn, err)
		}
	}
	man, err := abi.DecodeManifest(b)
	if err != nil {
		return nil, "", false, fmt.Errorf("%s: %w", extismManifestFn, err)
	}
	for _, k := range man.Knots {
		if !slices.Contains(fns, k.Name) {
			return nil, "", false, fmt.Errorf("%s declares knot %q, but the plugin exports no such function (it has: %s)", extismManifestFn, k.Name, strings.Join(fns, ", "))
		}
	}
	return man, declared, true, nil
}

func cmpFormat(f, def Format) Format {
	if f == "" {
		return def
	}
	return f
}

// callPlugin performs one invocation of a plugin function.
func (inst *instance) callPlugin(ctx context.Context, knot string, c *Call) (abi.Response, bool) {
	m := inst.p.m
	inst.begin(c.RunID, c.KnotID)
	inst.calls++
	doc, err := inputDocument(m.format, c)
	if err != nil {
		return fail(ErrType, fmt.Sprintf("knot %s: %v", knot, err), ""), true
	}
	cctx, stop := inst.arm(ctx)
	rc, out, err := inst.plugin.CallWithContext(cctx, knot, doc)
	open := stop()
	inst.stdout.flush()
	inst.stderr.flush()
	if err != nil || rc != 0 {
		r := inst.pluginFailure(ctx, rc, err)
		// A plugin that reported its own error is intact; anything else
		// (a trap, a timeout, an exit) discards the instance.
		return r, open && r.Error.Type == ErrPlugin && inst.violation == nil
	}
	if v := inst.violation; v != nil {
		return fail(v.typ, v.msg, inst.trace("")), false
	}
	if len(out) > inst.lim.MaxOutput {
		return fail(ErrLimit, fmt.Sprintf("output of %d bytes exceeds the limit MaxOutput=%d", len(out), inst.lim.MaxOutput), ""), false
	}
	if !m.aware {
		v, err := decodeDocument(m.format, out)
		if err != nil {
			return fail(ErrABI, fmt.Sprintf("plugin output (%s): %v", m.format, err), ""), open
		}
		return abi.OK(v), open
	}
	b := out
	if m.format == FormatJSON {
		if b, err = decodeDocument(FormatJSON, out); err != nil {
			return fail(ErrABI, fmt.Sprintf("plugin response (json): %v", err), ""), open
		}
	}
	r, err := abi.DecodeResponse(b)
	if err != nil {
		return fail(ErrABI, "plugin response: "+err.Error(), ""), open
	}
	if err := canonicalizeResponse(&r); err != nil {
		return fail(ErrABI, err.Error(), ""), false
	}
	return r, open
}

// pluginFailure classifies a failed plugin call.
func (inst *instance) pluginFailure(ctx context.Context, rc uint32, err error) abi.Response {
	if inst.violation != nil {
		return inst.classify(ctx, err)
	}
	if err != nil {
		var exit *sys.ExitError
		if _, trap := isTrap(err); trap || errors.As(err, &exit) || ctx.Err() != nil {
			return inst.classify(ctx, err)
		}
	}
	if err != nil && inst.cctx != nil && inst.cctx.closed.Load() {
		// The SDK reports an interrupted call in its own words; the
		// instance's context says why.
		return inst.classify(ctx, sys.NewExitError(sys.ExitCodeDeadlineExceeded))
	}
	msg, stack := fmt.Sprintf("plugin returned %d", rc), ""
	if err != nil {
		msg, stack, _ = strings.Cut(err.Error(), "\n")
	}
	return fail(ErrPlugin, msg, inst.trace(stack))
}

// canonicalizeResponse canonicalises a decoded response's value and
// details in place.
func canonicalizeResponse(r *abi.Response) error {
	var err error
	switch r.Outcome {
	case abi.OutcomeOK:
		if r.Value, err = cas.Canonicalize(r.Value); err != nil {
			return fmt.Errorf("output value: %w", err)
		}
	case abi.OutcomeErr:
		if r.Error.Detail != nil {
			if r.Error.Detail, err = cas.Canonicalize(r.Error.Detail); err != nil {
				return fmt.Errorf("error detail: %w", err)
			}
		}
	case abi.OutcomeSkip:
		if r.Skip.Detail != nil {
			if r.Skip.Detail, err = cas.Canonicalize(r.Skip.Detail); err != nil {
				return fmt.Errorf("skip detail: %w", err)
			}
		}
	}
	return nil
}
