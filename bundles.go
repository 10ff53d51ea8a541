package pirn

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/pirn-wasm/pirn/bundle"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/internal/fileread"
	"github.com/pirn-wasm/pirn/internal/loom"
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

// BundleOptions say how to write a bundle.
type BundleOptions struct {
	// SignWith signs the bundle (nil: unsigned).
	SignWith ed25519.PrivateKey
}

// Bundle writes the pipeline at path and every module it uses to w as a
// bundle (see package bundle). The pipeline must load with its lock file's
// pins: a bundle carries the modules the pipeline's author pinned, and
// nothing else.
func (e *Engine) Bundle(ctx context.Context, path string, w io.Writer, opts BundleOptions) error {
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
	return bundle.WriteSigned(w, c, opts.SignWith)
}

// LoadBundleOptions say what a bundle must be to be loaded. A bundle is
// the work of whoever made it: by default it may grant its knots nothing.
type LoadBundleOptions struct {
	// Digest, if set, is the "sha256:…" the bundle file must have.
	Digest string
	// Trust, if not empty, are the keys one of which must have signed the
	// bundle.
	Trust []ed25519.PublicKey
	// AllowGrants lets the bundle's pipeline grant its knots capabilities
	// (files, environment, clock, randomness, HTTP). Without it a bundle
	// that grants anything is refused, naming every grant.
	AllowGrants bool
}

// BundleInfo is what LoadBundle learned of a bundle.
type BundleInfo struct {
	Digest   string            // the bundle file's "sha256:…"
	Modules  int               // how many modules it carries
	Signed   bool              // whether it carries a signature
	Signer   ed25519.PublicKey // the key the signature names (not trusted for that)
	Verified bool              // whether the signature verified against a trusted key
}

// ErrBundleGrants is wrapped by LoadBundle's error for a bundle that grants
// capabilities it was not allowed.
var ErrBundleGrants = errors.New("the bundle grants its knots capabilities")

// Grants lists the capabilities the pipeline grants, a line per knot
// ("read: dir:rw:/data=/srv/data, env:HOME").
func (p *Pipeline) Grants() []string {
	var out []string
	for _, n := range p.Spec.Nodes {
		if !n.Grants.Empty() {
			out = append(out, n.ID+": "+strings.Join(loom.Grants(p.Spec, n.Grants).Describe(), ", "))
		}
	}
	return out
}

// LoadBundle loads the pipeline of the bundle at path, with the modules it
// carries, each verified against its digest; a module the pipeline names
// that the bundle lacks is an error, and so is any malformed or tampered
// part. Nothing outside the bundle is loaded. Relative directories in
// grants are relative to the bundle's directory.
func (e *Engine) LoadBundle(ctx context.Context, path string, opts LoadBundleOptions) (*Pipeline, error) {
	b, err := fileread.Read(path, "bundle", bundle.MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("load bundle: %w", err)
	}
	info := &BundleInfo{Digest: bundle.Digest(b)}
	if opts.Digest != "" && info.Digest != opts.Digest {
		return nil, fmt.Errorf("%s: the bundle is %s, not the %s it was pinned to", path, info.Digest, opts.Digest)
	}
	c, err := bundle.ReadBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	info.Modules, info.Signed, info.Signer = len(c.Modules), c.Signature != nil, c.Signer
	if len(opts.Trust) > 0 {
		if err := c.Verify(opts.Trust); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		info.Verified = true
	}
	spec, err := pipeline.Parse(path+":pipeline.yaml", c.Pipeline)
	if err != nil {
		return nil, err
	}
	spec.Dir = filepath.Dir(path)
	p := &Pipeline{Spec: spec, Tapestry: NewTapestry(), Modules: map[string]*Module{}, Bundle: info}
	if grants := p.Grants(); len(grants) > 0 && !opts.AllowGrants {
		return nil, fmt.Errorf("%s: %w, which a bundle may do only when allowed (--allow-grants):\n  %s", path, ErrBundleGrants, strings.Join(grants, "\n  "))
	}
	mods, errs := loom.LoadModules(ctx, e.host, spec, func(m pipeline.Module) ([]byte, error) {
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
	p.setModules(mods)
	if errs, _ = p.Tapestry.l.Build(spec, mods); len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}
