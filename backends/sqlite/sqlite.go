// Package sqlite is a [lineage.History] stored in one SQLite file, the
// embedded default history of `pirn run` (.pirn/history.db). It uses the
// pure-Go driver modernc.org/sqlite, so the default build needs no cgo.
//
// Several processes may share one file: it is opened in WAL mode, write
// transactions take the write lock up front (BEGIN IMMEDIATE) and wait up
// to ten seconds for it, and writers inside one process are serialized
// before they reach SQLite. A run is written in one transaction with
// multi-row inserts; new files use 2 KiB pages, which cut the bytes a run
// writes to the WAL by about 40%.
//
// The indexes that join runs (by value digest, lineage_values, and by
// knot id, lineage_knots) are written in batches: a run appends a row for
// itself and one per input to lineage_pending, and every 2048 entries or
// so they are moved into the indexes, sorted, with the outputs and knot
// ids of the pending runs' records, in the transaction of the run that
// crosses the mark. Written run by run, those indexes were most of the
// pages a run wrote (about 40 of 52 for a 10-knot run). Queries read both.
//
// Digests are stored as their 32 bytes (NULL for none). For the sqlite3
// shell, the views lineage_text, lineage_values_text and errors_text show
// digests as "sha256:<hex>". Times are INTEGER unix nanoseconds UTC (0 for
// the zero time). See schema.go for the tables. The schema version is
// PRAGMA user_version; Open applies missing migrations and refuses a file
// written by a newer pirn.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/pirn-wasm/pirn/lineage"
)

// Config configures Open.
type Config struct {
	// Path is the database file. It is required (the zero value is an
	// error); the file and its parent directories are created if missing.
	Path string
}

// History is a [lineage.History] in a SQLite file. It is safe for
// concurrent use, and by several processes sharing the file.
type History struct {
	db *sql.DB
	// wsem serializes this process's writers, so that they queue here
	// rather than in SQLite's sleeping busy handler. The batch
	// statements are prepared by a writer holding it.
	wsem chan struct{}

	delRun, insRun, updRun, runEntries, pendingRows, runOwner *sql.Stmt
	reusable                                                  *sql.Stmt // Reusable's lookup
	insRecords, insPending, insErrors, insLabels              *batchStmts
	insValues, insKnots                                       *batchStmts // runs too big for lineage_pending

	commits   atomic.Int64
	closeOnce sync.Once
	ckpt      chan struct{} // wakes the checkpointer
	stop      chan struct{} // closed by Close: stops the checkpointer
	ckptDone  chan struct{} // closed when the checkpointer has stopped

	lockDir   string // <path>-runs: the lock files of processes with runs in progress
	mu        sync.Mutex
	owner     string            // this History's name in runs.owner, once it starts a run
	ownerLock *os.File          // holds the lock of owner
	running   map[string]marker // the runs this History started and has not recorded
}

var _ lineage.History = (*History)(nil)

// Open opens the history at cfg.Path, creating and migrating it as needed.
// A file that is not a SQLite database, or whose schema is newer than this
// package knows, is an error. Close the History when done.
func Open(ctx context.Context, cfg Config) (*History, error) {
	if cfg.Path == "" {
		return nil, errors.New("sqlite: Config.Path is empty")
	}
	h, err := open(ctx, cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open history %s: %w", cfg.Path, err)
	}
	return h, nil
}

func open(ctx context.Context, path string) (*History, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(abs); errors.Is(err, fs.ErrNotExist) || err == nil && fi.Size() == 0 {
		if err := retryBusy(ctx, func() error { return create(ctx, abs) }); err != nil {
			return nil, explain(err)
		}
	}
	db, err := sql.Open("sqlite", dsn(abs))
	if err != nil {
		return nil, err
	}
	// Opening a connection runs the pragmas, so keep the ones we open.
	n := max(4, runtime.GOMAXPROCS(0))
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	h := &History{db: db, wsem: make(chan struct{}, 1), ckpt: make(chan struct{}, 1), stop: make(chan struct{}), ckptDone: make(chan struct{}),
		lockDir: abs + "-runs", running: map[string]marker{}}
	go h.checkpointer()
	if err := retryBusy(ctx, func() error { return migrate(ctx, db) }); err != nil {
		h.Close()
		return nil, explain(err)
	}
	if err := h.prepare(ctx); err != nil {
		h.Close()
		return nil, err
	}
	if err := retryBusy(ctx, func() error { return h.sweep(ctx) }); err != nil {
		h.Close()
		return nil, explain(err)
	}
	return h, nil
}

