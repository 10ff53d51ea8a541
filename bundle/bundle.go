// Package bundle packs a pipeline and every module it uses into one file:
// a tar archive of an OCI image layout, so that standard OCI tools can
// push it to a registry. Each module is a blob stored and verified by its
// sha256; the pipeline file is the manifest's config blob.
//
// Layout of app.pirn:
//
//	oci-layout                 {"imageLayoutVersion": "1.0.0"}
//	index.json                 one manifest, annotated with the pipeline's name
//	blobs/sha256/<hex>         the manifest, the pipeline (config) and each module (layer)
//
// Write is deterministic: the same pipeline and modules give the same bytes.
// Read verifies every blob against its digest and the structure against the
// manifest before returning anything.
package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types and annotations.
const (
	ArtifactType      = "application/vnd.pirn.bundle.v1"
	MediaTypePipeline = "application/vnd.pirn.pipeline.v1+yaml"
	MediaTypeModule   = "application/vnd.pirn.module.v1+wasm"

	AnnotationModule = "dev.pirn.module"        // the module's name in the pipeline's table
	AnnotationABI    = "dev.pirn.module.abi"    // its ABI, if not pirn
	AnnotationFormat = "dev.pirn.module.format" // its document format, if any

	// On the manifest's descriptor in index.json: an ed25519 signature of
	// the manifest's digest, and the public key that made it (for
	// messages; what is trusted is the operator's key, never this one).
	AnnotationSignature = "dev.pirn.signature.ed25519"
	AnnotationSigner    = "dev.pirn.signature.key"
)

// Bounds on what Read accepts.
const (
	MaxEntries = 1024
	MaxBlob    = 64 << 20 // bytes per blob: the largest module a host loads
	MaxTotal   = 1 << 30  // bytes in all entries
	// MaxIndex bounds index.json (and oci-layout); MaxManifest the
	// manifest, whose descriptors name at most MaxEntries blobs.
	MaxIndex    = 1 << 20
	MaxManifest = 4 << 20
	// MaxFileBytes bounds a whole bundle file: its entries and their tar
	// headers and padding.
	MaxFileBytes = MaxTotal + (MaxEntries+2)*1024
)

// Contents is what a bundle holds.
type Contents struct {
	Name     string // the pipeline's name
	Pipeline []byte // the pipeline file
	Modules  []Module

	// Read sets these: the manifest's digest, which covers the pipeline
	// and every module, and its signature, if the bundle is signed.
	ManifestDigest string
	Signature      []byte
	Signer         ed25519.PublicKey
	// Read sets these too: index.json and the manifest, byte for byte as
	// stored, from which WriteLayout makes the same file again (what a
	// registry stores of a bundle). Write ignores them.
	Index, Manifest []byte
}

// Module is one module of a bundle.
type Module struct {
	Name   string // its name in the pipeline's modules table
	ABI    string // "" for pirn's own
	Format string
	Wasm   []byte
}

// Digest returns "sha256:<hex>" of b.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func descriptor(mediaType string, b []byte) v1.Descriptor {
	return v1.Descriptor{MediaType: mediaType, Digest: digest.Digest(Digest(b)), Size: int64(len(b))}
}

// signed is what a signature covers: the manifest's digest, which covers
// everything else.
func signed(manifestDigest string) []byte { return []byte("pirn bundle v1\n" + manifestDigest) }

// ErrUntrusted is wrapped by Verify's error.
var ErrUntrusted = errors.New("bundle: not signed by a trusted key")

// Verify checks that the bundle is signed by one of keys.
func (c *Contents) Verify(keys []ed25519.PublicKey) error {
	if c.Signature == nil {
		return fmt.Errorf("%w: it is not signed", ErrUntrusted)
	}
	for _, k := range keys {
		if ed25519.Verify(k, signed(c.ManifestDigest), c.Signature) {
			return nil
		}
	}
	return fmt.Errorf("%w: its signature (by key %s) verifies with none of the %d trusted", ErrUntrusted, KeyID(c.Signer), len(keys))
}

// KeyID names a public key in messages: its sha256, shortened.
func KeyID(k ed25519.PublicKey) string {
	if len(k) == 0 {
		return "(none)"
	}
	return Digest(k)[:19]
}

// Manifest returns the OCI manifest of a bundle of c: the JSON document
// that names the pipeline and every module by digest. Its digest
// identifies the pipeline with its modules, whether it runs from a
// pipeline file or from a bundle (a signature is outside it).
func Manifest(c Contents) ([]byte, error) {
	m, _, err := build(c)
	return m, err
}

