// Package valkey is a [cas.Store] on a Valkey or Redis server, through the
// valkey-go client: a data store several processes and hosts can share.
//
// A value with digest sha256:abcd… is the string key Prefix+"sha256:abcd…"
// (by default "pirn:v:sha256:abcd…"), so a digest copied from pirn's output
// finds its value with redis-cli. Put is SET … NX: a value that exists is
// never rewritten. Get re-hashes what it reads. With a TTL every value
// expires that long after the last Put of its digest.
//
// Concurrent calls share a few connections and are pipelined by the client
// (many commands per network round trip), so writers that run in parallel
// (the scheduler's StoreWriters) are batched without asking; [Store.PutMany]
// sends a batch in one round trip from one goroutine. After a connection
// error every operation, writes included (all are idempotent), is retried
// on a new connection for a few seconds before it fails.
//
// Values are not cached in the process (valkey-go's client-side caching):
// a read after a Delete could be served from the cache, and pirn does not
// read a value twice on any path that would gain; docs/rationale.md has
// the measurements.
package valkey

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/pirn-wasm/pirn/cas"
)

// DefaultPrefix is the key prefix of a Config without one.
const DefaultPrefix = "pirn:v:"

// Config configures [Open].
type Config struct {
	// URL names the server: valkey://[user:password@]host[:port][/db]
	// (redis:// is the same; valkeys:// and rediss:// use TLS). The port
	// defaults to 6379 and the database number to 0. Query parameters
	// are valkey-go's (for example dial_timeout=2s). Required.
	URL string
	// Prefix starts every key; "" means [DefaultPrefix]. Stores with
	// different prefixes share a database without seeing each other's
	// values.
	Prefix string
	// TTL, when positive, makes each value expire TTL after the last Put
	// of its digest (millisecond resolution); 0 keeps values until they
	// are deleted.
	TTL time.Duration
}

// Store is a [cas.Store] on a Valkey or Redis server. It is safe for
// concurrent use; concurrent calls are pipelined on shared connections.
// Errors that name the server name it by its URL with the password
// replaced by "xxxxx".
type Store struct {
	c      valkey.Client
	prefix string
	ttl    int64  // milliseconds; 0 for none
	url    string // redacted
}

var _ cas.Store = (*Store)(nil)

// Open connects to the server cfg.URL names and returns a store on it. An
// unreachable server, a refused password or a bad database number is an
// error naming the URL (redacted). A done ctx fails at once; ctx's
// deadline, if sooner than the dial timeout (5 s, or the URL's
// dial_timeout), becomes the dial timeout of this and later connections.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.URL == "" {
		return nil, errors.New("valkey: Config.URL is empty")
	}
	shown := Redact(cfg.URL)
	u, err := url.Parse(cfg.URL)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error repeats the URL, password and all
		}
		return nil, fmt.Errorf("valkey: parse URL %s: %w", shown, err)
	}
	switch u.Scheme {
	case "valkey", "valkeys", "redis", "rediss":
	default:
		return nil, fmt.Errorf("valkey: URL %s: scheme %q, want valkey, valkeys, redis or rediss", shown, u.Scheme)
	}
	if cfg.TTL < 0 || (cfg.TTL > 0 && cfg.TTL < time.Millisecond) {
		return nil, fmt.Errorf("valkey: TTL = %v, want 0 or at least 1ms", cfg.TTL)
	}
	opt, err := valkey.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("valkey: URL %s: %w", shown, err)
	}
	opt.ClientName = cmp.Or(opt.ClientName, "pirn")
	opt.RetryDelay = retryDelay
	// Values are not cached client-side (docs/rationale.md), so the server
	// need not track the keys this client reads.
	opt.DisableCache = true
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return nil, fmt.Errorf("valkey: open %s: %w", shown, context.DeadlineExceeded)
		}
		if opt.Dialer.Timeout == 0 || left < opt.Dialer.Timeout {
			opt.Dialer.Timeout = left
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("valkey: open %s: %w", shown, err)
	}
	c, err := valkey.NewClient(opt) // dials, authenticates and selects the database
	if err != nil {
		return nil, fmt.Errorf("valkey: open %s: %w", shown, err)
	}
	return &Store{
		c:      c,
		prefix: cmp.Or(cfg.Prefix, DefaultPrefix),
		ttl:    cfg.TTL.Milliseconds(),
		url:    shown,
	}, nil
}

// Retries after a connection error: reads, and writes (all of them
// idempotent here, and marked so), are retried on a new connection at most
// maxRetries times with exponential backoff and jitter, about 4 s in all,
// or until the caller's context is done. valkey-go's default retries
// forever, which would hang a caller with a context that is never done
// while the server is gone.
const (
	maxRetries    = 10
	firstRetry    = 10 * time.Millisecond
	maxRetryDelay = time.Second
)

func retryDelay(attempt int, _ valkey.Completed, _ error) time.Duration {
	if attempt > maxRetries {
		return -1 // give up
	}
	d := min(maxRetryDelay, firstRetry<<(attempt-1))
	return d/2 + rand.N(d/2+1)
}

// Close closes the store's connections, waiting for commands in flight.
// Calls after Close fail.
func (s *Store) Close() error {
	s.c.Close()
	return nil
}

func (s *Store) key(d cas.Digest) string { return s.prefix + d.String() }

// errorf wraps err, from an operation on d, with the operation and the
// server's (redacted) URL.
func (s *Store) errorf(op string, d cas.Digest, err error) error {
	return fmt.Errorf("valkey: %s %s at %s: %w", op, d, s.url, err)
}

