package bundle

import (
	"archive/tar"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Blob is a blob of a bundle as a descriptor names it.
type Blob struct {
	Digest    string // "sha256:<hex>"
	Size      int64  // bytes
	MediaType string
	Module    string // the module's name; "" for the pipeline
}

// ManifestOf returns the descriptor of the one pirn manifest that index
// (index.json, or the image index a registry holds) names. It refuses an
// index that names none or several, and a manifest over MaxManifest
// bytes.
func ManifestOf(index []byte) (Blob, error) {
	d, err := parseIndex(index)
	if err != nil {
		return Blob{}, err
	}
	return Blob{Digest: d.Digest.String(), Size: d.Size, MediaType: d.MediaType}, nil
}

// BlobsOf returns the blobs that manifest (a bundle's manifest) names:
// the pipeline, then each module in the manifest's order. It refuses a
// manifest that is not a pirn bundle, and one that names more than
// MaxEntries blobs, a blob over MaxBlob bytes or over MaxTotal in all, so
// that a reader can bound what it fetches before it fetches anything.
func BlobsOf(manifest []byte) ([]Blob, error) {
	m, err := parseManifest(manifest)
	if err != nil {
		return nil, err
	}
	out := make([]Blob, 0, len(m.Layers)+1)
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		out = append(out, Blob{Digest: d.Digest.String(), Size: d.Size, MediaType: d.MediaType, Module: d.Annotations[AnnotationModule]})
	}
	return out, nil
}

// WriteLayout writes to w the tar archive of an OCI image layout whose
// index.json is index and whose blobs are blobs (each stored once under
// its digest), as Write lays out a bundle: the same index and blobs give
// the same bytes, in whatever order the blobs come. It checks nothing of
// what it writes; Read does.
func WriteLayout(w io.Writer, index []byte, blobs [][]byte) error {
	byDigest := make(map[string][]byte, len(blobs))
	for _, b := range blobs {
		byDigest[Digest(b)] = b
	}
	layout, _ := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0).UTC()
	file := func(name string, b []byte) error {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: dir, Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir, Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
	}
	if err := file(v1.ImageLayoutFile, layout); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if err := file(v1.ImageIndexFile, index); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	for _, d := range slices.Sorted(maps.Keys(byDigest)) {
		if err := file("blobs/sha256/"+strings.TrimPrefix(d, "sha256:"), byDigest[d]); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	return nil
}

// checkDigest refuses a descriptor whose digest is not sha256:<hex>: a
// reader looks blobs up, and a registry client builds URLs, by it.
func checkDigest(d v1.Descriptor, what string) error {
	if err := d.Digest.Validate(); err != nil || d.Digest.Algorithm() != digest.SHA256 {
		return fmt.Errorf("bundle: %s has digest %q, not sha256:<hex>", what, d.Digest)
	}
	return nil
}

// parseIndex returns the descriptor of the one pirn manifest index names.
func parseIndex(index []byte) (v1.Descriptor, error) {
	var idx v1.Index
	if err := json.Unmarshal(index, &idx); err != nil {
		return v1.Descriptor{}, fmt.Errorf("bundle: index.json: %v", err)
	}
	var mds []v1.Descriptor
	for _, d := range idx.Manifests {
		if d.ArtifactType == ArtifactType || d.MediaType == v1.MediaTypeImageManifest {
			mds = append(mds, d)
		}
	}
	if len(mds) != 1 {
		return v1.Descriptor{}, fmt.Errorf("bundle: index.json names %d manifests, want one pirn bundle", len(mds))
	}
	d := mds[0]
	if err := checkDigest(d, "the manifest"); err != nil {
		return v1.Descriptor{}, err
	}
	if d.Size < 0 || d.Size > MaxManifest {
		return v1.Descriptor{}, fmt.Errorf("bundle: the manifest %s is %d bytes, over the limit of %d", d.Digest, d.Size, MaxManifest)
	}
	return d, nil
}

