package storedrun

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

// Digest reads a digest stored as its 32 bytes; NULL (no bytes) is the
// zero digest.
func Digest(b []byte) (cas.Digest, error) {
	switch len(b) {
	case 0:
		return cas.Digest{}, nil
	case cas.Size:
		return cas.Digest(b), nil
	}
	return cas.Digest{}, fmt.Errorf("stored digest has %d bytes, want %d", len(b), cas.Size)
}

// Querier is a database/sql connection, pool or transaction.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// QueryErrors reads the error records of a run from a table errors of
// the columns the SQLite and DuckDB histories share, in their order.
func QueryErrors(ctx context.Context, q Querier, runID string) ([]lineage.ErrorRecord, error) {
	rows, err := q.QueryContext(ctx, `SELECT error_id, knot_id, type, message, detail, trace, occurred_at
		FROM errors WHERE run_id = ? ORDER BY seq`, runID)
	if err != nil {
		return nil, fmt.Errorf("query errors: %w", err)
	}
	defer rows.Close()
	var out []lineage.ErrorRecord
	for rows.Next() {
		e := lineage.ErrorRecord{RunID: runID}
		var id []byte
		var at int64
		if err := rows.Scan(&id, &e.KnotID, &e.Type, &e.Message, &e.Detail, &e.Trace, &at); err != nil {
			return nil, fmt.Errorf("scan error: %w", err)
		}
		if e.ID, err = Digest(id); err != nil {
			return nil, fmt.Errorf("error of knot %s: %w", e.KnotID, err)
		}
		e.OccurredAt = Time(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query errors: %w", err)
	}
	return out, nil
}

// QueryRuns lists runs (lineage.History.Runs) from a table runs of the
// columns the SQLite and DuckDB histories share: newest first, and of
// runs started at once the one whose tiebreak column is greater. hasLabel
// is the condition on runs that keeps a run carrying the query's Label,
// with two parameters, its key and its value.
func QueryRuns(ctx context.Context, q Querier, query lineage.Query, tiebreak, hasLabel string) ([]lineage.Summary, error) {
	if query.Limit < 0 {
		return nil, fmt.Errorf("the query's Limit is %d, want >= 0", query.Limit)
	}
	var where []string
	var args []any
	if query.Pipeline != "" {
		where, args = append(where, "pipeline = ?"), append(args, query.Pipeline)
	}
	if !query.Label.IsZero() {
		where, args = append(where, hasLabel), append(args, query.Label.Key, query.Label.Value)
	}
	stmt := `SELECT run_id, pipeline, status, started_at, finished_at, knots, failed, skipped, elements FROM runs`
	if len(where) > 0 {
		stmt += " WHERE " + strings.Join(where, " AND ")
	}
	stmt += ` ORDER BY started_at DESC, ` + tiebreak + ` DESC LIMIT ?`
	rows, err := q.QueryContext(ctx, stmt, append(args, cmp.Or(query.Limit, 100))...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []lineage.Summary
	for rows.Next() {
		var s lineage.Summary
		var status string
		var started, finished int64
		if err := rows.Scan(&s.ID, &s.Pipeline, &status, &started, &finished, &s.Knots, &s.Failed, &s.Skipped, &s.Elements); err != nil {
			return nil, err
		}
		s.Status = lineage.Status(status)
		s.StartedAt, s.FinishedAt = Time(started), Time(finished)
		out = append(out, s)
	}
	return out, rows.Err()
}
