package oci

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/pirn-wasm/pirn/bundle"
)

// Pulled is a bundle pulled from a registry.
type Pulled struct {
	// Contents is the bundle, verified as [bundle.Read] verifies a file.
	*bundle.Contents
	// File is the bundle file: the bytes pirn bundle wrote and pirn push
	// pushed.
	File []byte
	// Digest is the registry's digest of the bundle (its image index's).
	Digest string
	// Reference names what was pulled by that digest:
	// oci://HOST/REPOSITORY@sha256:….
	Reference string
}

// Pull fetches the bundle at ref from its registry. It reads the image
// index ref names, then the bundle's manifest, and only then the blobs
// the manifest names, each bounded by its descriptor's size and checked
// against its digest; the bundle file assembled from them must pass
// [bundle.Read]. An error names ref, and wraps ErrNotFound for a tag or
// digest the registry lacks and ErrTimeout when Options.Timeout ran out.
func Pull(ctx context.Context, ref string, opts Options) (*Pulled, error) {
	r, err := parse(ref, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel, ropts := r.start(ctx)
	defer cancel()
	p, err := pull(ctx, r, ropts)
	if err != nil {
		return nil, r.fail(ctx, "pull", err)
	}
	return p, nil
}

func pull(ctx context.Context, r *ref, ropts []remote.Option) (*Pulled, error) {
	// One puller: it pings and authenticates once for all that follows.
	puller, err := remote.NewPuller(ropts...)
	if err != nil {
		return nil, err
	}
	idx, err := puller.Get(ctx, r.name)
	if err != nil {
		return nil, err
	}
	if idx.MediaType != types.OCIImageIndex {
		return nil, fmt.Errorf("the registry holds a %q there, not a pirn bundle (an OCI image index, as pirn push makes)", idx.MediaType)
	}
	md, err := bundle.ManifestOf(idx.Manifest)
	if err != nil {
		return nil, err
	}
	repo := r.name.Context()
	man, err := puller.Get(ctx, repo.Digest(md.Digest))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", md.Digest, err)
	}
	if man.MediaType != types.OCIManifestSchema1 || int64(len(man.Manifest)) != md.Size {
		return nil, fmt.Errorf("manifest %s: the registry sent %d bytes of %q; the index names %d bytes of %q", md.Digest, len(man.Manifest), man.MediaType, md.Size, types.OCIManifestSchema1)
	}
	blobs, err := bundle.BlobsOf(man.Manifest)
	if err != nil {
		return nil, err
	}

	data := make([][]byte, len(blobs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, b := range blobs {
		g.Go(func() error {
			what := "the pipeline"
			if b.Module != "" {
				what = fmt.Sprintf("module %q", b.Module)
			}
			got, err := fetch(gctx, puller, repo.Digest(b.Digest), b)
			if err != nil {
				return fmt.Errorf("%s (blob %s): %w", what, b.Digest, err)
			}
			data[i] = got
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	size := int64(len(idx.Manifest) + len(man.Manifest))
	for _, b := range data {
		size += int64(len(b))
	}
	var file bytes.Buffer
	file.Grow(int(size) + (len(data)+8)*1536) // headers and padding
	if err := bundle.WriteLayout(&file, idx.Manifest, append(data, man.Manifest)); err != nil {
		return nil, err
	}
	data = nil // read again, from file, by Read
	c, err := bundle.ReadBytes(file.Bytes())
	if err != nil {
		return nil, err
	}
	digest := idx.Digest.String()
	return &Pulled{Contents: c, File: file.Bytes(), Digest: digest, Reference: r.withDigest(digest)}, nil
}

// fetch reads blob b, exactly its size, and checks it against its
// digest.
func fetch(ctx context.Context, puller *remote.Puller, d name.Digest, b bundle.Blob) ([]byte, error) {
	l, err := puller.Layer(ctx, d)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	got := make([]byte, b.Size)
	if n, err := io.ReadFull(rc, got); err != nil {
		return nil, fmt.Errorf("the registry sent %d bytes; the manifest says %d: %w", n, b.Size, err)
	}
	if sum := bundle.Digest(got); sum != b.Digest {
		return nil, fmt.Errorf("the registry's bytes do not match the digest: they hash to %s", sum)
	}
	var one [1]byte
	if n, _ := io.ReadFull(rc, one[:]); n > 0 {
		return nil, fmt.Errorf("the registry sent more than the %d bytes the manifest says", b.Size)
	}
	return got, nil
}
