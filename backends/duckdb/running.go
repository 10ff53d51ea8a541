//go:build duckdb

package duckdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/pirn-wasm/pirn/lineage"
)

// Runs in progress. DuckDB lets one process at a time open a file for
// writing, so a Running run in the file was started either by a History
// open in this process or by a process that has ended (or by a History of
// this process that was closed). Each History that starts a run takes an
// owner name (its pid and 8 random hex digits), registered in live until
// Close, and writes it in its Running entries (runs.owner). Open marks
// Interrupted every Running entry whose owner is not live, and Close marks
// its own: no lock files and no liveness probes, because the database's
// own lock already says that no other process is writing.
//
// The consequence is the one of the package documentation: no other
// process can read the history while a run is recorded to it.

var _ lineage.RunStarter = (*History)(nil)

// live holds the owner names of the Histories open in this process that
// have started runs.
var live = struct {
	sync.Mutex
	owners map[string]bool
}{owners: map[string]bool{}}

// errRunning is the error of starting a run another History of this
// process is running.
var errRunning = errors.New("another history in this process is running it")

// StartRun records r (status Running, no records yet) as this History's
// until RecordRun replaces it. A run of the same ID in progress here or in
// another open History is an error. Were the process to end before
// RecordRun, the next Open marks the run Interrupted; Close marks the
// History's unrecorded runs Interrupted at once.
func (h *History) StartRun(ctx context.Context, r *lineage.Run) error {
	if r == nil || r.Status != lineage.Running {
		return errors.New("duckdb: start run: want a run with status running")
	}
	h.mu.Lock()
	var err error
	if h.owner == "" {
		var rnd [4]byte
		rand.Read(rnd[:])
		h.owner = fmt.Sprintf("%d-%s", os.Getpid(), hex.EncodeToString(rnd[:]))
		live.Lock()
		live.owners[h.owner] = true
		live.Unlock()
	}
	if h.running[r.ID] {
		err = errors.New("this history is running it")
	} else {
		h.running[r.ID] = true
	}
	owner := h.owner
	h.mu.Unlock()
	if err != nil {
		return fmt.Errorf("duckdb: start run %q: %w", r.ID, err)
	}
	if err := h.record(ctx, r, owner); err != nil {
		h.finished(r.ID)
		return fmt.Errorf("duckdb: start run %q: %w", r.ID, interrupted(ctx, err))
	}
	return nil
}

// finished forgets a run of this History once its final record is
// committed.
func (h *History) finished(runID string) {
	h.mu.Lock()
	delete(h.running, runID)
	h.mu.Unlock()
}

// checkNotRunning fails with errRunning if runID is a Running run of
// another live owner. It runs in the transaction of StartRun, which then
// replaces the entry.
func checkNotRunning(ctx context.Context, conn *sql.Conn, runID, owner string) error {
	var status lineage.Status
	var other string
	err := conn.QueryRowContext(ctx, `SELECT status, owner FROM runs WHERE run_id = ?`, runID).Scan(&status, &other)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	live.Lock()
	alive := live.owners[other]
	live.Unlock()
	if status == lineage.Running && other != owner && alive {
		return errRunning
	}
	return nil
}

// sweep marks Interrupted the Running runs whose owner is not a History
// open in this process. It reads the owners in its write turn: a History
// registers its owner before it waits for the turn in which it writes its
// first Running entry, so none is missed.
func (h *History) sweep(ctx context.Context) error {
	if err := h.lockWriter(ctx); err != nil {
		return err
	}
	defer h.unlockWriter()
	live.Lock()
	owners := make([]any, 0, len(live.owners))
	for o := range live.owners {
		owners = append(owners, o)
	}
	live.Unlock()
	q := `UPDATE runs SET status = 'interrupted' WHERE status = 'running'`
	if len(owners) > 0 {
		q += ` AND owner NOT IN (?` + strings.Repeat(", ?", len(owners)-1) + `)`
	}
	_, err := h.db.ExecContext(ctx, q, owners...)
	return err
}

// interruptOwn marks this History's Running runs Interrupted, and forgets
// its owner name: Close calls it.
func (h *History) interruptOwn(ctx context.Context) error {
	h.mu.Lock()
	owner, n := h.owner, len(h.running)
	h.running = map[string]bool{}
	h.mu.Unlock()
	if owner == "" {
		return nil
	}
	defer func() {
		live.Lock()
		delete(live.owners, owner)
		live.Unlock()
	}()
	if n == 0 {
		return nil
	}
	if err := h.lockWriter(ctx); err != nil {
		return err
	}
	defer h.unlockWriter()
	_, err := h.db.ExecContext(ctx, `UPDATE runs SET status = 'interrupted' WHERE owner = ? AND status = 'running'`, owner)
	return err
}
