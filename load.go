package pirn

import (
	"context"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
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

// Digest is the pipeline's, as its runs record it and the data store
// keeps it (LoadBundle takes it).
func (p *Pipeline) Digest() cas.Digest { return p.Tapestry.l.T.Origin().Digest }

// load does the work of LoadPipeline and Check (see loom.LoadFile).
func (e *Engine) load(ctx context.Context, path string, allowUnpinned, thorough bool) (*Pipeline, pipeline.Errors, pipeline.Errors, error) {
	l, errs, warnings, err := loom.LoadFile(ctx, e.host, path, loom.LoadOptions{AllowUnpinned: allowUnpinned, Thorough: thorough, Logger: e.cfg.Logger, Store: e.store})
	if l == nil {
		return nil, errs, warnings, err
	}
	return newPipeline(l), errs, warnings, err
}

// newPipeline wraps what the loom loaded.
func newPipeline(l *loom.Loaded) *Pipeline {
	p := &Pipeline{Spec: l.Spec, Tapestry: &Tapestry{l: l.Loom}, Modules: map[string]*Module{}, Unpinned: l.Unpinned}
	for name, m := range l.Modules {
		p.Modules[name] = &Module{m: m}
	}
	return p
}

// Lock computes the digest of every module the pipeline at path declares,
// checks that each is a valid knot module, and writes the lock file beside
// the pipeline.
func (e *Engine) Lock(ctx context.Context, path string) (*pipeline.Lock, error) {
	return loom.Lock(ctx, e.host, path)
}
