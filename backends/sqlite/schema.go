package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"net/url"
	"path/filepath"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

// migrations are the schema steps, in order: migrations[i] takes the
// database from user_version i to i+1. Append only; never edit a step that
// has shipped.
var migrations = []migration{
	// 1: runs, their lineage records and inputs, and their errors.
	// Digests are the 32 bytes of the SHA-256 (NULL for none): half the
	// size of their text form in every index, which the per-run write cost
	// is mostly made of. The *_text views show them as "sha256:<hex>" for
	// people using the sqlite3 shell. Times are unix nanoseconds UTC (0
	// for none). errors is WITHOUT ROWID (it has no other index); lineage
	// keeps its rowid, so that the entries of its knot index end in an
	// 8-byte rowid rather than a copy of the text primary key. seq is the
	// position in Run.Records or Run.Errors. Deleting a run cascades to
	// all its rows. Foreign keys are checked at commit (deferred), so that
	// RecordRun's multi-row INSERT OR ROLLBACKs cannot fail halfway
	// through a statement and SQLite keeps no statement journal for them.
	{sql: `
CREATE TABLE runs (
	run_id      TEXT PRIMARY KEY,
	pipeline    TEXT NOT NULL,
	status      TEXT NOT NULL,
	terminals   TEXT NOT NULL, -- JSON array of knot ids
	dispatcher  TEXT NOT NULL,
	host        TEXT NOT NULL,
	started_at  INTEGER NOT NULL,
	finished_at INTEGER NOT NULL,
	knots       INTEGER NOT NULL,
	failed      INTEGER NOT NULL,
	skipped     INTEGER NOT NULL
);
CREATE INDEX runs_started_at ON runs (started_at);
CREATE INDEX runs_pipeline ON runs (pipeline, started_at);

CREATE TABLE lineage (
	run_id      TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
	seq         INTEGER NOT NULL,
	knot_id     TEXT NOT NULL,
	module      TEXT NOT NULL,
	knot        TEXT NOT NULL,
	config_hash BLOB NOT NULL,
	output_hash BLOB,
	inputs      BLOB NOT NULL, -- per input: uvarint name length, name, 32-byte digest
	outcome     TEXT NOT NULL,
	skip_reason TEXT NOT NULL,
	skip_detail BLOB, -- canonical CBOR or NULL
	error_id    BLOB,
	dispatcher  TEXT NOT NULL,
	started_at  INTEGER NOT NULL,
	finished_at INTEGER NOT NULL,
	PRIMARY KEY (run_id, knot_id)
);
CREATE INDEX lineage_knot_id ON lineage (knot_id);

-- Every value a record produced (role 0, name '') or consumed (role 1,
-- name = the input), keyed by digest: the index behind ByOutput and
-- ByInput. Keeping both roles in one b-tree puts a value's producer and
-- its consumers on the same page, which halves the pages a run dirties.
-- Rows are deleted explicitly when a run is re-recorded.
CREATE TABLE lineage_values (
	hash    BLOB NOT NULL,
	role    INTEGER NOT NULL,
	run_id  TEXT NOT NULL,
	knot_id TEXT NOT NULL,
	name    TEXT NOT NULL,
	PRIMARY KEY (hash, run_id, role, knot_id, name)
) WITHOUT ROWID;

CREATE TABLE errors (
	run_id      TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
	error_id    BLOB NOT NULL,
	seq         INTEGER NOT NULL,
	knot_id     TEXT NOT NULL,
	type        TEXT NOT NULL,
	message     TEXT NOT NULL,
	detail      BLOB, -- canonical CBOR or NULL
	trace       TEXT NOT NULL,
	occurred_at INTEGER NOT NULL,
	PRIMARY KEY (run_id, error_id)
) WITHOUT ROWID;

CREATE VIEW lineage_text AS
SELECT run_id, seq, knot_id, module, knot,
	'sha256:' || lower(hex(config_hash)) AS config_hash,
	CASE WHEN output_hash IS NULL THEN NULL ELSE 'sha256:' || lower(hex(output_hash)) END AS output_hash,
	outcome, skip_reason,
	CASE WHEN error_id IS NULL THEN NULL ELSE 'sha256:' || lower(hex(error_id)) END AS error_id,
	dispatcher, started_at, finished_at
FROM lineage;

CREATE VIEW lineage_values_text AS
SELECT 'sha256:' || lower(hex(hash)) AS hash, CASE role WHEN 0 THEN 'output' ELSE 'input' END AS role,
	run_id, knot_id, name
FROM lineage_values;

CREATE VIEW errors_text AS
SELECT run_id, 'sha256:' || lower(hex(error_id)) AS error_id, seq, knot_id, type, message, trace, occurred_at
FROM errors;
`},
	{
		// 2: lineage records the node's kind, and each input names the
		// node it came from. Records written before this have no parent
		// recorded; the migration takes it from the run's record whose
		// output has the input's digest when exactly one does, and leaves
		// it empty otherwise.
		sql: `
ALTER TABLE lineage ADD COLUMN kind TEXT NOT NULL DEFAULT 'knot';

DROP VIEW lineage_text;
CREATE VIEW lineage_text AS
SELECT run_id, seq, knot_id, kind, module, knot,
	'sha256:' || lower(hex(config_hash)) AS config_hash,
	CASE WHEN output_hash IS NULL THEN NULL ELSE 'sha256:' || lower(hex(output_hash)) END AS output_hash,
	outcome, skip_reason,
	CASE WHEN error_id IS NULL THEN NULL ELSE 'sha256:' || lower(hex(error_id)) END AS error_id,
	dispatcher, started_at, finished_at
FROM lineage;
`,
		fn: addInputParents,
	},
	{
		// 3: the grants a knot ran with, a JSON array of text ('' for
		// none: the knot was hermetic).
		sql: `
ALTER TABLE lineage ADD COLUMN grants TEXT NOT NULL DEFAULT '';

DROP VIEW lineage_text;
CREATE VIEW lineage_text AS
SELECT run_id, seq, knot_id, kind, module, knot,
	'sha256:' || lower(hex(config_hash)) AS config_hash,
	CASE WHEN output_hash IS NULL THEN NULL ELSE 'sha256:' || lower(hex(output_hash)) END AS output_hash,
	outcome, skip_reason,
	CASE WHEN error_id IS NULL THEN NULL ELSE 'sha256:' || lower(hex(error_id)) END AS error_id,
	dispatcher, started_at, finished_at, grants, grants = '' AS hermetic
FROM lineage;
`,
	},
	{
		// 4: the indexes on values and knot ids are written in batches.
		// RecordRun appends a run's index entries to lineage_pending
		// (its rowid order: a run's entries share a page or two at the
		// end of the table); fold moves them, sorted, into lineage_values
		// and lineage_knots once lineage_pending holds foldRows entries.
		// Written one run at a time, those two indexes dirtied about 40
		// pages per 10-knot run, a leaf per value and per knot id; folded,
		// a leaf is written once per batch. Queries read both places.
		// lineage_knots replaces the index lineage_knot_id. Role 2 in
		// lineage_pending is a knot-index entry (hash NULL, name '').
		//
		// runs.owner names the process (History) that is running a
		// Running run; see running.go. Empty for finished runs and for
		// those written before.
		sql: `
ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT '';

CREATE TABLE lineage_knots (
	knot_id TEXT NOT NULL,
	run_id  TEXT NOT NULL,
	PRIMARY KEY (knot_id, run_id)
) WITHOUT ROWID;
INSERT INTO lineage_knots (knot_id, run_id) SELECT knot_id, run_id FROM lineage ORDER BY knot_id, run_id;
DROP INDEX lineage_knot_id;

CREATE TABLE lineage_pending (
	hash    BLOB,
	role    INTEGER NOT NULL,
	run_id  TEXT NOT NULL,
	knot_id TEXT NOT NULL,
	name    TEXT NOT NULL
);

DROP VIEW lineage_values_text;
CREATE VIEW lineage_values_text AS
SELECT 'sha256:' || lower(hex(hash)) AS hash, CASE role WHEN 0 THEN 'output' ELSE 'input' END AS role,
	run_id, knot_id, name
FROM (SELECT hash, role, run_id, knot_id, name FROM lineage_values
	UNION ALL SELECT hash, role, run_id, knot_id, name FROM lineage_pending WHERE role < 2);
`,
	},
	{
		// 5: a run's knots, failed and skipped count its nodes, and
		// elements its Map elements, which the first three counted.
		sql: `
ALTER TABLE runs ADD COLUMN elements INTEGER NOT NULL DEFAULT 0;
UPDATE runs SET elements = e.n, knots = runs.knots - e.n, failed = runs.failed - e.nf, skipped = runs.skipped - e.ns
FROM (SELECT run_id, count(*) AS n, sum(outcome = 'err') AS nf, sum(outcome = 'skipped') AS ns
	FROM lineage WHERE kind = 'element' GROUP BY run_id) AS e
WHERE e.run_id = runs.run_id;
`,
	},
	{
		// 6: an element's record names its Map (map_id) and its index in
		// the Map's list (map_index); '' and 0 for every other record.
		// Existing element records get them from their knot_id,
		// "<map>:<index>": the index is the digits after the last ':'
		// (head is the knot_id without them), the map id what precedes
		// that ':' (a map id may contain ':' itself).
		// Code never parses a knot_id; this step is the one place that
		// does, for records written before the columns existed.
		sql: `
ALTER TABLE lineage ADD COLUMN map_id TEXT NOT NULL DEFAULT '';
ALTER TABLE lineage ADD COLUMN map_index INTEGER NOT NULL DEFAULT 0;
UPDATE lineage SET
	map_id = substr(e.head, 1, length(e.head) - 1),
	map_index = CAST(substr(lineage.knot_id, length(e.head) + 1) AS INTEGER)
FROM (SELECT rowid AS id, rtrim(knot_id, '0123456789') AS head FROM lineage WHERE kind = 'element') AS e
WHERE lineage.rowid = e.id AND length(e.head) > 1 AND substr(e.head, -1) = ':'
	AND length(e.head) < length(lineage.knot_id);

DROP VIEW lineage_text;
CREATE VIEW lineage_text AS
SELECT run_id, seq, knot_id, kind, map_id, map_index, module, knot,
	'sha256:' || lower(hex(config_hash)) AS config_hash,
	CASE WHEN output_hash IS NULL THEN NULL ELSE 'sha256:' || lower(hex(output_hash)) END AS output_hash,
	outcome, skip_reason,
	CASE WHEN error_id IS NULL THEN NULL ELSE 'sha256:' || lower(hex(error_id)) END AS error_id,
	dispatcher, started_at, finished_at, grants, grants = '' AS hermetic
FROM lineage;
`,
	},
	{
		// 7: the values scrubbed from the data store (pirn gc), and when
		// (unix nanoseconds UTC), so that a record naming one can say so.
		sql: `
CREATE TABLE scrubbed (
	hash BLOB PRIMARY KEY,
	at   INTEGER NOT NULL
) WITHOUT ROWID;
`,
	},
	{
		// 8: the digest of the pipeline that ran (its bundle manifest,
		// kept in the data store), NULL for a tapestry built in Go and
		// for runs recorded before.
		sql: `
ALTER TABLE runs ADD COLUMN pipeline_digest BLOB;
`,
	},
	{
		// 9: a run's labels (Run.Labels), a row each: where the run came
		// from. Keyed by run (reading a run's, and deleting them with it
		// by the cascade), and indexed by key and value, the lookup of
		// Runs' Label filter. A run without labels has no rows: runs
		// recorded before have none.
		sql: `
CREATE TABLE run_labels (
	run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
	key    TEXT NOT NULL,
	value  TEXT NOT NULL,
	PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE INDEX run_labels_value ON run_labels (key, value);
`,
	},
	{
		// 10: memoisation. A record's cache key (NULL for none) and the
		// record its result was reused from (reused_run, reused_knot;
		// '' when it ran). memo is 1 for a record indexed under its
		// key (lineage.Memoisable): the partial index lineage_memo holds
		// just those, and clearing the cache sets memo to 0, leaving the
		// record as it was. Records written before have no key.
		sql: `
ALTER TABLE lineage ADD COLUMN cache_key BLOB;
ALTER TABLE lineage ADD COLUMN reused_run TEXT NOT NULL DEFAULT '';
ALTER TABLE lineage ADD COLUMN reused_knot TEXT NOT NULL DEFAULT '';
ALTER TABLE lineage ADD COLUMN memo INTEGER NOT NULL DEFAULT 0;
CREATE INDEX lineage_memo ON lineage (cache_key) WHERE memo = 1;

DROP VIEW lineage_text;
CREATE VIEW lineage_text AS
SELECT run_id, seq, knot_id, kind, map_id, map_index, module, knot,
	'sha256:' || lower(hex(config_hash)) AS config_hash,
	CASE WHEN output_hash IS NULL THEN NULL ELSE 'sha256:' || lower(hex(output_hash)) END AS output_hash,
	outcome, skip_reason,
	CASE WHEN error_id IS NULL THEN NULL ELSE 'sha256:' || lower(hex(error_id)) END AS error_id,
	dispatcher, started_at, finished_at, grants, grants = '' AS hermetic,
	CASE WHEN cache_key IS NULL THEN NULL ELSE 'sha256:' || lower(hex(cache_key)) END AS cache_key,
	reused_run, reused_knot
FROM lineage;
`,
	},
	{
		// 11: the digest of a record's log lines in the data store
		// (lineage.Record.Logs; NULL when none). Records written before
		// have none.
		sql: `
ALTER TABLE lineage ADD COLUMN logs BLOB;

DROP VIEW lineage_text;
CREATE VIEW lineage_text AS
SELECT run_id, seq, knot_id, kind, map_id, map_index, module, knot,
	'sha256:' || lower(hex(config_hash)) AS config_hash,
	CASE WHEN output_hash IS NULL THEN NULL ELSE 'sha256:' || lower(hex(output_hash)) END AS output_hash,
	outcome, skip_reason,
	CASE WHEN error_id IS NULL THEN NULL ELSE 'sha256:' || lower(hex(error_id)) END AS error_id,
	dispatcher, started_at, finished_at, grants, grants = '' AS hermetic,
	CASE WHEN cache_key IS NULL THEN NULL ELSE 'sha256:' || lower(hex(cache_key)) END AS cache_key,
	reused_run, reused_knot,
	CASE WHEN logs IS NULL THEN NULL ELSE 'sha256:' || lower(hex(logs)) END AS logs
FROM lineage;
`,
	},
	{
		// 12: a run's pending index entries are a row for the run (role
		// 3, see roleRun) and one per input: fold and the queries read
		// each record's output and knot id from its lineage row, rather
		// than from two more rows of lineage_pending (32 rows for a
		// parameter and 10 knots, now 11). The entries pending are
		// folded first.
		sql: `
INSERT OR IGNORE INTO lineage_values (hash, role, run_id, knot_id, name)
	SELECT hash, role, run_id, knot_id, name FROM lineage_pending WHERE role < 2
	ORDER BY hash, run_id, role, knot_id, name;
INSERT OR IGNORE INTO lineage_knots (knot_id, run_id)
	SELECT knot_id, run_id FROM lineage_pending WHERE role = 2 ORDER BY knot_id, run_id;
DELETE FROM lineage_pending;
DROP VIEW lineage_values_text;
CREATE VIEW lineage_values_text AS
SELECT 'sha256:' || lower(hex(hash)) AS hash, CASE role WHEN 0 THEN 'output' ELSE 'input' END AS role,
	run_id, knot_id, name
FROM (SELECT hash, role, run_id, knot_id, name FROM lineage_values
	UNION ALL SELECT hash, role, run_id, knot_id, name FROM lineage_pending WHERE role = 1
	UNION ALL SELECT l.output_hash, 0, l.run_id, l.knot_id, '' FROM lineage_pending p
		CROSS JOIN lineage l ON l.run_id = p.run_id WHERE p.role = 3 AND l.output_hash IS NOT NULL);
`,
	},
}

