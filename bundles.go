package pirn

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"

	"github.com/pirn-wasm/pirn/bundle/oci"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/internal/loom"
)

// IsBundle reports whether path is a bundle (pirn bundle), a file or an
// oci:// reference, rather than a pipeline file.
func IsBundle(path string) bool { return loom.IsBundle(path) }

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
	mods := map[string]*host.Module{}
	for name, m := range p.Modules {
		mods[name] = m.m
	}
	return loom.WriteBundle(w, path, p.Spec, mods, opts.SignWith)
}

// LoadBundleOptions say what a bundle must be to be loaded. A bundle is
// the work of whoever made it: by default it may grant its knots nothing.
type LoadBundleOptions struct {
	// Digest, if set, is the "sha256:…" the bundle file must have (or,
	// for a bundle in a registry, the registry's digest of it).
	Digest string
	// Registry says how to reach the registry of an oci:// path.
	Registry oci.Options
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
	Digest    string            // the bundle file's "sha256:…"
	Reference string            // from a registry: oci://HOST/REPOSITORY@sha256:… (the registry's digest)
	Modules   int               // how many modules it carries
	Signed    bool              // whether it carries a signature
	Signer    ed25519.PublicKey // the key the signature names (not trusted for that)
	Verified  bool              // whether the signature verified against a trusted key
}

// ErrBundleGrants is wrapped by LoadBundle's error for a bundle that grants
// capabilities it was not allowed.
var ErrBundleGrants = loom.ErrBundleGrants

// Grants lists the capabilities the pipeline grants, a line per knot
// ("read: dir:rw:/data=/srv/data, env:HOME").
func (p *Pipeline) Grants() []string { return loom.DescribeGrants(p.Spec) }

// LoadBundle loads the pipeline of the bundle at path (a file, an oci://
// reference pulled from its registry: see package bundle/oci, or the
// "sha256:…" under which the data store keeps a pipeline that ran: its
// runs' PipelineDigest, unsigned), with the modules it carries, each verified against its digest; a module
// the pipeline names that the bundle lacks is an error, and so is any
// malformed or tampered part. Nothing outside the bundle is loaded.
// Relative directories in grants are relative to the bundle's directory
// (the current directory for one from a registry or the store).
func (e *Engine) LoadBundle(ctx context.Context, path string, opts LoadBundleOptions) (*Pipeline, error) {
	b, err := loom.OpenBundle(ctx, path, opts.Digest, opts.Registry, e.store)
	if err != nil {
		return nil, err
	}
	c := b.Contents
	info := &BundleInfo{Digest: b.Digest, Reference: b.Reference, Modules: len(c.Modules), Signed: c.Signature != nil, Signer: c.Signer}
	if len(opts.Trust) > 0 {
		if err := c.Verify(opts.Trust); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		info.Verified = true
	}
	l, err := loom.LoadBundle(ctx, e.host, path, c, opts.AllowGrants, e.store)
	if err != nil {
		return nil, err
	}
	p := newPipeline(l)
	p.Bundle = info
	return p, nil
}
