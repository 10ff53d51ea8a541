package bundle_test

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/image-spec/schema"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/pirn-wasm/pirn/bundle"
)

func sample() bundle.Contents {
	return bundle.Contents{
		Name:     "demo",
		Pipeline: []byte("name: demo\nmodules: {m: m.wasm, w: {path: w.wasm, abi: wasi-command}}\nnodes: []\n"),
		Modules: []bundle.Module{
			{Name: "w", ABI: "wasi-command", Format: "json", Wasm: []byte("\x00asm\x01\x00\x00\x00command")},
			{Name: "m", Wasm: []byte("\x00asm\x01\x00\x00\x00knots")},
		},
	}
}

func write(t testing.TB, c bundle.Contents) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := bundle.Write(&buf, c); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// entries returns the archive's files by name.
func entries(t testing.TB, b []byte) (names []string, files map[string][]byte) {
	t.Helper()
	files = map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names, files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		names = append(names, hdr.Name)
		files[hdr.Name] = data
	}
}

// rewrite builds an archive from files in the given order.
func rewrite(t testing.TB, names []string, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		if strings.HasSuffix(n, "/") {
			tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: 0o755})
			continue
		}
		tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[n]))})
		tw.Write(files[n])
	}
	tw.Close()
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	b := write(t, sample())
	if !bytes.Equal(b, write(t, sample())) {
		t.Error("two writes of the same contents differ")
	}
	if !bundle.IsBundle(b) {
		t.Error("IsBundle = false")
	}
	c, err := bundle.ReadBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "demo" || !bytes.Equal(c.Pipeline, sample().Pipeline) || len(c.Modules) != 2 {
		t.Fatalf("read %+v", c)
	}
	w, ok := c.Module("w")
	if !ok || w.ABI != "wasi-command" || w.Format != "json" || string(w.Wasm) != "\x00asm\x01\x00\x00\x00command" {
		t.Errorf("module w = %+v", w)
	}
	if m, _ := c.Module("m"); m.ABI != "" || string(m.Wasm) != "\x00asm\x01\x00\x00\x00knots" {
		t.Errorf("module m = %+v", m)
	}
}

// TestOCILayout checks the archive against the OCI image-spec's own JSON
// schemas, so that OCI tools can read and push it.
func TestOCILayout(t *testing.T) {
	_, files := entries(t, write(t, sample()))
	if got := string(files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %s", got)
	}
	if err := schema.ValidatorMediaTypeImageIndex.Validate(bytes.NewReader(files["index.json"])); err != nil {
		t.Errorf("index.json: %v", err)
	}
	var idx v1.Index
	json.Unmarshal(files["index.json"], &idx)
	manifest := files["blobs/sha256/"+idx.Manifests[0].Digest.Encoded()]
	if err := schema.ValidatorMediaTypeManifest.Validate(bytes.NewReader(manifest)); err != nil {
		t.Errorf("manifest: %v\n%s", err, manifest)
	}
	if idx.Manifests[0].Annotations[v1.AnnotationRefName] != "demo" {
		t.Errorf("index annotations = %v", idx.Manifests[0].Annotations)
	}
}

