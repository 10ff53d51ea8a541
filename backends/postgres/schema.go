package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A component is a set of tables with its own schema version: its row in
// schema_versions holds how many of its steps have been applied.
type component struct {
	name string
	// steps[i] takes the component from version i to i+1. Append only;
	// never edit a step that has shipped.
	steps []string
}

// history is the schema of History.
//
// Times are bigint unix nanoseconds UTC (0 for the zero time): timestamptz
// keeps microseconds, and a run must read back as it was written. Digests
// are their 32 bytes (NULL for none); the *_text views of step 2 show both
// as people read them. There are no foreign keys: RecordRun deletes a
// run's rows itself, in the transaction that writes them, and a row
// trigger per record would cost more than the check is worth.
var history = component{name: "history", steps: []string{
	// 1: runs, their lineage records and their errors.
	//
	// runs.recorded, from the sequence run_order, orders runs that
	// started at the same time, most recently recorded last (re-recording
	// a run moves it). runs.owner is the advisory lock key of the History
	// running a Running run (0 for the others); see running.go.
	//
	// A record is one row: its inputs are three arrays of one length
	// (names, parents, digests). It carries its run's start time and
	// recorded (run_started, run_recorded), the first two keys that the
	// cross-run queries sort by, so that they read no other table and
	// their indexes return records in order: lineage_output (ByOutput,
	// without the records that produced nothing) and lineage_knot
	// (ByKnot) end with the sort keys; lineage_inputs (ByInput) is a GIN
	// index on the input digests, which finds a record once however many
	// of its inputs have the digest, updated at each insert (fastupdate
	// off) so that queries never scan a list of pending entries.
	// run_recorded defaults to the value RecordRun has just taken from
	// run_order for the run's row, in the same session.
	`
CREATE SEQUENCE run_order;

CREATE TABLE runs (
	run_id      text PRIMARY KEY,
	recorded    bigint NOT NULL,
	pipeline    text NOT NULL,
	status      text NOT NULL,
	terminals   text[] NOT NULL,
	dispatcher  text NOT NULL,
	host        text NOT NULL,
	started_at  bigint NOT NULL,
	finished_at bigint NOT NULL,
	knots       integer NOT NULL,
	failed      integer NOT NULL,
	skipped     integer NOT NULL,
	elements    integer NOT NULL,
	owner       bigint NOT NULL DEFAULT 0
);
CREATE INDEX runs_started ON runs (started_at, recorded);
CREATE INDEX runs_pipeline ON runs (pipeline, started_at, recorded);
CREATE INDEX runs_running ON runs (owner) WHERE status = 'running';

CREATE TABLE lineage (
	run_id        text NOT NULL,
	seq           integer NOT NULL, -- position in Run.Records
	run_started   bigint NOT NULL,  -- runs.started_at
	run_recorded  bigint NOT NULL DEFAULT currval('run_order'), -- runs.recorded
	knot_id       text NOT NULL,
	kind          text NOT NULL,
	map_id        text NOT NULL,
	map_index     bigint NOT NULL,
	module        text NOT NULL,
	knot          text NOT NULL,
	config_hash   bytea NOT NULL,
	output_hash   bytea,
	input_names   text[] NOT NULL,
	input_parents text[] NOT NULL,
	input_hashes  bytea[] NOT NULL,
	outcome       text NOT NULL,
	skip_reason   text NOT NULL,
	skip_detail   bytea, -- canonical CBOR or NULL
	error_id      bytea,
	dispatcher    text NOT NULL,
	started_at    bigint NOT NULL,
	finished_at   bigint NOT NULL,
	grants        text[] NOT NULL,
	PRIMARY KEY (run_id, knot_id)
);
CREATE INDEX lineage_output ON lineage (output_hash, run_started, run_recorded, seq) WHERE output_hash IS NOT NULL;
CREATE INDEX lineage_knot ON lineage (knot_id, run_started, run_recorded, seq);
CREATE INDEX lineage_inputs ON lineage USING gin (input_hashes) WITH (fastupdate = off);

CREATE TABLE errors (
	run_id      text NOT NULL,
	error_id    bytea NOT NULL,
	seq         integer NOT NULL, -- position in Run.Errors
	knot_id     text NOT NULL,
	type        text NOT NULL,
	message     text NOT NULL,
	detail      bytea, -- canonical CBOR or NULL
	trace       text NOT NULL,
	occurred_at bigint NOT NULL,
	PRIMARY KEY (run_id, error_id)
);
`,
	// 2: views for people using psql: digests as "sha256:<hex>", times
	// as timestamptz (to the microsecond; NULL for none).
	`
CREATE FUNCTION pirn_digest(h bytea) RETURNS text LANGUAGE sql IMMUTABLE
	AS $$ SELECT 'sha256:' || encode(h, 'hex') $$;
CREATE FUNCTION pirn_time(ns bigint) RETURNS timestamptz LANGUAGE sql IMMUTABLE
	AS $$ SELECT CASE WHEN ns = 0 THEN NULL ELSE 'epoch'::timestamptz + (ns / 1000) * interval '1 microsecond' END $$;

CREATE VIEW runs_text AS
SELECT run_id, pipeline, status, terminals, dispatcher, host,
	pirn_time(started_at) AS started_at, pirn_time(finished_at) AS finished_at,
	knots, failed, skipped, elements
FROM runs;

CREATE VIEW lineage_text AS
SELECT run_id, seq, knot_id, kind, map_id, map_index, module, knot,
	pirn_digest(config_hash) AS config_hash, pirn_digest(output_hash) AS output_hash,
	input_names, input_parents,
	ARRAY(SELECT pirn_digest(h) FROM unnest(input_hashes) WITH ORDINALITY AS u (h, i) ORDER BY i) AS input_hashes,
	outcome, skip_reason, pirn_digest(error_id) AS error_id, dispatcher,
	pirn_time(started_at) AS started_at, pirn_time(finished_at) AS finished_at,
	grants, cardinality(grants) = 0 AS hermetic
FROM lineage;

CREATE VIEW errors_text AS
SELECT run_id, pirn_digest(error_id) AS error_id, seq, knot_id, type, message, trace,
	pirn_time(occurred_at) AS occurred_at
FROM errors;
`,
	// 3: the values scrubbed from the data store (pirn gc), and when (unix
	// nanoseconds UTC), so that a record naming one can say so.
	`
CREATE TABLE scrubbed (
	digest bytea PRIMARY KEY,
	at     bigint NOT NULL
);
`,
	// 4: the digest of the pipeline that ran (its bundle manifest, kept
	// in the data store), NULL for a tapestry built in Go and for runs
	// recorded before.
	`
ALTER TABLE runs ADD COLUMN pipeline_digest bytea;
`,
	// 5: a run's labels (Run.Labels), a JSON object of text ('{}' for
	// none: runs recorded before have none), and a GIN index of them for
	// Runs' Label filter (labels @> '{"key": "value"}'). jsonb_path_ops
	// indexes each key-value pair as one hash, the smallest GIN index
	// that answers @>; updated at each insert (fastupdate off), like
	// lineage_inputs. runs_text shows them.
	`
ALTER TABLE runs ADD COLUMN labels jsonb NOT NULL DEFAULT '{}';
CREATE INDEX runs_labels ON runs USING gin (labels jsonb_path_ops) WITH (fastupdate = off);
CREATE OR REPLACE VIEW runs_text AS
SELECT run_id, pipeline, status, terminals, dispatcher, host,
	pirn_time(started_at) AS started_at, pirn_time(finished_at) AS finished_at,
	knots, failed, skipped, elements, labels
FROM runs;
`,
	// 6: memoisation. A record's cache key (NULL for none) and the record
	// its result was reused from (reused_run, reused_knot; '' when it
	// ran). memo is true for a record indexed under its key
	// (lineage.Memoisable): the partial index lineage_memo holds just
	// those, latest last, and clearing the cache sets memo to false,
	// leaving the record as it was. Records written before have no key.
	`
ALTER TABLE lineage ADD COLUMN cache_key bytea;
ALTER TABLE lineage ADD COLUMN reused_run text NOT NULL DEFAULT '';
ALTER TABLE lineage ADD COLUMN reused_knot text NOT NULL DEFAULT '';
ALTER TABLE lineage ADD COLUMN memo boolean NOT NULL DEFAULT false;
CREATE INDEX lineage_memo ON lineage (cache_key, run_started, run_recorded, seq) WHERE memo;
CREATE OR REPLACE VIEW lineage_text AS
SELECT run_id, seq, knot_id, kind, map_id, map_index, module, knot,
	pirn_digest(config_hash) AS config_hash, pirn_digest(output_hash) AS output_hash,
	input_names, input_parents,
	ARRAY(SELECT pirn_digest(h) FROM unnest(input_hashes) WITH ORDINALITY AS u (h, i) ORDER BY i) AS input_hashes,
	outcome, skip_reason, pirn_digest(error_id) AS error_id, dispatcher,
	pirn_time(started_at) AS started_at, pirn_time(finished_at) AS finished_at,
	grants, cardinality(grants) = 0 AS hermetic,
	pirn_digest(cache_key) AS cache_key, reused_run, reused_knot
FROM lineage;
`,
	// 7: the digest of a record's log lines in the data store
	// (lineage.Record.Logs; NULL when none). Records written before have
	// none.
	`
ALTER TABLE lineage ADD COLUMN logs bytea;
CREATE OR REPLACE VIEW lineage_text AS
SELECT run_id, seq, knot_id, kind, map_id, map_index, module, knot,
	pirn_digest(config_hash) AS config_hash, pirn_digest(output_hash) AS output_hash,
	input_names, input_parents,
	ARRAY(SELECT pirn_digest(h) FROM unnest(input_hashes) WITH ORDINALITY AS u (h, i) ORDER BY i) AS input_hashes,
	outcome, skip_reason, pirn_digest(error_id) AS error_id, dispatcher,
	pirn_time(started_at) AS started_at, pirn_time(finished_at) AS finished_at,
	grants, cardinality(grants) = 0 AS hermetic,
	pirn_digest(cache_key) AS cache_key, reused_run, reused_knot, pirn_digest(logs) AS logs
FROM lineage;
`,
}}

