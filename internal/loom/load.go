package loom

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/pirn-wasm/pirn/bundle"
	"github.com/pirn-wasm/pirn/bundle/oci"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/internal/fileread"
	"github.com/pirn-wasm/pirn/pipeline"
	"github.com/pirn-wasm/pirn/scheduler"
)

// ReadModule reads a module file: a regular file of at most
// host.MaxModuleBytes.
func ReadModule(path string) ([]byte, error) {
	return fileread.Read(path, "module", host.MaxModuleBytes)
}

// Loaded is a pipeline loaded and woven.
type Loaded struct {
	Spec     *pipeline.Spec
	Loom     *Loom
	Modules  map[string]*host.Module // by name in the module table
	Unpinned []string                // modules loaded without a pin
}

// LoadOptions say how to load a pipeline file.
type LoadOptions struct {
	// AllowUnpinned loads modules the lock file does not pin, logging
	// each.
	AllowUnpinned bool
	// Thorough goes on past a phase with errors, as far as it can,
	// building what does not depend on a module that failed to load (for
	// pirn check); otherwise loading stops at the first such phase.
	Thorough bool
	Logger   *slog.Logger
	// Store, if not nil, keeps every module loaded, by digest.
	Store cas.Store
}

// LoadFile reads the pipeline file at path, checks each module against
// the lock file beside it, loads the modules and weaves the tapestry.
// Problems in the file are errs and warnings naming the file and line
// (Loaded is nil when the pipeline cannot be built); err is for failures
// of another kind.
func LoadFile(ctx context.Context, h *host.Host, path string, o LoadOptions) (_ *Loaded, errs, warnings pipeline.Errors, err error) {
	spec, err := pipeline.Load(path)
	if err != nil {
		var perrs pipeline.Errors
		if errors.As(err, &perrs) {
			return nil, perrs, nil, nil
		}
		return nil, nil, nil, err
	}
	l := &Loaded{Spec: spec, Loom: New()}
	lockPath := pipeline.LockPath(path)
	lock, err := pipeline.ReadLock(lockPath)
	lockMissing := errors.Is(err, fs.ErrNotExist)
	switch {
	case lockMissing:
		// A pipeline of parameters and expressions has nothing to pin.
		if !o.AllowUnpinned && len(spec.Modules) > 0 {
			errs = append(errs, &pipeline.Error{File: spec.File, Msg: fmt.Sprintf("no lock file %s: run `pirn lock %s` to pin its modules' digests (or allow unpinned modules: --unpinned, Config.AllowUnpinned)", lockPath, path)})
			if !o.Thorough {
				return nil, errs, nil, nil
			}
		}
		lock = &pipeline.Lock{}
	case err != nil:
		return nil, nil, nil, err
	}
	wasm := map[string][]byte{}
	mods, lerrs := LoadModules(ctx, h, spec, o.Store, func(m pipeline.Module) ([]byte, error) {
		file, _ := spec.ModulePath(m.Name)
		b, err := ReadModule(file)
		if err != nil {
			return nil, fmt.Errorf("module %q: %v", m.Name, err)
		}
		got := cas.Sum(b)
		want, pinned := lock.Digest(m.Name)
		switch {
		case !pinned && !o.AllowUnpinned:
			var err error
			if !lockMissing { // a missing lock file is already reported
				err = fmt.Errorf("module %q (%s) is not pinned in %s: run `pirn lock %s`", m.Name, file, lockPath, path)
			}
			if !o.Thorough {
				return nil, err
			}
			return b, err
		case !pinned:
			l.Unpinned = append(l.Unpinned, m.Name)
			if o.Logger != nil {
				o.Logger.Info("loading an unpinned module", "module", m.Name, "path", file, "digest", got.String())
			}
		case want != got:
			return nil, fmt.Errorf("module %q (%s) does not match its pin in %s: the file is %s, the lock file pins %s", m.Name, file, lockPath, got, want)
		}
		wasm[m.Name] = b
		return b, nil
	})
	errs = append(errs, lerrs...)
	l.Modules = mods
	if len(errs) > 0 && !o.Thorough {
		return nil, errs, nil, nil
	}
	if len(errs) == 0 {
		if err := l.keep(ctx, o.Store, wasm); err != nil {
			return nil, nil, nil, err
		}
	}
	berrs, warnings := l.Loom.Build(spec, mods)
	errs = append(errs, berrs...)
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	return l, errs, warnings, nil
}

