//go:build duckdb

package duckdb

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/internal/storedrun"
	"github.com/pirn-wasm/pirn/lineage"
)

// Statements of RecordRun, prepared on the writer's connection: DuckDB
// spends a few hundred microseconds parsing and planning a statement,
// as much as it takes to run these.
const (
	beginTx  = `BEGIN TRANSACTION`
	commitTx = `COMMIT`
	// deleteRun deletes the runs row of an earlier run of the id, and
	// says which of its other tables hold rows of it (none for a new run
	// or a Running entry, whose records and errors are not written yet)
	// and its recorded, which finds its records.
	deleteRun = `DELETE FROM runs WHERE run_id = ? RETURNING recorded, knots + elements, error_records`
	insertRun = `INSERT INTO runs (run_id, recorded, pipeline, status, terminals, dispatcher, host,
		started_at, finished_at, knots, failed, skipped, elements, error_records, owner, pipeline_digest,
		label_keys, label_values)
		VALUES (?, nextval('run_order'), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING recorded`
	deleteRecords = `DELETE FROM lineage WHERE run_recorded = ?`
	deleteInputs  = `DELETE FROM lineage_inputs WHERE run_recorded = ?`
	deleteErrors  = `DELETE FROM errors WHERE run_id = ?`
)

// writer is the connection RecordRun writes on, with its statements.
// wsem guards it.
type writer struct {
	conn                                  *sql.Conn
	begin, commit                         *sql.Stmt
	delRun, insRun, delRecords, delInputs *sql.Stmt
	delErrors                             *sql.Stmt
}

// newWriter takes a connection of db and prepares the statements.
func newWriter(ctx context.Context, db *sql.DB) (*writer, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	w := &writer{conn: conn}
	for _, s := range []struct {
		dst **sql.Stmt
		sql string
	}{{&w.begin, beginTx}, {&w.commit, commitTx}, {&w.delRun, deleteRun}, {&w.insRun, insertRun},
		{&w.delRecords, deleteRecords}, {&w.delInputs, deleteInputs}, {&w.delErrors, deleteErrors}} {
		if *s.dst, err = conn.PrepareContext(ctx, s.sql); err != nil {
			w.close()
			return nil, fmt.Errorf("prepare %q: %w", s.sql, err)
		}
	}
	return w, nil
}

// close closes the statements and the connection.
func (w *writer) close() error {
	var errs []error
	for _, s := range []*sql.Stmt{w.begin, w.commit, w.delRun, w.insRun, w.delRecords, w.delInputs, w.delErrors} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(append(errs, w.conn.Close())...)
}

// RecordRun implements [lineage.History]. The run is written in one
// transaction, replacing any run with the same ID. Every record and error
// must carry the run's ID, every time must be zero or within the range of
// int64 unix nanoseconds (years 1678 to 2262), and text must be valid
// UTF-8, as DuckDB's VARCHAR wants. r is not retained.
func (h *History) RecordRun(ctx context.Context, r *lineage.Run) error {
	if r == nil {
		return errors.New("duckdb: record run: nil run")
	}
	if err := h.record(ctx, r, ""); err != nil {
		return fmt.Errorf("duckdb: record run %q: %w", r.ID, interrupted(ctx, err))
	}
	if r.Status != lineage.Running {
		h.finished(r.ID)
	}
	return nil
}

