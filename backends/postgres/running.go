package postgres

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pirn-wasm/pirn/lineage"
)

// Runs in progress, across processes and hosts. A History that starts a
// run first opens a session of its own (outside the pool) and takes a
// session-level advisory lock there, under a random 64-bit key: its owner
// key. Each Running entry it writes carries the key (runs.owner).
// PostgreSQL holds the lock exactly as long as the session lives, so when
// the process dies (is killed, crashes, or its host goes away) the lock
// goes with it, and no lock file is needed. A Running entry whose owner's
// lock can be taken is interrupted: Open, Runs and Run (for a Running run)
// mark such entries so, taking the lock with pg_try_advisory_xact_lock in
// a transaction of their own; a live owner's entries are left alone.
//
// The owner session asks the server for TCP keepalives (60 s idle, then
// six probes 10 s apart), so that the session of a host that vanished
// without closing its connections ends within about two minutes, and turns
// off idle_session_timeout, which would end it while it waits.
//
// If the owner session ends while its process lives (an administrator
// ended it, the network dropped), its runs may be marked interrupted;
// the next StartRun opens a new session under a new key and takes them
// back, and RecordRun writes each one's final status regardless.

var _ lineage.RunStarter = (*History)(nil)

// errRunning is the error of starting a run another live process runs.
var errRunning = errors.New("another process is running it")

// StartRun records r (status Running, no records yet) as this History's
// until RecordRun replaces it. A run of the same ID in progress here or in
// another live process is an error.
func (h *History) StartRun(ctx context.Context, r *lineage.Run) error {
	if r == nil || r.Status != lineage.Running {
		return errors.New("postgres: start run: want a run with status running")
	}
	h.mu.Lock()
	var owner int64
	var err error
	if h.running[r.ID] {
		err = errors.New("this process is running it")
	} else if owner, err = h.lockOwner(ctx); err == nil {
		h.running[r.ID] = true
	}
	h.mu.Unlock()
	if err != nil {
		return fmt.Errorf("postgres: start run %q: %w", r.ID, err)
	}
	if err := h.record(ctx, r, owner); err != nil {
		h.finished(r.ID)
		return fmt.Errorf("postgres: start run %q: %w", r.ID, err)
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

// owns reports whether owner is this History's owner key.
func (h *History) owns(owner int64) bool { return owner != 0 && owner == h.owner.Load() }

// ownerSession is run on a new owner session: see the comment at the top.
// idle_session_timeout exists from PostgreSQL 14 on.
const ownerSession = `SELECT set_config('tcp_keepalives_idle', '60', false),
	set_config('tcp_keepalives_interval', '10', false),
	set_config('tcp_keepalives_count', '6', false),
	(SELECT set_config('idle_session_timeout', '0', false) WHERE current_setting('server_version_num')::int >= 140000)`

// lockOwner returns this History's owner key, first opening the owner
// session if there is none or it has ended. h.mu is held.
func (h *History) lockOwner(ctx context.Context) (int64, error) {
	if h.ownerConn != nil {
		// The caller's ctx does not reach the session: pgx closes a
		// connection whose query is cancelled, which would release the
		// lock of every run in progress here.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := h.ownerConn.Ping(pctx)
		cancel()
		if err == nil {
			return h.owner.Load(), nil
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		h.ownerConn.Close(cctx) // it has ended: the error says so
		cancel()
		h.ownerConn = nil
	}
	conn, err := pgx.ConnectConfig(ctx, h.cfg)
	if err != nil {
		return 0, fmt.Errorf("open owner session: %w", err)
	}
	key, err := takeOwnerKey(ctx, conn)
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		conn.Close(cctx)
		cancel()
		return 0, fmt.Errorf("owner session: %w", err)
	}
	old := h.owner.Load()
	h.owner.Store(key)
	h.ownerConn = conn
	if old != 0 && len(h.running) > 0 {
		// The session of the old key ended while this process lives:
		// take back its runs, which a sweep may have marked interrupted.
		ids := slices.Collect(maps.Keys(h.running))
		if _, err := h.pool.Exec(ctx, `UPDATE runs SET owner = $1, status = 'running'
			WHERE owner = $2 AND run_id = ANY($3) AND status IN ('running', 'interrupted')`, key, old, ids); err != nil {
			return 0, fmt.Errorf("take back runs in progress: %w", err)
		}
	}
	return key, nil
}

// takeOwnerKey sets up a new owner session and takes the lock of a new
// random key in it.
func takeOwnerKey(ctx context.Context, conn *pgx.Conn) (int64, error) {
	if _, err := conn.Exec(ctx, ownerSession); err != nil {
		return 0, err
	}
	for {
		var b [8]byte
		rand.Read(b[:])
		key := int64(binary.LittleEndian.Uint64(b[:]))
		if key == 0 {
			continue
		}
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok); err != nil {
			return 0, err
		}
		if ok {
			return key, nil
		}
	}
}

// checkNotRunning fails with errRunning if runID is a Running run of
// another owner that is alive. It runs in the transaction of StartRun,
// which holds the run id's lock and then replaces the entry.
func checkNotRunning(ctx context.Context, tx pgx.Tx, runID string, owner int64) error {
	var status lineage.Status
	var other int64
	err := tx.QueryRow(ctx, "SELECT status, owner FROM runs WHERE run_id = $1", runID).Scan(&status, &other)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && (status != lineage.Running || other == owner || other == 0) {
		return nil
	}
	if err != nil {
		return err
	}
	var gone bool
	if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1)", other).Scan(&gone); err != nil {
		return err
	}
	if !gone {
		return errRunning
	}
	return nil
}

// sweepRuns marks interrupted the Running entries whose owner is gone:
// those whose owner's lock it can take (held until the statement's
// transaction ends), and those with no owner (a Running run recorded with
// RecordRun, which no process holds). The subquery tries each owner once.
const sweepRuns = `UPDATE runs SET status = 'interrupted'
WHERE status = 'running' AND (owner = 0 OR owner IN (
	SELECT o FROM (SELECT DISTINCT owner AS o FROM runs WHERE status = 'running' AND owner <> 0) AS s
	WHERE pg_try_advisory_xact_lock(o)))`

// sweep marks interrupted the Running runs whose process is gone.
func (h *History) sweep(ctx context.Context) error {
	_, err := h.pool.Exec(ctx, sweepRuns)
	return err
}
