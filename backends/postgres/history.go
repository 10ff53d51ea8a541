package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/internal/storedrun"
	"github.com/pirn-wasm/pirn/lineage"
)

// Config configures Open.
type Config struct {
	// DSN is the connection string: a URL or key=value pairs (see the
	// package documentation). Required.
	DSN string
	// Schema is the schema that holds the history's tables; it is
	// created if missing. "" means DefaultSchema.
	Schema string
}

// String formats c with its DSN redacted, so that printing or logging a
// Config shows no password.
func (c Config) String() string { return fmt.Sprintf("{DSN:%s Schema:%s}", Redact(c.DSN), c.Schema) }

// History is a [lineage.History] in PostgreSQL. It is safe for concurrent
// use, and by several processes, on several hosts, sharing the schema.
type History struct {
	pool   *pgxpool.Pool
	schema string
	cfg    *pgx.ConnConfig // of the pool's connections: for the owner session

	// owner is the advisory lock key of this History's runs in progress,
	// 0 before the first; ownerConn is the session that holds its lock.
	// Both change under mu, which also guards running.
	owner     atomic.Int64
	mu        sync.Mutex
	ownerConn *pgx.Conn
	running   map[string]bool // the runs this History started and has not recorded
}

var _ lineage.History = (*History)(nil)

// Open connects to the database named by cfg.DSN and creates or migrates
// the history's tables in cfg.Schema. It marks interrupted the runs in
// progress whose process is gone (see [History.StartRun]). A server that
// does not answer, or a schema newer than this package knows, is an
// error; errors name the DSN redacted. Close the History when done.
func Open(ctx context.Context, cfg Config) (*History, error) {
	if cfg.DSN == "" {
		return nil, errors.New("postgres: Config.DSN is empty")
	}
	h, err := open(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open history %s: %w", Redact(cfg.DSN), err)
	}
	return h, nil
}

func open(ctx context.Context, cfg Config) (*History, error) {
	schema := cmp.Or(cfg.Schema, DefaultSchema)
	pool, err := connect(ctx, cfg.DSN, schema)
	if err != nil {
		return nil, err
	}
	h := &History{pool: pool, schema: schema, cfg: pool.Config().ConnConfig, running: map[string]bool{}}
	if err := migrate(ctx, pool, schema, history); err != nil {
		pool.Close()
		return nil, err
	}
	if err := retry(ctx, h.sweep); err != nil {
		pool.Close()
		return nil, fmt.Errorf("mark interrupted runs: %w", err)
	}
	return h, nil
}

// Close closes the History's connections, after the calls in progress;
// later calls fail. Runs it started and has not recorded are then found
// interrupted.
func (h *History) Close() error {
	h.mu.Lock()
	conn := h.ownerConn
	h.ownerConn = nil
	h.mu.Unlock()
	h.pool.Close()
	if conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Release the owner locks before closing: the server ends a
		// closed session, and releases its locks, only after Close has
		// returned, so another process looking at once would still find
		// this one's runs in progress.
		_, err := conn.Exec(ctx, "SELECT pg_advisory_unlock_all()")
		if err := errors.Join(err, conn.Close(ctx)); err != nil {
			return fmt.Errorf("postgres: close history: %w", err)
		}
	}
	return nil
}

// batchRows is the most records (or errors) a run may have to be written
// with one INSERT each, in the one round trip of a pipelined batch; more
// are copied (COPY), which costs two round trips more and is faster per
// row.
const batchRows = 64

// Columns written for a record and an error, in the order of recordValues
// and errorValues. A record's run_recorded is its column default: the
// value of run_order that insertRun took.
var (
	recordColumns = []string{"run_id", "seq", "run_started", "knot_id", "kind", "map_id", "map_index", "module", "knot",
		"config_hash", "output_hash", "input_names", "input_parents", "input_hashes", "outcome", "skip_reason",
		"skip_detail", "error_id", "dispatcher", "started_at", "finished_at", "grants", "cache_key", "reused_run", "reused_knot", "memo", "logs"}
	errorColumns = []string{"run_id", "error_id", "seq", "knot_id", "type", "message", "detail", "trace", "occurred_at"}
)