// setCmds appends the commands that put v: SET NX, and with a TTL an
// expiry that only ever moves later (PEXPIRE GT leaves a value without
// expiry alone), so that putting an existing value extends its life. Both
// are idempotent, so valkey-go may retry them after a connection error.
func (s *Store) setCmds(cmds valkey.Commands, d cas.Digest, b []byte) valkey.Commands {
	k := s.key(d)
	set := s.c.B().Set().Key(k).Value(valkey.BinaryString(b)).Nx()
	if s.ttl == 0 {
		return append(cmds, set.Build().ToRetryable())
	}
	return append(cmds,
		set.PxMilliseconds(s.ttl).Build().ToRetryable(),
		s.c.B().Pexpire().Key(k).Milliseconds(s.ttl).Gt().Build().ToRetryable())
}

// owned returns b, or a copy of b when ctx can be cancelled: a command whose
// caller gave up is still written later, from the slice it was built with,
// and by then the caller may have reused its slice.
func owned(ctx context.Context, b []byte) []byte {
	if ctx.Done() == nil {
		return b
	}
	return slices.Clone(b)
}

// Put implements [cas.Store]. Putting a digest that is present leaves its
// bytes alone and, with a TTL, restarts its TTL. b is not retained after
// Put returns.
func (s *Store) Put(ctx context.Context, d cas.Digest, b []byte) error {
	if err := ctx.Err(); err != nil {
		return s.errorf("put", d, err)
	}
	var cmds [2]valkey.Completed
	set := s.setCmds(cmds[:0], d, owned(ctx, b))
	var err error
	if len(set) == 1 {
		err = s.c.Do(ctx, set[0]).Error()
	} else {
		for _, r := range s.c.DoMulti(ctx, set...) {
			if err = r.Error(); err != nil && !valkey.IsValkeyNil(err) {
				break
			}
		}
	}
	if err != nil && !valkey.IsValkeyNil(err) { // nil: NX found the value
		return s.errorf("put", d, err)
	}
	return nil
}

// PutMany puts each of vs, as [Store.Put] does, sending all the commands
// in one pipelined batch: one network round trip from one goroutine,
// where Put needs concurrent callers to batch. It returns an error if any
// put failed, naming the first failure and how many there were; the others
// are stored. vs's bytes are not retained.
func (s *Store) PutMany(ctx context.Context, vs []cas.Value) error {
	if len(vs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("valkey: put %d values at %s: %w", len(vs), s.url, err)
	}
	per := 1
	if s.ttl != 0 {
		per = 2
	}
	cmds := make(valkey.Commands, 0, per*len(vs))
	for _, v := range vs {
		cmds = s.setCmds(cmds, v.Digest, owned(ctx, v.Bytes))
	}
	res := s.c.DoMulti(ctx, cmds...)
	var first error
	failed := 0
	for i, v := range vs {
		for _, r := range res[i*per : (i+1)*per] {
			if err := r.Error(); err != nil && !valkey.IsValkeyNil(err) {
				if first == nil {
					first = s.errorf("put", v.Digest, err)
				}
				failed++
				break
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d puts failed; first: %w", failed, len(vs), first)
	}
	return nil
}

// Get implements [cas.Store]. Bytes that do not hash to d give an error
// wrapping [cas.ErrCorrupt].
func (s *Store) Get(ctx context.Context, d cas.Digest) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, s.errorf("get", d, err)
	}
	str, err := s.c.Do(ctx, s.c.B().Get().Key(s.key(d)).Build()).ToString()
	if valkey.IsValkeyNil(err) {
		return nil, fmt.Errorf("valkey: get %s: %w", d, cas.ErrNotFound)
	}
	if err != nil {
		return nil, s.errorf("get", d, err)
	}
	b := []byte(str) // the caller owns it
	if cas.Sum(b) != d {
		return nil, fmt.Errorf("valkey: get %s: key %s at %s: %w", d, s.key(d), s.url, cas.ErrCorrupt)
	}
	return b, nil
}

// Has implements [cas.Store].
func (s *Store) Has(ctx context.Context, d cas.Digest) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, s.errorf("has", d, err)
	}
	n, err := s.c.Do(ctx, s.c.B().Exists().Key(s.key(d)).Build()).AsInt64()
	if err != nil {
		return false, s.errorf("has", d, err)
	}
	return n > 0, nil
}

// Delete implements [cas.Store]. The server frees the value's memory in
// the background (UNLINK).
func (s *Store) Delete(ctx context.Context, d cas.Digest) error {
	if err := ctx.Err(); err != nil {
		return s.errorf("delete", d, err)
	}
	if err := s.c.Do(ctx, s.c.B().Unlink().Key(s.key(d)).Build().ToRetryable()).Error(); err != nil {
		return s.errorf("delete", d, err)
	}
	return nil
}

// Redact returns rawURL with its password, if any, replaced by "xxxxx", as
// [url.URL.Redacted] does. A URL that does not parse loses everything
// between the first ':' after "//" and the last '@'.
func Redact(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil {
		return u.Redacted()
	}
	_, rest, ok := strings.Cut(rawURL, "//")
	if !ok {
		return rawURL
	}
	at := strings.LastIndex(rest, "@")
	colon := strings.Index(rest, ":")
	if at < 0 || colon < 0 || colon > at {
		return rawURL
	}
	start := len(rawURL) - len(rest)
	return rawURL[:start+colon+1] + "xxxxx" + rawURL[start+at:]
}
