package cas_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/cas/castest"
)

func TestMemory(t *testing.T) {
	castest.RunStore(t, func(t *testing.T) cas.Store { return cas.NewMemory() })
}

func TestDisk(t *testing.T) {
	for _, sync := range []bool{false, true} {
		t.Run(map[bool]string{false: "nosync", true: "sync"}[sync], func(t *testing.T) {
			castest.RunStore(t, func(t *testing.T) cas.Store {
				s, err := cas.NewDisk(cas.DiskConfig{Dir: t.TempDir(), Sync: sync})
				if err != nil {
					t.Fatal(err)
				}
				return s
			})
		})
	}
}

func TestDiskLayoutAndCorruption(t *testing.T) {
	dir := t.TempDir()
	s, err := cas.NewDisk(cas.DiskConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	v, err := cas.NewValue("payload")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
		t.Fatal(err)
	}
	h := v.Digest.Hex()
	p := filepath.Join(dir, "sha256", h[:2], h)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("value not at sharded path %s: %v", p, err)
	}
	entries, err := os.ReadDir(filepath.Dir(p))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	if err := os.WriteFile(p, []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = s.Get(ctx, v.Digest)
	if !errors.Is(err, cas.ErrCorrupt) || !strings.Contains(err.Error(), p) {
		t.Errorf("Get of tampered value error = %v, want ErrCorrupt naming %s", err, p)
	}
}

func TestNewDiskNeedsDir(t *testing.T) {
	if _, err := cas.NewDisk(cas.DiskConfig{}); err == nil {
		t.Error("NewDisk with empty Dir succeeded, want error")
	}
}