// parseManifest parses a bundle's manifest and checks what can be checked
// without its blobs: media types, names, digests and sizes.
func parseManifest(b []byte) (*v1.Manifest, error) {
	var m v1.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("bundle: manifest: %v", err)
	}
	if m.ArtifactType != ArtifactType || m.Config.MediaType != MediaTypePipeline {
		return nil, fmt.Errorf("bundle: the manifest is not a pirn bundle (artifact type %q, config %q)", m.ArtifactType, m.Config.MediaType)
	}
	if m.Annotations[v1.AnnotationTitle] == "" {
		return nil, errors.New("bundle: the manifest has no title (the pipeline's name)")
	}
	// The layout's own files and the manifest take entries too.
	if max := MaxEntries - 4; len(m.Layers) > max {
		return nil, fmt.Errorf("bundle: the manifest names %d modules, more than %d", len(m.Layers), max)
	}
	if err := checkDigest(m.Config, "the pipeline"); err != nil {
		return nil, err
	}
	total := int64(0)
	seen := map[string]bool{}
	for i, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		what := "the pipeline"
		if i > 0 {
			name := d.Annotations[AnnotationModule]
			if d.MediaType != MediaTypeModule || name == "" {
				return nil, fmt.Errorf("bundle: layer %s is not a named pirn module (media type %q)", d.Digest, d.MediaType)
			}
			if seen[name] {
				return nil, fmt.Errorf("bundle: module %q appears twice", name)
			}
			seen[name] = true
			what = fmt.Sprintf("module %q", name)
			if err := checkDigest(d, what); err != nil {
				return nil, err
			}
		}
		if d.Size < 0 || d.Size > MaxBlob {
			return nil, fmt.Errorf("bundle: %s is %d bytes, over the limit of %d", what, d.Size, MaxBlob)
		}
		if total += d.Size; total > MaxTotal {
			return nil, fmt.Errorf("bundle: the manifest names over %d bytes in all", int64(MaxTotal))
		}
	}
	return &m, nil
}

// fromLayout verifies a layout's index and blobs (each already checked
// against the digest it is stored under) and returns its contents.
func fromLayout(index []byte, blobs map[string][]byte) (*Contents, error) {
	md, err := parseIndex(index)
	if err != nil {
		return nil, err
	}
	get := func(d v1.Descriptor, what string) ([]byte, error) {
		b, ok := blobs[d.Digest.String()]
		switch {
		case !ok:
			return nil, fmt.Errorf("bundle: %s %s is missing", what, d.Digest)
		case int64(len(b)) != d.Size:
			return nil, fmt.Errorf("bundle: %s %s is %d bytes, but its descriptor says %d", what, d.Digest, len(b), d.Size)
		}
		return b, nil
	}
	mb, err := get(md, "manifest")
	if err != nil {
		return nil, err
	}
	m, err := parseManifest(mb)
	if err != nil {
		return nil, err
	}
	c := &Contents{Name: m.Annotations[v1.AnnotationTitle], ManifestDigest: md.Digest.String(), Index: index, Manifest: mb}
	if sig, ok := md.Annotations[AnnotationSignature]; ok {
		b, err := base64.StdEncoding.DecodeString(sig)
		if err != nil || len(b) != ed25519.SignatureSize {
			return nil, errors.New("bundle: the signature annotation is not an ed25519 signature")
		}
		c.Signature = b
		if k, err := base64.StdEncoding.DecodeString(md.Annotations[AnnotationSigner]); err == nil && len(k) == ed25519.PublicKeySize {
			c.Signer = k
		}
	}
	if c.Pipeline, err = get(m.Config, "pipeline"); err != nil {
		return nil, err
	}
	for _, d := range m.Layers {
		name := d.Annotations[AnnotationModule]
		wasm, err := get(d, fmt.Sprintf("module %q", name))
		if err != nil {
			return nil, err
		}
		c.Modules = append(c.Modules, Module{Name: name, ABI: d.Annotations[AnnotationABI], Format: d.Annotations[AnnotationFormat], Wasm: wasm})
	}
	// Everything in the layout is accounted for: nothing rides along
	// unverified by the manifest.
	referenced := map[string]bool{md.Digest.String(): true, m.Config.Digest.String(): true}
	for _, d := range m.Layers {
		referenced[d.Digest.String()] = true
	}
	for _, d := range slices.Sorted(maps.Keys(blobs)) {
		if !referenced[d] {
			return nil, fmt.Errorf("bundle: blob %s is not referenced by the manifest", d)
		}
	}
	return c, nil
}