// store is the schema of Store.
var store = component{name: "store", steps: []string{
	// 1: values by the 32 bytes of their digest.
	`
CREATE TABLE cas_values (
	digest bytea PRIMARY KEY,
	bytes  bytea NOT NULL
);
`,
}}

// migrate brings c's tables in schema to version len(c.steps), in one
// transaction under an advisory lock of the schema: several processes
// migrating one database at once apply each step once. A database whose
// version of c is newer than c.steps is an error.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string, c component) error {
	return migrateTo(ctx, pool, schema, c, len(c.steps))
}

// migrateTo is migrate up to version n: tests create older schemas.
func migrateTo(ctx context.Context, pool *pgxpool.Pool, schema string, c component, n int) error {
	// The common case, an up-to-date database, takes no lock.
	v, err := version(ctx, pool, c)
	if err != nil || v == n {
		return err
	}
	err = retry(ctx, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			return migrateTx(ctx, tx, schema, c, n)
		})
	})
	if err != nil {
		return fmt.Errorf("migrate %s schema: %w", c.name, err)
	}
	return nil
}

func migrateTx(ctx context.Context, tx pgx.Tx, schema string, c component, n int) error {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey("pirn", "migrate", schema)); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	// Create the schema only if it is missing: CREATE SCHEMA IF NOT
	// EXISTS needs the CREATE privilege on the database even then.
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
		return err
	}
	id := pgx.Identifier{schema}.Sanitize()
	if !exists {
		if _, err := tx.Exec(ctx, "CREATE SCHEMA "+id); err != nil {
			return fmt.Errorf("create schema %s: %w", id, err)
		}
	}
	if _, err := tx.Exec(ctx, "SET LOCAL search_path = "+id); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_versions (
		component text PRIMARY KEY,
		version   integer NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_versions: %w", err)
	}
	v, err := version(ctx, tx, c)
	if err != nil {
		return err
	}
	if v > n {
		return fmt.Errorf("schema version %d is newer than the %d asked for", v, n)
	}
	for i := v; i < n; i++ {
		if _, err := tx.Exec(ctx, c.steps[i]); err != nil {
			return fmt.Errorf("to version %d: %w", i+1, err)
		}
	}
	_, err = tx.Exec(ctx, `INSERT INTO schema_versions (component, version) VALUES ($1, $2)
		ON CONFLICT (component) DO UPDATE SET version = excluded.version`, c.name, n)
	return err
}

// version reads c's schema version: 0 if the schema or schema_versions
// does not exist, an error if it is newer than this pirn knows.
func version(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, c component,
) (int, error) {
	var v int
	err := q.QueryRow(ctx, "SELECT version FROM schema_versions WHERE component = $1", c.name).Scan(&v)
	var pe *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows), errors.As(err, &pe) && pe.Code == "42P01": // undefined_table
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("read %s schema version: %w", c.name, err)
	case v > len(c.steps):
		return 0, fmt.Errorf("%s schema version %d is newer than this pirn supports (%d); upgrade pirn", c.name, v, len(c.steps))
	case v < 0:
		return 0, fmt.Errorf("%s schema version %d is invalid", c.name, v)
	}
	return v, nil
}
