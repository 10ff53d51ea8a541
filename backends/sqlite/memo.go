package sqlite

import (
	"context"
	"fmt"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

var _ lineage.Memo = (*History)(nil)

// reusableQuery finds the records indexed under a key, in the partial
// index lineage_memo. Prepared once: parsing it took more time than
// running it.
var reusableQuery = recordsQuery("lineage l", "WHERE l.cache_key = ? AND l.memo = 1")

// Reusable implements [lineage.Memo]: a lookup of the partial index
// lineage_memo.
func (h *History) Reusable(ctx context.Context, key cas.Digest) (lineage.Record, bool, error) {
	if key.IsZero() {
		return lineage.Record{}, false, nil
	}
	rows, err := h.reusable.QueryContext(ctx, key[:])
	var recs []lineage.Record
	if err == nil {
		recs, err = scanRecords(rows)
	}
	if err != nil {
		return lineage.Record{}, false, fmt.Errorf("sqlite: reusable %s: %w", key, err)
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
		(SELECT count(DISTINCT cache_key) FROM lineage WHERE memo = 1),
		(SELECT count(*) FROM lineage WHERE cache_key IS NOT NULL AND reused_run = ''),
		(SELECT count(*) FROM lineage WHERE reused_run != '')`).Scan(&s.Entries, &s.Executed, &s.Reused); err != nil {
		return s, fmt.Errorf("sqlite: cache stats: %w", err)
	}
	return s, nil
}

// ClearCache implements [lineage.Memo]: it sets memo to 0, which takes
// records out of the index and leaves them otherwise as they were.
func (h *History) ClearCache(ctx context.Context, f lineage.CacheFilter) (int, error) {
	select {
	case h.wsem <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-h.wsem }()
	res, err := h.db.ExecContext(ctx, `UPDATE lineage SET memo = 0
		WHERE memo = 1 AND (?1 = '' OR module = ?1) AND (?2 = '' OR knot = ?2)`, f.Module, f.Knot)
	if err != nil {
		return 0, fmt.Errorf("sqlite: clear cache: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: clear cache: %w", err)
	}
	return int(n), nil
}
