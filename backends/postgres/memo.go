package postgres

import (
	"context"
	"fmt"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

var _ lineage.Memo = (*History)(nil)

// reusable reads the latest record indexed under a key: the last entry
// of the partial index lineage_memo for it.
const reusable = `SELECT ` + recordSelect + queryFrom + `l.cache_key = $1 AND l.memo
	ORDER BY l.run_started DESC, l.run_recorded DESC, l.seq DESC LIMIT 1`

// Reusable implements [lineage.Memo].
func (h *History) Reusable(ctx context.Context, key cas.Digest) (lineage.Record, bool, error) {
	if key.IsZero() {
		return lineage.Record{}, false, nil
	}
	recs, err := h.query(ctx, reusable, key[:])
	if err != nil {
		return lineage.Record{}, false, fmt.Errorf("postgres: reusable %s: %w", key, err)
	}
	if len(recs) == 0 {
		return lineage.Record{}, false, nil
	}
	return recs[0], true, nil
}

// CacheStats implements [lineage.Memo].
func (h *History) CacheStats(ctx context.Context) (lineage.CacheStats, error) {
	var s lineage.CacheStats
	err := retry(ctx, func(ctx context.Context) error {
		return h.pool.QueryRow(ctx, `SELECT
			(SELECT count(DISTINCT cache_key) FROM lineage WHERE memo),
			count(*) FILTER (WHERE cache_key IS NOT NULL AND reused_run = ''),
			count(*) FILTER (WHERE reused_run != '')
			FROM lineage`).Scan(&s.Entries, &s.Executed, &s.Reused)
	})
	if err != nil {
		return s, fmt.Errorf("postgres: cache stats: %w", err)
	}
	return s, nil
}

// ClearCache implements [lineage.Memo]: it sets memo to false, which
// takes records out of the index and leaves them otherwise as they were.
func (h *History) ClearCache(ctx context.Context, f lineage.CacheFilter) (int, error) {
	tag, err := h.pool.Exec(ctx, `UPDATE lineage SET memo = false
		WHERE memo AND ($1 = '' OR module = $1) AND ($2 = '' OR knot = $2)`, f.Module, f.Knot)
	if err != nil {
		return 0, fmt.Errorf("postgres: clear cache: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