// Lock computes the digest of every module the pipeline at path declares,
// checks that each is a valid knot module, and writes the lock file beside
// the pipeline.
func Lock(ctx context.Context, h *host.Host, path string) (*pipeline.Lock, error) {
	spec, err := pipeline.Load(path)
	if err != nil {
		return nil, err
	}
	digests := map[string]cas.Digest{}
	mods, errs := LoadModules(ctx, h, spec, nil, func(m pipeline.Module) ([]byte, error) {
		file, _ := spec.ModulePath(m.Name)
		b, err := ReadModule(file)
		if err != nil {
			return nil, fmt.Errorf("module %q: %v", m.Name, err)
		}
		digests[m.Name] = cas.Sum(b)
		return b, nil
	})
	if len(errs) > 0 {
		return nil, errs
	}
	lock := &pipeline.Lock{}
	for _, m := range spec.Modules {
		if _, ok := mods[m.Name]; ok {
			lock.Entries = append(lock.Entries, pipeline.LockEntry{Module: m.Name, Digest: digests[m.Name], Path: m.Path})
		}
	}
	slices.SortFunc(lock.Entries, func(a, b pipeline.LockEntry) int { return strings.Compare(a.Module, b.Module) })
	return lock, pipeline.WriteLock(pipeline.LockPath(path), lock)
}

// ErrBundleGrants is wrapped by LoadBundle's error for a bundle that grants
// capabilities it was not allowed.
var ErrBundleGrants = errors.New("the bundle grants its knots capabilities")

// DescribeGrants lists the capabilities a pipeline grants, a line per
// knot ("read: dir:rw:/data=/srv/data, env:HOME").
func DescribeGrants(spec *pipeline.Spec) []string {
	var out []string
	for _, n := range spec.Nodes {
		if !n.Grants.Empty() {
			out = append(out, n.ID+": "+strings.Join(Grants(spec, n.Grants).Describe(), ", "))
		}
	}
	return out
}

// LoadBundle loads the pipeline of the bundle c, read from path, with the
// modules it carries; a module the pipeline names that the bundle lacks
// is an error. Nothing outside the bundle is loaded. Relative directories
// in grants are relative to the bundle's directory (the current directory
// for a bundle from a registry); unless allowGrants,
// a pipeline that grants anything is refused, naming every grant.
func LoadBundle(ctx context.Context, h *host.Host, path string, c *bundle.Contents, allowGrants bool, store cas.Store) (*Loaded, error) {
	spec, err := pipeline.Parse(path+":pipeline.yaml", c.Pipeline)
	if err != nil {
		return nil, err
	}
	spec.Dir = filepath.Dir(path)
	if oci.IsRef(path) {
		spec.Dir = "." // a registry's bundle is beside nothing
	}
	if grants := DescribeGrants(spec); len(grants) > 0 && !allowGrants {
		return nil, fmt.Errorf("%s: %w, which a bundle may do only when allowed (--allow-grants):\n  %s", path, ErrBundleGrants, strings.Join(grants, "\n  "))
	}
	mods, errs := LoadModules(ctx, h, spec, store, func(m pipeline.Module) ([]byte, error) {
		bm, ok := c.Module(m.Name)
		switch {
		case !ok:
			return nil, fmt.Errorf("module %q is not in the bundle", m.Name)
		case bm.ABI != m.ABI || bm.Format != m.Format:
			return nil, fmt.Errorf("module %q: the bundle says abi %q, format %q; the pipeline says abi %q, format %q", m.Name, bm.ABI, bm.Format, m.ABI, m.Format)
		}
		return bm.Wasm, nil
	})
	if len(errs) > 0 {
		return nil, errs
	}
	l := &Loaded{Spec: spec, Loom: New(), Modules: mods}
	wasm := map[string][]byte{}
	for _, m := range c.Modules {
		wasm[m.Name] = m.Wasm
	}
	if err := l.keep(ctx, store, wasm); err != nil {
		return nil, err
	}
	if errs, _ = l.Loom.Build(spec, mods); len(errs) > 0 {
		return nil, errs
	}
	return l, nil
}

