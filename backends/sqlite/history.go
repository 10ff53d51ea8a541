package sqlite

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/internal/storedrun"
	"github.com/pirn-wasm/pirn/lineage"
)

const (
	deleteRun   = `DELETE FROM runs WHERE run_id = ?`
	runEntries  = `SELECT knot_id, output_hash, inputs FROM lineage WHERE run_id = ?`
	pendingRows = `SELECT max(rowid) FROM lineage_pending`
	runOwner    = `SELECT status, owner FROM runs WHERE run_id = ?`
	insertRun   = `INSERT INTO runs (run_id, pipeline, status, terminals, dispatcher, host,
		started_at, finished_at, knots, failed, skipped, elements, owner, pipeline_digest)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// finishRun writes a run over the bare running entry its owner wrote:
	// the same row, so that no index of runs changes unless its columns
	// do, where deleting and inserting the row wrote all four b-trees of
	// runs twice over.
	finishRun = `UPDATE runs SET pipeline = ?2, status = ?3, terminals = ?4, dispatcher = ?5, host = ?6,
		started_at = ?7, finished_at = ?8, knots = ?9, failed = ?10, skipped = ?11, elements = ?12, owner = ?13,
		pipeline_digest = ?14 WHERE run_id = ?1 AND status = 'running' AND owner = ?15`
)

// Multi-row inserts of records, inputs and errors: one statement per
// batch of rows saves most of the per-statement cost of the driver.
var (
	insertRecords = batchInsert{table: "lineage", cols: []string{"run_id", "seq", "knot_id", "kind", "module", "knot",
		"config_hash", "output_hash", "inputs", "outcome", "skip_reason", "skip_detail", "error_id", "dispatcher",
		"started_at", "finished_at", "grants", "map_id", "map_index", "cache_key", "reused_run", "reused_knot", "memo", "logs"}}
	insertPending = batchInsert{table: "lineage_pending", cols: []string{"rowid", "hash", "role", "run_id", "knot_id", "name"}}
	insertValues  = batchInsert{table: "lineage_values", cols: []string{"hash", "role", "run_id", "knot_id", "name"}}
	insertKnots   = batchInsert{table: "lineage_knots", cols: []string{"knot_id", "run_id"}}
	insertErrors  = batchInsert{table: "errors", cols: []string{"run_id", "error_id", "seq", "knot_id", "type",
		"message", "detail", "trace", "occurred_at"}}
	insertLabels = batchInsert{table: "run_labels", cols: []string{"run_id", "key", "value"}}
)

// maxBatch is the most rows one statement inserts.
const maxBatch = 32

// batchInsert is an INSERT of a table's columns.
type batchInsert struct {
	table string
	cols  []string
}

// query returns the INSERT of n rows.
func (b batchInsert) query(n int) string {
	row := "(" + strings.Repeat("?, ", len(b.cols)-1) + "?)"
	return "INSERT OR ROLLBACK INTO " + b.table + " (" + strings.Join(b.cols, ", ") + ") VALUES " +
		strings.Repeat(row+", ", n-1) + row
}

// prepare returns the statements of b, prepared on db as they are first
// needed: a run's rows go in one statement of their number (up to
// maxBatch), and there are few distinct numbers.
func (b batchInsert) prepare(db *sql.DB) *batchStmts {
	return &batchStmts{b: b, db: db, cols: len(b.cols)}
}

// batchStmts are the prepared statements of a batchInsert. Only a writer
// (holding wsem) uses them.
type batchStmts struct {
	b     batchInsert
	db    *sql.DB
	cols  int
	stmts [maxBatch + 1]*sql.Stmt // stmts[n] inserts n rows
}

// stmt returns the statement that inserts n rows, preparing it if need be.
func (s *batchStmts) stmt(ctx context.Context, n int) (*sql.Stmt, error) {
	if s.stmts[n] == nil {
		st, err := s.db.PrepareContext(ctx, s.b.query(n))
		if err != nil {
			return nil, fmt.Errorf("prepare insert into %s: %w", s.b.table, err)
		}
		s.stmts[n] = st
	}
	return s.stmts[n], nil
}

func (s *batchStmts) close() error {
	var errs []error
	for _, st := range s.stmts {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// batchWriter inserts the rows of one table in tx, a batch at a time: add
// appends a row's values to a buffer and executes the statement of
// maxBatch rows once it is full; flush executes what is left, in one
// statement.
type batchWriter struct {
	tx   *sql.Tx
	s    *batchStmts
	what string // names a row in errors: "record", "value", "error"
	args []any  // the values of the rows not yet inserted, s.cols a row
	done int    // rows inserted
}

// reset makes w insert into another table, with an empty buffer.
func (w *batchWriter) reset(s *batchStmts, what string) {
	clear(w.args)
	*w = batchWriter{tx: w.tx, s: s, what: what, args: w.args[:0]}
}

func (w *batchWriter) add(ctx context.Context, vals ...any) error {
	w.args = append(w.args, vals...)
	if len(w.args) < maxBatch*w.s.cols {
		return nil
	}
	return w.flush(ctx)
}

// flush inserts the buffered rows (at most maxBatch) in one statement.
func (w *batchWriter) flush(ctx context.Context) error {
	n := len(w.args) / w.s.cols
	if n == 0 {
		return nil
	}
	st, err := w.s.stmt(ctx, n)
	if err != nil {
		return err
	}
	// tx.StmtContext reuses the statement already prepared on the
	// transaction's connection.
	if _, err := w.tx.StmtContext(ctx, st).ExecContext(ctx, w.args...); err != nil {
		if n == 1 {
			return fmt.Errorf("insert %s %d: %w", w.what, w.done, err)
		}
		return fmt.Errorf("insert %ss %d-%d: %w", w.what, w.done, w.done+n-1, err)
	}
	w.done += n
	clear(w.args) // let the values go
	w.args = w.args[:0]
	return nil
}

// RecordRun implements [lineage.History]. The run is written in one
// transaction, replacing any run with the same ID. Every record and error
// must carry the run's ID, and every time must be zero or within the range
// of int64 unix nanoseconds (years 1678 to 2262). r is not retained.
func (h *History) RecordRun(ctx context.Context, r *lineage.Run) error {
	if r == nil {
		return errors.New("sqlite: record run: nil run")
	}
	if err := h.recordRun(ctx, r, ""); err != nil {
		return fmt.Errorf("sqlite: record run %q: %w", r.ID, err)
	}
	if r.Status != lineage.Running {
		h.finished(r.ID)
	}
	return nil
}

// Roles in lineage_values and lineage_pending. (Role 2, in lineage_pending
// from schema 4 to 11, was an entry of lineage_knots: the index entries of
// a record's knot id and output are now read from its lineage row.)
const (
	roleOutput = 0
	roleInput  = 1
	// roleRun is a row of lineage_pending that stands for the index
	// entries of its run's records other than their inputs: each record's
	// output (lineage_values) and knot id (lineage_knots), which fold and
	// the queries read from the records themselves. Its rowid is higher
	// than the last row's by the number of those entries, so that rowids
	// still count the entries pending.
	roleRun = 3
)

// foldRows is how many entries lineage_pending stands for before RecordRun
// folds them into lineage_values and lineage_knots. Queries scan
// lineage_pending and the records of its runs, so it stays small: 2048
// entries are about 70 runs of 10 knots.
var foldRows int64 = 2048

// encodeInputs packs a record's inputs for the lineage.inputs column: per
// input, the name and parent id (each a uvarint length and bytes) and the
// 32-byte digest.
func encodeInputs(ins []lineage.Input) []byte {
	b := make([]byte, 0, len(ins)*(cas.Size+16))
	for _, in := range ins {
		b = binary.AppendUvarint(b, uint64(len(in.Name)))
		b = append(b, in.Name...)
		b = binary.AppendUvarint(b, uint64(len(in.Parent)))
		b = append(b, in.Parent...)
		b = append(b, in.Digest[:]...)
	}
	return b
}

var errCorruptInputs = errors.New("corrupt inputs column")

// encodeGrants writes a record's grants for the grants column: a JSON
// array, or ” for none.
func encodeGrants(g []string) string {
	if len(g) == 0 {
		return ""
	}
	b, _ := json.Marshal(g) // a []string always marshals
	return string(b)
}

func decodeGrants(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var g []string
	err := json.Unmarshal([]byte(s), &g)
	return g, err
}

// decodeInputs is the inverse of encodeInputs.
func decodeInputs(b []byte) ([]lineage.Input, error) {
	var ins []lineage.Input
	str := func() (string, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return "", false
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s, true
	}
	for len(b) > 0 {
		var in lineage.Input
		var ok bool
		if in.Name, ok = str(); !ok {
			return nil, errCorruptInputs
		}
		if in.Parent, ok = str(); !ok || len(b) < cas.Size {
			return nil, errCorruptInputs
		}
		copy(in.Digest[:], b)
		b = b[cas.Size:]
		ins = append(ins, in)
	}
	return ins, nil
}

// recordRun writes r in one transaction, replacing any run with its ID.
// owner is StartRun's: the owner name of this History, which first checks
// that no other live process is running the run.
func (h *History) recordRun(ctx context.Context, r *lineage.Run, owner string) error {
	if err := storedrun.Check(r); err != nil { // before taking the write lock
		return err
	}
	terminals := []byte("[]")
	if len(r.Terminals) > 0 {
		var err error
		if terminals, err = json.Marshal(r.Terminals); err != nil {
			return fmt.Errorf("terminals: %w", err)
		}
	}

	select {
	case h.wsem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-h.wsem }()

	tx, err := h.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	// The statements below cannot wait for a lock (the transaction holds
	// the write lock), so they run without the driver's per-statement
	// cancellation watch, which costs a goroutine each. ctx still ends
	// the transaction: database/sql rolls it back when ctx is done.
	// tx.StmtContext reuses the statement already prepared on this
	// connection by an earlier transaction.
	sctx := context.WithoutCancel(ctx)
	earlier := true // a run of this ID may be recorded: replace it
	if owner != "" {
		if earlier, err = h.checkNotRunning(sctx, tx, r.ID, owner); err != nil {
			return err
		}
	}
	var tc storedrun.Nanos // check has seen every time: no errors
	sum := lineage.Summarize(r)
	runArgs := []any{r.ID, r.Pipeline, string(r.Status), string(terminals), r.Dispatcher, r.Host, tc.Of(r.StartedAt),
		tc.Of(r.FinishedAt), sum.Knots, sum.Failed, sum.Skipped, sum.Elements, owner, blob(r.PipelineDigest)}
	// A run this History started, whose running entry has no records,
	// errors or index entries, is finished in place (unless the entry
	// has gone or changed since, when it is replaced as any other run).
	inPlace := false
	if bare, self, labels := h.bareMarker(r.ID); owner == "" && r.Status != lineage.Running && bare {
		res, err := tx.StmtContext(sctx, h.updRun).ExecContext(sctx, append(runArgs, self)...)
		if err != nil {
			return fmt.Errorf("update run: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("update run: %w", err)
		} else if n == 1 {
			inPlace, earlier = true, false
			if labels {
				if _, err := tx.ExecContext(sctx, `DELETE FROM run_labels WHERE run_id = ?`, r.ID); err != nil {
					return fmt.Errorf("delete the running entry's labels: %w", err)
				}
			}
		}
	}
	// A new run (StartRun found none of its ID) has nothing to replace:
	// rows of a run are only ever deleted with its runs row, here.
	if earlier {
		if err := h.deleteValues(sctx, tx, r.ID); err != nil {
			return fmt.Errorf("delete earlier run: %w", err)
		}
		if _, err := tx.StmtContext(sctx, h.delRun).ExecContext(sctx, r.ID); err != nil {
			return fmt.Errorf("delete earlier run: %w", err)
		}
	}
	// Fold the entries of earlier runs if there are enough; this run's
	// go in after them. A run without records (a Running entry) has none
	// and leaves the fold to the next.
	var pending int64
	if len(r.Records) > 0 {
		if pending, err = h.fold(sctx, tx, foldRows); err != nil {
			return fmt.Errorf("fold index entries: %w", err)
		}
	}
	if !inPlace {
		if _, err := tx.StmtContext(sctx, h.insRun).ExecContext(sctx, runArgs...); err != nil {
			return fmt.Errorf("insert run: %w", err)
		}
	}
	// Rows are converted to arguments a batch at a time, into one reused
	// slice: a run of thousands of knots never has all its rows converted
	// at once, which would set the process's peak memory.
	w := batchWriter{tx: tx, s: h.insRecords, what: "record"}
	for i := range r.Records {
		rec := &r.Records[i]
		if err := w.add(sctx, r.ID, i, rec.KnotID, string(rec.Kind), rec.Module, rec.Knot,
			rec.ConfigHash[:], blob(rec.Output), encodeInputs(rec.Inputs), string(rec.Outcome), rec.SkipReason,
			rec.SkipDetail, blob(rec.ErrorID), rec.Dispatcher,
			tc.Of(rec.StartedAt), tc.Of(rec.FinishedAt), encodeGrants(rec.Grants), rec.Map, rec.Index,
			blob(rec.CacheKey), rec.ReusedFrom.RunID, rec.ReusedFrom.KnotID, lineage.Memoisable(rec), blob(rec.Logs)); err != nil {
			return err
		}
	}
	if err := w.flush(sctx); err != nil {
		return err
	}
	if err := h.writeEntries(sctx, &w, r, pending); err != nil {
		return err
	}
	w.reset(h.insErrors, "error")
	for i := range r.Errors {
		e := &r.Errors[i]
		if err := w.add(sctx, r.ID, e.ID[:], i, e.KnotID, e.Type, e.Message,
			e.Detail, e.Trace, tc.Of(e.OccurredAt)); err != nil {
			return err
		}
	}
	if err := w.flush(sctx); err != nil {
		return err
	}
	keys, values := storedrun.LabelLists(r.Labels)
	w.reset(h.insLabels, "label")
	for i, k := range keys {
		if err := w.add(sctx, r.ID, k, values[i]); err != nil {
			return err
		}
	}
	if err := w.flush(sctx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	h.committed()
	return nil
}

// An entry is a row of lineage_values for one run.
type entry struct {
	hash       []byte
	role       int
	knot, name string
}

// writeEntries writes r's index entries: to lineage_pending, after the
// pending rows up to rowid pending, or, for a run with foldRows of them or
// more, straight into lineage_values and lineage_knots, sorted as fold
// sorts them (such a run would fold at once: this spares writing them
// twice and SQLite's sort). Pending, a run's entries are a roleRun row
// and a row per input: fold and the queries read the outputs and knot ids
// from the records.
func (h *History) writeEntries(ctx context.Context, w *batchWriter, r *lineage.Run, pending int64) error {
	n := 0
	for i := range r.Records {
		n += 1 + len(r.Records[i].Inputs)
		if !r.Records[i].Output.IsZero() {
			n++
		}
	}
	if int64(n) < foldRows {
		if len(r.Records) == 0 {
			return nil
		}
		inputs := 0
		for i := range r.Records {
			inputs += len(r.Records[i].Inputs)
		}
		w.reset(h.insPending, "index entry")
		// The input rows take the rowids after it.
		if err := w.add(ctx, pending+int64(n-inputs), nil, roleRun, r.ID, "", ""); err != nil {
			return err
		}
		for i := range r.Records {
			rec := &r.Records[i]
			for _, in := range rec.Inputs {
				if err := w.add(ctx, nil, in.Digest[:], roleInput, r.ID, rec.KnotID, in.Name); err != nil {
					return err
				}
			}
		}
		return w.flush(ctx)
	}

	values := make([]entry, 0, n-len(r.Records))
	knots := make([]string, 0, len(r.Records))
	for i := range r.Records {
		rec := &r.Records[i]
		knots = append(knots, rec.KnotID)
		if !rec.Output.IsZero() {
			values = append(values, entry{rec.Output[:], roleOutput, rec.KnotID, ""})
		}
		for _, in := range rec.Inputs {
			values = append(values, entry{in.Digest[:], roleInput, rec.KnotID, in.Name})
		}
	}
	// The key of lineage_values is (hash, run_id, role, knot_id, name),
	// and run_id is the same for all.
	slices.SortFunc(values, func(a, b entry) int {
		return cmp.Or(bytes.Compare(a.hash, b.hash), cmp.Compare(a.role, b.role),
			strings.Compare(a.knot, b.knot), strings.Compare(a.name, b.name))
	})
	slices.Sort(knots)
	w.reset(h.insValues, "value")
	for _, v := range values {
		if err := w.add(ctx, v.hash, v.role, r.ID, v.knot, v.name); err != nil {
			return err
		}
	}
	if err := w.flush(ctx); err != nil {
		return err
	}
	w.reset(h.insKnots, "knot")
	for _, k := range knots {
		if err := w.add(ctx, k, r.ID); err != nil {
			return err
		}
	}
	return w.flush(ctx)
}

// fold moves the entries lineage_pending stands for into lineage_values
// and lineage_knots, sorted, if there are at least min of them, and
// returns how many are left pending (0 if it folded). Its rowids count
// its entries (see roleRun): DELETE without WHERE empties the table, and
// the next rowid is 1 again. (Re-recording a run deletes some entries, so
// the count can be high: the fold comes early.)
//
// The inserts ignore an entry already present (the same entry: nothing
// else conflicts), so that they need no statement journal.
func (h *History) fold(ctx context.Context, tx *sql.Tx, min int64) (int64, error) {
	var n sql.NullInt64
	if err := tx.StmtContext(ctx, h.pendingRows).QueryRowContext(ctx).Scan(&n); err != nil {
		return 0, err
	}
	if n.Int64 < min || !n.Valid {
		return n.Int64, nil
	}
	for _, q := range foldQueries {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

// foldQueries are fold's statements; migration 12 runs them too.
var foldQueries = []string{
	`INSERT OR IGNORE INTO lineage_values (hash, role, run_id, knot_id, name)
		SELECT hash, role, run_id, knot_id, name FROM lineage_pending WHERE role = 1
		UNION ALL
		SELECT l.output_hash, 0, l.run_id, l.knot_id, '' FROM lineage_pending p
			CROSS JOIN lineage l ON l.run_id = p.run_id
			WHERE p.role = 3 AND l.output_hash IS NOT NULL
		ORDER BY 1, 3, 2, 4, 5`,
	`INSERT OR IGNORE INTO lineage_knots (knot_id, run_id)
		SELECT l.knot_id, l.run_id FROM lineage_pending p CROSS JOIN lineage l ON l.run_id = p.run_id
			WHERE p.role = 3 ORDER BY 1, 2`,
	`DELETE FROM lineage_pending`,
}

// deleteValues removes the index entries of a run about to be replaced:
// its rows in lineage_pending, lineage_values and lineage_knots. The
// last two are found through the run's lineage rows (they are keyed by
// digest and knot id, with no index by run); a new run id finds none, at
// the cost of one index probe.
func (h *History) deleteValues(ctx context.Context, tx *sql.Tx, runID string) error {
	rows, err := tx.StmtContext(ctx, h.runEntries).QueryContext(ctx, runID)
	if err != nil {
		return err
	}
	var keys [][]any
	var knots []string
	for rows.Next() {
		var knot string
		var out, ins []byte
		if err := rows.Scan(&knot, &out, &ins); err != nil {
			rows.Close()
			return err
		}
		knots = append(knots, knot)
		if len(out) > 0 {
			keys = append(keys, []any{out, roleOutput, runID, knot, ""})
		}
		inputs, err := decodeInputs(ins)
		if err != nil {
			rows.Close()
			return err
		}
		for _, in := range inputs {
			keys = append(keys, []any{in.Digest[:], roleInput, runID, knot, in.Name})
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if len(knots) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM lineage_pending WHERE run_id = ?`, runID); err != nil {
		return err
	}
	for _, k := range keys {
		if _, err := tx.ExecContext(ctx, `DELETE FROM lineage_values WHERE hash = ? AND role = ? AND run_id = ? AND knot_id = ? AND name = ?`, k...); err != nil {
			return err
		}
	}
	for _, k := range knots {
		if _, err := tx.ExecContext(ctx, `DELETE FROM lineage_knots WHERE knot_id = ? AND run_id = ?`, k, runID); err != nil {
			return err
		}
	}
	return nil
}

