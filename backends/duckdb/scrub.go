//go:build duckdb

package duckdb

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

// MarkScrubbed implements [lineage.Scrubber]. Marking a digest again
// records the later time.
func (h *History) MarkScrubbed(ctx context.Context, digests []cas.Digest, at time.Time) error {
	var tc storedrun.Nanos
	when := tc.Of(at)
	if tc.Err != nil {
		return fmt.Errorf("duckdb: mark scrubbed: %w", tc.Err)
	}
	if err := h.lockWriter(ctx); err != nil {
		return fmt.Errorf("duckdb: mark scrubbed: %w", err)
	}
	defer h.unlockWriter()
	if len(digests) == 0 {
		return nil
	}
	// One statement, however many digests (gc may scrub thousands): a
	// list parameter, of hex text because the driver binds no BLOB lists.
	list := make([]string, len(digests))
	for i := range digests {
		list[i] = digests[i].Hex()
	}
	_, err := h.db.ExecContext(ctx, `INSERT OR REPLACE INTO scrubbed (digest, scrubbed_at)
		SELECT DISTINCT unhex(d), ? FROM unnest(?::VARCHAR[]) AS t (d)`, when, list)
	if err != nil {
		return fmt.Errorf("duckdb: mark scrubbed: %w", interrupted(ctx, err))
	}
	return nil
}

// Scrubbed implements [lineage.Scrubber].
func (h *History) Scrubbed(ctx context.Context, d cas.Digest) (time.Time, bool, error) {
	var at int64
	err := h.db.QueryRowContext(ctx, `SELECT scrubbed_at FROM scrubbed WHERE digest = ?`, d[:]).Scan(&at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("duckdb: scrubbed %s: %w", d, interrupted(ctx, err))
	}
	return storedrun.Time(at), true, nil
}
