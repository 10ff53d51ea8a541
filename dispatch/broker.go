// Package dispatch runs knot invocations in other processes: `pirn worker`
// processes that pull them from a NATS JetStream work queue, read their
// modules and inputs from a shared data store by digest, and publish
// their results back.
//
// A [Coordinator] is the scheduler's [scheduler.Remote]: for each module
// knot the run makes ready (a Map's elements included) it puts the inputs
// in the data store, publishes a [Job] naming them by digest, and waits
// for its [Result]. A [Worker] pulls jobs for its free slots only, sends
// InProgress heartbeats while a knot runs, and acks a job only after its
// output is in the store and its result is published. Everything about
// the run itself (policies, skips, records) stays with the coordinator's
// scheduler, so a run gives the same outcomes and digests as a local one.
//
// What lives on the broker, under a prefix ("pirn" by default):
//
//	stream PIRN_JOBS     pirn.job.<pool>.<run>.<key>   work queue, file storage,
//	                                                   one durable consumer per pool
//	stream PIRN_RESULTS  pirn.result.<run>.<key>       results, kept 7 days: the memo
//	                                                   that makes a redelivered job
//	                                                   (or a resumed run) not run again
//	KV pirn-workers      <worker id>                   live workers, refreshed each second
//	KV pirn-runs         <run>                         a run's request and state
//	subject pirn.cancel.<run>                          cancels the run's jobs in flight
//
// A job's key is the SHA-256 of its canonical encoding: the run, the
// knot's id, the module's digest and every setting of the invocation,
// and the digests of its inputs and configuration. Idempotency comes from
// the results stream, looked up by key before a job runs, not from
// JetStream's duplicate window (which a broker restart forgets).
package dispatch

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	neturl "net/url"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config says how to reach the broker and how its objects are named and
// configured. Coordinators and workers of one deployment must agree on
// Prefix; the last to start sets the pool consumer's AckWait and
// MaxDeliver.
type Config struct {
	// URL is the NATS server: nats://host:port, several separated by
	// commas; tls://host:port requires TLS. A user and password in the URL
	// are used, and redacted in every message.
	URL string
	// Credentials, each optional: a creds file (a user JWT and its nkey
	// seed, as nsc writes them), a file holding an nkey seed, a user and
	// password, or a token.
	Creds, NKey, User, Password, Token string
	// CA is a PEM file of the authorities that sign the server's
	// certificate; Cert and Key are the client's certificate for servers
	// that require one. Any of them turns TLS on.
	CA, Cert, Key string
	// Prefix names the subjects, streams and buckets ("" means "pirn"):
	// several deployments can share a server under different prefixes.
	Prefix string
	// AckWait is how long a job may go without an ack or heartbeat before
	// the broker gives it to another worker: the time to recover a job
	// whose worker died (default 10s; workers heartbeat every third of
	// it).
	AckWait time.Duration
	// MaxDeliver bounds the deliveries of a job (default 5). A job
	// delivered for the last time is not run again: its result is an err
	// (ErrWorkerLost), so a knot that kills its worker every time ends.
	MaxDeliver int
	// ConnectTimeout bounds the first connection (default 5s).
	ConnectTimeout time.Duration
	// Name is the connection's name, shown by the server's monitoring.
	Name string
	// Logger receives connection events and warnings; nil discards.
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultPrefix     = "pirn"
	DefaultPool       = "default"
	DefaultAckWait    = 10 * time.Second
	DefaultMaxDeliver = 5
)

// Bounds on what crosses the broker.
const (
	// MaxJob is the largest job message: a job names values by digest,
	// so only a knot with very many inputs or grants comes near it.
	MaxJob = 64 << 10
	// MaxResult is the largest result message: an error's text is
	// clipped to abi's bounds (about 100 KiB at most).
	MaxResult = 256 << 10
	// MaxRunRecord is the largest run request kept for pirn resume.
	MaxRunRecord = 1 << 20
	// MaxQueued bounds the jobs waiting in the stream; beyond it a
	// publish is refused and the coordinator waits and retries.
	MaxQueued = 1 << 20
	// MaxStreamBytes bounds each of the jobs and results streams on the
	// broker's disk (the runs bucket takes a quarter of it); the oldest
	// results go first.
	MaxStreamBytes = 256 << 20
)

var namePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidName reports whether s may name a pool or a prefix: 1 to 64 of
// A-Z a-z 0-9 _ -.
func ValidName(s string) bool { return namePattern.MatchString(s) }