// A migration is one schema step: its SQL, then fn (if any) for what SQL
// cannot do.
type migration struct {
	sql string
	fn  func(context.Context, *sql.Tx) error
}

// migrate brings db's schema to len(migrations), in one transaction.
func migrate(ctx context.Context, db *sql.DB) error {
	// The common case, an up-to-date file, needs no write lock.
	v, err := schemaVersion(ctx, db)
	if err != nil {
		return err
	}
	if v == len(migrations) {
		return nil
	}
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: another process may be migrating too
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if v, err = schemaVersion(ctx, tx); err != nil {
		return err
	}
	for i := v; i < len(migrations); i++ {
		m := migrations[i]
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("migrate to schema version %d: %w", i+1, err)
		}
		if m.fn == nil {
			continue
		}
		if err := m.fn(ctx, tx); err != nil {
			return fmt.Errorf("migrate to schema version %d: %w", i+1, err)
		}
	}
	// PRAGMA takes no parameters; the value is an int we control.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
		return fmt.Errorf("migrate: set user_version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// schemaVersion reads user_version and checks that this code knows it.
func schemaVersion(ctx context.Context, q rowQuerier) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	switch {
	case v > len(migrations):
		return 0, fmt.Errorf("history database schema version %d is newer than this pirn supports (%d); upgrade pirn", v, len(migrations))
	case v < 0:
		return 0, fmt.Errorf("history database schema version %d is invalid", v)
	}
	return v, nil
}