// Statements of RecordRun.
const (
	lockRun   = `SELECT pg_advisory_xact_lock($1)`
	deleteRun = `WITH l AS (DELETE FROM lineage WHERE run_id = $1), e AS (DELETE FROM errors WHERE run_id = $1)
		DELETE FROM runs WHERE run_id = $1`
	insertRun = `INSERT INTO runs (run_id, pipeline, status, terminals, dispatcher, host, started_at, finished_at,
		knots, failed, skipped, elements, owner, pipeline_digest, labels, recorded)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::jsonb, nextval('run_order'))`
)

// insertRecords[n] and insertErrors[n] insert n records or errors, for n
// up to batchRows: one statement of n rows costs the server much less
// than n statements.
var (
	insertRecords = multiInsert("lineage", recordColumns)
	insertErrors  = multiInsert("errors", errorColumns)
)

// multiInsert returns the INSERT statements of 0 (none), 1, …, batchRows
// rows of table's columns.
func multiInsert(table string, columns []string) []string {
	stmts := make([]string, batchRows+1)
	var b strings.Builder
	b.WriteString("INSERT INTO " + table + " (" + strings.Join(columns, ", ") + ") VALUES ")
	for n := 1; n <= batchRows; n++ {
		if n > 1 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range columns {
			if c > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "$%d", (n-1)*len(columns)+c+1)
		}
		b.WriteByte(')')
		stmts[n] = b.String()
	}
	return stmts
}

// RecordRun implements [lineage.History]. The run is written in one
// transaction, replacing any run with the same ID; writers of one run id
// take turns (a transaction-level advisory lock of the id). Every record
// and error must carry the run's ID, and every time must be zero or within
// the range of int64 unix nanoseconds (years 1678 to 2262); text fields
// must be valid UTF-8 without NUL bytes, as PostgreSQL's text type wants.
// r is not retained.
func (h *History) RecordRun(ctx context.Context, r *lineage.Run) error {
	if r == nil {
		return errors.New("postgres: record run: nil run")
	}
	if err := h.record(ctx, r, 0); err != nil {
		return fmt.Errorf("postgres: record run %q: %w", r.ID, err)
	}
	if r.Status != lineage.Running {
		h.finished(r.ID)
	}
	return nil
}

// record writes r, retrying on a lost connection. owner is StartRun's: the
// owner key of this History, which first checks that no other live
// process is running the run.
func (h *History) record(ctx context.Context, r *lineage.Run, owner int64) error {
	if err := check(r); err != nil {
		return err
	}
	return retry(ctx, func(ctx context.Context) error {
		if owner == 0 && len(r.Records) <= batchRows && len(r.Errors) <= batchRows {
			// One round trip: a pipelined batch runs in one implicit
			// transaction.
			var b batch
			b.queue("lock run", lockRun, h.runKey(r.ID))
			h.queueRun(&b, r, owner)
			return b.send(ctx, h.pool)
		}
		return pgx.BeginFunc(ctx, h.pool, func(tx pgx.Tx) error { return h.recordTx(ctx, tx, r, owner) })
	})
}

// recordTx writes r in tx: its records and errors copied if there are
// many.
func (h *History) recordTx(ctx context.Context, tx pgx.Tx, r *lineage.Run, owner int64) error {
	if _, err := tx.Exec(ctx, lockRun, h.runKey(r.ID)); err != nil {
		return fmt.Errorf("lock run: %w", err)
	}
	if owner != 0 {
		if err := checkNotRunning(ctx, tx, r.ID, owner); err != nil {
			return err
		}
	}
	var b batch
	h.queueRun(&b, r, owner)
	if err := b.send(ctx, tx); err != nil {
		return err
	}
	var tc storedrun.Nanos // check has seen every time: no errors
	started := tc.Of(r.StartedAt)
	if len(r.Records) > batchRows {
		row := make([]any, 0, len(recordColumns))
		src := pgx.CopyFromSlice(len(r.Records), func(i int) ([]any, error) {
			row = recordValues(row[:0], r.ID, started, i, &r.Records[i], &tc)
			return row, nil
		})
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"lineage"}, recordColumns, src); err != nil {
			return fmt.Errorf("copy records: %w", detailed(err))
		}
	}
	if len(r.Errors) > batchRows {
		row := make([]any, 0, len(errorColumns))
		src := pgx.CopyFromSlice(len(r.Errors), func(i int) ([]any, error) {
			row = errorValues(row[:0], r.ID, i, &r.Errors[i], &tc)
			return row, nil
		})
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"errors"}, errorColumns, src); err != nil {
			return fmt.Errorf("copy errors: %w", detailed(err))
		}
	}
	return nil
}

