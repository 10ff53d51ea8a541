package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pirn-wasm/pirn/cas"
)

// StoreConfig configures OpenStore.
type StoreConfig struct {
	// DSN is the connection string: a URL or key=value pairs (see the
	// package documentation). Required.
	DSN string
	// Schema is the schema that holds the store's table; it is created if
	// missing. "" means DefaultSchema. A history and a store may share a
	// schema.
	Schema string
}

// String formats c with its DSN redacted, so that printing or logging a
// StoreConfig shows no password.
func (c StoreConfig) String() string {
	return fmt.Sprintf("{DSN:%s Schema:%s}", Redact(c.DSN), c.Schema)
}

// Store is a [cas.Store] in a PostgreSQL table, cas_values: a row per
// value, keyed by the 32 bytes of its digest. It suits small deployments;
// values are read and written whole, and PostgreSQL limits one to 1 GB. It
// is safe for concurrent use, and by several processes sharing the schema.
type Store struct {
	pool *pgxpool.Pool
}

var _ cas.Store = (*Store)(nil)

// OpenStore connects to the database named by cfg.DSN and creates or
// migrates the store's table in cfg.Schema. Errors name the DSN redacted.
// Close the Store when done.
func OpenStore(ctx context.Context, cfg StoreConfig) (*Store, error) {
	if cfg.DSN == "" {
		return nil, errors.New("postgres: StoreConfig.DSN is empty")
	}
	schema := cmp.Or(cfg.Schema, DefaultSchema)
	pool, err := connect(ctx, cfg.DSN, schema)
	if err == nil {
		if err = migrate(ctx, pool, schema, store); err != nil {
			pool.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: open store %s: %w", Redact(cfg.DSN), err)
	}
	return &Store{pool: pool}, nil
}

// Close closes the Store's connections, after the calls in progress;
// later calls fail.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// putCheckSize is the size from which Put asks whether a value is stored
// before sending it.
const putCheckSize = 64 << 10

// Put implements [cas.Store]. Bytes that do not hash to d are an error
// (one wrong value would otherwise be what every later Put of d leaves in
// place). A value of putCheckSize bytes or more is not sent if d is stored.
func (s *Store) Put(ctx context.Context, d cas.Digest, b []byte) error {
	if sum := cas.Sum(b); sum != d {
		return fmt.Errorf("postgres: put %s: the bytes hash to %s", d, sum)
	}
	if len(b) >= putCheckSize {
		if ok, err := s.has(ctx, d); err != nil || ok {
			if err != nil {
				return fmt.Errorf("postgres: put %s: %w", d, err)
			}
			return nil
		}
	}
	err := retry(ctx, func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `INSERT INTO cas_values (digest, bytes) VALUES ($1, $2)
			ON CONFLICT (digest) DO NOTHING`, d[:], b)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: put %s: %w", d, err)
	}
	return nil
}

// Get implements [cas.Store]. Bytes that do not hash to d give an error
// wrapping [cas.ErrCorrupt].
func (s *Store) Get(ctx context.Context, d cas.Digest) ([]byte, error) {
	var b []byte
	err := retry(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, `SELECT bytes FROM cas_values WHERE digest = $1`, d[:]).Scan(&b)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: get %s: %w", d, cas.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get %s: %w", d, err)
	}
	if cas.Sum(b) != d {
		return nil, fmt.Errorf("postgres: get %s: %w", d, cas.ErrCorrupt)
	}
	return b, nil
}

// Has implements [cas.Store].
func (s *Store) Has(ctx context.Context, d cas.Digest) (bool, error) {
	ok, err := s.has(ctx, d)
	if err != nil {
		return false, fmt.Errorf("postgres: has %s: %w", d, err)
	}
	return ok, nil
}

func (s *Store) has(ctx context.Context, d cas.Digest) (bool, error) {
	var ok bool
	err := retry(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM cas_values WHERE digest = $1)`, d[:]).Scan(&ok)
	})
	return ok, err
}

// Delete implements [cas.Store].
func (s *Store) Delete(ctx context.Context, d cas.Digest) error {
	err := retry(ctx, func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `DELETE FROM cas_values WHERE digest = $1`, d[:])
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: delete %s: %w", d, err)
	}
	return nil
}