// blob is how an optional digest (output, error id) is stored: its 32
// bytes, or NULL for the zero digest. Required digests are stored as their
// 32 bytes even when zero.
func blob(d cas.Digest) any {
	if d.IsZero() {
		return nil
	}
	return d[:]
}

// Run implements [lineage.History]. It reads the run from one snapshot.
func (h *History) Run(ctx context.Context, id string) (*lineage.Run, error) {
	r, err := h.run(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: run %q: %w", id, err)
	}
	return r, nil
}

func (h *History) run(ctx context.Context, id string) (*lineage.Run, error) {
	// A read-only transaction is a deferred BEGIN: a snapshot, no write lock.
	tx, err := h.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()

	r := &lineage.Run{ID: id}
	var status, terminals string
	var started, finished int64
	var pipelineDigest []byte
	err = tx.QueryRowContext(ctx, `SELECT pipeline, status, terminals, dispatcher, host, started_at, finished_at, pipeline_digest
		FROM runs WHERE run_id = ?`, id).
		Scan(&r.Pipeline, &status, &terminals, &r.Dispatcher, &r.Host, &started, &finished, &pipelineDigest)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, lineage.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	r.Status = lineage.Status(status)
	r.StartedAt, r.FinishedAt = storedrun.Time(started), storedrun.Time(finished)
	if r.PipelineDigest, err = storedrun.Digest(pipelineDigest); err != nil {
		return nil, fmt.Errorf("run %q: pipeline digest: %w", id, err)
	}
	if err := json.Unmarshal([]byte(terminals), &r.Terminals); err != nil {
		return nil, fmt.Errorf("terminals: %w", err)
	}
	if r.Records, err = queryRecords(ctx, tx, "lineage l", "WHERE l.run_id = ?", id); err != nil {
		return nil, err
	}
	if r.Errors, err = storedrun.QueryErrors(ctx, tx, id); err != nil {
		return nil, err
	}
	if r.Labels, err = queryLabels(ctx, tx, id); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return r, nil
}

