//go:build duckdb

// Package duckdb is a [lineage.History] in one DuckDB file, for histories
// that are analysed as well as recorded: DuckDB is a columnar SQL engine,
// so questions across thousands of runs ("which knots were slowest over
// the last 1,000 runs?", [History.SlowestKnots]) run in milliseconds,
// from Go or from the duckdb shell on the same file.
//
// It is built only with the build tag duckdb (go build -tags duckdb): the
// driver, github.com/duckdb/duckdb-go/v2, links DuckDB's C++ library
// through cgo, which makes every binary that imports it much larger and
// slower to link (docs/rationale.md has the figures).
//
// # One process at a time
//
// DuckDB lets one process open a database file for writing; a second
// process that opens it, for writing or for reading, fails at once while
// the first has it open, with an error that names the file and the
// process holding it. So `pirn runs --history duckdb:PATH` in one terminal fails while
// `pirn run --history duckdb:PATH` records to the same file in another;
// a team that shares a history between processes wants SQLite or
// Postgres. Within one process any number of Histories may share a file
// (DuckDB's instance cache gives them one database).
//
// The same rule makes runs in progress simple: a Running run in the file
// belongs either to a History open in this process or to a process that
// has ended, since no other process can have the file open. Open marks
// the second kind Interrupted; see [History.StartRun].
//
// # Storage
//
// A run is written in one transaction on one connection, with prepared
// statements and, for its records and errors, DuckDB's Appender: DuckDB
// spends a few hundred microseconds on each statement, so a 10-knot run
// takes several milliseconds to record, many times what SQLite takes
// (docs/performance.md). A record is one row of the lineage table, its
// inputs three lists (names, parents, digests), and it carries its run's
// start time and recording order so that the cross-run queries read no
// other table. ART indexes serve the lookups by value: lineage by output
// digest and by knot id, and lineage_inputs (a row per input) by digest.
// A run's rows are found by its recording number (runs.recorded, copied
// to each record as run_recorded): rows are appended in that order, so
// DuckDB's per-row-group statistics confine the scan to them. Digests are BLOBs of their 32 bytes (NULL for none) and times BIGINT
// unix nanoseconds UTC (0 for the zero time), as in the SQLite and
// Postgres histories; the views runs_text, lineage_text and errors_text
// show them as "sha256:<hex>" and timestamps. The schema is versioned in
// the table schema_versions; Open applies missing migrations and refuses a
// file written by a newer pirn.
package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/pirn-wasm/pirn/lineage"
)

// Config configures Open.
type Config struct {
	// Path is the database file. It is required (the zero value is an
	// error); the file and its parent directories are created if missing.
	Path string
}

// History is a [lineage.History] in a DuckDB file. It is safe for
// concurrent use within one process; see the package documentation for
// other processes.
type History struct {
	db   *sql.DB
	path string // absolute
	// wsem serializes the writers of the file in this process (every
	// History on it shares it): DuckDB fails the second of two
	// transactions that write the same rows, where SQLite would make it
	// wait.
	wsem chan struct{}
	w    *writer // RecordRun's connection

	closeOnce sync.Once
	closeErr  error

	mu      sync.Mutex
	owner   string          // this History's name in runs.owner, once it starts a run
	running map[string]bool // the runs this History started and has not recorded
}

var _ lineage.History = (*History)(nil)

// Open opens the history at cfg.Path, creating and migrating it as needed,
// and marks Interrupted the runs left Running by a process that has
// ended. A file that is not a DuckDB database, a directory, a file another
// process has open, or a schema newer than this package knows is an error
// that names the path. Close the History when done.
func Open(ctx context.Context, cfg Config) (*History, error) {
	if cfg.Path == "" {
		return nil, errors.New("duckdb: Config.Path is empty")
	}
	h, err := open(ctx, cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("duckdb: open history %s: %w", cfg.Path, err)
	}
	return h, nil
}

// opening serializes Open within the process: Histories on one file share
// one database (DuckDB's instance cache), and two migrations of it at
// once would conflict.
var opening sync.Mutex

// writers holds the write semaphore of each file opened in this process,
// by absolute path.
var writers sync.Map

func open(ctx context.Context, path string) (*History, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		return nil, errors.New("is a directory, not a DuckDB database file")
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opening.Lock()
	defer opening.Unlock()
	conn, err := duckdb.NewConnector(abs, nil)
	if err != nil {
		return nil, err // DuckDB's message names the file and, for a lock held elsewhere, the process
	}
	wsem, _ := writers.LoadOrStore(abs, make(chan struct{}, 1))
	h := &History{db: sql.OpenDB(conn), path: abs, wsem: wsem.(chan struct{}), running: map[string]bool{}}
	if err := migrate(ctx, h.db); err != nil {
		h.db.Close()
		return nil, err
	}
	if err := h.sweep(ctx); err != nil {
		h.db.Close()
		return nil, fmt.Errorf("mark interrupted runs: %w", err)
	}
	if h.w, err = newWriter(ctx, h.db); err != nil {
		h.db.Close()
		return nil, err
	}
	return h, nil
}

// Close marks Interrupted the runs this History started and has not
// recorded, then closes the database after the calls in progress; later
// calls fail. Closing again does nothing and returns the first Close's
// error.
func (h *History) Close() error {
	h.closeOnce.Do(func() {
		var errs []error
		if err := h.interruptOwn(context.Background()); err != nil {
			errs = append(errs, fmt.Errorf("mark this history's runs interrupted: %w", err))
		}
		h.wsem <- struct{}{} // no RecordRun is using the writer
		errs = append(errs, h.w.close())
		<-h.wsem
		errs = append(errs, h.db.Close())
		if err := errors.Join(errs...); err != nil {
			h.closeErr = fmt.Errorf("duckdb: close history %s: %w", h.path, err)
		}
	})
	return h.closeErr
}

// lockWriter waits for this History's write turn, or for ctx to end.
func (h *History) lockWriter(ctx context.Context) error {
	select {
	case h.wsem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *History) unlockWriter() { <-h.wsem }