// record writes r in one transaction, replacing any run with its ID. owner
// is StartRun's: the owner name of this History, which first checks that
// no other History is running the run.
func (h *History) record(ctx context.Context, r *lineage.Run, owner string) error {
	if err := storedrun.Check(r); err != nil {
		return err
	}
	if err := storedrun.CheckText(r, textProblem); err != nil {
		return err
	}
	if err := h.lockWriter(ctx); err != nil {
		return err
	}
	defer h.unlockWriter()
	return h.w.inTx(ctx, func(conn *sql.Conn) error {
		if owner != "" {
			if err := checkNotRunning(ctx, conn, r.ID, owner); err != nil {
				return err
			}
		}
		if err := h.w.deleteRun(ctx, r.ID); err != nil {
			return fmt.Errorf("delete earlier run: %w", err)
		}
		var tc storedrun.Nanos // Check has seen every time: no errors
		sum := lineage.Summarize(r)
		started := tc.Of(r.StartedAt)
		var recorded int64
		// A copy: cgo refuses a pointer into r, which holds Go pointers.
		pipelineDigest := r.PipelineDigest
		keys, values := storedrun.LabelLists(r.Labels)
		if err := h.w.insRun.QueryRowContext(ctx, r.ID, r.Pipeline, string(r.Status), nonNil(r.Terminals),
			r.Dispatcher, r.Host, started, tc.Of(r.FinishedAt), sum.Knots, sum.Failed, sum.Skipped, sum.Elements,
			len(r.Errors), owner, optional(&pipelineDigest), keys, values).Scan(&recorded); err != nil {
			return fmt.Errorf("insert run: %w", err)
		}
		if len(r.Records) > 0 {
			if err := h.w.appendRecords(ctx, r, started, recorded, &tc); err != nil {
				return err
			}
		}
		if len(r.Errors) > 0 {
			if err := h.w.appendErrors(ctx, r, &tc); err != nil {
				return err
			}
		}
		return nil
	})
}

