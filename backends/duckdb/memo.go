//go:build duckdb

package duckdb

import (
	"context"
	"fmt"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

var _ lineage.Memo = (*History)(nil)

// Reusable implements [lineage.Memo]: a lookup of the index lineage_memo.
func (h *History) Reusable(ctx context.Context, key cas.Digest) (lineage.Record, bool, error) {
	if key.IsZero() {
		return lineage.Record{}, false, nil
	}
	recs, err := queryRecords(ctx, h.db, `FROM lineage l WHERE l.cache_key = ? AND l.memo`, key[:])
	if err != nil {
		return lineage.Record{}, false, fmt.Errorf("duckdb: reusable %s: %w", key, interrupted(ctx, err))
	}
	if len(recs) == 0 {
		return lineage.Record{}, false, nil
	}
	return recs[len(recs)-1], true, nil // the latest
}

// CacheStats implements [lineage.Memo].
func (h *History) CacheStats(ctx context.Context) (lineage.CacheStats, error) {
	var s lineage.CacheStats
	if err := h.db.QueryRowContext(ctx, `SELECT
		count(DISTINCT cache_key) FILTER (WHERE memo),
		count(*) FILTER (WHERE cache_key IS NOT NULL AND reused_run = ''),
		count(*) FILTER (WHERE reused_run != '')
		FROM lineage`).Scan(&s.Entries, &s.Executed, &s.Reused); err != nil {
		return s, fmt.Errorf("duckdb: cache stats: %w", interrupted(ctx, err))
	}
	return s, nil
}

// ClearCache implements [lineage.Memo]: it sets memo to false, which
// takes records out of the index and leaves them otherwise as they were.
func (h *History) ClearCache(ctx context.Context, f lineage.CacheFilter) (int, error) {
	if err := h.lockWriter(ctx); err != nil {
		return 0, err
	}
	defer h.unlockWriter()
	res, err := h.db.ExecContext(ctx, `UPDATE lineage SET memo = false
		WHERE memo AND (?1 = '' OR module = ?1) AND (?2 = '' OR knot = ?2)`, f.Module, f.Knot)
	if err != nil {
		return 0, fmt.Errorf("duckdb: clear cache: %w", interrupted(ctx, err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("duckdb: clear cache: %w", err)
	}
	return int(n), nil
}