// build returns c's manifest and its modules in the manifest's order.
func build(c Contents) (manifest []byte, mods []Module, err error) {
	if c.Name == "" || len(c.Pipeline) == 0 {
		return nil, nil, errors.New("bundle: a bundle needs a pipeline and its name")
	}
	config := descriptor(MediaTypePipeline, c.Pipeline)
	config.Annotations = map[string]string{v1.AnnotationTitle: "pipeline.yaml"}
	mods = slices.Clone(c.Modules)
	slices.SortFunc(mods, func(a, b Module) int { return strings.Compare(a.Name, b.Name) })
	var layers []v1.Descriptor
	for i, m := range mods {
		if m.Name == "" || (i > 0 && mods[i-1].Name == m.Name) {
			return nil, nil, fmt.Errorf("bundle: module name %q is empty or repeated", m.Name)
		}
		d := descriptor(MediaTypeModule, m.Wasm)
		d.Annotations = map[string]string{v1.AnnotationTitle: m.Name + ".wasm", AnnotationModule: m.Name}
		if m.ABI != "" {
			d.Annotations[AnnotationABI] = m.ABI
		}
		if m.Format != "" {
			d.Annotations[AnnotationFormat] = m.Format
		}
		layers = append(layers, d)
	}
	manifest, err = json.Marshal(v1.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    v1.MediaTypeImageManifest,
		ArtifactType: ArtifactType,
		Config:       config,
		Layers:       layers,
		Annotations:  map[string]string{v1.AnnotationTitle: c.Name},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("bundle: manifest: %w", err)
	}
	return manifest, mods, nil
}

// FromManifest returns the bundle whose manifest is manifest, reading
// each blob it names from get (a data store, by "sha256:…"). The manifest
// is checked as Read checks it, within Read's bounds, before any blob is
// read, and every blob against its digest and size. The result carries
// no signature: that is outside the manifest.
func FromManifest(manifest []byte, get func(digest string) ([]byte, error)) (*Contents, error) {
	if len(manifest) > MaxManifest {
		return nil, fmt.Errorf("bundle: the manifest is %d bytes, over the limit of %d", len(manifest), MaxManifest)
	}
	m, err := parseManifest(manifest)
	if err != nil {
		return nil, err
	}
	fetch := func(d v1.Descriptor, what string) ([]byte, error) {
		b, err := get(d.Digest.String())
		switch {
		case err != nil:
			return nil, fmt.Errorf("bundle: %s %s: %w", what, d.Digest, err)
		case int64(len(b)) != d.Size:
			return nil, fmt.Errorf("bundle: %s %s is %d bytes, but its descriptor says %d", what, d.Digest, len(b), d.Size)
		case Digest(b) != d.Digest.String():
			return nil, fmt.Errorf("bundle: %s %s does not match its digest: its bytes hash to %s", what, d.Digest, Digest(b))
		}
		return b, nil
	}
	c := &Contents{Name: m.Annotations[v1.AnnotationTitle], ManifestDigest: Digest(manifest), Manifest: manifest}
	if c.Pipeline, err = fetch(m.Config, "pipeline"); err != nil {
		return nil, err
	}
	for _, d := range m.Layers {
		name := d.Annotations[AnnotationModule]
		wasm, err := fetch(d, fmt.Sprintf("module %q", name))
		if err != nil {
			return nil, err
		}
		c.Modules = append(c.Modules, Module{Name: name, ABI: d.Annotations[AnnotationABI], Format: d.Annotations[AnnotationFormat], Wasm: wasm})
	}
	return c, nil
}

// Write writes c as a bundle to w.
func Write(w io.Writer, c Contents) error { return WriteSigned(w, c, nil) }

// WriteSigned writes c as a bundle to w, signed with key (unless nil).
// Signatures are deterministic: the same contents and key give the same
// bytes.
func WriteSigned(w io.Writer, c Contents, key ed25519.PrivateKey) error {
	manifest, mods, err := build(c)
	if err != nil {
		return err
	}
	md := descriptor(v1.MediaTypeImageManifest, manifest)
	md.ArtifactType = ArtifactType
	md.Annotations = map[string]string{v1.AnnotationRefName: c.Name}
	if key != nil {
		md.Annotations[AnnotationSignature] = base64.StdEncoding.EncodeToString(ed25519.Sign(key, signed(md.Digest.String())))
		md.Annotations[AnnotationSigner] = base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
	}
	index, err := json.Marshal(v1.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageIndex,
		Manifests: []v1.Descriptor{md},
	})
	if err != nil {
		return fmt.Errorf("bundle: index: %w", err)
	}
	blobs := make([][]byte, 0, len(mods)+2)
	blobs = append(blobs, manifest, c.Pipeline)
	for _, m := range mods {
		blobs = append(blobs, m.Wasm)
	}
	return WriteLayout(w, index, blobs)
}