// queueRun queues the statements that replace the run r: the deletion of
// an earlier run of the id, the run's row and, unless they are to be
// copied, its records and errors.
func (h *History) queueRun(b *batch, r *lineage.Run, owner int64) {
	var tc storedrun.Nanos
	sum := lineage.Summarize(r)
	b.queue("delete earlier run", deleteRun, r.ID)
	b.queue("insert run", insertRun, r.ID, r.Pipeline, string(r.Status), nonNil(r.Terminals), r.Dispatcher, r.Host,
		tc.Of(r.StartedAt), tc.Of(r.FinishedAt), sum.Knots, sum.Failed, sum.Skipped, sum.Elements, owner, optional(&r.PipelineDigest),
		storedrun.EncodeLabels(r.Labels))
	if n := len(r.Records); n > 0 && n <= batchRows {
		args := make([]any, 0, n*len(recordColumns))
		for i := range r.Records {
			args = recordValues(args, r.ID, tc.Of(r.StartedAt), i, &r.Records[i], &tc)
		}
		b.queue("insert records", insertRecords[n], args...)
	}
	if n := len(r.Errors); n > 0 && n <= batchRows {
		args := make([]any, 0, n*len(errorColumns))
		for i := range r.Errors {
			args = errorValues(args, r.ID, i, &r.Errors[i], &tc)
		}
		b.queue("insert errors", insertErrors[n], args...)
	}
}

// runKey is the advisory lock key of a run id in this History's schema.
func (h *History) runKey(id string) int64 { return lockKey("pirn", "run", h.schema, id) }

// recordValues appends the values of recordColumns for rec, record i of
// the run runID that started at runStarted (unix nanoseconds), to row. The
// slices in it alias rec.
func recordValues(row []any, runID string, runStarted int64, i int, rec *lineage.Record, tc *storedrun.Nanos) []any {
	names := make([]string, len(rec.Inputs))
	parents := make([]string, len(rec.Inputs))
	hashes := make([][]byte, len(rec.Inputs))
	for j := range rec.Inputs {
		in := &rec.Inputs[j]
		names[j], parents[j], hashes[j] = in.Name, in.Parent, in.Digest[:]
	}
	return append(row, runID, int32(i), runStarted, rec.KnotID, string(rec.Kind), rec.Map, int64(rec.Index), rec.Module, rec.Knot,
		rec.ConfigHash[:], optional(&rec.Output), names, parents, hashes, string(rec.Outcome), rec.SkipReason,
		rec.SkipDetail, optional(&rec.ErrorID), rec.Dispatcher, tc.Of(rec.StartedAt), tc.Of(rec.FinishedAt),
		nonNil(rec.Grants), optional(&rec.CacheKey), rec.ReusedFrom.RunID, rec.ReusedFrom.KnotID, lineage.Memoisable(rec), optional(&rec.Logs))
}

// errorValues appends the values of errorColumns for e, error i of the run
// runID, to row.
func errorValues(row []any, runID string, i int, e *lineage.ErrorRecord, tc *storedrun.Nanos) []any {
	return append(row, runID, e.ID[:], int32(i), e.KnotID, e.Type, e.Message, e.Detail, e.Trace, tc.Of(e.OccurredAt))
}

// A batch is a pgx.Batch whose statements are named, for errors.
type batch struct {
	b    pgx.Batch
	what []string
}

func (b *batch) queue(what string, sql string, args ...any) {
	b.b.Queue(sql, args...)
	b.what = append(b.what, what)
}

// send sends the batch on s (a pool or a transaction) and reads every
// result. Statements sent on a pool run in one implicit transaction.
func (b *batch) send(ctx context.Context, s interface {
	SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
},
) error {
	br := s.SendBatch(ctx, &b.b)
	for _, w := range b.what {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("%s: %w", w, detailed(err))
		}
	}
	return br.Close()
}