// addInputParents rewrites the inputs column from schema 1's encoding
// (per input: name, digest) to schema 2's (name, parent id, digest); see
// migration 2.
func addInputParents(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, "SELECT rowid, run_id, inputs FROM lineage ORDER BY run_id")
	if err != nil {
		return err
	}
	type update struct {
		rowid  int64
		inputs []byte
	}
	var updates []update
	var run string
	var producers map[cas.Digest][]string // the current run's outputs
	for rows.Next() {
		var rowid int64
		var id string
		var b []byte
		if err := rows.Scan(&rowid, &id, &b); err != nil {
			rows.Close()
			return err
		}
		if producers == nil || id != run {
			if producers, err = runOutputs(ctx, tx, id); err != nil {
				rows.Close()
				return err
			}
			run = id
		}
		ins, err := decodeInputsV1(b)
		if err != nil {
			rows.Close()
			return fmt.Errorf("run %s: %w", id, err)
		}
		for i := range ins {
			if p := producers[ins[i].Digest]; len(p) == 1 {
				ins[i].Parent = p[0]
			}
		}
		updates = append(updates, update{rowid, encodeInputs(ins)})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, u := range updates {
		if _, err := tx.ExecContext(ctx, "UPDATE lineage SET inputs = ? WHERE rowid = ?", u.inputs, u.rowid); err != nil {
			return err
		}
	}
	return nil
}