// prepare prepares the statements of RecordRun.
func (h *History) prepare(ctx context.Context) error {
	var err error
	if h.delRun, err = h.db.PrepareContext(ctx, deleteRun); err != nil {
		return fmt.Errorf("prepare delete: %w", err)
	}
	if h.insRun, err = h.db.PrepareContext(ctx, insertRun); err != nil {
		return fmt.Errorf("prepare insert into runs: %w", err)
	}
	if h.updRun, err = h.db.PrepareContext(ctx, finishRun); err != nil {
		return fmt.Errorf("prepare update of runs: %w", err)
	}
	if h.runEntries, err = h.db.PrepareContext(ctx, runEntries); err != nil {
		return fmt.Errorf("prepare select of a run's index entries: %w", err)
	}
	if h.pendingRows, err = h.db.PrepareContext(ctx, pendingRows); err != nil {
		return fmt.Errorf("prepare count of pending index entries: %w", err)
	}
	if h.runOwner, err = h.db.PrepareContext(ctx, runOwner); err != nil {
		return fmt.Errorf("prepare select of a run's owner: %w", err)
	}
	if h.reusable, err = h.db.PrepareContext(ctx, reusableQuery); err != nil {
		return fmt.Errorf("prepare lookup by cache key: %w", err)
	}
	h.insRecords = insertRecords.prepare(h.db)
	h.insPending = insertPending.prepare(h.db)
	h.insValues = insertValues.prepare(h.db)
	h.insKnots = insertKnots.prepare(h.db)
	h.insLabels = insertLabels.prepare(h.db)
	h.insErrors = insertErrors.prepare(h.db)
	return nil
}

// pageSize is the page size of a new history file, half SQLite's
// default. RecordRun dirties about six pages per record, most of them
// leaves of the indexes on hashes and knot ids, and the WAL takes whole
// pages: smaller pages write fewer bytes per run.
const pageSize = 2048

// create gives a new (absent or empty) database file its page size, then
// enters WAL mode, which writes the first page and so fixes the size. If
// another process got there first, both pragmas change nothing.
func create(ctx context.Context, abs string) error {
	db, err := sql.Open("sqlite", uri(abs, url.Values{"_pragma": {busyPragma}}))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // pragmas are per connection
	if _, err := db.ExecContext(ctx, fmt.Sprintf("PRAGMA page_size = %d", pageSize)); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if _, err := db.ExecContext(ctx, "PRAGMA journal_mode = WAL"); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	return db.Close()
}

// uri returns the driver's URI for the absolute path abs with query q.
func uri(abs string, q url.Values) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive letter: file:///C:/…
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}
	return u.String()
}

var busyPragma = fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds())

// dsn returns the driver's URI for the history at the absolute path abs.
func dsn(abs string) string {
	return uri(abs, url.Values{
		"_pragma": {
			// modernc.org/sqlite runs busy_timeout first, so that
			// changing the journal mode waits for other processes too.
			busyPragma,
			"journal_mode(WAL)",
			"synchronous(NORMAL)", // WAL commits need no fsync; checkpoints do
			"foreign_keys(ON)",
			// No checkpoint in a commit: a goroutine runs them
			// (checkpoint.go). The last connection to close
			// checkpoints and removes the WAL.
			"wal_autocheckpoint(0)",
		},
		"_txlock": {"immediate"}, // write transactions: BEGIN IMMEDIATE
	})
}

// busyTimeout is how long a connection waits for a lock another holds.
const busyTimeout = 10 * time.Second

// retryBusy calls f until it does not fail with SQLITE_BUSY, for up to
// busyTimeout. SQLite reports some lock conflicts at once rather than
// waiting for them, where waiting could deadlock: two processes opening a
// new file both try to switch it to WAL mode, or read it while the other
// does.
func retryBusy(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(busyTimeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		err := f()
		var e *sqlite.Error
		if !errors.As(err, &e) || e.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
	}
}

// explain makes a clearer error of a file that is not a SQLite database.
func explain(err error) error {
	var e *sqlite.Error
	if errors.As(err, &e) {
		switch e.Code() & 0xff {
		case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
			return fmt.Errorf("not a SQLite database, or corrupt: %w", err)
		}
	}
	return err
}

// Close closes the database, after the calls in progress; later calls
// fail. The last connection to the file to close checkpoints and removes
// the WAL.
func (h *History) Close() error {
	// Runs never recorded: the next Open marks them interrupted.
	defer h.releaseOwner()
	h.closeOnce.Do(func() {
		close(h.stop)
		select {
		case <-h.ckptDone:
		case <-time.After(busyTimeout): // a checkpoint stuck on the file: db.Close ends it
		}
	})
	var errs []error
	h.wsem <- struct{}{} // after the write in progress, if any, which may prepare a statement
	for _, s := range []*sql.Stmt{h.delRun, h.insRun, h.updRun, h.runEntries, h.pendingRows, h.runOwner, h.reusable} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	for _, s := range []*batchStmts{h.insRecords, h.insPending, h.insErrors, h.insValues, h.insKnots, h.insLabels} {
		if s != nil {
			errs = append(errs, s.close())
		}
	}
	<-h.wsem
	errs = append(errs, h.db.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close history: %w", err)
	}
	return nil
}
