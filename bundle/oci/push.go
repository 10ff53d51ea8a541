package oci

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/pirn-wasm/pirn/bundle"
)

// Pushed says where Push put a bundle.
type Pushed struct {
	// Reference is the reference pushed to, with the registry's digest:
	// oci://HOST/REPOSITORY:TAG@sha256:….
	Reference string
	// Digest is the registry's digest of the bundle (its image index's).
	Digest string
}

// rawManifest is a manifest to put, byte for byte.
type rawManifest struct {
	b         []byte
	mediaType types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.b, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mediaType, nil }

// Push puts the bundle file b (as pirn bundle writes it) into the
// registry at ref: its pipeline and modules as blobs, its manifest by
// digest, and its index.json, unchanged, under ref's tag. A ref by digest
// (oci://HOST/REPOSITORY@sha256:…) must name the bundle's own index, and
// tags nothing. The bundle is read and verified first ([bundle.Read]).
// Blobs the registry already holds are not sent again.
func Push(ctx context.Context, ref string, b []byte, opts Options) (*Pushed, error) {
	r, err := parse(ref, opts)
	if err != nil {
		return nil, err
	}
	c, err := bundle.ReadBytes(b)
	if err != nil {
		return nil, fmt.Errorf("push %s: %w", ref, err)
	}
	digest := bundle.Digest(c.Index)
	if d, ok := r.name.(name.Digest); ok && d.DigestStr() != digest {
		return nil, fmt.Errorf("push %s: the bundle is %s in a registry, not %s", ref, digest, d.DigestStr())
	}
	ctx, cancel, ropts := r.start(ctx)
	defer cancel()
	p, err := remote.NewPusher(ropts...)
	if err != nil {
		return nil, r.fail(ctx, "push", err)
	}
	repo := r.name.Context()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	seen := map[string]bool{}
	put := func(b []byte, mt string) {
		if d := bundle.Digest(b); !seen[d] {
			seen[d] = true
			g.Go(func() error { return p.Upload(gctx, repo, static.NewLayer(b, types.MediaType(mt))) })
		}
	}
	put(c.Pipeline, bundle.MediaTypePipeline)
	for _, m := range c.Modules {
		put(m.Wasm, bundle.MediaTypeModule)
	}
	if err := g.Wait(); err != nil {
		return nil, r.fail(ctx, "push", err)
	}
	if err := p.Put(ctx, repo.Digest(c.ManifestDigest), rawManifest{c.Manifest, types.OCIManifestSchema1}); err != nil {
		return nil, r.fail(ctx, "push", err)
	}
	if err := p.Put(ctx, r.name, rawManifest{c.Index, types.OCIImageIndex}); err != nil {
		return nil, r.fail(ctx, "push", err)
	}
	pushed := &Pushed{Reference: r.withDigest(digest), Digest: digest}
	if t, ok := r.name.(name.Tag); ok {
		pushed.Reference = Scheme + t.Name() + "@" + digest
	}
	return pushed, nil
}
