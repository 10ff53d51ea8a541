package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/pirn-wasm/pirn/lineage"
)

// Runs in progress, across processes. Each History that starts a run
// takes an owner name (its pid and 8 random hex digits) and holds an
// exclusive flock on <history>-runs/<owner>.lock from before it writes
// its first Running entry until Close. A Running entry carries its
// owner's name (runs.owner). The kernel releases the lock when the
// process dies, however it dies, so a Running run whose owner's lock can
// be taken, or whose lock file is gone, was interrupted: Open marks it
// so. Several processes can share a history: a live process's runs stay
// locked and are left alone.
//
// One lock per process rather than per run: creating and removing a file
// per run cost about 300 µs on the CI machine's disk, half of what
// recording a 10-knot run costs. Entries written before schema 4 have no
// owner; their lock was <history>-runs/<run id>.lock, and sweep still
// reads those.

var _ lineage.RunStarter = (*History)(nil)

// lockFile is the path of the lock of owner, or of the run runID for
// entries without one.
func (h *History) lockFile(owner, runID string) string {
	if owner == "" {
		return filepath.Join(h.lockDir, runID+".lock")
	}
	return filepath.Join(h.lockDir, owner+".lock")
}

// lockOwner takes this History's owner lock if it does not hold it yet.
// h.mu is held.
func (h *History) lockOwner() error {
	if h.ownerLock != nil {
		return nil
	}
	if err := os.MkdirAll(h.lockDir, 0o755); err != nil {
		return err
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	owner := fmt.Sprintf("%d-%s", os.Getpid(), hex.EncodeToString(rnd[:]))
	// The file is locked under a temporary name, then renamed: a lock
	// file is locked from the moment it has its name, so a sweeper never
	// takes (and removes) the lock of a process that is starting.
	f, err := os.CreateTemp(h.lockDir, ".tmp-*")
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		os.Remove(f.Name())
		f.Close()
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), h.lockFile(owner, "")); err != nil {
		os.Remove(f.Name())
		f.Close()
		return err
	}
	h.owner, h.ownerLock = owner, f
	return nil
}

// releaseOwner removes and unlocks the owner lock, if taken: this
// History's runs never recorded are then interrupted.
func (h *History) releaseOwner() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ownerLock != nil {
		os.Remove(h.lockFile(h.owner, "")) // before unlocking: a sweeper that opens it now finds it gone or locked
		h.ownerLock.Close()
		h.ownerLock = nil
	}
}

// StartRun records r (status Running, no records yet) as this process's
// until RecordRun replaces it. A run of the same ID in progress here or in
// another live process is an error.
func (h *History) StartRun(ctx context.Context, r *lineage.Run) error {
	if r == nil || r.Status != lineage.Running {
		return errors.New("sqlite: start run: want a run with status running")
	}
	h.mu.Lock()
	err := h.lockOwner()
	switch {
	case err != nil:
		err = fmt.Errorf("sqlite: start run %q: %w", r.ID, err)
	case h.isRunning(r.ID):
		err = fmt.Errorf("sqlite: start run %q: this process is running it", r.ID)
	default:
		h.running[r.ID] = marker{bare: len(r.Records) == 0 && len(r.Errors) == 0, labels: len(r.Labels) > 0}
	}
	owner := h.owner
	h.mu.Unlock()
	if err != nil {
		return err
	}
	if err := h.recordRun(ctx, r, owner); err != nil {
		h.finished(r.ID)
		return fmt.Errorf("sqlite: start run %q: %w", r.ID, err)
	}
	return nil
}

// finished forgets a run of this process once its final record is
// committed.
func (h *History) finished(runID string) {
	h.mu.Lock()
	delete(h.running, runID)
	h.mu.Unlock()
}

// errRunning is the error of starting a run another live process runs.
var errRunning = errors.New("another process is running it")

