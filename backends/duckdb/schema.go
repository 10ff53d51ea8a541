//go:build duckdb

package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// migrations are the schema steps, in order: migrations[i] takes the
// history from version i to i+1. Append only; never edit a step that has
// shipped.
var migrations = []string{
	// 1: runs, their lineage records, an index of their inputs, their
	// errors, and the values scrubbed from the data store.
	//
	// runs.recorded (from the sequence run_order) orders runs that
	// started at the same time, most recently recorded last; runs.owner
	// names the History running a Running run ('' for the others; see
	// running.go).
	//
	// A record is one row, its inputs three lists of one length (names,
	// parents, digests), and it carries its run's started_at and recorded
	// (run_started, run_recorded): the cross-run queries sort by them
	// without reading runs. There are no primary keys or foreign keys:
	// RecordRun, the only writer, deletes a run's rows and writes them
	// again in one transaction, and the ART index a key needs would cost
	// every insert. The ART indexes are those of the lookups by value:
	// lineage by output digest (ByOutput) and by knot id (ByKnot), and
	// lineage_inputs (a row per input) by digest (ByInput). A run's rows
	// are found without one, by run_recorded: rows are appended in the
	// order runs are recorded, so the rows of one run sit together and
	// DuckDB's min-max statistics of each row group skip the others, for
	// a filter on run_recorded as for the keys a join pushes down. (At
	// 300,000 records, reading a run's 100 records through an index on
	// run_id took 12 ms, fetching each row column by column; by a scan,
	// 3.5 ms.)
	`
CREATE SEQUENCE run_order;

CREATE TABLE runs (
	run_id      VARCHAR NOT NULL,
	recorded    BIGINT NOT NULL,
	pipeline    VARCHAR NOT NULL,
	status      VARCHAR NOT NULL,
	terminals   VARCHAR[] NOT NULL,
	dispatcher  VARCHAR NOT NULL,
	host        VARCHAR NOT NULL,
	started_at  BIGINT NOT NULL,
	finished_at BIGINT NOT NULL,
	knots       INTEGER NOT NULL,
	failed      INTEGER NOT NULL,
	skipped     INTEGER NOT NULL,
	elements    INTEGER NOT NULL,
	error_records INTEGER NOT NULL, -- len(Run.Errors)
	owner       VARCHAR NOT NULL,
	pipeline_digest BLOB -- Run.PipelineDigest; NULL for none
);

CREATE TABLE lineage (
	run_id        VARCHAR NOT NULL,
	seq           INTEGER NOT NULL, -- position in Run.Records
	run_started   BIGINT NOT NULL,  -- runs.started_at
	run_recorded  BIGINT NOT NULL,  -- runs.recorded
	knot_id       VARCHAR NOT NULL,
	kind          VARCHAR NOT NULL,
	map_id        VARCHAR NOT NULL,
	map_index     BIGINT NOT NULL,
	module        VARCHAR NOT NULL,
	knot          VARCHAR NOT NULL,
	config_hash   BLOB NOT NULL,
	output_hash   BLOB,
	input_names   VARCHAR[] NOT NULL,
	input_parents VARCHAR[] NOT NULL,
	input_hashes  BLOB[] NOT NULL,
	outcome       VARCHAR NOT NULL,
	skip_reason   VARCHAR NOT NULL,
	skip_detail   BLOB, -- canonical CBOR or NULL
	error_id      BLOB,
	dispatcher    VARCHAR NOT NULL,
	started_at    BIGINT NOT NULL,
	finished_at   BIGINT NOT NULL,
	grants        VARCHAR[] NOT NULL
);
CREATE INDEX lineage_output ON lineage (output_hash);
CREATE INDEX lineage_knot ON lineage (knot_id);

CREATE TABLE lineage_inputs (
	hash         BLOB NOT NULL,
	run_recorded BIGINT NOT NULL, -- with seq, the record that consumed it:
	seq          INTEGER NOT NULL -- lineage.run_recorded and lineage.seq
);
CREATE INDEX lineage_inputs_hash ON lineage_inputs (hash);

CREATE TABLE errors (
	run_id      VARCHAR NOT NULL,
	error_id    BLOB NOT NULL,
	seq         INTEGER NOT NULL, -- position in Run.Errors
	knot_id     VARCHAR NOT NULL,
	type        VARCHAR NOT NULL,
	message     VARCHAR NOT NULL,
	detail      BLOB, -- canonical CBOR or NULL
	trace       VARCHAR NOT NULL,
	occurred_at BIGINT NOT NULL
);

CREATE TABLE scrubbed (
	digest      BLOB PRIMARY KEY,
	scrubbed_at BIGINT NOT NULL -- unix nanoseconds UTC
);

-- For people using the duckdb shell: digests as "sha256:<hex>", times as
-- TIMESTAMP_NS (NULL for none) and durations in milliseconds.
CREATE MACRO pirn_digest(h) AS 'sha256:' || lower(hex(h));
CREATE MACRO pirn_time(ns) AS CASE WHEN ns = 0 THEN NULL ELSE make_timestamp_ns(ns) END;

CREATE VIEW runs_text AS
SELECT run_id, pipeline, status, terminals, dispatcher, host,
	pirn_time(started_at) AS started_at, pirn_time(finished_at) AS finished_at,
	(finished_at - started_at) / 1e6 AS duration_ms,
	knots, failed, skipped, elements, pirn_digest(pipeline_digest) AS pipeline_digest
FROM runs;

CREATE VIEW lineage_text AS
SELECT run_id, seq, knot_id, kind, map_id, map_index, module, knot,
	pirn_digest(config_hash) AS config_hash, pirn_digest(output_hash) AS output_hash,
	input_names, input_parents, [pirn_digest(h) FOR h IN input_hashes] AS input_hashes,
	outcome, skip_reason, pirn_digest(error_id) AS error_id, dispatcher,
	pirn_time(started_at) AS started_at, pirn_time(finished_at) AS finished_at,
	(finished_at - started_at) / 1e6 AS duration_ms,
	grants, len(grants) = 0 AS hermetic
FROM lineage;

CREATE VIEW errors_text AS
SELECT run_id, pirn_digest(error_id) AS error_id, seq, knot_id, type, message, trace,
	pirn_time(occurred_at) AS occurred_at
FROM errors;
`,
	// 2: a run's labels (Run.Labels) as two lists of one length, keys
	// sorted and each one's value at its position, as a record's inputs
	// are: NULL for runs recorded before, empty lists for a run without
	// labels. Runs' Label filter reads them in the runs table, with no
	// index: an ART index would cost every run's insert, and a scan of
	// runs' two columns answers an operator's query in milliseconds.
	// runs_text shows them as a MAP (labels['kafka.offset']).
	`
ALTER TABLE runs ADD COLUMN label_keys VARCHAR[];
ALTER TABLE runs ADD COLUMN label_values VARCHAR[];
CREATE OR REPLACE VIEW runs_text AS
SELECT run_id, pipeline, status, terminals, dispatcher, host,
	pirn_time(started_at) AS started_at, pirn_time(finished_at) AS finished_at,
	(finished_at - started_at) / 1e6 AS duration_ms,
	knots, failed, skipped, elements, pirn_digest(pipeline_digest) AS pipeline_digest,
	map(coalesce(label_keys, []::VARCHAR[]), coalesce(label_values, []::VARCHAR[])) AS labels
FROM runs;
`,
	// 3: memoisation. A record's cache key (NULL for none) and the record
	// its result was reused from (reused_run, reused_knot; '' when it
	// ran). memo is true for a record indexed under its key
	// (lineage.Memoisable); clearing the cache sets it to false, leaving
	// the record as it was. Records written before have no key. The ART
	// index lineage_memo finds a key's records (DuckDB has no partial
	// indexes: the NULL keys of records that have none are in it too).
	// DuckDB alters no table that an index depends on, so lineage's
	// indexes are dropped and made again around the new columns.
	`
DROP INDEX lineage_output;
DROP INDEX lineage_knot;
ALTER TABLE lineage ADD COLUMN cache_key BLOB;
ALTER TABLE lineage ADD COLUMN reused_run VARCHAR NOT NULL DEFAULT '';
ALTER TABLE lineage ADD COLUMN reused_knot VARCHAR NOT NULL DEFAULT '';
ALTER TABLE lineage ADD COLUMN memo BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX lineage_output ON lineage (output_hash);
CREATE INDEX lineage_knot ON lineage (knot_id);
CREATE INDEX lineage_memo ON lineage (cache_key);
CREATE OR REPLACE VIEW lineage_text AS
SELECT run_id, seq, knot_id, kind, map_id, map_index, module, knot,
	pirn_digest(config_hash) AS config_hash, pirn_digest(output_hash) AS output_hash,
	input_names, input_parents, [pirn_digest(h) FOR h IN input_hashes] AS input_hashes,
	outcome, skip_reason, pirn_digest(error_id) AS error_id, dispatcher,
	pirn_time(started_at) AS started_at, pirn_time(finished_at) AS finished_at,
	(finished_at - started_at) / 1e6 AS duration_ms,
	grants, len(grants) = 0 AS hermetic,
	pirn_digest(cache_key) AS cache_key, reused_run, reused_knot
FROM lineage;
`,
	// 4: the digest of a record's log lines in the data store
	// (lineage.Record.Logs; NULL when none). Records written before have
	// none. lineage's indexes are dropped and made again around the new
	// column, as in 3.
	`
DROP INDEX lineage_output;
DROP INDEX lineage_knot;
DROP INDEX lineage_memo;
ALTER TABLE lineage ADD COLUMN logs BLOB;
CREATE INDEX lineage_output ON lineage (output_hash);
CREATE INDEX lineage_knot ON lineage (knot_id);
CREATE INDEX lineage_memo ON lineage (cache_key);
CREATE OR REPLACE VIEW lineage_text AS
SELECT run_id, seq, knot_id, kind, map_id, map_index, module, knot,
	pirn_digest(config_hash) AS config_hash, pirn_digest(output_hash) AS output_hash,
	input_names, input_parents, [pirn_digest(h) FOR h IN input_hashes] AS input_hashes,
	outcome, skip_reason, pirn_digest(error_id) AS error_id, dispatcher,
	pirn_time(started_at) AS started_at, pirn_time(finished_at) AS finished_at,
	(finished_at - started_at) / 1e6 AS duration_ms,
	grants, len(grants) = 0 AS hermetic,
	pirn_digest(cache_key) AS cache_key, reused_run, reused_knot, pirn_digest(logs) AS logs
FROM lineage;
`,
}

