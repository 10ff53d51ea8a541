package pirn

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/internal/loom"
	"github.com/pirn-wasm/pirn/model"
	"github.com/pirn-wasm/pirn/pipeline"
)

// Pipeline is a loaded YAML pipeline: its spec, its modules and the
// tapestry built from them.
type Pipeline struct {
	Spec     *pipeline.Spec
	Tapestry *Tapestry
	Modules  map[string]*Module // by name in the module table
	// Unpinned lists the modules loaded without a pin (AllowUnpinned).
	Unpinned []string
	// Bundle describes the bundle the pipeline came from (LoadBundle).
	Bundle *BundleInfo
}

// ParamType returns the type of the named parameter.
func (p *Pipeline) ParamType(name string) (abi.Type, bool) {
	for _, n := range p.Spec.Nodes {
		if n.Kind == model.KindParameter && n.ParamName == name {
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
	p, errs, _, err := e.load(ctx, path, e.cfg.AllowUnpinned, false)
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}

// load does the work of LoadPipeline and Check. Unless thorough, it stops
// at the first phase that has errors; thorough goes on as far as it can,
// building what does not depend on a module that failed to load.
func (e *Engine) load(ctx context.Context, path string, allowUnpinned, thorough bool) (*Pipeline, pipeline.Errors, pipeline.Errors, error) {
	spec, err := pipeline.Load(path)
	if err != nil {
		var perrs pipeline.Errors
		if errors.As(err, &perrs) {
			return nil, perrs, nil, nil
		}
		return nil, nil, nil, err
	}
	p := &Pipeline{Spec: spec, Tapestry: NewTapestry(), Modules: map[string]*Module{}}
	var errs pipeline.Errors
	fail := func(line int, format string, args ...any) {
		errs = append(errs, &pipeline.Error{File: spec.File, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	lockPath := pipeline.LockPath(path)
	lock, err := pipeline.ReadLock(lockPath)
	lockMissing := errors.Is(err, fs.ErrNotExist)
	switch {
	case lockMissing:
		// A pipeline of parameters and expressions has nothing to pin.
		if !allowUnpinned && len(spec.Modules) > 0 {
			fail(0, "no lock file %s: run `pirn lock %s` to pin its modules' digests (or allow unpinned modules: --unpinned, Config.AllowUnpinned)", lockPath, path)
			if !thorough {
				return nil, errs, nil, nil
			}
		}
		lock = &pipeline.Lock{}
	case err != nil:
		return nil, nil, nil, err
	}
	mods, lerrs := loom.LoadModules(ctx, e.host, spec, func(m pipeline.Module) ([]byte, error) {
		file, _ := spec.ModulePath(m.Name)
		b, err := readModule(file)
		if err != nil {
			return nil, fmt.Errorf("module %q: %v", m.Name, err)
		}
		got := cas.Sum(b)
		want, pinned := lock.Digest(m.Name)
		switch {
		case !pinned && !allowUnpinned:
			var err error
			if !lockMissing { // a missing lock file is already reported
				err = fmt.Errorf("module %q (%s) is not pinned in %s: run `pirn lock %s`", m.Name, file, lockPath, path)
			}
			if !thorough {
				return nil, err
			}
			return b, err
		case !pinned:
			p.Unpinned = append(p.Unpinned, m.Name)
			e.cfg.Logger.Info("loading an unpinned module", "module", m.Name, "path", file, "digest", got.String())
		case want != got:
			return nil, fmt.Errorf("module %q (%s) does not match its pin in %s: the file is %s, the lock file pins %s", m.Name, file, lockPath, got, want)
		}
		return b, nil
	})
	errs = append(errs, lerrs...)
	p.setModules(mods)
	if len(errs) > 0 && !thorough {
		return nil, errs, nil, nil
	}
	berrs, warnings := p.Tapestry.l.Build(spec, mods)
	errs = append(errs, berrs...)
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	return p, errs, warnings, nil
}

// setModules wraps the loaded modules.
func (p *Pipeline) setModules(mods map[string]*host.Module) {
	for name, m := range mods {
		p.Modules[name] = &Module{m: m}
	}
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
	digests := map[string]cas.Digest{}
	mods, errs := loom.LoadModules(ctx, e.host, spec, func(m pipeline.Module) ([]byte, error) {
		file, _ := spec.ModulePath(m.Name)
		b, err := readModule(file)
		if err != nil {
			return nil, fmt.Errorf("module %q: %v", m.Name, err)
		}
		digests[m.Name] = cas.Sum(b)
		return b, nil
	})
	for _, m := range spec.Modules {
		if _, ok := mods[m.Name]; ok {
			lock.Entries = append(lock.Entries, pipeline.LockEntry{Module: m.Name, Digest: digests[m.Name], Path: m.Path})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	slices.SortFunc(lock.Entries, func(a, b pipeline.LockEntry) int { return strings.Compare(a.Module, b.Module) })
	return lock, pipeline.WriteLock(pipeline.LockPath(path), lock)
}
