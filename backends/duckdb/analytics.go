//go:build duckdb

package duckdb

import (
	"context"
	"fmt"
	"time"
)

// KnotTimes is how long one knot took across runs: the durations of its
// records that ran (ok or err).
type KnotTimes struct {
	KnotID  string
	Records int           // records that ran, at most one per run
	Mean    time.Duration // of their durations
	P95     time.Duration // 95th percentile, interpolated
	Max     time.Duration
	Total   time.Duration
}

// SlowestKnots returns the knots with the longest mean duration over the
// last runs runs (by start time, finished or not), slowest first, at most
// limit of them. Parameters, Map elements (their Map's record covers them)
// and skipped records are left out. It is one SQL query, which
// the README shows for the duckdb shell.
func (h *History) SlowestKnots(ctx context.Context, runs, limit int) ([]KnotTimes, error) {
	if runs <= 0 || limit <= 0 {
		return nil, fmt.Errorf("duckdb: slowest knots: runs = %d, limit = %d; want both > 0", runs, limit)
	}
	rows, err := h.db.QueryContext(ctx, slowestKnots, runs, limit)
	if err != nil {
		return nil, fmt.Errorf("duckdb: slowest knots: %w", interrupted(ctx, err))
	}
	defer rows.Close()
	var out []KnotTimes
	for rows.Next() {
		var k KnotTimes
		var mean, p95 float64
		var longest, total int64
		if err := rows.Scan(&k.KnotID, &k.Records, &mean, &p95, &longest, &total); err != nil {
			return nil, fmt.Errorf("duckdb: slowest knots: %w", interrupted(ctx, err))
		}
		k.Mean, k.P95, k.Max, k.Total = time.Duration(mean), time.Duration(p95), time.Duration(longest), time.Duration(total)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("duckdb: slowest knots: %w", interrupted(ctx, err))
	}
	return out, nil
}

// slowestKnots is the query of SlowestKnots, with two parameters: how many
// of the newest runs, and how many knots. Durations are nanoseconds.
const slowestKnots = `
WITH recent AS (
	SELECT run_id FROM runs ORDER BY started_at DESC, recorded DESC LIMIT ?
)
SELECT l.knot_id,
	count(*) AS records,
	avg(l.finished_at - l.started_at) AS mean_ns,
	quantile_cont(l.finished_at - l.started_at, 0.95) AS p95_ns,
	max(l.finished_at - l.started_at) AS max_ns,
	sum(l.finished_at - l.started_at)::BIGINT AS total_ns
FROM lineage l SEMI JOIN recent r ON l.run_id = r.run_id
WHERE l.kind NOT IN ('parameter', 'element') AND l.outcome <> 'skipped'
GROUP BY l.knot_id
ORDER BY mean_ns DESC, l.knot_id
LIMIT ?`