// IsBundle reports whether the start of a file looks like a bundle: a tar
// archive (its "ustar" magic).
func IsBundle(head []byte) bool {
	return len(head) >= 262 && string(head[257:262]) == "ustar"
}

// Read reads and verifies a bundle. Every blob must hash to the digest it
// is stored under; the index must name one pirn manifest whose config and
// layers are present with the sizes and digests it gives. Nothing is
// returned unless all of that holds.
func Read(r io.Reader) (*Contents, error) {
	tr := tar.NewReader(r)
	blobs := map[string][]byte{}
	names := map[string]bool{}
	var layout, index []byte
	var total int64
	for entries := 0; ; entries++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("bundle: not a readable tar archive: %w", err)
		}
		if entries >= MaxEntries {
			return nil, fmt.Errorf("bundle: more than %d entries", MaxEntries)
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		switch hdr.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		default:
			return nil, fmt.Errorf("bundle: %s: only files and directories are allowed (type %q)", hdr.Name, hdr.Typeflag)
		}
		// A sparse entry is small in the archive and large once read:
		// the writer never makes one.
		for k := range hdr.PAXRecords {
			if strings.HasPrefix(k, "GNU.sparse.") {
				return nil, fmt.Errorf("bundle: %s: sparse entries are not allowed", hdr.Name)
			}
		}
		if names[name] {
			return nil, fmt.Errorf("bundle: %s appears twice", name)
		}
		names[name] = true
		limit := int64(MaxBlob)
		if name == v1.ImageLayoutFile || name == v1.ImageIndexFile {
			limit = MaxIndex
		}
		if hdr.Size < 0 || hdr.Size > limit {
			return nil, fmt.Errorf("bundle: %s: %d bytes is over the limit of %d", name, hdr.Size, limit)
		}
		if total += hdr.Size; total > MaxTotal {
			return nil, fmt.Errorf("bundle: over %d bytes in all", int64(MaxTotal))
		}
		b, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
		if err != nil || int64(len(b)) != hdr.Size {
			return nil, fmt.Errorf("bundle: %s: truncated", name)
		}
		switch {
		case name == v1.ImageLayoutFile:
			layout = b
		case name == v1.ImageIndexFile:
			index = b
		case strings.HasPrefix(name, "blobs/sha256/"):
			want := "sha256:" + strings.TrimPrefix(name, "blobs/sha256/")
			if got := Digest(b); got != want {
				return nil, fmt.Errorf("bundle: blob %s does not match its digest: its bytes hash to %s", want, got)
			}
			blobs[want] = b
		default:
			return nil, fmt.Errorf("bundle: unexpected entry %q", hdr.Name)
		}
	}
	var l v1.ImageLayout
	if err := json.Unmarshal(layout, &l); err != nil || l.Version != v1.ImageLayoutVersion {
		return nil, fmt.Errorf("bundle: no OCI image layout (oci-layout %q)", layout)
	}
	if index == nil {
		return nil, errors.New("bundle: no index.json")
	}
	return fromLayout(index, blobs)
}

// Module returns the named module.
func (c *Contents) Module(name string) (*Module, bool) {
	for i := range c.Modules {
		if c.Modules[i].Name == name {
			return &c.Modules[i], true
		}
	}
	return nil, false
}

// ReadBytes is Read on a byte slice.
func ReadBytes(b []byte) (*Contents, error) { return Read(bytes.NewReader(b)) }

// MarshalPrivateKey encodes key as PEM (PKCS #8), and MarshalPublicKey a
// public key (PKIX): the files pirn keygen writes.
func MarshalPrivateKey(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublicKey encodes key as PEM (PKIX).
func MarshalPublicKey(key ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePrivateKey decodes a PEM ed25519 private key.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an ed25519 key", k)
	}
	return ek, nil
}

// ParsePublicKey decodes a PEM ed25519 public key.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM public key")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an ed25519 key", k)
	}
	return ek, nil
}