// check checks what the schema cannot store: what storedrun.Check checks,
// and that all text is valid UTF-8 without NUL bytes.
func check(r *lineage.Run) error {
	if err := storedrun.Check(r); err != nil {
		return err
	}
	return storedrun.CheckText(r, textProblem)
}

// textProblem says why s cannot be stored in a PostgreSQL text column, or
// returns "".
func textProblem(s string) string {
	switch {
	case strings.IndexByte(s, 0) >= 0:
		return "holds a NUL byte, which PostgreSQL text cannot"
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	}
	return ""
}

// optional is how an optional digest (output, error id) is stored: its 32
// bytes, or NULL for the zero digest.
func optional(d *cas.Digest) []byte {
	if d.IsZero() {
		return nil
	}
	return d[:]
}

// nonNil returns s, or an empty slice for nil: a nil slice is NULL, and
// the array columns are NOT NULL.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// digestOf reads a stored digest; NULL is the zero digest.
func digestOf(b []byte) (cas.Digest, error) {
	var d cas.Digest
	switch len(b) {
	case 0:
		return d, nil
	case cas.Size:
		return cas.Digest(b), nil
	}
	return d, fmt.Errorf("stored digest has %d bytes, want %d", len(b), cas.Size)
}

// Run implements [lineage.History]. It reads the run from one snapshot. A
// Running run whose process is gone is marked and returned Interrupted.
func (h *History) Run(ctx context.Context, id string) (*lineage.Run, error) {
	var r *lineage.Run
	var owner int64
	err := retry(ctx, func(ctx context.Context) (err error) {
		r, owner, err = h.run(ctx, id)
		return err
	})
	if err == nil && r.Status == lineage.Running && !h.owns(owner) {
		err = retry(ctx, func(ctx context.Context) error {
			if err := h.sweep(ctx); err != nil {
				return err
			}
			return h.pool.QueryRow(ctx, "SELECT status FROM runs WHERE run_id = $1", id).Scan(&r.Status)
		})
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: run %q: %w", id, err)
	}
	return r, nil
}

// run reads the run id and the owner of its entry.
func (h *History) run(ctx context.Context, id string) (_ *lineage.Run, owner int64, err error) {
	var b pgx.Batch
	b.BeginTx(pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	b.Queue(`SELECT pipeline, status, terminals, dispatcher, host, started_at, finished_at, owner, pipeline_digest, labels::text
		FROM runs WHERE run_id = $1`, id)
	b.Queue(`SELECT `+recordSelect+` FROM lineage l WHERE l.run_id = $1 ORDER BY l.seq`, id)
	b.Queue(`SELECT error_id, knot_id, type, message, detail, trace, occurred_at
		FROM errors WHERE run_id = $1 ORDER BY seq`, id)
	br := h.pool.SendBatch(ctx, &b)
	tx := br.Tx()
	defer tx.Rollback(ctx)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, 0, fmt.Errorf("begin: %w", err)
	}

	r := &lineage.Run{ID: id}
	var started, finished int64
	var pipelineDigest []byte
	var labels string
	err = br.QueryRow().Scan(&r.Pipeline, &r.Status, &r.Terminals, &r.Dispatcher, &r.Host, &started, &finished, &owner, &pipelineDigest, &labels)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, lineage.ErrNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	r.StartedAt, r.FinishedAt = storedrun.Time(started), storedrun.Time(finished)
	if r.PipelineDigest, err = digestOf(pipelineDigest); err != nil {
		return nil, 0, fmt.Errorf("run %q: pipeline digest: %w", id, err)
	}
	if len(r.Terminals) == 0 {
		r.Terminals = nil
	}
	if r.Labels, err = storedrun.DecodeLabels(labels); err != nil {
		return nil, 0, fmt.Errorf("run %q: %w", id, err)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, 0, fmt.Errorf("query records: %w", err)
	}
	if r.Records, err = scanRecords(rows); err != nil {
		return nil, 0, err
	}
	rows, err = br.Query()
	if err != nil {
		return nil, 0, fmt.Errorf("query errors: %w", err)
	}
	if r.Errors, err = scanErrors(rows, id); err != nil {
		return nil, 0, err
	}
	if err := br.Close(); err != nil {
		return nil, 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, 0, fmt.Errorf("commit: %w", err)
	}
	return r, owner, nil
}

