package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/internal/storedrun"
	"github.com/pirn-wasm/pirn/lineage"
)

var _ lineage.Scrubber = (*History)(nil)

// MarkScrubbed implements [lineage.Scrubber].
func (h *History) MarkScrubbed(ctx context.Context, digests []cas.Digest, at time.Time) error {
	select {
	case h.wsem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-h.wsem }()
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: mark scrubbed: %w", err)
	}
	defer tx.Rollback()
	for _, d := range digests {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO scrubbed (hash, at) VALUES (?, ?)`, d[:], at.UnixNano()); err != nil {
			return fmt.Errorf("sqlite: mark scrubbed: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: mark scrubbed: %w", err)
	}
	return nil
}

// Scrubbed implements [lineage.Scrubber].
func (h *History) Scrubbed(ctx context.Context, d cas.Digest) (time.Time, bool, error) {
	var at int64
	err := h.db.QueryRowContext(ctx, `SELECT at FROM scrubbed WHERE hash = ?`, d[:]).Scan(&at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("sqlite: scrubbed %s: %w", d, err)
	}
	return storedrun.Time(at), true, nil
}
