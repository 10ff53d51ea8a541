package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/internal/storedrun"
	"github.com/pirn-wasm/pirn/lineage"
)

var _ lineage.Scrubber = (*History)(nil)

// MarkScrubbed implements [lineage.Scrubber].
func (h *History) MarkScrubbed(ctx context.Context, digests []cas.Digest, at time.Time) error {
	err := retry(ctx, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, h.pool, func(tx pgx.Tx) error {
			b := &pgx.Batch{}
			for _, d := range digests {
				b.Queue(`INSERT INTO scrubbed (digest, at) VALUES ($1, $2)
					ON CONFLICT (digest) DO UPDATE SET at = EXCLUDED.at`, d[:], at.UnixNano())
			}
			return tx.SendBatch(ctx, b).Close()
		})
	})
	if err != nil {
		return fmt.Errorf("postgres: mark scrubbed: %w", err)
	}
	return nil
}

// Scrubbed implements [lineage.Scrubber].
func (h *History) Scrubbed(ctx context.Context, d cas.Digest) (time.Time, bool, error) {
	var at int64
	err := retry(ctx, func(ctx context.Context) error {
		return h.pool.QueryRow(ctx, `SELECT at FROM scrubbed WHERE digest = $1`, d[:]).Scan(&at)
	})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("postgres: scrubbed %s: %w", d, err)
	}
	return storedrun.Time(at), true, nil
}
