package pirn

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/expr"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/internal/suggest"
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
	var errs, warnings pipeline.Errors
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
	for _, m := range spec.Modules {
		file, _ := spec.ModulePath(m.Name)
		b, err := readModule(file)
		if err != nil {
			fail(m.Line, "module %q: %v", m.Name, err)
			continue
		}
		got := cas.Sum(b)
		want, pinned := lock.Digest(m.Name)
		switch {
		case !pinned && !allowUnpinned:
			if !lockMissing { // a missing lock file is already reported
				fail(m.Line, "module %q (%s) is not pinned in %s: run `pirn lock %s`", m.Name, file, lockPath, path)
			}
			if !thorough {
				continue
			}
		case !pinned:
			p.Unpinned = append(p.Unpinned, m.Name)
			e.cfg.Logger.Info("loading an unpinned module", "module", m.Name, "path", file, "digest", got.String())
		case want != got:
			fail(m.Line, "module %q (%s) does not match its pin in %s: the file is %s, the lock file pins %s", m.Name, file, lockPath, got, want)
			continue
		}
		mod, err := e.LoadModuleBytesWith(ctx, m.Name, b, moduleOptions(m))
		if err != nil {
			fail(m.Line, "%v", err)
			continue
		}
		p.Modules[m.Name] = mod
	}
	if len(errs) > 0 && !thorough {
		return nil, errs, nil, nil
	}
	errs = append(errs, e.build(p)...)
	lines := map[string]int{}
	for _, n := range spec.Nodes {
		lines[n.ID] = n.Line
		for _, a := range n.Arms {
			lines[n.ID+"."+a] = n.Line
		}
	}
	for _, w := range p.Tapestry.t.Warnings() {
		warnings = append(warnings, &pipeline.Error{File: spec.File, Line: lines[w.Node], Msg: w.Msg})
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	return p, errs, warnings, nil
}

// build adds the spec's nodes, in order, to the pipeline's tapestry.
func (e *Engine) build(p *Pipeline) pipeline.Errors {
	spec, t := p.Spec, p.Tapestry
	var errs pipeline.Errors
	nodes := map[string]*Node{} // by id, arms included
	for i := range spec.Nodes {
		n := &spec.Nodes[i]
		fail := func(line int, err error) {
			if j, ok := err.(interface{ Unwrap() []error }); ok { // one entry per problem
				for _, e := range j.Unwrap() {
					errs = append(errs, &pipeline.Error{File: spec.File, Line: line, Msg: e.Error()})
				}
				return
			}
			errs = append(errs, &pipeline.Error{File: spec.File, Line: line, Msg: err.Error()})
		}
		missing := false
		for _, r := range n.Refs() {
			if _, ok := nodes[r.ID]; !ok {
				missing = true // its parent failed to build; that error is reported
			}
		}
		for _, m := range []string{n.Module, fnModule(n)} {
			if _, ok := p.Modules[m]; m != "" && !ok {
				missing = true // the module failed to load; that error is reported
			}
		}
		if missing {
			continue
		}
		in := In{}
		for name, id := range n.Parents {
			in[name] = nodes[id]
		}
		for name, v := range n.Config {
			in[name] = v
		}
		fn, err := p.fn(n)
		if err != nil {
			fail(n.Line, err)
			continue
		}
		var node *Node
		switch n.Kind {
		case model.KindParameter:
			node, err = t.Parameter(Param{ID: n.ID, Name: n.ParamName, Type: n.ValueType.String(), Default: n.Default, HasDefault: n.HasDefault})
		case model.KindKnot, model.KindSource, model.KindSink, model.KindAggregator:
			node, err = t.Add(KnotDef{ID: n.ID, Kind: n.Kind, Knot: fn, In: in, Policy: n.Policy, Optional: n.Optional})
		case model.KindGate:
			node, err = t.Gate(GateDef{ID: n.ID, Input: nodes[n.Input], Predicate: fn, Policy: n.Policy, Optional: n.Optional})
		case model.KindBranch:
			var b *BranchNode
			if b, err = t.Branch(BranchDef{ID: n.ID, Input: nodes[n.Input], Selector: fn, Arms: n.Arms, Policy: n.Policy, Optional: n.Optional}); err == nil {
				node = &b.Node
				for _, a := range n.Arms {
					nodes[n.ID+"."+a] = b.Arm(a)
				}
			}
		case model.KindMap:
			node, err = t.Map(MapDef{ID: n.ID, Over: nodes[n.Over], Each: fn, Bind: n.Bind, In: in, OnSkip: n.OnSkip, MaxElements: n.MaxElements,
				Policy: n.Policy, Optional: n.Optional})
		case model.KindReduce:
			node, err = t.Reduce(ReduceDef{ID: n.ID, Of: nodes[n.Of], Combine: fn, Pairwise: n.HasInitial, Initial: n.Initial, Policy: n.Policy, Optional: n.Optional})
		}
		if err != nil {
			line := n.Line
			var ce *expr.CompileError
			if n.Fn != nil && errors.As(err, &ce) {
				line = n.Fn.Line
			}
			fail(line, err)
			continue
		}
		nodes[n.ID] = node
	}
	return errs
}

func fnModule(n *pipeline.Node) string {
	if n.Fn == nil {
		return ""
	}
	return n.Fn.Module
}

// fn returns what a node runs: its module knot, or its predicate,
// selector, combine or each.
func (p *Pipeline) fn(n *pipeline.Node) (Fn, error) {
	module, knot := n.Module, n.Knot
	if n.Fn != nil {
		if n.Fn.Expr != "" {
			return Expr(n.Fn.Expr), nil
		}
		module, knot = n.Fn.Module, n.Fn.Knot
	}
	if module == "" {
		return nil, nil // a parameter, or an aggregator collecting its parents
	}
	mod := p.Modules[module]
	if _, ok := mod.Manifest().Knot(knot); !ok {
		return nil, fmt.Errorf("%s %q: module %q has no knot %q (it has: %s)%s", n.Kind, n.ID, module, knot,
			strings.Join(mod.Manifest().KnotNames(), ", "), suggest.DidYouMean(knot, mod.Manifest().KnotNames()))
	}
	return KnotRef{Module: mod, Name: knot, Limits: n.Limits, NoTypeCheck: n.NoTypeCheck, Grants: p.grants(n.Grants),
		State: cmp.Or(n.Instance, p.Spec.Instance)}, nil
}

// grants returns a node's grants with its directories resolved against
// the pipeline file's directory.
func (p *Pipeline) grants(g model.Grants) model.Grants {
	g.Dirs = slices.Clone(g.Dirs)
	for i, d := range g.Dirs {
		if !filepath.IsAbs(d.Path) {
			g.Dirs[i].Path = filepath.Join(p.Spec.Dir, d.Path)
		}
	}
	return g
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
		b, err := readModule(file)
		if err != nil {
			errs = append(errs, &pipeline.Error{File: spec.File, Line: m.Line, Msg: fmt.Sprintf("module %q: %v", m.Name, err)})
			continue
		}
		if _, err := e.LoadModuleBytesWith(ctx, m.Name, b, moduleOptions(m)); err != nil {
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

// moduleOptions says how to run a module of the pipeline's table.
func moduleOptions(m pipeline.Module) ModuleOptions {
	return ModuleOptions{ABI: host.ABI(m.ABI), Format: host.Format(m.Format)}
}