func (c Config) withDefaults() (Config, error) {
	c.Prefix = cmp.Or(c.Prefix, DefaultPrefix)
	c.AckWait = cmp.Or(c.AckWait, DefaultAckWait)
	c.MaxDeliver = cmp.Or(c.MaxDeliver, DefaultMaxDeliver)
	c.ConnectTimeout = cmp.Or(c.ConnectTimeout, 5*time.Second)
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	switch {
	case c.URL == "":
		return c, errors.New("dispatch: no NATS URL")
	case !ValidName(c.Prefix):
		return c, fmt.Errorf("dispatch: prefix %q is invalid (1 to 64 of A-Z a-z 0-9 _ -)", c.Prefix)
	case c.AckWait < 100*time.Millisecond:
		return c, fmt.Errorf("dispatch: ack wait %v is under 100ms", c.AckWait)
	case c.MaxDeliver < 2:
		return c, fmt.Errorf("dispatch: max deliveries %d is under 2", c.MaxDeliver)
	case (c.Cert == "") != (c.Key == ""):
		return c, errors.New("dispatch: a client certificate needs both its certificate file and its key file")
	}
	return c, nil
}

// Broker is a connection to NATS with pirn's streams and buckets.
type Broker struct {
	cfg     Config
	nc      *nats.Conn
	js      jetstream.JetStream
	jobs    jetstream.Stream
	results jetstream.Stream
	workers jetstream.KeyValue
	runs    jetstream.KeyValue
}

// Redact returns url with any password or token replaced by "xxxxx".
// Like the NATS client, it takes a URL without a scheme as nats://.
func Redact(url string) string {
	var out []string
	for u := range strings.SplitSeq(url, ",") {
		i := 0
		if s := strings.Index(u, "://"); s >= 0 {
			i = s + 3
		}
		if j := strings.LastIndex(u[i:], "@"); j >= 0 {
			cred := u[i : i+j]
			if k := strings.Index(cred, ":"); k >= 0 {
				cred = cred[:k] + ":xxxxx"
			} else {
				cred = "xxxxx"
			}
			u = u[:i] + cred + u[i+j:]
		}
		out = append(out, u)
	}
	return strings.Join(out, ",")
}

// Connect connects to the broker and creates or updates pirn's streams
// and buckets.
func Connect(ctx context.Context, cfg Config) (*Broker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	lg := cfg.Logger
	opts := []nats.Option{
		nats.Name(cmp.Or(cfg.Name, "pirn")),
		nats.Timeout(cfg.ConnectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err == nil {
				return // closed on purpose
			}
			lg.Warn("lost the connection to NATS; reconnecting", "url", Redact(cfg.URL), "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { lg.Info("reconnected to NATS", "url", Redact(nc.ConnectedUrl())) }),
	}
	if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	if cfg.NKey != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NKey)
		if err != nil {
			return nil, fmt.Errorf("dispatch: nkey seed file %s: %w", cfg.NKey, err)
		}
		opts = append(opts, o)
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.CA != "" {
		opts = append(opts, nats.RootCAs(cfg.CA))
	}
	if cfg.Cert != "" || cfg.Key != "" {
		opts = append(opts, nats.ClientCert(cfg.Cert, cfg.Key))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		if ue, ok := errors.AsType[*neturl.Error](err); ok {
			ue.URL = Redact(ue.URL) // a URL that does not parse is quoted whole
		}
		return nil, fmt.Errorf("dispatch: connect to NATS at %s: %w", Redact(cfg.URL), err)
	}
	b := &Broker{cfg: cfg, nc: nc}
	if err := b.setup(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("dispatch: NATS at %s: %w", Redact(cfg.URL), err)
	}
	return b, nil
}

func (b *Broker) setup(ctx context.Context) error {
	var err error
	if b.js, err = jetstream.New(b.nc); err != nil {
		return err
	}
	p := b.cfg.Prefix
	up := strings.ToUpper(p)
	b.jobs, err = b.stream(ctx, jetstream.StreamConfig{
		Name: up + "_JOBS", Subjects: []string{p + ".job.>"}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Discard: jetstream.DiscardNew, MaxMsgs: MaxQueued, MaxBytes: MaxStreamBytes,
		MaxMsgSize: MaxJob, Duplicates: 2 * time.Minute,
	})
	if err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
			return fmt.Errorf("JetStream is not enabled on the server (start nats-server with -js): %w", err)
		}
		return fmt.Errorf("create stream %s_JOBS: %w", up, err)
	}
	b.results, err = b.stream(ctx, jetstream.StreamConfig{
		Name: up + "_RESULTS", Subjects: []string{p + ".result.>"}, Retention: jetstream.LimitsPolicy,
		Storage: jetstream.FileStorage, Discard: jetstream.DiscardOld, MaxAge: 7 * 24 * time.Hour, MaxBytes: MaxStreamBytes,
		MaxMsgSize: MaxResult, Duplicates: 2 * time.Minute,
		// Workers look a job's key up before running it: a direct get is
		// one light request, not the stream API's.
		AllowDirect: true,
	})
	if err != nil {
		return fmt.Errorf("create stream %s_RESULTS: %w", up, err)
	}
	b.workers, err = b.bucket(ctx, jetstream.KeyValueConfig{
		Bucket: p + "-workers", TTL: workerTTL, MaxValueSize: 4 << 10, Storage: jetstream.MemoryStorage,
		Description: "live pirn workers",
	})
	if err != nil {
		return fmt.Errorf("create bucket %s-workers: %w", p, err)
	}
	b.runs, err = b.bucket(ctx, jetstream.KeyValueConfig{
		Bucket: p + "-runs", TTL: 7 * 24 * time.Hour, MaxValueSize: MaxRunRecord, MaxBytes: MaxStreamBytes / 4,
		Storage: jetstream.FileStorage, Description: "pirn runs dispatched to workers",
	})
	if err != nil {
		return fmt.Errorf("create bucket %s-runs: %w", p, err)
	}
	return nil
}

