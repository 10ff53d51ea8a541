// Package postgres stores pirn's lineage ([History], a [lineage.History])
// and values ([Store], a [cas.Store]) in PostgreSQL, through pgx and a
// pgxpool connection pool, so that the processes of a team, a server or a
// set of workers on several hosts can share them.
//
// Both open a pool on a DSN, a URL (postgres://user:pass@host:5432/db) or
// key=value pairs (host=… user=… dbname=…) as libpq reads them; pgxpool's
// own settings (pool_max_conns, …) may be given in it. Their tables live in
// one schema (Config.Schema, "pirn" by default), created if missing, which
// they set as the connections' search_path. The schema is versioned: each
// component (the history, the store) has a row in schema_versions, and
// Open applies the missing steps of its embedded migrations in one
// transaction, under an advisory lock, so that processes opening a new
// database at once are safe; a database written by a newer pirn is refused.
//
// A DSN's password is never printed: every error that names a DSN names
// [Redact]'s form of it, and pgx's own errors leave it out.
//
// Operations that fail because the connection to the server was lost (the
// server restarted, an administrator ended the session, the network
// dropped) are retried with backoff for up to [RetryFor]; each operation is
// idempotent (recording a run again replaces it), so a retry after a lost
// commit is harmless. Other errors are returned at once.
//
// Runs in progress are tracked with session-level advisory locks, which
// PostgreSQL holds only while the session lives; see [History.StartRun].
// They need a direct connection to the server, or a pooler in session
// mode: a pooler in transaction mode (pgbouncer's default) loses them.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultSchema is the schema used when Config.Schema is empty.
const DefaultSchema = "pirn"

// RetryFor is how long an operation that lost its connection is retried.
const RetryFor = 10 * time.Second

// connect opens a pool on dsn whose connections use schema, and checks
// that the server answers. Its errors do not name the DSN.
func connect(ctx context.Context, dsn, schema string) (*pgxpool.Pool, error) {
	if dsn == "" {
		return nil, errors.New("DSN is empty")
	}
	pc, err := pgxpool.ParseConfig(dsn) // its errors redact the password
	if err != nil {
		return nil, err
	}
	// The schema may not exist yet: a search_path naming a missing
	// schema is valid, and the migration creates it.
	pc.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	if pc.ConnConfig.RuntimeParams["application_name"] == "" {
		pc.ConnConfig.RuntimeParams["application_name"] = "pirn"
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// lockKey is the advisory lock key of a name: 64 bits of its FNV-1a hash.
// The parts are separated by a zero byte.
func lockKey(parts ...string) int64 {
	h := fnv.New64a()
	for _, p := range parts {
		io.WriteString(h, p)
		h.Write([]byte{0})
	}
	return int64(h.Sum64())
}

// transient reports whether err means the connection was lost or the
// server is going away or starting: an operation that failed so may be
// tried again on another connection.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "57P01", "57P02", "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
			return true
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return true
		}
		return strings.HasPrefix(pe.Code, "08") // connection exceptions
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, pgconn.ErrConnClosed) // the socket went away mid-flight: not "safe to retry" to pgx, but every operation here is idempotent
}

// retry calls f until it succeeds, fails with an error that is not
// transient, ctx ends or RetryFor has passed, waiting 25 ms, 50 ms, … up
// to 1 s between attempts.
func retry(ctx context.Context, f func(context.Context) error) error {
	deadline := time.Now().Add(RetryFor)
	for delay := 25 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		err := f(ctx)
		if err == nil || !transient(err) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (stopped retrying: %w)", err, context.Cause(ctx))
		}
		if time.Now().Add(delay).After(deadline) {
			return fmt.Errorf("connection lost, gave up after retrying for %v: %w", RetryFor, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (stopped retrying: %w)", err, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// redacted replaces a secret in Redact's result.
const redacted = "xxxxx"

// Redact returns dsn with every password replaced by "xxxxx": the
// password of a URL's user information, and the value of every parameter
// whose name contains "password" (password, sslpassword), in URL query
// form or key=value form. A URL that does not parse keeps only what
// follows its last '@', without a query; key=value text that does not
// parse is replaced whole; a URL's fragment, which no driver reads, is
// dropped. Use it wherever a DSN is printed or logged.
func Redact(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return redactURL(dsn)
	}
	return redactKeyValue(dsn)
}

// secretKey reports whether a connection parameter holds a secret.
func secretKey(k string) bool { return strings.Contains(strings.ToLower(k), "password") }

func redactURL(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		scheme, rest, _ := strings.Cut(dsn, "://")
		if i := strings.LastIndexByte(rest, '@'); i >= 0 {
			rest = redacted + "@" + rest[i+1:]
		}
		rest, _, _ = strings.Cut(rest, "?")
		return scheme + "://" + rest
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			key, _, _ := strings.Cut(p, "=")
			k, err := url.QueryUnescape(key)
			if err != nil {
				k = key
			}
			if secretKey(k) {
				parts[i] = key + "=" + redacted
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	u.Fragment, u.RawFragment = "", "" // not part of a DSN
	return u.Redacted()                // the user information's password
}

// redactKeyValue redacts a DSN of key=value pairs separated by white
// space, where a value is a run of non-space characters or is quoted
// ('…'), and a backslash escapes the next character in either.
func redactKeyValue(s string) string {
	var b strings.Builder
	space := func(i int) int {
		for i < len(s) && strings.IndexByte(" \t\n\r\v\f", s[i]) >= 0 {
			i++
		}
		return i
	}
	for i := 0; ; {
		j := space(i)
		b.WriteString(s[i:j])
		if i = j; i == len(s) {
			return b.String()
		}
		eq := strings.IndexByte(s[i:], '=')
		if eq <= 0 {
			return "(key=value DSN that does not parse; redacted)"
		}
		key := strings.TrimRight(s[i:i+eq], " \t\n\r\v\f")
		if strings.ContainsAny(key, " \t\n\r\v\f'\\") {
			return "(key=value DSN that does not parse; redacted)"
		}
		start := space(i + eq + 1)
		end := start
		if end < len(s) && s[end] == '\'' {
			for end++; end < len(s) && s[end] != '\''; end++ {
				if s[end] == '\\' {
					end++
				}
			}
			if end >= len(s) {
				return "(key=value DSN that does not parse; redacted)"
			}
			end++ // the closing quote
		} else {
			for ; end < len(s) && strings.IndexByte(" \t\n\r\v\f", s[end]) < 0; end++ {
				if s[end] == '\\' {
					end++
				}
			}
			end = min(end, len(s))
		}
		b.WriteString(s[i:start])
		if secretKey(key) {
			b.WriteString(redacted)
		} else {
			b.WriteString(s[start:end])
		}
		i = end
	}
}
