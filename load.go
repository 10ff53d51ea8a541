package pirn

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/pipeline"
	"github.com/pirn-wasm/pirn/scheduler"
)

// Pipeline is a loaded YAML pipeline: its spec, its modules and the
// tapestry built from them.
type Pipeline struct {
	Spec     *pipeline.Spec
	Tapestry *Tapestry
	Modules  map[string]*Module // by name in the module table
	// Unpinned lists the modules loaded without a pin (AllowUnpinned).
	Unpinned []string
}

// ParamType returns the type of the named parameter.
func (p *Pipeline) ParamType(name string) (abi.Type, bool) {
	for _, n := range p.Spec.Nodes {
		if n.Type == pipeline.TypeParameter && n.ParamName == name {
			return n.ValueType, true
		}
	}
	return abi.Type{}, false
}

// LoadPipeline reads the pipeline file at path, checks every module
// against the lock file beside it, loads the modules and builds the
// tapestry. Problems in the file are reported as pipeline.Errors naming
// the file and line.
func (e *Engine) LoadPipeline(ctx context.Context, path string) (*Pipeline, error) {
	spec, err := pipeline.Load(path)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{Spec: spec, Tapestry: NewTapestry(), Modules: map[string]*Module{}}
	lockPath := pipeline.LockPath(path)
	lock, err := pipeline.ReadLock(lockPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !e.cfg.AllowUnpinned {
			return nil, fmt.Errorf("%s has no lock file %s: run `pirn lock %s` to pin its modules' digests (or allow unpinned modules)", path, lockPath, path)
		}
		lock = &pipeline.Lock{}
	case err != nil:
		return nil, err
	}
	var errs pipeline.Errors
	fail := func(line int, format string, args ...any) {
		errs = append(errs, &pipeline.Error{File: spec.File, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	for _, m := range spec.Modules {
		file, _ := spec.ModulePath(m.Name)
		b, err := os.ReadFile(file)
		if err != nil {
			fail(m.Line, "module %q: %v", m.Name, err)
			continue
		}
		got := cas.Sum(b)
		want, pinned := lock.Digest(m.Name)
		switch {
		case !pinned && !e.cfg.AllowUnpinned:
			fail(m.Line, "module %q (%s) is not pinned in %s: run `pirn lock %s`", m.Name, file, lockPath, path)
			continue
		case !pinned:
			p.Unpinned = append(p.Unpinned, m.Name)
			e.cfg.Logger.Warn("loading an unpinned module", "module", m.Name, "path", file, "digest", got.String())
		case want != got:
			fail(m.Line, "module %q (%s) does not match its pin in %s: the file is %s, the lock file pins %s", m.Name, file, lockPath, got, want)
			continue
		}
		mod, err := e.LoadModuleBytes(ctx, m.Name, b)
		if err != nil {
			fail(m.Line, "%v", err)
			continue
		}
		p.Modules[m.Name] = mod
	}
	if len(errs) > 0 {
		return nil, errs
	}
	t := p.Tapestry
	for i := range spec.Nodes {
		n := &spec.Nodes[i]
		switch n.Type {
		case pipeline.TypeParameter:
			if _, err := t.t.AddParameter(scheduler.ParamSpec{ID: n.ID, Name: n.ParamName, Type: n.ValueType, Default: n.Default, HasDefault: n.HasDefault}); err != nil {
				fail(n.Line, "%v", err)
			}
		case pipeline.TypeKnot:
			if err := e.addKnot(ctx, p, n); err != nil {
				fail(n.Line, "node %q: %v", n.ID, err)
			}
		}
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
		return nil, errs
	}
	return p, nil
}

func (e *Engine) addKnot(ctx context.Context, p *Pipeline, n *pipeline.Node) error {
	mod := p.Modules[n.Module]
	spec, ok := mod.Manifest().Knot(n.Knot)
	if !ok {
		names := mod.Manifest().KnotNames()
		return fmt.Errorf("module %q has no knot %q (it has: %s)", n.Module, n.Knot, strings.Join(names, ", "))
	}
	policy, err := scheduler.ParsePolicy(n.Policy)
	if err != nil {
		return err
	}
	config := n.Config
	if config == nil {
		config = map[string]any{}
	}
	if err := checkInputs(spec, n.Parents, config); err != nil {
		return err
	}
	ref := mod.Knot(n.Knot)
	ref.Limits = hostLimits(n.Limits)
	k, module, name, _, err := ref.resolve(ctx)
	if err != nil {
		return err
	}
	_, err = p.Tapestry.t.AddKnot(scheduler.KnotSpec{ID: n.ID, Knot: k, Module: module, Name: name,
		Parents: n.Parents, Config: config, Policy: policy, Optional: n.Optional})
	return err
}

// Lock computes the digest of every module the pipeline at path declares,
// checks that each is a valid knot module, and writes the lock file beside
// the pipeline.
func (e *Engine) Lock(ctx context.Context, path string) (*pipeline.Lock, error) {
	spec, err := pipeline.Load(path)
	if err != nil {
		return nil, err
	}
	lock := &pipeline.Lock{}
	var errs pipeline.Errors
	for _, m := range spec.Modules {
		file, _ := spec.ModulePath(m.Name)
		b, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, &pipeline.Error{File: spec.File, Line: m.Line, Msg: fmt.Sprintf("module %q: %v", m.Name, err)})
			continue
		}
		if _, err := e.LoadModuleBytes(ctx, m.Name, b); err != nil {
			errs = append(errs, &pipeline.Error{File: spec.File, Line: m.Line, Msg: err.Error()})
			continue
		}
		lock.Entries = append(lock.Entries, pipeline.LockEntry{Module: m.Name, Digest: cas.Sum(b), Path: m.Path})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	slices.SortFunc(lock.Entries, func(a, b pipeline.LockEntry) int { return strings.Compare(a.Module, b.Module) })
	return lock, pipeline.WriteLock(pipeline.LockPath(path), lock)
}

func hostLimits(l pipeline.Limits) host.Limits {
	return host.Limits{Timeout: l.Timeout, Memory: l.Memory, HighWater: l.HighWater,
		MaxInvocations: l.MaxInvocations, MaxInstances: l.MaxInstances,
		MaxOutput: int(min(l.MaxOutput, math.MaxInt32)), MaxLog: int(min(l.MaxLog, math.MaxInt32))}
}