// deleteRun deletes the run id's rows, if any.
func (w *writer) deleteRun(ctx context.Context, id string) error {
	var recorded int64
	var records, errs int
	err := w.delRun.QueryRowContext(ctx, id).Scan(&recorded, &records, &errs)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if records > 0 {
		for _, s := range []*sql.Stmt{w.delRecords, w.delInputs} {
			if _, err := s.ExecContext(ctx, recorded); err != nil {
				return err
			}
		}
	}
	if errs > 0 {
		if _, err := w.delErrors.ExecContext(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// interrupted makes err, the error of a call whose ctx has ended, wrap
// ctx's error: DuckDB reports a statement it interrupted for a done
// context as an INTERRUPT error of its own.
func interrupted(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil || errors.Is(err, ctx.Err()) {
		return err
	}
	return fmt.Errorf("%w (%w)", err, ctx.Err())
}

// inTx runs f in a transaction on the writer's connection, and commits if
// f succeeds. The transaction is begun and ended with SQL rather than
// database/sql's Tx, which does not give the driver connection that an
// Appender needs.
func (w *writer) inTx(ctx context.Context, f func(conn *sql.Conn) error) error {
	if _, err := w.begin.ExecContext(ctx); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := f(w.conn); err != nil {
		// The rollback runs even when ctx has ended: the connection
		// must not keep the transaction.
		if _, rerr := w.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
			return errors.Join(err, fmt.Errorf("rollback: %w", rerr))
		}
		return err
	}
	if _, err := w.commit.ExecContext(ctx); err != nil {
		w.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") // a failed COMMIT may leave the transaction open: end it
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// textProblem says why s cannot be stored in a VARCHAR column, or returns
// "". (DuckDB's Appender stores invalid UTF-8 as NULL.)
func textProblem(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	return ""
}

// appendTo appends rows to table through a DuckDB Appender on the
// writer's connection, in its transaction: row(i) gives row i. (Keeping
// the Appenders from one transaction to the next was measured to save
// under 5% of a 10-knot run.)
func (w *writer) appendTo(ctx context.Context, table string, rows int, row func(i int) []driver.Value) error {
	err := w.conn.Raw(func(dc any) error {
		a, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", table)
		if err != nil {
			return err
		}
		for i := range rows {
			if err := a.AppendRow(row(i)...); err != nil {
				a.Clear() // the rows are not wanted: the transaction rolls back
				a.Close()
				return fmt.Errorf("row %d: %w", i, err)
			}
		}
		return a.CloseWithCancel(ctx)
	})
	if err != nil {
		return fmt.Errorf("append to %s: %w", table, err)
	}
	return nil
}

// appendRecords appends r's records to lineage and their inputs to
// lineage_inputs. started and recorded are the run's sort keys.
func (w *writer) appendRecords(ctx context.Context, r *lineage.Run, started, recorded int64, tc *storedrun.Nanos) error {
	row := make([]driver.Value, 0, 28)
	err := w.appendTo(ctx, "lineage", len(r.Records), func(i int) []driver.Value {
		rec := &r.Records[i]
		names := make([]string, len(rec.Inputs))
		parents := make([]string, len(rec.Inputs))
		hashes := make([][]byte, len(rec.Inputs))
		for j := range rec.Inputs {
			in := &rec.Inputs[j]
			names[j], parents[j], hashes[j] = in.Name, in.Parent, in.Digest[:]
		}
		return append(row[:0], r.ID, int32(i), started, recorded, rec.KnotID, string(rec.Kind), rec.Map, int64(rec.Index),
			rec.Module, rec.Knot, rec.ConfigHash[:], optional(&rec.Output), names, parents, hashes,
			string(rec.Outcome), rec.SkipReason, blob(rec.SkipDetail), optional(&rec.ErrorID), rec.Dispatcher,
			tc.Of(rec.StartedAt), tc.Of(rec.FinishedAt), nonNil(rec.Grants),
			optional(&rec.CacheKey), rec.ReusedFrom.RunID, rec.ReusedFrom.KnotID, lineage.Memoisable(rec), optional(&rec.Logs))
	})
	if err != nil {
		return err
	}
	type input struct {
		seq    int32
		digest []byte
	}
	var inputs []input
	for i := range r.Records {
		for j := range r.Records[i].Inputs {
			inputs = append(inputs, input{int32(i), r.Records[i].Inputs[j].Digest[:]})
		}
	}
	if len(inputs) == 0 {
		return nil
	}
	return w.appendTo(ctx, "lineage_inputs", len(inputs), func(i int) []driver.Value {
		return append(row[:0], inputs[i].digest, recorded, inputs[i].seq)
	})
}

// appendErrors appends r's error records to errors.
func (w *writer) appendErrors(ctx context.Context, r *lineage.Run, tc *storedrun.Nanos) error {
	row := make([]driver.Value, 0, 9)
	return w.appendTo(ctx, "errors", len(r.Errors), func(i int) []driver.Value {
		e := &r.Errors[i]
		return append(row[:0], r.ID, e.ID[:], int32(i), e.KnotID, e.Type, e.Message, blob(e.Detail), e.Trace, tc.Of(e.OccurredAt))
	})
}

// optional is how an optional digest (output, error id) is stored: its 32
// bytes, or NULL for the zero digest.
func optional(d *cas.Digest) driver.Value {
	if d.IsZero() {
		return nil
	}
	return d[:]
}

// blob is how optional bytes are stored: NULL for nil.
func blob(b []byte) driver.Value {
	if b == nil {
		return nil
	}
	return b
}

// nonNil returns s, or an empty slice for nil: the list columns are NOT
// NULL.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Run implements [lineage.History]. It reads the run from one snapshot.
func (h *History) Run(ctx context.Context, id string) (*lineage.Run, error) {
	r, err := h.run(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("duckdb: run %q: %w", id, interrupted(ctx, err))
	}
	return r, nil
}

func (h *History) run(ctx context.Context, id string) (*lineage.Run, error) {
	tx, err := h.db.BeginTx(ctx, nil) // a snapshot: DuckDB's transactions are snapshot isolated
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	r := &lineage.Run{ID: id}
	var terminals, labelKeys, labelValues []any
	var started, finished, recorded int64
	var pipelineDigest []byte
	err = tx.QueryRowContext(ctx, `SELECT pipeline, status, terminals, dispatcher, host, started_at, finished_at, recorded, pipeline_digest,
		coalesce(label_keys, []::VARCHAR[]), coalesce(label_values, []::VARCHAR[])
		FROM runs WHERE run_id = ?`, id).
		Scan(&r.Pipeline, &r.Status, &terminals, &r.Dispatcher, &r.Host, &started, &finished, &recorded, &pipelineDigest,
			&labelKeys, &labelValues)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, lineage.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	r.StartedAt, r.FinishedAt = storedrun.Time(started), storedrun.Time(finished)
	if r.PipelineDigest, err = storedrun.Digest(pipelineDigest); err != nil {
		return nil, fmt.Errorf("run %q: pipeline digest: %w", id, err)
	}
	if r.Terminals, err = stringsOf(terminals); err != nil {
		return nil, fmt.Errorf("terminals: %w", err)
	}
	if r.Labels, err = labelsOf(labelKeys, labelValues); err != nil {
		return nil, fmt.Errorf("run %q: %w", id, err)
	}
	if r.Records, err = queryRecords(ctx, tx, `FROM lineage l WHERE l.run_recorded = ?`, recorded); err != nil {
		return nil, err
	}
	if r.Errors, err = storedrun.QueryErrors(ctx, tx, id); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return r, nil
}

// Runs implements [lineage.History]. Runs that started at the same time
// are listed most recently recorded first. A negative Limit is an error.
// A Label filter reads the label lists of runs (there is no index).
func (h *History) Runs(ctx context.Context, q lineage.Query) ([]lineage.Summary, error) {
	runs, err := storedrun.QueryRuns(ctx, h.db, q, "recorded",
		"coalesce(label_values[list_position(label_keys, ?)] = ?, false)")
	if err != nil {
		return nil, fmt.Errorf("duckdb: runs: %w", interrupted(ctx, err))
	}
	return runs, nil
}

// The queries of records. The cross-run ones find their records through
// an ART index (lineage_output, lineage_inputs_hash, lineage_knot), for
// values and knots that are not in most runs; queryRecords sorts the
// records.
const (
	byOutput = `FROM lineage l WHERE l.output_hash = ?`
	// A semi join: a record that consumed the digest as several inputs
	// is returned once.
	byInput = `FROM lineage l SEMI JOIN (SELECT run_recorded, seq FROM lineage_inputs WHERE hash = ?) i
		ON l.run_recorded = i.run_recorded AND l.seq = i.seq`
	byKnot = `FROM lineage l WHERE l.knot_id = ?`
)

// ByOutput implements [lineage.History]. The zero digest matches nothing.
func (h *History) ByOutput(ctx context.Context, d cas.Digest) ([]lineage.Record, error) {
	if d.IsZero() {
		return nil, nil
	}
	recs, err := queryRecords(ctx, h.db, byOutput, d[:])
	if err != nil {
		return nil, fmt.Errorf("duckdb: by output %s: %w", d, interrupted(ctx, err))
	}
	return recs, nil
}

// ByInput implements [lineage.History]. A record that consumed d as
// several inputs is returned once.
func (h *History) ByInput(ctx context.Context, d cas.Digest) ([]lineage.Record, error) {
	recs, err := queryRecords(ctx, h.db, byInput, d[:])
	if err != nil {
		return nil, fmt.Errorf("duckdb: by input %s: %w", d, interrupted(ctx, err))
	}
	return recs, nil
}

// ByKnot implements [lineage.History].
func (h *History) ByKnot(ctx context.Context, knotID string) ([]lineage.Record, error) {
	recs, err := queryRecords(ctx, h.db, byKnot, knotID)
	if err != nil {
		return nil, fmt.Errorf("duckdb: by knot %q: %w", knotID, interrupted(ctx, err))
	}
	return recs, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// recordColumns are the columns queryRecords reads, of lineage l.
const recordColumns = `SELECT l.run_started, l.run_recorded, l.seq,
	l.run_id, l.knot_id, l.kind, l.map_id, l.map_index, l.module, l.knot, l.config_hash,
	l.output_hash, l.input_names, l.input_parents, l.input_hashes, l.outcome, l.skip_reason, l.skip_detail,
	l.error_id, l.dispatcher, l.started_at, l.finished_at, l.grants, l.cache_key, l.reused_run, l.reused_knot, l.logs `

// queryRecords returns the records that from (a FROM clause naming lineage
// l, with a WHERE clause or a join) yields, with one parameter, arg,
// ordered by their run's start time, then the order runs were recorded,
// then position in the run. They are sorted here rather than by ORDER BY:
// at 300,000 records, DuckDB's sort made ByOutput 5.4 ms where the query
// took 2.2 ms.
func queryRecords(ctx context.Context, q querier, from string, arg any) ([]lineage.Record, error) {
	rows, err := q.QueryContext(ctx, recordColumns+from, arg)
	if err != nil {
		return nil, fmt.Errorf("query records: %w", err)
	}
	defer rows.Close()
	type key struct{ started, recorded, seq int64 }
	var out []lineage.Record
	var keys []key
	for rows.Next() {
		var (
			rec                            lineage.Record
			k                              key
			index, started, finished       int64
			config, output, eid, key, logs []byte
			names, parents, hashes, grants []any
		)
		if err := rows.Scan(&k.started, &k.recorded, &k.seq, &rec.RunID, &rec.KnotID, &rec.Kind, &rec.Map, &index,
			&rec.Module, &rec.Knot, &config, &output, &names, &parents, &hashes, &rec.Outcome, &rec.SkipReason,
			&rec.SkipDetail, &eid, &rec.Dispatcher, &started, &finished, &grants, &key, &rec.ReusedFrom.RunID, &rec.ReusedFrom.KnotID, &logs); err != nil {
			return nil, fmt.Errorf("scan record: %w", err)
		}
		keys = append(keys, k)
		rec.Index = int(index)
		rec.StartedAt, rec.FinishedAt = storedrun.Time(started), storedrun.Time(finished)
		if err := decodeRecord(&rec, config, output, eid, names, parents, hashes, grants); err != nil {
			return nil, fmt.Errorf("record %s/%s: %w", rec.RunID, rec.KnotID, err)
		}
		if len(key) > 0 {
			if len(key) != cas.Size {
				return nil, fmt.Errorf("record %s/%s: cache key of %d bytes", rec.RunID, rec.KnotID, len(key))
			}
			rec.CacheKey = cas.Digest(key)
		}
		if len(logs) > 0 {
			if len(logs) != cas.Size {
				return nil, fmt.Errorf("record %s/%s: logs digest of %d bytes", rec.RunID, rec.KnotID, len(logs))
			}
			rec.Logs = cas.Digest(logs)
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query records: %w", err)
	}
	order := make([]int, len(out))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int {
		a, b := keys[i], keys[j]
		return cmp.Or(cmp.Compare(a.started, b.started), cmp.Compare(a.recorded, b.recorded), cmp.Compare(a.seq, b.seq))
	})
	sorted := make([]lineage.Record, len(out))
	for i, j := range order {
		sorted[i] = out[j]
	}
	return sorted, nil
}

// decodeRecord sets rec's digests, inputs and grants from their columns.
func decodeRecord(rec *lineage.Record, config, output, eid []byte, names, parents, hashes, grants []any) error {
	var err error
	for _, f := range [...]struct {
		dst *cas.Digest
		src []byte
	}{{&rec.ConfigHash, config}, {&rec.Output, output}, {&rec.ErrorID, eid}} {
		if *f.dst, err = storedrun.Digest(f.src); err != nil {
			return err
		}
	}
	if len(names) != len(parents) || len(names) != len(hashes) {
		return fmt.Errorf("%d input names, %d parents, %d digests", len(names), len(parents), len(hashes))
	}
	if len(names) > 0 {
		rec.Inputs = make([]lineage.Input, len(names))
		for j := range names {
			name, ok1 := names[j].(string)
			parent, ok2 := parents[j].(string)
			h, ok3 := hashes[j].([]byte)
			d, err := storedrun.Digest(h)
			if !ok1 || !ok2 || !ok3 || err != nil || h == nil {
				return fmt.Errorf("input %d: want a name, a parent and a 32-byte digest, got %T %T %T (%d bytes)",
					j, names[j], parents[j], hashes[j], len(h))
			}
			rec.Inputs[j] = lineage.Input{Name: name, Parent: parent, Digest: d}
		}
	}
	if rec.Grants, err = stringsOf(grants); err != nil {
		return fmt.Errorf("grants: %w", err)
	}
	return nil
}

// stringsOf converts a scanned VARCHAR[]; empty is nil.
func stringsOf(list []any) ([]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	out := make([]string, len(list))
	for i, v := range list {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("element %d is %T, want a string", i, v)
		}
		out[i] = s
	}
	return out, nil
}

// labelsOf converts the scanned label lists of a run.
func labelsOf(keys, values []any) (map[string]string, error) {
	k, err := stringsOf(keys)
	if err != nil {
		return nil, fmt.Errorf("label keys: %w", err)
	}
	v, err := stringsOf(values)
	if err != nil {
		return nil, fmt.Errorf("label values: %w", err)
	}
	return storedrun.LabelMap(k, v)
}