func TestReadRefuses(t *testing.T) {
	good := write(t, sample())
	names, files := entries(t, good)
	var moduleBlob string
	for n, b := range files {
		if string(b) == "\x00asm\x01\x00\x00\x00knots" {
			moduleBlob = n
		}
	}
	tamper := func(f func(map[string][]byte) []string) []byte {
		cp := map[string][]byte{}
		for k, v := range files {
			cp[k] = append([]byte{}, v...)
		}
		ns := f(cp)
		if ns == nil {
			ns = names
		}
		return rewrite(t, ns, cp)
	}
	without := func(name string) []string {
		var ns []string
		for _, n := range names {
			if n != name {
				ns = append(ns, n)
			}
		}
		return ns
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"a flipped byte in a module", tamper(func(f map[string][]byte) []string { f[moduleBlob][9] ^= 1; return nil }), "does not match its digest: its bytes hash to sha256:"},
		{"a missing module", tamper(func(map[string][]byte) []string { return without(moduleBlob) }), "is missing"},
		{"no index", tamper(func(map[string][]byte) []string { return without("index.json") }), "index.json"},
		{"no layout", tamper(func(map[string][]byte) []string { return without("oci-layout") }), "no OCI image layout"},
		{"a stray file", tamper(func(f map[string][]byte) []string {
			f["../../etc/passwd"] = []byte("x")
			return append(names, "../../etc/passwd")
		}), `unexpected entry "../../etc/passwd"`},
		{"two index files", tamper(func(f map[string][]byte) []string {
			return append(names, "index.json")
		}), "index.json appears twice"},
		{"an unreferenced blob", tamper(func(f map[string][]byte) []string {
			extra := []byte("riding along")
			name := "blobs/sha256/" + strings.TrimPrefix(bundle.Digest(extra), "sha256:")
			f[name] = extra
			return append(names, name)
		}), "is not referenced by the manifest"},
		{"an oversized index", tamper(func(f map[string][]byte) []string {
			f["index.json"] = append(f["index.json"], bytes.Repeat([]byte(" "), 2<<20)...)
			return nil
		}), "index.json: 2097"},
		{"truncated", good[:len(good)/2], "truncated"},
		{"not a tar", []byte("name: demo\nnodes: []\n"), "not a readable tar archive"},
	} {
		_, err := bundle.ReadBytes(tc.b)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// TestReadRefusesSparse gives Read archives whose one entry is a sparse
// file of 256 MiB stored in a few KiB (both GNU tar's old format and the
// PAX one): Read refuses them before reading the entry.
func TestReadRefusesSparse(t *testing.T) {
	tarPath, err := exec.LookPath("tar")
	if err != nil {
		t.Skip("no tar command to make sparse archives")
	}
	dir := t.TempDir()
	blob := filepath.Join(dir, "blobs", "sha256", strings.Repeat("ab", 32))
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blob, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(blob, 256<<20); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"gnu", "posix"} {
		out := filepath.Join(t.TempDir(), "sparse.tar")
		cmd := exec.Command(tarPath, "--sparse", "--format="+format, "-C", dir, "-cf", out, "blobs")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tar: %v\n%s", err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 1<<20 {
			t.Fatalf("%s: the archive is %d bytes: tar did not write it sparse", format, len(b))
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err = bundle.ReadBytes(b)
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), "sparse entries are not allowed") && !strings.Contains(err.Error(), "only files and directories") {
			t.Errorf("%s: %v, want sparse entries refused", format, err)
		}
		// Refused before the 256 MiB it would expand to is allocated.
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
			t.Errorf("%s: refusing allocated %d KiB", format, alloc>>10)
		}
	}
}

func FuzzRead(f *testing.F) {
	good := write(f, sample())
	f.Add(good)
	f.Add(good[:1024])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		start := time.Now()
		c, err := bundle.ReadBytes(b)
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Read took %v on %d bytes", d, len(b))
		}
		if err != nil {
			return
		}
		// Whatever Read accepts, Write reproduces with the same contents.
		again, err := bundle.ReadBytes(write(t, *c))
		if err != nil {
			t.Fatalf("rewriting an accepted bundle: %v", err)
		}
		if again.Name != c.Name || !bytes.Equal(again.Pipeline, c.Pipeline) || len(again.Modules) != len(c.Modules) {
			t.Fatalf("contents changed on rewrite")
		}
	})
}

