package sqlite

import (
	"context"
	"time"
)

// Checkpoints run in the background. SQLite's automatic checkpoint runs
// in the commit that crosses its mark, so that one RecordRun copied the
// WAL into the database file and waited for two fsyncs: about a fifth of
// the time of recording 10-knot runs back to back (22,000 records/s with
// it, 28,000 without). This History's connections turn it off
// (wal_autocheckpoint(0)), and a goroutine runs a PASSIVE checkpoint on a
// connection of its own every checkpointEvery commits, while the next
// runs are written: PASSIVE waits for no writer or reader. The last
// connection to the file to close checkpoints what is left and removes
// the WAL, as before.

// checkpointEvery is how many commits (runs started and recorded) a
// background checkpoint follows: at about 20 pages a 10-knot run, some
// 2,500 pages (5 MiB) of WAL. A checkpoint copies each page once however
// often it was rewritten since the last.
const checkpointEvery = 128

// committed counts a commit and wakes the checkpointer every
// checkpointEvery commits.
func (h *History) committed() {
	if h.commits.Add(1)%checkpointEvery != 0 {
		return
	}
	select {
	case h.ckpt <- struct{}{}:
	default: // one is running or pending: it will take this commit's pages too
	}
}

// checkpointer runs until h.stop is closed.
func (h *History) checkpointer() {
	defer close(h.ckptDone)
	for {
		select {
		case <-h.stop:
			return
		case <-h.ckpt:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		conn, err := h.db.Conn(ctx)
		if err == nil {
			// An error (the file busy with another process's
			// checkpoint, say) leaves the pages for the next one.
			conn.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
			conn.Close()
		}
		cancel()
	}
}
