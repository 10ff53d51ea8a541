// Package statedir opens a local state directory: the run history in
// history.db (SQLite) and the data store in data/ (files named by
// digest). It is what `pirn` uses by default (.pirn in the working
// directory); a program embedding pirn opens one the same way and hands
// its Store and History to pirn.Config, or passes stores of its own.
package statedir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pirn-wasm/pirn/backends/sqlite"
	"github.com/pirn-wasm/pirn/cas"
)

// Dir is an open state directory.
type Dir struct {
	Path    string
	Store   *cas.Disk
	History *sqlite.History
}

// Open opens the state directory at path, creating it if missing.
func Open(ctx context.Context, path string) (*Dir, error) {
	if path == "" {
		return nil, fmt.Errorf("statedir: no path")
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("open state dir: %w", err)
	}
	store, err := cas.NewDisk(cas.DiskConfig{Dir: filepath.Join(path, "data")})
	if err != nil {
		return nil, err
	}
	hist, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(path, "history.db")})
	if err != nil {
		return nil, err
	}
	return &Dir{Path: path, Store: store, History: hist}, nil
}

// Close closes the history.
func (d *Dir) Close() error { return d.History.Close() }
