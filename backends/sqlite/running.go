package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/pirn-wasm/pirn/lineage"
)

// A run in progress holds an exclusive flock on <history>-runs/<id>.lock
// from before its Running entry is written until after its final record is
// committed. The kernel releases the lock when the process dies, however
// it dies, so a Running run whose lock can be taken was interrupted: Open
// marks it so. Several processes can share a history: a live process's
// runs stay locked and are left alone.

var _ lineage.RunStarter = (*History)(nil)

func (h *History) lockPath(runID string) string {
	return filepath.Join(h.lockDir, runID+".lock")
}

// StartRun records r (status Running, no records yet) and locks it for
// this process until RecordRun replaces it.
func (h *History) StartRun(ctx context.Context, r *lineage.Run) error {
	if r == nil || r.Status != lineage.Running {
		return errors.New("sqlite: start run: want a run with status running")
	}
	if err := os.MkdirAll(h.lockDir, 0o755); err != nil {
		return fmt.Errorf("sqlite: start run %q: %w", r.ID, err)
	}
	f, err := os.OpenFile(h.lockPath(r.ID), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("sqlite: start run %q: %w", r.ID, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("sqlite: start run %q: another process is running it", r.ID)
	}
	h.mu.Lock()
	h.running[r.ID] = f
	h.mu.Unlock()
	if err := h.recordRun(ctx, r); err != nil {
		h.unlock(r.ID)
		return fmt.Errorf("sqlite: start run %q: %w", r.ID, err)
	}
	return nil
}

// unlock releases a run's lock after its final record is committed.
func (h *History) unlock(runID string) {
	h.mu.Lock()
	f, ok := h.running[runID]
	delete(h.running, runID)
	h.mu.Unlock()
	if ok {
		os.Remove(f.Name()) // before unlocking: a sweeper that opens it now finds it gone or locked
		f.Close()
	}
}

// sweep marks Running runs whose process is gone as Interrupted.
func (h *History) sweep(ctx context.Context) error {
	rows, err := h.db.QueryContext(ctx, "SELECT run_id FROM runs WHERE status = ?", string(lineage.Running))
	if err != nil {
		return fmt.Errorf("find running runs: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		f, err := os.OpenFile(h.lockPath(id), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("run %s: %w", id, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close() // its process is alive
			continue
		}
		_, err = h.db.ExecContext(ctx, "UPDATE runs SET status = ? WHERE run_id = ? AND status = ?",
			string(lineage.Interrupted), id, string(lineage.Running))
		os.Remove(f.Name())
		f.Close()
		if err != nil {
			return fmt.Errorf("mark run %s interrupted: %w", id, err)
		}
	}
	return nil
}