// component is this schema's name in schema_versions, the table that
// holds its version.
const component = "history"

// migrate brings db's schema to len(migrations), in one transaction.
func migrate(ctx context.Context, db *sql.DB) error { return migrateTo(ctx, db, len(migrations)) }

// migrateTo is migrate up to version n: tests create older schemas.
func migrateTo(ctx context.Context, db *sql.DB, n int) error {
	v, err := version(ctx, db)
	if err != nil || v == n {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_versions (
		component VARCHAR PRIMARY KEY,
		version   INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate: create schema_versions: %w", err)
	}
	for i := v; i < n; i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrate to schema version %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO schema_versions (component, version) VALUES (?, ?)`, component, n); err != nil {
		return fmt.Errorf("migrate: set schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

// version reads the schema version: 0 for a new file, an error if it is
// newer than this pirn knows.
func version(ctx context.Context, db *sql.DB) (int, error) {
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT count(*) > 0 FROM duckdb_tables()
		WHERE schema_name = 'main' AND table_name = 'schema_versions'`).Scan(&exists); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	err := db.QueryRowContext(ctx, `SELECT version FROM schema_versions WHERE component = ?`, component).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("read schema version: %w", err)
	case v > len(migrations):
		return 0, fmt.Errorf("history schema version %d is newer than this pirn supports (%d); upgrade pirn", v, len(migrations))
	case v < 0:
		return 0, fmt.Errorf("history schema version %d is invalid", v)
	}
	return v, nil
}