// stream creates a stream, or updates it if it exists with another
// configuration. (Creating one that exists with the same configuration
// changes nothing; an update while another client adds a consumer races
// in nats-server 2.15's file store.)
func (b *Broker) stream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := b.js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return b.js.UpdateStream(ctx, cfg)
	}
	return s, err
}

// bucket creates a key-value bucket, or updates it as stream does.
func (b *Broker) bucket(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := b.js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		return b.js.UpdateKeyValue(ctx, cfg)
	}
	return kv, err
}

// consumer creates or updates the pool's durable consumer.
func (b *Broker) consumer(ctx context.Context, pool string) (jetstream.Consumer, error) {
	c, err := b.jobs.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: b.consumerName(pool), FilterSubject: b.cfg.Prefix + ".job." + pool + ".>",
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: b.cfg.AckWait, MaxDeliver: b.cfg.MaxDeliver,
		MaxAckPending: 1024, DeliverPolicy: jetstream.DeliverAllPolicy,
		Description: "pirn workers of pool " + pool,
	})
	if err != nil {
		return nil, fmt.Errorf("dispatch: consumer of pool %s: %w", pool, err)
	}
	return c, nil
}

func (b *Broker) consumerName(pool string) string { return b.cfg.Prefix + "-" + pool }

// Remove deletes the streams and buckets under the broker's prefix, and
// everything in them.
func (b *Broker) Remove(ctx context.Context) error {
	up := strings.ToUpper(b.cfg.Prefix)
	return errors.Join(b.js.DeleteStream(ctx, up+"_JOBS"), b.js.DeleteStream(ctx, up+"_RESULTS"),
		b.js.DeleteKeyValue(ctx, b.cfg.Prefix+"-workers"), b.js.DeleteKeyValue(ctx, b.cfg.Prefix+"-runs"))
}

// Close closes the connection.
func (b *Broker) Close() { b.nc.Close() }

// Subjects.
func (b *Broker) jobSubject(pool, run, key string) string {
	return b.cfg.Prefix + ".job." + pool + "." + run + "." + key
}
func (b *Broker) resultSubject(run, key string) string {
	return b.cfg.Prefix + ".result." + run + "." + key
}
func (b *Broker) cancelSubject(run string) string { return b.cfg.Prefix + ".cancel." + run }

// published returns the result published under a job's key, if there is
// a readable one: a message there that is not (garbage, another version's,
// another key's) does not make the job done, or the job would never run
// and its run wait for it forever.
func (b *Broker) published(ctx context.Context, tok, key string) (*jetstream.RawStreamMsg, bool) {
	m, err := b.results.GetLastMsgForSubject(ctx, b.resultSubject(tok, key))
	if err != nil {
		return nil, false
	}
	r, err := decodeResult(m.Data)
	return m, err == nil && r.Key == key
}

var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// RunToken is the subject token and bucket key that stand for a run id: the
// id itself when it is a valid token, else "h" and the first 32 hex
// digits of its SHA-256 (run ids may hold '.' and ':').
func RunToken(runID string) string {
	if tokenPattern.MatchString(runID) {
		return runID
	}
	sum := sha256.Sum256([]byte(runID))
	return "h" + hex.EncodeToString(sum[:16])
}
