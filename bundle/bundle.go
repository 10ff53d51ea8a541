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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

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
)

// Bounds on what Read accepts.
const (
	MaxEntries = 1024
	MaxBlob    = 64 << 20 // bytes per blob: the largest module a host loads
	MaxTotal   = 1 << 30  // bytes in all entries
	maxMeta    = 1 << 20  // bytes of oci-layout and of index.json
	// MaxFileBytes bounds a whole bundle file: its entries and their tar
	// headers and padding.
	MaxFileBytes = MaxTotal + (MaxEntries+2)*1024
)

// Contents is what a bundle holds.
type Contents struct {
	Name     string // the pipeline's name
	Pipeline []byte // the pipeline file
	Modules  []Module
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

// Write writes c as a bundle to w.
func Write(w io.Writer, c Contents) error {
	if c.Name == "" || len(c.Pipeline) == 0 {
		return errors.New("bundle: a bundle needs a pipeline and its name")
	}
	blobs := map[string][]byte{}
	add := func(b []byte) { blobs[Digest(b)] = b }

	config := descriptor(MediaTypePipeline, c.Pipeline)
	config.Annotations = map[string]string{v1.AnnotationTitle: "pipeline.yaml"}
	add(c.Pipeline)
	mods := slices.Clone(c.Modules)
	slices.SortFunc(mods, func(a, b Module) int { return strings.Compare(a.Name, b.Name) })
	var layers []v1.Descriptor
	for i, m := range mods {
		if m.Name == "" || (i > 0 && mods[i-1].Name == m.Name) {
			return fmt.Errorf("bundle: module name %q is empty or repeated", m.Name)
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
		add(m.Wasm)
	}
	manifest, err := json.Marshal(v1.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    v1.MediaTypeImageManifest,
		ArtifactType: ArtifactType,
		Config:       config,
		Layers:       layers,
		Annotations:  map[string]string{v1.AnnotationTitle: c.Name},
	})
	if err != nil {
		return fmt.Errorf("bundle: manifest: %w", err)
	}
	add(manifest)
	md := descriptor(v1.MediaTypeImageManifest, manifest)
	md.ArtifactType = ArtifactType
	md.Annotations = map[string]string{v1.AnnotationRefName: c.Name}
	index, err := json.Marshal(v1.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageIndex,
		Manifests: []v1.Descriptor{md},
	})
	if err != nil {
		return fmt.Errorf("bundle: index: %w", err)
	}
	layout, _ := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})

	tw := tar.NewWriter(w)
	file := func(name string, b []byte) error {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(0, 0).UTC(), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: dir, Mode: 0o755, ModTime: time.Unix(0, 0).UTC(), Typeflag: tar.TypeDir, Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
	}
	if err := file(v1.ImageLayoutFile, layout); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if err := file(v1.ImageIndexFile, index); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	digests := make([]string, 0, len(blobs))
	for d := range blobs {
		digests = append(digests, d)
	}
	slices.Sort(digests)
	for _, d := range digests {
		if err := file("blobs/sha256/"+strings.TrimPrefix(d, "sha256:"), blobs[d]); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	return nil
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
			limit = maxMeta
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
	var idx v1.Index
	if err := json.Unmarshal(index, &idx); err != nil {
		return nil, fmt.Errorf("bundle: index.json: %v", err)
	}
	var mds []v1.Descriptor
	for _, d := range idx.Manifests {
		if d.ArtifactType == ArtifactType || d.MediaType == v1.MediaTypeImageManifest {
			mds = append(mds, d)
		}
	}
	if len(mds) != 1 {
		return nil, fmt.Errorf("bundle: index.json names %d manifests, want one pirn bundle", len(mds))
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
	mb, err := get(mds[0], "manifest")
	if err != nil {
		return nil, err
	}
	var m v1.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, fmt.Errorf("bundle: manifest: %v", err)
	}
	if m.ArtifactType != ArtifactType || m.Config.MediaType != MediaTypePipeline {
		return nil, fmt.Errorf("bundle: the manifest is not a pirn bundle (artifact type %q, config %q)", m.ArtifactType, m.Config.MediaType)
	}
	c := &Contents{Name: m.Annotations[v1.AnnotationTitle]}
	if c.Name == "" {
		return nil, errors.New("bundle: the manifest has no title (the pipeline's name)")
	}
	if c.Pipeline, err = get(m.Config, "pipeline"); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, d := range m.Layers {
		name := d.Annotations[AnnotationModule]
		if d.MediaType != MediaTypeModule || name == "" {
			return nil, fmt.Errorf("bundle: layer %s is not a named pirn module (media type %q)", d.Digest, d.MediaType)
		}
		if seen[name] {
			return nil, fmt.Errorf("bundle: module %q appears twice", name)
		}
		seen[name] = true
		wasm, err := get(d, fmt.Sprintf("module %q", name))
		if err != nil {
			return nil, err
		}
		c.Modules = append(c.Modules, Module{Name: name, ABI: d.Annotations[AnnotationABI], Format: d.Annotations[AnnotationFormat], Wasm: wasm})
	}
	// Everything in the archive is accounted for: nothing rides along
	// unverified by the manifest.
	referenced := map[string]bool{mds[0].Digest.String(): true, m.Config.Digest.String(): true}
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