// queryLabels reads a run's labels from run_labels: nil for none.
func queryLabels(ctx context.Context, q querier, runID string) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT key, value FROM run_labels WHERE run_id = ? ORDER BY key`, runID)
	if err != nil {
		return nil, fmt.Errorf("query labels: %w", err)
	}
	defer rows.Close()
	var keys, values []string
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("scan label: %w", err)
		}
		keys, values = append(keys, k), append(values, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query labels: %w", err)
	}
	return storedrun.LabelMap(keys, values)
}

// Runs implements [lineage.History]. Runs that started at the same time
// are listed most recently recorded first, a run started with StartRun
// counting as recorded when it started (its entry is finished in place).
// A negative Limit is an error.
// A Label filter is looked up in the index run_labels_value.
func (h *History) Runs(ctx context.Context, q lineage.Query) ([]lineage.Summary, error) {
	runs, err := storedrun.QueryRuns(ctx, h.db, q, "rowid",
		"run_id IN (SELECT run_id FROM run_labels WHERE key = ? AND value = ?)")
	if err != nil {
		return nil, fmt.Errorf("sqlite: runs: %w", err)
	}
	return runs, nil
}

// The (run_id, knot_id) pairs of the records that produced the value ?1,
// consumed it, or are of the knot ?1: folded entries, and pending ones.
// A pending run's outputs and knot ids are read from its records, by its
// key: CROSS JOIN keeps lineage_pending the outer table (SQLite's planner,
// without statistics, would scan all of lineage for them).
const (
	byOutputPairs = `SELECT run_id, knot_id FROM lineage_values WHERE hash = ?1 AND role = 0
		UNION SELECT l.run_id, l.knot_id FROM lineage_pending p CROSS JOIN lineage l ON l.run_id = p.run_id
			WHERE p.role = 3 AND l.output_hash = ?1`
	byInputPairs = `SELECT run_id, knot_id FROM lineage_values WHERE hash = ?1 AND role = 1
		UNION SELECT run_id, knot_id FROM lineage_pending WHERE hash = ?1 AND role = 1`
	byKnotPairs = `SELECT run_id, knot_id FROM lineage_knots WHERE knot_id = ?1
		UNION SELECT l.run_id, l.knot_id FROM lineage_pending p CROSS JOIN lineage l ON l.run_id = p.run_id AND l.knot_id = ?1
			WHERE p.role = 3`
)

// ByOutput implements [lineage.History]. The zero digest matches nothing.
func (h *History) ByOutput(ctx context.Context, d cas.Digest) ([]lineage.Record, error) {
	if d.IsZero() {
		return nil, nil
	}
	recs, err := queryRecords(ctx, h.db, byEntries(byOutputPairs), "", d[:])
	if err != nil {
		return nil, fmt.Errorf("sqlite: by output %s: %w", d, err)
	}
	return recs, nil
}

// ByInput implements [lineage.History].
func (h *History) ByInput(ctx context.Context, d cas.Digest) ([]lineage.Record, error) {
	recs, err := queryRecords(ctx, h.db, byEntries(byInputPairs), "", d[:])
	if err != nil {
		return nil, fmt.Errorf("sqlite: by input %s: %w", d, err)
	}
	return recs, nil
}

// ByKnot implements [lineage.History].
func (h *History) ByKnot(ctx context.Context, knotID string) ([]lineage.Record, error) {
	recs, err := queryRecords(ctx, h.db, byEntries(byKnotPairs), "", knotID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: by knot %q: %w", knotID, err)
	}
	return recs, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// byEntries is the source of queryRecords for the records named by the
// (run_id, knot_id) pairs of index entries: the subquery drives the join
// (CROSS JOIN keeps it the outer loop), a lookup of lineage's primary key
// per pair (with the pairs in an IN list, or a plain JOIN, the planner may
// scan lineage or runs instead). Its UNION also removes
// duplicate pairs (a record that takes one value as two inputs).
func byEntries(pairs string) string {
	return "(" + pairs + ") v CROSS JOIN lineage l ON l.run_id = v.run_id AND l.knot_id = v.knot_id"
}

// queryRecords returns the records of lineage l that source (a FROM
// clause naming it l) yields and where (a WHERE clause, or "") keeps, with
// their inputs, ordered by their run's start time (then the order runs
// were recorded), then position in the run. The query has one parameter,
// arg.
func queryRecords(ctx context.Context, q querier, source, where string, arg any) ([]lineage.Record, error) {
	rows, err := q.QueryContext(ctx, recordsQuery(source, where), arg)
	if err != nil {
		return nil, fmt.Errorf("query records: %w", err)
	}
	return scanRecords(rows)
}

// recordsQuery is queryRecords' query.
func recordsQuery(source, where string) string {
	return `SELECT l.run_id, l.knot_id, l.kind, l.module, l.knot, l.config_hash,
		l.output_hash, l.inputs, l.outcome, l.skip_reason, l.skip_detail, l.error_id, l.dispatcher,
		l.started_at, l.finished_at, l.grants, l.map_id, l.map_index, l.cache_key, l.reused_run, l.reused_knot, l.logs
		FROM ` + source + `
		JOIN runs r ON r.run_id = l.run_id
		` + where + `
		ORDER BY r.started_at, r.rowid, l.seq`
}

// scanRecords reads and closes rows of recordsQuery.
func scanRecords(rows *sql.Rows) ([]lineage.Record, error) {
	defer rows.Close()
	var out []lineage.Record
	for rows.Next() {
		var (
			rec                      lineage.Record
			config, output, ins, eid []byte
			key, logs                []byte
			outcome, grants          string
			started, finished        int64
		)
		if err := rows.Scan(&rec.RunID, &rec.KnotID, &rec.Kind, &rec.Module, &rec.Knot, &config,
			&output, &ins, &outcome, &rec.SkipReason, &rec.SkipDetail, &eid, &rec.Dispatcher,
			&started, &finished, &grants, &rec.Map, &rec.Index, &key, &rec.ReusedFrom.RunID, &rec.ReusedFrom.KnotID, &logs); err != nil {
			return nil, fmt.Errorf("scan record: %w", err)
		}
		rec.Outcome = lineage.Outcome(outcome)
		rec.StartedAt, rec.FinishedAt = storedrun.Time(started), storedrun.Time(finished)
		var err error
		for _, f := range [...]struct {
			dst *cas.Digest
			src []byte
		}{{&rec.ConfigHash, config}, {&rec.Output, output}, {&rec.ErrorID, eid}, {&rec.CacheKey, key}, {&rec.Logs, logs}} {
			if *f.dst, err = storedrun.Digest(f.src); err != nil {
				return nil, fmt.Errorf("record %s/%s: %w", rec.RunID, rec.KnotID, err)
			}
		}
		if rec.Inputs, err = decodeInputs(ins); err != nil {
			return nil, fmt.Errorf("record %s/%s: %w", rec.RunID, rec.KnotID, err)
		}
		if rec.Grants, err = decodeGrants(grants); err != nil {
			return nil, fmt.Errorf("record %s/%s: grants: %w", rec.RunID, rec.KnotID, err)
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query records: %w", err)
	}
	return out, nil
}