// marker is what a History remembers of a run it started: whether its
// running entry is bare (no records or errors: RecordRun may then finish
// the runs row in place) and whether it has labels.
type marker struct{ bare, labels bool }

// isRunning reports whether this History started runID and has not
// recorded it. h.mu must be held.
func (h *History) isRunning(runID string) bool {
	_, ok := h.running[runID]
	return ok
}

// bareMarker reports whether runID is a run this History started with a
// bare running entry, under which owner name, and whether the entry has
// labels.
func (h *History) bareMarker(runID string) (ok bool, owner string, labels bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.running[runID]
	return ok && m.bare, h.owner, m.labels
}

// checkNotRunning fails with errRunning if runID is a Running run of
// another owner that is alive, and reports whether a run of runID is
// recorded. It runs in the write transaction of StartRun, which then
// replaces the entry.
func (h *History) checkNotRunning(ctx context.Context, tx *sql.Tx, runID, owner string) (exists bool, err error) {
	var status, other string
	err = tx.StmtContext(ctx, h.runOwner).QueryRowContext(ctx, runID).Scan(&status, &other)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, err
	case status != string(lineage.Running) || other == owner:
		return true, nil
	}
	f, dead, err := h.tryLock(other, runID)
	if err != nil {
		return true, err
	}
	if f != nil {
		f.Close()
	}
	if !dead {
		return true, errRunning
	}
	return true, nil
}

// tryLock takes the lock of a Running entry's owner (or of the run, for
// entries without one). dead reports that the owner is gone: its lock
// file is missing, or f holds its lock now. Close f after.
func (h *History) tryLock(owner, runID string) (f *os.File, dead bool, err error) {
	f, err = os.OpenFile(h.lockFile(owner, runID), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close() // its process is alive
		return nil, false, nil
	}
	return f, true, nil
}

// sweep marks Running runs whose process is gone as Interrupted, and
// removes the lock files of processes that are gone (killed after their
// runs were recorded, before Close).
func (h *History) sweep(ctx context.Context) error {
	rows, err := h.db.QueryContext(ctx, "SELECT run_id, owner FROM runs WHERE status = ?", string(lineage.Running))
	if err != nil {
		return fmt.Errorf("find running runs: %w", err)
	}
	type entry struct{ id, owner string }
	var running []entry
	for rows.Next() {
		var e entry
		if err := rows.Scan(&e.id, &e.owner); err != nil {
			rows.Close()
			return err
		}
		running = append(running, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	checked := map[string]bool{} // owners already swept
	for _, e := range running {
		if e.owner != "" && checked[e.owner] {
			continue
		}
		checked[e.owner] = true
		f, dead, err := h.tryLock(e.owner, e.id)
		if err != nil {
			return fmt.Errorf("run %s: %w", e.id, err)
		}
		if !dead {
			continue
		}
		if e.owner == "" {
			_, err = h.db.ExecContext(ctx, "UPDATE runs SET status = ? WHERE run_id = ? AND status = ? AND owner = ''",
				string(lineage.Interrupted), e.id, string(lineage.Running))
		} else {
			_, err = h.db.ExecContext(ctx, "UPDATE runs SET status = ? WHERE owner = ? AND status = ?",
				string(lineage.Interrupted), e.owner, string(lineage.Running))
		}
		if f != nil {
			os.Remove(f.Name())
			f.Close()
		}
		if err != nil {
			return fmt.Errorf("mark run %s interrupted: %w", e.id, err)
		}
	}
	files, err := os.ReadDir(h.lockDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, fi := range files {
		name, ok := strings.CutSuffix(fi.Name(), ".lock")
		if !ok || checked[name] || strings.HasPrefix(name, ".") {
			continue
		}
		// No Running entry names it (as owner, or as a run before
		// schema 4) unless it was written since the query above, by a
		// live owner whose lock stops this.
		if f, dead, err := h.tryLock(name, ""); err == nil && dead && f != nil {
			os.Remove(f.Name())
			f.Close()
		}
	}
	return nil
}
