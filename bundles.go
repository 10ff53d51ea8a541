package pirn

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/pirn-wasm/pirn/bundle"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/internal/fileread"
	"github.com/pirn-wasm/pirn/pipeline"
)

// IsBundle reports whether the file at path is a bundle (pirn bundle)
// rather than a pipeline file.
func IsBundle(path string) bool {
	f, err := fileread.Open(path, "bundle")
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	return bundle.IsBundle(head[:n])
}

// Bundle writes the pipeline at path and every module it uses to w as a
// bundle (see package bundle). The pipeline must load with its lock file's
// pins: a bundle carries the modules the pipeline's author pinned, and
// nothing else.
func (e *Engine) Bundle(ctx context.Context, path string, w io.Writer) error {
	p, errs, _, err := e.load(ctx, path, false, false)
	if err != nil {
		return err
	}
	if len(errs) > 0 {
		return errs
	}
	src, err := fileread.Read(path, "pipeline", pipeline.MaxFileBytes)
	if err != nil {
		return err
	}
	c := bundle.Contents{Name: p.Spec.Name, Pipeline: src}
	for _, m := range p.Spec.Modules {
		file, _ := p.Spec.ModulePath(m.Name)
		b, err := readModule(file)
		if err != nil {
			return err
		}
		if got, want := cas.Sum(b).String(), p.Modules[m.Name].Digest(); got != want {
			return fmt.Errorf("module %q (%s) changed while it was bundled: now %s, loaded as %s", m.Name, file, got, want)
		}
		c.Modules = append(c.Modules, bundle.Module{Name: m.Name, ABI: m.ABI, Format: m.Format, Wasm: b})
	}
	return bundle.Write(w, c)
}

// LoadBundle loads the pipeline of the bundle at path, with the modules it
// carries, each verified against its digest; a module the pipeline names
// that the bundle lacks is an error, and so is any malformed or tampered
// part. Nothing outside the bundle is loaded. Relative directories in
// grants are relative to the bundle's directory.
func (e *Engine) LoadBundle(ctx context.Context, path string) (*Pipeline, error) {
	b, err := fileread.Read(path, "bundle", bundle.MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("load bundle: %w", err)
	}
	c, err := bundle.ReadBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	spec, err := pipeline.Parse(path+":pipeline.yaml", c.Pipeline)
	if err != nil {
		return nil, err
	}
	spec.Dir = filepath.Dir(path)
	p := &Pipeline{Spec: spec, Tapestry: NewTapestry(), Modules: map[string]*Module{}}
	var errs pipeline.Errors
	fail := func(line int, format string, args ...any) {
		errs = append(errs, &pipeline.Error{File: spec.File, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	for _, m := range spec.Modules {
		bm, ok := c.Module(m.Name)
		switch {
		case !ok:
			fail(m.Line, "module %q is not in the bundle", m.Name)
			continue
		case bm.ABI != m.ABI || bm.Format != m.Format:
			fail(m.Line, "module %q: the bundle says abi %q, format %q; the pipeline says abi %q, format %q", m.Name, bm.ABI, bm.Format, m.ABI, m.Format)
			continue
		}
		mod, err := e.LoadModuleBytesWith(ctx, m.Name, bm.Wasm, moduleOptions(m))
		if err != nil {
			fail(m.Line, "%v", err)
			continue
		}
		p.Modules[m.Name] = mod
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if errs = e.build(p); len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}