func scanErrors(rows pgx.Rows, runID string) ([]lineage.ErrorRecord, error) {
	defer rows.Close()
	var out []lineage.ErrorRecord
	for rows.Next() {
		e := lineage.ErrorRecord{RunID: runID}
		var id []byte
		var at int64
		if err := rows.Scan(&id, &e.KnotID, &e.Type, &e.Message, &e.Detail, &e.Trace, &at); err != nil {
			return nil, fmt.Errorf("scan error: %w", err)
		}
		var err error
		if e.ID, err = digestOf(id); err != nil {
			return nil, fmt.Errorf("error of knot %s: %w", e.KnotID, err)
		}
		e.OccurredAt = storedrun.Time(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query errors: %w", err)
	}
	return out, nil
}

// Runs implements [lineage.History]. Runs that started at the same time
// are listed most recently recorded first. Running runs whose process is
// gone are marked Interrupted first. A negative Limit is an error.
func (h *History) Runs(ctx context.Context, q lineage.Query) ([]lineage.Summary, error) {
	if q.Limit < 0 {
		return nil, fmt.Errorf("postgres: runs: Limit = %d, want >= 0", q.Limit)
	}
	limit := cmp.Or(q.Limit, 100)
	stmt, args := runsQuery(q, limit)
	var out []lineage.Summary
	err := retry(ctx, func(ctx context.Context) error {
		out = out[:0]
		// One round trip: the sweep, then the listing.
		var b pgx.Batch
		b.Queue(sweepRuns)
		b.Queue(stmt, args...)
		br := h.pool.SendBatch(ctx, &b)
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("mark interrupted runs: %w", err)
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s lineage.Summary
			var started, finished int64
			if err := rows.Scan(&s.ID, &s.Pipeline, &s.Status, &started, &finished, &s.Knots, &s.Failed, &s.Skipped, &s.Elements); err != nil {
				return err
			}
			s.StartedAt, s.FinishedAt = storedrun.Time(started), storedrun.Time(finished)
			out = append(out, s)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return br.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: runs: %w", err)
	}
	return out, nil
}

// runsQuery returns the statement that lists runs for q, newest first,
// and its arguments. A Label filter is answered through the GIN index
// runs_labels: labels @> {"key": "value"}.
func runsQuery(q lineage.Query, limit int) (string, []any) {
	stmt := `SELECT run_id, pipeline, status, started_at, finished_at, knots, failed, skipped, elements FROM runs`
	args := []any{limit}
	var where []string
	if q.Pipeline != "" {
		args = append(args, q.Pipeline)
		where = append(where, fmt.Sprintf("pipeline = $%d", len(args)))
	}
	if !q.Label.IsZero() {
		args = append(args, storedrun.EncodeLabels(map[string]string{q.Label.Key: q.Label.Value}))
		where = append(where, fmt.Sprintf("labels @> $%d::jsonb", len(args)))
	}
	if len(where) > 0 {
		stmt += " WHERE " + strings.Join(where, " AND ")
	}
	return stmt + ` ORDER BY started_at DESC, recorded DESC LIMIT $1`, args
}

// The cross-run queries. Each finds its records through one index
// (lineage_output, lineage_inputs, lineage_knot) and orders them by their
// run's start time, the order runs were recorded and the position in the
// run, all columns of lineage: lineage_output and lineage_knot return
// them in that order.
const (
	recordSelect = `l.run_id, l.knot_id, l.kind, l.map_id, l.map_index, l.module, l.knot, l.config_hash,
		l.output_hash, l.input_names, l.input_parents, l.input_hashes, l.outcome, l.skip_reason, l.skip_detail,
		l.error_id, l.dispatcher, l.started_at, l.finished_at, l.grants, l.cache_key, l.reused_run, l.reused_knot, l.logs`
	queryFrom  = ` FROM lineage l WHERE `
	queryOrder = ` ORDER BY l.run_started, l.run_recorded, l.seq`

	byOutput = `SELECT ` + recordSelect + queryFrom + `l.output_hash = $1` + queryOrder
	byInput  = `SELECT ` + recordSelect + queryFrom + `l.input_hashes @> ARRAY[$1::bytea]` + queryOrder
	byKnot   = `SELECT ` + recordSelect + queryFrom + `l.knot_id = $1` + queryOrder
)

// ByOutput implements [lineage.History]. The zero digest matches nothing.
func (h *History) ByOutput(ctx context.Context, d cas.Digest) ([]lineage.Record, error) {
	if d.IsZero() {
		return nil, nil
	}
	recs, err := h.query(ctx, byOutput, d[:])
	if err != nil {
		return nil, fmt.Errorf("postgres: by output %s: %w", d, err)
	}
	return recs, nil
}

// ByInput implements [lineage.History]. A record that consumed d as
// several inputs is returned once.
func (h *History) ByInput(ctx context.Context, d cas.Digest) ([]lineage.Record, error) {
	recs, err := h.query(ctx, byInput, d[:])
	if err != nil {
		return nil, fmt.Errorf("postgres: by input %s: %w", d, err)
	}
	return recs, nil
}

// ByKnot implements [lineage.History].
func (h *History) ByKnot(ctx context.Context, knotID string) ([]lineage.Record, error) {
	recs, err := h.query(ctx, byKnot, knotID)
	if err != nil {
		return nil, fmt.Errorf("postgres: by knot %q: %w", knotID, err)
	}
	return recs, nil
}

func (h *History) query(ctx context.Context, sql string, arg any) ([]lineage.Record, error) {
	var recs []lineage.Record
	err := retry(ctx, func(ctx context.Context) error {
		rows, err := h.pool.Query(ctx, sql, arg)
		if err != nil {
			return err
		}
		recs, err = scanRecords(rows)
		return err
	})
	return recs, err
}

// scanRecords reads and closes rows of recordSelect.
func scanRecords(rows pgx.Rows) ([]lineage.Record, error) {
	defer rows.Close()
	var out []lineage.Record
	for rows.Next() {
		var (
			rec                   lineage.Record
			index                 int64
			config, output, eid   []byte
			key, logs             []byte
			names, parents        []string
			hashes                [][]byte
			started, finished     int64
			kind, outcome, knotID string
		)
		if err := rows.Scan(&rec.RunID, &knotID, &kind, &rec.Map, &index, &rec.Module, &rec.Knot, &config,
			&output, &names, &parents, &hashes, &outcome, &rec.SkipReason, &rec.SkipDetail,
			&eid, &rec.Dispatcher, &started, &finished, &rec.Grants, &key, &rec.ReusedFrom.RunID, &rec.ReusedFrom.KnotID, &logs); err != nil {
			return nil, fmt.Errorf("scan record: %w", err)
		}
		rec.KnotID, rec.Kind, rec.Index, rec.Outcome = knotID, lineage.Kind(kind), int(index), lineage.Outcome(outcome)
		rec.StartedAt, rec.FinishedAt = storedrun.Time(started), storedrun.Time(finished)
		for _, f := range [...]struct {
			dst *cas.Digest
			src []byte
		}{{&rec.ConfigHash, config}, {&rec.Output, output}, {&rec.ErrorID, eid}, {&rec.CacheKey, key}, {&rec.Logs, logs}} {
			var err error
			if *f.dst, err = digestOf(f.src); err != nil {
				return nil, fmt.Errorf("record %s/%s: %w", rec.RunID, rec.KnotID, err)
			}
		}
		if len(names) != len(parents) || len(names) != len(hashes) {
			return nil, fmt.Errorf("record %s/%s: %d input names, %d parents, %d digests",
				rec.RunID, rec.KnotID, len(names), len(parents), len(hashes))
		}
		if len(names) > 0 {
			rec.Inputs = make([]lineage.Input, len(names))
			for j := range names {
				d, err := digestOf(hashes[j])
				if err != nil || hashes[j] == nil {
					return nil, fmt.Errorf("record %s/%s: input %s: digest of %d bytes", rec.RunID, rec.KnotID, names[j], len(hashes[j]))
				}
				rec.Inputs[j] = lineage.Input{Name: names[j], Parent: parents[j], Digest: d}
			}
		}
		if len(rec.Grants) == 0 {
			rec.Grants = nil
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query records: %w", err)
	}
	return out, nil
}

// detailed adds the detail of a server error to its message: which key a
// constraint found twice, for example.
func detailed(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Detail != "" {
		return fmt.Errorf("%w: %s", err, pe.Detail)
	}
	return err
}
