package loom

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/expr"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/internal/suggest"
	"github.com/pirn-wasm/pirn/model"
	"github.com/pirn-wasm/pirn/pipeline"
	"github.com/pirn-wasm/pirn/scheduler"
)

// ModuleOptions says how to run a module of a pipeline's table.
func ModuleOptions(m pipeline.Module) host.LoadOptions {
	return host.LoadOptions{ABI: host.ABI(m.ABI), Format: host.Format(m.Format)}
}

// LoadModules loads the modules of spec's table, each from the bytes
// source gives for it, and reports each problem at the module's line.
// source's error is reported as it is; if it returns bytes too, the module
// is loaded anyway (so that what depends on it can still be checked).
// Each module loaded is kept in store (if not nil) under its digest.
//
// source is called for one module after another, in the table's order;
// the modules are then loaded concurrently, GOMAXPROCS/2 at once (a Go
// module takes seconds of CPU to compile when the compilation cache does
// not hold it, and the host compiles each on two goroutines or more). The
// errors are in the table's order.
func LoadModules(ctx context.Context, h *host.Host, spec *pipeline.Spec, store cas.Store, source func(pipeline.Module) ([]byte, error)) (map[string]*host.Module, pipeline.Errors) {
	type load struct {
		wasm           []byte
		opts           host.LoadOptions
		again          bool // an earlier entry has the same bytes and options
		mod            *host.Module
		srcErr, modErr error
	}
	loads := make([]load, len(spec.Modules))
	for i, m := range spec.Modules {
		l := &loads[i]
		l.wasm, l.srcErr = source(m)
		l.opts = ModuleOptions(m)
		l.again = l.wasm != nil && slices.ContainsFunc(loads[:i], func(e load) bool { return e.opts == l.opts && bytes.Equal(e.wasm, l.wasm) })
	}
	loadOne := func(m pipeline.Module, l *load) {
		l.mod, l.modErr = h.LoadWith(ctx, m.Name, l.wasm, l.opts)
		if l.modErr == nil {
			l.modErr = KeepModule(ctx, store, l.mod.Digest(), l.wasm)
		}
	}
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))
	var wg sync.WaitGroup
	for i, m := range spec.Modules {
		if l := &loads[i]; l.wasm != nil && !l.again {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				loadOne(m, l)
			})
		}
	}
	wg.Wait()
	// An entry with the bytes and options of an earlier one is loaded
	// after the others, so that the module is known by the earlier
	// entry's name, as when the modules were loaded one after another.
	for i, m := range spec.Modules {
		if l := &loads[i]; l.again {
			loadOne(m, l)
		}
	}
	mods := map[string]*host.Module{}
	var errs pipeline.Errors
	for i, m := range spec.Modules {
		l := &loads[i]
		for _, err := range []error{l.srcErr, l.modErr} {
			if err != nil {
				errs = append(errs, &pipeline.Error{File: spec.File, Line: m.Line, Msg: err.Error()})
			}
		}
		if l.wasm != nil && l.modErr == nil {
			mods[m.Name] = l.mod
		}
	}
	return mods, errs
}

// KeepModule puts a module's bytes in store (if not nil) under their
// digest, unless they are there: lineage records name the module that ran
// by that digest, so a run can be re-executed later from the store alone.
func KeepModule(ctx context.Context, store cas.Store, d cas.Digest, wasm []byte) error {
	if err := keep(ctx, store, d, wasm); err != nil {
		return fmt.Errorf("keep module %s in the data store: %w", d, err)
	}
	return nil
}

// keep puts b in store (if not nil) under d, unless it is there.
func keep(ctx context.Context, store cas.Store, d cas.Digest, b []byte) error {
	if store == nil {
		return nil
	}
	if ok, err := store.Has(ctx, d); err != nil || ok {
		return err
	}
	return store.Put(ctx, d, b)
}

// Grants returns a node's grants with its directories resolved against
// the pipeline file's directory.
func Grants(spec *pipeline.Spec, g model.Grants) model.Grants {
	g.Dirs = slices.Clone(g.Dirs)
	for i, d := range g.Dirs {
		if !filepath.IsAbs(d.Path) {
			g.Dirs[i].Path = filepath.Join(spec.Dir, d.Path)
		}
	}
	return g
}

