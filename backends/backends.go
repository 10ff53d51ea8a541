// Package backends opens a run history or a data store named by a URL,
// the way `pirn --history URL --store URL` and PIRN_HISTORY / PIRN_STORE
// name them:
//
//	history: memory:  sqlite:PATH  duckdb:PATH  postgres://user:password@host:port/db[?schema=pirn&…]
//	store:   memory:  file:DIR  valkey://[user:password@]host:port/db[?prefix=…&ttl=24h]
//	         s3://bucket/prefix[?region=…&endpoint=…&path_style=true]
//	         postgres://user:password@host:port/db[?schema=pirn&…] (values in a table)
//
// duckdb:PATH is a DuckDB file (backends/duckdb), opened only by a pirn
// built with the tag duckdb (go build -tags duckdb ./cmd/pirn): DuckDB is
// a cgo dependency that makes the binary much larger and slower to link.
// Other builds return an error wrapping [ErrNotBuilt] that says so.
//
// A postgres URL's schema parameter names the schema pirn's tables live in
// (default pirn); its other parameters are the driver's.
//
// An unknown scheme, or a server that cannot be reached, is an error that
// names the URL with any password in it redacted.
package backends

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/pirn-wasm/pirn/backends/postgres"
	"github.com/pirn-wasm/pirn/backends/s3"
	"github.com/pirn-wasm/pirn/backends/sqlite"
	"github.com/pirn-wasm/pirn/backends/valkey"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

// History is an opened run history; Close releases it.
type History interface {
	lineage.History
	Close() error
}

// Store is an opened data store; Close releases it.
type Store interface {
	cas.Store
	Close() error
}

// ErrUnknownScheme is wrapped by the error for a URL of no known scheme.
var ErrUnknownScheme = errors.New("unknown scheme")

// ErrNotBuilt is wrapped by the error for a URL whose backend this build
// of pirn leaves out (duckdb: without the build tag duckdb).
var ErrNotBuilt = errors.New("backend not built in")

// Schemes lists the schemes each kind of backend accepts.
var (
	HistorySchemes = []string{"memory:", "sqlite:PATH", "duckdb:PATH", "postgres://…"}
	StoreSchemes   = []string{"memory:", "file:DIR", "valkey://host:port/db", "s3://bucket/prefix", "postgres://…"}
)

// OpenHistory opens the run history rawURL names.
func OpenHistory(ctx context.Context, rawURL string) (History, error) {
	scheme, rest := split(rawURL)
	switch scheme {
	case "memory":
		return memoryHistory{lineage.NewMemory()}, nil
	case "sqlite":
		if rest == "" {
			return nil, fmt.Errorf("history %s: no path (sqlite:PATH)", Redact(rawURL))
		}
		h, err := sqlite.Open(ctx, sqlite.Config{Path: rest})
		if err != nil {
			return nil, fmt.Errorf("history %s: %w", Redact(rawURL), err)
		}
		return h, nil
	case "duckdb":
		if rest == "" {
			return nil, fmt.Errorf("history %s: no path (duckdb:PATH)", Redact(rawURL))
		}
		h, err := openDuckDB(ctx, rest)
		if err != nil {
			return nil, fmt.Errorf("history %s: %w", Redact(rawURL), err)
		}
		return h, nil
	case "postgres", "postgresql":
		dsn, schema, err := postgresURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("history %s: %w", Redact(rawURL), err)
		}
		return postgres.Open(ctx, postgres.Config{DSN: dsn, Schema: schema})
	}
	return nil, fmt.Errorf("history %s: %w %q (want one of %s)", Redact(rawURL), ErrUnknownScheme, scheme, strings.Join(HistorySchemes, ", "))
}

// OpenStore opens the data store rawURL names.
func OpenStore(ctx context.Context, rawURL string) (Store, error) {
	scheme, rest := split(rawURL)
	switch scheme {
	case "memory":
		return nopCloser{cas.NewMemory()}, nil
	case "file":
		if rest == "" {
			return nil, fmt.Errorf("store %s: no directory (file:DIR)", Redact(rawURL))
		}
		d, err := cas.NewDisk(cas.DiskConfig{Dir: rest})
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", Redact(rawURL), err)
		}
		return nopCloser{d}, nil
	case "valkey", "valkeys", "redis", "rediss":
		return openValkey(ctx, rawURL)
	case "postgres", "postgresql":
		dsn, schema, err := postgresURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", Redact(rawURL), err)
		}
		return postgres.OpenStore(ctx, postgres.StoreConfig{DSN: dsn, Schema: schema})
	case "s3":
		cfg, err := s3.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", Redact(rawURL), err)
		}
		return s3.Open(ctx, cfg)
	}
	return nil, fmt.Errorf("store %s: %w %q (want one of %s)", Redact(rawURL), ErrUnknownScheme, scheme, strings.Join(StoreSchemes, ", "))
}

// split returns a URL's scheme and what follows "scheme:" (and "//", for
// a scheme that names a path, such as file:///srv/pirn).
func split(rawURL string) (scheme, rest string) {
	scheme, rest, ok := strings.Cut(rawURL, ":")
	if !ok {
		return "", rawURL
	}
	if scheme == "sqlite" || scheme == "file" || scheme == "duckdb" {
		if p, ok := strings.CutPrefix(rest, "//"); ok {
			rest = p // file:///abs/path and file://rel both read as paths
		}
	}
	return strings.ToLower(scheme), rest
}

// Redact returns rawURL with the password of its user info, and the value
// of any password or secret query parameter, replaced by "xxxxx", for
// messages and logs. Text that does not parse as a URL is returned with
// everything after "://" up to the last "@" hidden.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		if i, j := strings.Index(rawURL, "://"), strings.LastIndex(rawURL, "@"); i >= 0 && j > i {
			return rawURL[:i+3] + "xxxxx" + rawURL[j:]
		}
		return rawURL
	}
	q := u.Query()
	changed := false
	for k := range q {
		switch strings.ToLower(k) {
		case "password", "secret", "secret_key", "secretkey", "token", "sslpassword":
			q.Set(k, "xxxxx")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

type memoryHistory struct{ *lineage.Memory }

func (memoryHistory) Close() error { return nil }

type nopCloser struct{ cas.Store }

func (nopCloser) Close() error { return nil }

// openValkey opens a Valkey store; the query parameters prefix and ttl
// (a Go duration) configure it and are not sent to the server.
func openValkey(ctx context.Context, rawURL string) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", Redact(rawURL), err)
	}
	q := u.Query()
	cfg := valkey.Config{Prefix: q.Get("prefix")}
	if ttl := q.Get("ttl"); ttl != "" {
		if cfg.TTL, err = time.ParseDuration(ttl); err != nil {
			return nil, fmt.Errorf("store %s: ttl %q: %w", Redact(rawURL), ttl, err)
		}
	}
	q.Del("prefix")
	q.Del("ttl")
	u.RawQuery = q.Encode()
	cfg.URL = u.String()
	return valkey.Open(ctx, cfg)
}

// postgresURL takes pirn's schema parameter out of a postgres URL.
func postgresURL(rawURL string) (dsn, schema string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", "", errors.New("not a URL")
	}
	q := u.Query()
	schema = q.Get("schema")
	q.Del("schema")
	u.RawQuery = q.Encode()
	return u.String(), schema, nil
}