// keep puts the pipeline in store (if not nil), as a bundle's manifest
// and the pipeline file, beside its modules (LoadModules keeps those):
// a run can be re-executed from the store alone (OpenBundle). The
// tapestry's runs record the manifest's digest.
func (l *Loaded) keep(ctx context.Context, store cas.Store, wasm map[string][]byte) error {
	// A bundle's manifest needs a title; an unnamed pipeline's is
	// "unnamed", so that its digest does not depend on its file's name.
	c := bundle.Contents{Name: cmp.Or(l.Spec.Name, "unnamed"), Pipeline: l.Spec.Source}
	for _, m := range l.Spec.Modules {
		c.Modules = append(c.Modules, bundle.Module{Name: m.Name, ABI: m.ABI, Format: m.Format, Wasm: wasm[m.Name]})
	}
	manifest, err := bundle.Manifest(c)
	if err != nil {
		return err
	}
	d := cas.Sum(manifest)
	l.Loom.T.SetOrigin(scheduler.Origin{Pipeline: l.Spec.Name, Digest: d})
	for _, b := range [][]byte{l.Spec.Source, manifest} {
		if err := keep(ctx, store, cas.Sum(b), b); err != nil {
			return fmt.Errorf("keep pipeline %s (%s) in the data store: %w", l.Spec.File, d, err)
		}
	}
	return nil
}

// WriteBundle writes the pipeline file at path, whose spec is spec, and
// every module it uses, as loaded, to w as a bundle, signed if key is
// not nil. A module file that changed since it was loaded is an error.
func WriteBundle(w io.Writer, path string, spec *pipeline.Spec, modules map[string]*host.Module, key ed25519.PrivateKey) error {
	src, err := fileread.Read(path, "pipeline", pipeline.MaxFileBytes)
	if err != nil {
		return err
	}
	c := bundle.Contents{Name: spec.Name, Pipeline: src}
	for _, m := range spec.Modules {
		file, _ := spec.ModulePath(m.Name)
		b, err := ReadModule(file)
		if err != nil {
			return err
		}
		if got, want := cas.Sum(b), modules[m.Name].Digest(); got != want {
			return fmt.Errorf("module %q (%s) changed while it was bundled: now %s, loaded as %s", m.Name, file, got, want)
		}
		c.Modules = append(c.Modules, bundle.Module{Name: m.Name, ABI: m.ABI, Format: m.Format, Wasm: b})
	}
	return bundle.WriteSigned(w, c, key)
}

// Check loads the pipeline at path as far as it can (o.Thorough), then
// lints its graph (pipeline.Lint), reporting every problem by line; an
// unpinned module it was allowed to load is a warning.
func Check(ctx context.Context, h *host.Host, path string, o LoadOptions) (errs, warnings pipeline.Errors, err error) {
	o.Thorough = true
	l, errs, warnings, err := LoadFile(ctx, h, path, o)
	if err != nil || l == nil {
		return errs, warnings, err
	}
	spec := l.Spec
	for _, m := range spec.Modules {
		if slices.Contains(l.Unpinned, m.Name) {
			warnings = append(warnings, &pipeline.Error{File: spec.File, Line: m.Line,
				Msg: fmt.Sprintf("module %q is not pinned by a lock file: run `pirn lock %s`", m.Name, path)})
		}
	}
	lerrs, lwarnings := pipeline.Lint(spec)
	errs, warnings = append(errs, lerrs...), append(warnings, lwarnings...)
	byLine := func(a, b *pipeline.Error) int { return a.Line - b.Line }
	slices.SortStableFunc(errs, byLine)
	slices.SortStableFunc(warnings, byLine)
	return errs, warnings, nil
}