// runOutputs maps each output digest of run to the nodes that produced it.
func runOutputs(ctx context.Context, tx *sql.Tx, run string) (map[cas.Digest][]string, error) {
	rows, err := tx.QueryContext(ctx, "SELECT knot_id, output_hash FROM lineage WHERE run_id = ? AND output_hash IS NOT NULL", run)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[cas.Digest][]string{}
	for rows.Next() {
		var id string
		var h []byte
		if err := rows.Scan(&id, &h); err != nil {
			return nil, err
		}
		if len(h) != cas.Size {
			return nil, fmt.Errorf("run %s, %s: output hash of %d bytes", run, id, len(h))
		}
		d := cas.Digest(h)
		out[d] = append(out[d], id)
	}
	return out, rows.Err()
}

// decodeInputsV1 decodes schema 1's inputs column: per input, a uvarint
// name length, the name and the 32-byte digest.
func decodeInputsV1(b []byte) ([]lineage.Input, error) {
	var ins []lineage.Input
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n+cas.Size {
			return nil, errCorruptInputs
		}
		in := lineage.Input{Name: string(b[k : k+int(n)])}
		b = b[k+int(n):]
		copy(in.Digest[:], b)
		b = b[cas.Size:]
		ins = append(ins, in)
	}
	return ins, nil
}

// SchemaVersion returns the history schema this package writes: the
// user_version of a file it has opened (bytes 60-63 of its header).
func SchemaVersion() int { return len(migrations) }

// FileSchemaVersion returns the user_version of the SQLite database at
// path, read through a read-only connection (mode=ro: it creates nothing
// and migrates nothing), so that a write-ahead log not yet checkpointed
// into the file's header counts.
func FileSchemaVersion(ctx context.Context, path string) (int, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return 0, err
	}
	db, err := sql.Open("sqlite", uri(abs, url.Values{"mode": {"ro"}, "_pragma": {busyPragma}}))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read the schema version of %s: %w", path, explain(err))
	}
	return v, nil
}
