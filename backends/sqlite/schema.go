package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are the schema steps, in order: migrations[i] takes the
// database from user_version i to i+1. Append only; never edit a step that
// has shipped.
var migrations = []string{
	// 1: runs, their lineage records and inputs, and their errors.
	// Digests are the 32 bytes of the SHA-256 (NULL for none): half the
	// size of their text form in every index, which the per-run write cost
	// is mostly made of. The *_text views show them as "sha256:<hex>" for
	// people using the sqlite3 shell. Times are unix nanoseconds UTC (0
	// for none). errors is WITHOUT ROWID (it has no other index); lineage
	// keeps its rowid, so that the entries of its knot index end in an
	// 8-byte rowid rather than a copy of the text primary key. seq is the position in Run.Records
	// or Run.Errors. Deleting a run cascades to all its rows. Foreign
	// keys are checked at commit (deferred), so that RecordRun's
	// multi-row INSERT OR ROLLBACKs cannot fail halfway through a
	// statement and SQLite keeps no statement journal for them.
	`
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
	kind        TEXT NOT NULL,
	module      TEXT NOT NULL,
	knot        TEXT NOT NULL,
	config_hash BLOB NOT NULL,
	output_hash BLOB,
	inputs      BLOB NOT NULL, -- per input: name, parent id (each uvarint length + bytes), 32-byte digest
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
SELECT run_id, seq, knot_id, kind, module, knot,
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
`,
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
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
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
