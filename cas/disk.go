package cas

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DiskConfig configures a [Disk] store.
type DiskConfig struct {
	// Dir is the root directory; it is created if missing. Required.
	Dir string
	// Sync makes Put fsync each value and its directory before returning, so
	// that a value survives power loss as well as a crash of the process.
	// Without it a value is still never visible half-written.
	Sync bool
}

// Disk is a [Store] on the local file system. A value with digest
// sha256:abcd… lives at Dir/sha256/ab/abcd…; writes go to a temporary file in
// the same directory and are renamed into place, so a reader never sees a
// partial value, and concurrent writers (including other processes) of one
// digest are harmless. Get re-hashes what it reads.
type Disk struct {
	cfg DiskConfig
}

var _ Store = (*Disk)(nil)

// NewDisk opens (creating if needed) a disk store.
func NewDisk(cfg DiskConfig) (*Disk, error) {
	if cfg.Dir == "" {
		return nil, errors.New("cas: DiskConfig.Dir is empty")
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("cas: open disk store: %w", err)
	}
	return &Disk{cfg: cfg}, nil
}

func (s *Disk) path(d Digest) string {
	h := d.Hex()
	return filepath.Join(s.cfg.Dir, "sha256", h[:2], h)
}

// Put implements [Store].
func (s *Disk) Put(_ context.Context, d Digest, b []byte) error {
	p := s.path(d)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cas: put %s: %w", d, err)
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("cas: put %s: %w", d, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil && s.cfg.Sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cas: put %s: %w", d, err)
	}
	if s.cfg.Sync {
		if err := syncDir(dir); err != nil {
			return fmt.Errorf("cas: put %s: %w", d, err)
		}
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Get implements [Store]. Bytes that do not hash to d give an error wrapping
// [ErrCorrupt] naming the file.
func (s *Disk) Get(_ context.Context, d Digest) ([]byte, error) {
	p := s.path(d)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cas: get %s: %w", d, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("cas: get %s: %w", d, err)
	}
	if Sum(b) != d {
		return nil, fmt.Errorf("cas: get %s: %s: %w", d, p, ErrCorrupt)
	}
	return b, nil
}

// Has implements [Store].
func (s *Disk) Has(_ context.Context, d Digest) (bool, error) {
	_, err := os.Stat(s.path(d))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cas: has %s: %w", d, err)
	}
	return true, nil
}

// Delete implements [Store].
func (s *Disk) Delete(_ context.Context, d Digest) error {
	err := os.Remove(s.path(d))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cas: delete %s: %w", d, err)
	}
	return nil
}
