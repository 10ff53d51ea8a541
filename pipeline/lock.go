package pipeline

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/internal/fileread"
)

// Lock pins the digest of every module a pipeline uses, in the spirit of
// go.sum: `pirn lock` writes it beside the pipeline and `pirn run` refuses
// a module whose bytes do not match.
type Lock struct {
	Entries []LockEntry
}

// LockEntry pins one module.
type LockEntry struct {
	Module string     // name in the pipeline's module table
	Digest cas.Digest // sha256 of the module's bytes
	Path   string     // the path as written in the pipeline (informational)
}

// LockPath returns the lock file of a pipeline file: the same name with the
// extension replaced by ".lock" (quickstart.yaml -> quickstart.lock).
func LockPath(pipelineFile string) string {
	return strings.TrimSuffix(pipelineFile, filepath.Ext(pipelineFile)) + ".lock"
}

// Digest returns the pinned digest of a module.
func (l *Lock) Digest(module string) (cas.Digest, bool) {
	for _, e := range l.Entries {
		if e.Module == module {
			return e.Digest, true
		}
	}
	return cas.Digest{}, false
}

// ReadLock reads a lock file. A missing file gives an error wrapping
// fs.ErrNotExist.
func ReadLock(path string) (*Lock, error) {
	b, err := fileread.Read(path, "lock file", MaxFileBytes)
	if err != nil {
		return nil, err
	}
	l := &Lock{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.SplitN(text, " ", 3)
		if len(fields) < 2 {
			return nil, fmt.Errorf("%s:%d: want \"<module> <sha256:digest> <path>\"", path, line)
		}
		d, err := cas.ParseDigest(fields[1])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if _, dup := l.Digest(fields[0]); dup {
			return nil, fmt.Errorf("%s:%d: module %q pinned twice", path, line, fields[0])
		}
		e := LockEntry{Module: fields[0], Digest: d}
		if len(fields) == 3 {
			e.Path = fields[2]
		}
		l.Entries = append(l.Entries, e)
	}
	return l, sc.Err()
}

// WriteLock writes a lock file atomically.
func WriteLock(path string, l *Lock) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# pirn lock file: the sha256 of every module %s uses.\n", strings.TrimSuffix(filepath.Base(path), ".lock"))
	b.WriteString("# Written by `pirn lock`; `pirn run` refuses a module whose bytes differ.\n")
	for _, e := range l.Entries {
		fmt.Fprintf(&b, "%s %s %s\n", e.Module, e.Digest, e.Path)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".lock-*")
	if err != nil {
		return fmt.Errorf("write lock: %w", err)
	}
	_, err = tmp.Write(b.Bytes())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write lock: %w", err)
	}
	return nil
}