// OpenedBundle is a bundle read and verified, from a file or a registry.
type OpenedBundle struct {
	*bundle.Contents
	Digest string // the bundle file's "sha256:…"
	// Reference, for a bundle pulled from a registry, names it by the
	// registry's digest: oci://HOST/REPOSITORY@sha256:…; "" for a file.
	Reference string
}

// OpenBundle reads the bundle at path, a file, an oci:// reference
// (pulled as reg says) or the digest of a pipeline store keeps
// (IsStored), and verifies it ([bundle.Read], [bundle.FromManifest]). If
// pin is not "", the bundle must be that "sha256:…": the file's digest,
// which a bundle pulled from a registry has too, or the registry's digest
// of it; a stored pipeline's is its manifest's, the one path names.
func OpenBundle(ctx context.Context, path, pin string, reg oci.Options, store cas.Store) (*OpenedBundle, error) {
	if IsStored(path) {
		c, err := openStored(ctx, store, path)
		if err != nil {
			return nil, err
		}
		if pin != "" && pin != c.ManifestDigest {
			return nil, fmt.Errorf("%s: the pipeline is not the %s it was pinned to", path, pin)
		}
		return &OpenedBundle{Contents: c, Digest: c.ManifestDigest}, nil
	}
	var b []byte
	var c *bundle.Contents
	var inRegistry string
	o := &OpenedBundle{}
	if oci.IsRef(path) {
		p, err := oci.Pull(ctx, path, reg)
		if err != nil {
			return nil, fmt.Errorf("load bundle: %w", err)
		}
		b, c, inRegistry, o.Reference = p.File, p.Contents, p.Digest, p.Reference
	} else {
		var err error
		if b, err = fileread.Read(path, "bundle", bundle.MaxFileBytes); err != nil {
			return nil, fmt.Errorf("load bundle: %w", err)
		}
	}
	o.Digest = bundle.Digest(b)
	switch {
	case pin == "" || pin == o.Digest || pin == inRegistry:
	case inRegistry != "":
		return nil, fmt.Errorf("%s: the bundle is %s (%s in the registry), not the %s it was pinned to", path, o.Digest, inRegistry, pin)
	default:
		return nil, fmt.Errorf("%s: the bundle is %s, not the %s it was pinned to", path, o.Digest, pin)
	}
	if c == nil {
		var err error
		if c, err = bundle.ReadBytes(b); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	o.Contents = c
	return o, nil
}

// IsBundle reports whether path is a bundle rather than a pipeline file:
// an oci:// reference, a stored pipeline's digest (IsStored), or a file
// that holds a bundle.
func IsBundle(path string) bool {
	if oci.IsRef(path) || IsStored(path) {
		return true
	}
	f, err := fileread.Open(path, "bundle")
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	return bundle.IsBundle(head[:n])
}

// IsStored reports whether path names a pipeline the data store keeps,
// by its "sha256:…" (a run's lineage.Run.PipelineDigest), rather than a
// file ("./sha256:…" is a file).
func IsStored(path string) bool { return strings.HasPrefix(path, "sha256:") }

// openStored reads the pipeline store keeps under the digest path names
// (a run of a pipeline file or a bundle keeps it: see Loaded.keep), with
// the modules kept beside it, each verified against its digest.
func openStored(ctx context.Context, store cas.Store, path string) (*bundle.Contents, error) {
	d, err := cas.ParseDigest(path)
	switch {
	case err != nil:
		return nil, err
	case d.IsZero():
		return nil, errors.New("no pipeline has the zero digest")
	case store == nil:
		return nil, fmt.Errorf("pipeline %s: no data store to read it from", d)
	}
	manifest, err := store.Get(ctx, d)
	if errors.Is(err, cas.ErrNotFound) {
		return nil, fmt.Errorf("pipeline %s is not in the data store (a run of a pipeline keeps it there; pirn runs show names it): %w", d, err)
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline %s: %w", d, err)
	}
	c, err := bundle.FromManifest(manifest, func(s string) ([]byte, error) {
		bd, err := cas.ParseDigest(s)
		if err != nil {
			return nil, err
		}
		return store.Get(ctx, bd)
	})
	if err != nil {
		return nil, fmt.Errorf("pipeline %s in the data store: %w", d, err)
	}
	return c, nil
}