// TestSignature: a signed bundle verifies with its key and no other; the
// signature covers the pipeline and every module (moved onto a bundle with
// other contents, it no longer verifies); signing is deterministic; keys
// survive their PEM files; a malformed signature is refused on read.
func TestSignature(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	sign := func(c bundle.Contents) []byte {
		var buf bytes.Buffer
		if err := bundle.WriteSigned(&buf, c, priv); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	b := sign(sample())
	if !bytes.Equal(b, sign(sample())) {
		t.Error("two signatures of the same contents differ")
	}
	c, err := bundle.ReadBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify([]ed25519.PublicKey{otherPub, pub}); err != nil {
		t.Errorf("Verify with its key: %v", err)
	}
	if !bytes.Equal(c.Signer, pub) {
		t.Error("Signer is not the signing key")
	}
	if err := c.Verify([]ed25519.PublicKey{otherPub}); !errors.Is(err, bundle.ErrUntrusted) || !strings.Contains(err.Error(), bundle.KeyID(pub)) {
		t.Errorf("Verify with another key: %v", err)
	}
	unsigned, _ := bundle.ReadBytes(write(t, sample()))
	if err := unsigned.Verify([]ed25519.PublicKey{pub}); !errors.Is(err, bundle.ErrUntrusted) || !strings.Contains(err.Error(), "not signed") {
		t.Errorf("Verify an unsigned bundle: %v", err)
	}

	// The signature of one bundle, put on another whose module differs by
	// a byte, does not verify.
	changed := sample()
	changed.Modules[1].Wasm = []byte("\x00asm\x01\x00\x00\x00knotz")
	names, files := entries(t, write(t, changed))
	_, signedFiles := entries(t, b)
	var idx, signedIdx map[string]any
	json.Unmarshal(files["index.json"], &idx)
	json.Unmarshal(signedFiles["index.json"], &signedIdx)
	idx["manifests"].([]any)[0].(map[string]any)["annotations"] = signedIdx["manifests"].([]any)[0].(map[string]any)["annotations"]
	files["index.json"], _ = json.Marshal(idx)
	moved, err := bundle.ReadBytes(rewrite(t, names, files))
	if err != nil {
		t.Fatal(err)
	}
	if err := moved.Verify([]ed25519.PublicKey{pub}); !errors.Is(err, bundle.ErrUntrusted) {
		t.Errorf("a signature moved onto other contents: %v", err)
	}

	// Malformed signatures are refused when read.
	names, files = entries(t, b)
	json.Unmarshal(files["index.json"], &idx)
	idx["manifests"].([]any)[0].(map[string]any)["annotations"].(map[string]any)[bundle.AnnotationSignature] = "bm90IGEgc2lnbmF0dXJl"
	files["index.json"], _ = json.Marshal(idx)
	if _, err := bundle.ReadBytes(rewrite(t, names, files)); err == nil || !strings.Contains(err.Error(), "not an ed25519 signature") {
		t.Errorf("a malformed signature: %v", err)
	}

	// Keys round-trip through PEM; a public key is not a private one.
	pb, _ := bundle.MarshalPublicKey(pub)
	kb, _ := bundle.MarshalPrivateKey(priv)
	if k, err := bundle.ParsePublicKey(pb); err != nil || !k.Equal(pub) {
		t.Errorf("ParsePublicKey: %v", err)
	}
	if k, err := bundle.ParsePrivateKey(kb); err != nil || !k.Equal(priv) {
		t.Errorf("ParsePrivateKey: %v", err)
	}
	if _, err := bundle.ParsePrivateKey(pb); err == nil {
		t.Error("ParsePrivateKey accepted a public key")
	}
	if _, err := bundle.ParsePublicKey([]byte("garbage")); err == nil {
		t.Error("ParsePublicKey accepted garbage")
	}
}

// TestFromManifest reads a bundle back from its manifest and a store of
// its blobs (what a data store keeps of a pipeline that ran), and refuses
// a store that lost or changed a blob, a blob over the limit, and a
// manifest that is not a pirn bundle's.
func TestFromManifest(t *testing.T) {
	b := write(t, sample())
	full, err := bundle.ReadBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := bundle.Manifest(sample())
	if err != nil {
		t.Fatal(err)
	}
	if got := bundle.Digest(manifest); got != full.ManifestDigest {
		t.Fatalf("Manifest's digest %s, the bundle's manifest is %s", got, full.ManifestDigest)
	}
	_, files := entries(t, b)
	blobs := map[string][]byte{}
	for name, data := range files {
		if hex, ok := strings.CutPrefix(name, "blobs/sha256/"); ok {
			blobs["sha256:"+hex] = data
		}
	}
	get := func(blobs map[string][]byte) func(string) ([]byte, error) {
		return func(d string) ([]byte, error) {
			b, ok := blobs[d]
			if !ok {
				return nil, errors.New("not found")
			}
			return b, nil
		}
	}
	c, err := bundle.FromManifest(manifest, get(blobs))
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != full.Name || !bytes.Equal(c.Pipeline, full.Pipeline) || len(c.Modules) != 2 || c.ManifestDigest != full.ManifestDigest || c.Signature != nil {
		t.Errorf("FromManifest = %+v, want %+v without a signature", c, full)
	}

	wasm := bundle.Digest(sample().Modules[1].Wasm) // module m
	lost, changed := maps.Clone(blobs), maps.Clone(blobs)
	delete(lost, wasm)
	changed[wasm] = []byte("\x00asm\x01\x00\x00\x00knotS")
	var huge v1.Manifest
	json.Unmarshal(manifest, &huge)
	huge.Layers[0].Size = bundle.MaxBlob + 1
	hugeManifest, _ := json.Marshal(huge)
	var other v1.Manifest
	json.Unmarshal(manifest, &other)
	other.ArtifactType = "application/vnd.example"
	otherManifest, _ := json.Marshal(other)
	for _, tc := range []struct {
		name     string
		manifest []byte
		blobs    map[string][]byte
		want     string
	}{
		{"lost blob", manifest, lost, `module "m" ` + wasm + ": not found"},
		{"changed blob", manifest, changed, `module "m" ` + wasm + " does not match its digest"},
		{"blob over the limit", hugeManifest, blobs, "over the limit of"},
		{"not a pirn manifest", otherManifest, blobs, "not a pirn bundle"},
		{"not JSON", sample().Modules[0].Wasm, blobs, "bundle: manifest:"},
		{"manifest too large", make([]byte, 5<<20), blobs, "the manifest is 5242880 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bundle.FromManifest(tc.manifest, get(tc.blobs))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("FromManifest: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