// Build adds spec's nodes, in order, to l, running the knots of modules
// (by name in the module table). A node whose parent or module failed is
// left out: that failure is reported. Every problem is an error at its
// line; warnings are the edges whose types may not fit.
func (l *Loom) Build(spec *pipeline.Spec, modules map[string]*host.Module) (errs, warnings pipeline.Errors) {
	fail := func(line int, err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok { // one entry per problem
			for _, e := range j.Unwrap() {
				errs = append(errs, &pipeline.Error{File: spec.File, Line: line, Msg: e.Error()})
			}
			return
		}
		errs = append(errs, &pipeline.Error{File: spec.File, Line: line, Msg: err.Error()})
	}
	lines := map[string]int{}
	for i := range spec.Nodes {
		n := &spec.Nodes[i]
		lines[n.ID] = n.Line
		for _, a := range n.Arms {
			lines[n.ID+"."+a] = n.Line
		}
		if !l.buildable(n, modules) {
			continue
		}
		f, err := fnOf(spec, n, modules)
		if err != nil {
			fail(n.Line, err)
			continue
		}
		switch n.Kind {
		case model.KindParameter:
			_, err = l.T.AddParameter(scheduler.ParamDecl{ID: n.ID, Name: n.ParamName, Type: n.ValueType, Default: n.Default, HasDefault: n.HasDefault})
		case model.KindKnot, model.KindSource, model.KindSink, model.KindAggregator:
			_, err = l.Knot(scheduler.KnotDecl{ID: n.ID, Kind: n.Kind, Parents: n.Parents, Config: n.Config, Policy: n.Policy, Optional: n.Optional}, f)
		case model.KindGate:
			_, err = l.Gate(scheduler.GateDecl{ID: n.ID, Input: n.Input, Policy: n.Policy, Optional: n.Optional}, f)
		case model.KindBranch:
			_, err = l.Branch(scheduler.BranchDecl{ID: n.ID, Input: n.Input, Arms: n.Arms, Policy: n.Policy, Optional: n.Optional}, f)
		case model.KindMap:
			_, err = l.Map(scheduler.MapDecl{ID: n.ID, Over: n.Over, Bind: n.Bind, Parents: n.Parents, Config: n.Config, OnSkip: n.OnSkip,
				MaxElements: n.MaxElements, Policy: n.Policy, Optional: n.Optional}, f)
		case model.KindReduce:
			_, err = l.Reduce(scheduler.ReduceDecl{ID: n.ID, Of: n.Of, Pairwise: n.HasInitial, Initial: n.Initial, Policy: n.Policy, Optional: n.Optional}, f)
		}
		if err != nil {
			line := n.Line
			var ce *expr.CompileError
			if n.Fn != nil && errors.As(err, &ce) {
				line = n.Fn.Line
			}
			fail(line, err)
		}
	}
	for _, w := range l.T.Warnings() {
		warnings = append(warnings, &pipeline.Error{File: spec.File, Line: lines[w.Node], Msg: w.Msg})
	}
	return errs, warnings
}

// buildable reports whether n's parents are in the tapestry and its
// modules loaded; if not, that failure is reported already.
func (l *Loom) buildable(n *pipeline.Node, modules map[string]*host.Module) bool {
	for _, r := range n.Refs() {
		if _, ok := l.T.Node(r.ID); !ok {
			return false
		}
	}
	for _, m := range []string{n.Module, fnModule(n)} {
		if _, ok := modules[m]; m != "" && !ok {
			return false
		}
	}
	return true
}

func fnModule(n *pipeline.Node) string {
	if n.Fn == nil {
		return ""
	}
	return n.Fn.Module
}

// fnOf returns what a node runs: its module's knot, or its predicate,
// selector, combine or each; nil for a parameter, or an aggregator that
// collects its parents.
func fnOf(spec *pipeline.Spec, n *pipeline.Node, modules map[string]*host.Module) (Fn, error) {
	module, knot := n.Module, n.Knot
	if n.Fn != nil {
		if n.Fn.Expr != "" {
			return Expr(n.Fn.Expr), nil
		}
		module, knot = n.Fn.Module, n.Fn.Knot
	}
	if module == "" {
		return nil, nil
	}
	mod := modules[module]
	if _, ok := mod.Manifest().Knot(knot); !ok {
		names := mod.Manifest().KnotNames()
		return nil, fmt.Errorf("%s %q: module %q has no knot %q (it has: %s)%s", n.Kind, n.ID, module, knot,
			strings.Join(names, ", "), suggest.DidYouMean(knot, names))
	}
	return ModuleKnot{Module: mod, Config: host.KnotConfig{Name: knot, Limits: n.Limits, NoTypeCheck: n.NoTypeCheck,
		Grants: Grants(spec, n.Grants), State: cmp.Or(n.Instance, spec.Instance)}, Cache: cmp.Or(n.Cache, spec.Cache)}, nil
}
