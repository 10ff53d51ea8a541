package fileread

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("twelve bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(p, "file", 12); err != nil || string(b) != "twelve bytes" {
		t.Errorf("Read(12-byte file, limit 12) = %q, %v", b, err)
	}
	var tl *TooLargeError
	if _, err := Read(p, "file", 11); !errors.As(err, &tl) || tl.Size != 12 || err.Error() != "file "+p+" is 12 bytes, over the limit of 11" {
		t.Errorf("Read(12-byte file, limit 11) error %v", err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/dev/zero", "/dev/null", fifo, dir} {
		var nr *NotRegularError
		if _, err := Read(path, "pipeline", 1<<20); !errors.As(err, &nr) {
			t.Errorf("Read(%s) error %v, want a NotRegularError", path, err)
		}
	}
	if _, err := Read(filepath.Join(dir, "missing"), "file", 1); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Read(missing) error %v, want it to wrap ErrNotExist", err)
	}
}
