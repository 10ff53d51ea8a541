// Package kafka connects pirn serve to Kafka: a trigger and a streaming
// source that consume a topic in a consumer group and commit a message's
// offset only after the run it started is recorded (at-least-once; the
// run is named after the message, so a redelivery finds it recorded), and
// an emitter that produces one JSON message per event, keyed by run id.
// The types register as "kafka" in serve.Triggers, serve.Sources and
// emit.Emitters.
package kafka

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/serve/internal/messaging"
)

// Type is the name the kinds register under.
const Type = "kafka"

// Conn is how an entry reaches the cluster.
type Conn struct {
	// Brokers are the seed brokers, "host:port".
	Brokers  []string       `json:"brokers"`
	ClientID string         `json:"client_id,omitempty"` // default "pirn"
	SASL     *SASL          `json:"sasl,omitempty"`
	TLS      *messaging.TLS `json:"tls,omitempty"`
	// MinBackoff and MaxBackoff bound the wait between retries of a
	// failed request or connection (100ms and 10s if 0).
	MinBackoff emit.Duration `json:"min_backoff,omitempty"`
	MaxBackoff emit.Duration `json:"max_backoff,omitempty"`
}

// SASL authenticates the client; the password is read from an
// environment variable or a file.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string           `json:"mechanism"`
	User      string           `json:"user"`
	Password  messaging.Secret `json:"password"`
}

// brokers returns the brokers for messages, their credentials hidden.
func (c *Conn) brokers() string { return messaging.Redact(strings.Join(c.Brokers, ",")) }

// options returns the client options Conn sets; the client's own
// warnings and errors go to log.
func (c *Conn) options(log *slog.Logger) ([]kgo.Opt, error) {
	if len(c.Brokers) == 0 {
		return nil, errors.New("kafka: brokers is empty")
	}
	if c.MinBackoff < 0 || c.MaxBackoff < 0 {
		return nil, errors.New("kafka: min_backoff and max_backoff must not be negative")
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(cmp.Or(c.ClientID, "pirn")),
		kgo.RetryBackoffFn(messaging.Backoff(time.Duration(c.MinBackoff), time.Duration(c.MaxBackoff))),
	}
	cl := clientLog{messaging.NewBadLog(cmp.Or(log, slog.New(slog.DiscardHandler)))}
	opts = append(opts, kgo.WithLogger(cl), kgo.WithHooks(cl))
	tc, err := c.TLS.Config()
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if c.SASL != nil {
		m, err := c.SASL.mechanism()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// clientLog passes the Kafka client's warnings and errors to a log, at a
// bounded rate: a broker that cannot be reached, a TLS handshake or a SASL
// authentication that fails. The client retries these for ever, so
// without them a wrong password or certificate would only look like
// silence.
type clientLog struct{ bad *messaging.BadLog }

var (
	_ kgo.Logger         = clientLog{}
	_ kgo.HookBrokerRead = clientLog{}
)

func (clientLog) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l clientLog) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if level == kgo.LogLevelNone || level > kgo.LogLevelWarn {
		return
	}
	err := errors.New(msg)
	labels := map[string]string{}
	for i := 0; i+1 < len(keyvals); i += 2 {
		k := fmt.Sprint(keyvals[i])
		if e, ok := keyvals[i+1].(error); ok && k == "err" {
			err = fmt.Errorf("%s: %w", msg, e)
			continue
		}
		labels[k] = messaging.Label(fmt.Sprint(keyvals[i+1]))
	}
	l.bad.Log("kafka client", err, labels)
}

// OnBrokerRead notes a SASL authentication the broker answered by
// closing the connection, as some brokers do for a wrong user or
// password (others answer with an error, which the client logs).
func (l clientLog) OnBrokerRead(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err == nil || key != int16(kmsg.SASLAuthenticate) {
		return
	}
	l.bad.Log("kafka client", fmt.Errorf("SASL authentication failed (a wrong user, password or mechanism?): %w", err),
		map[string]string{"broker": messaging.Label(fmt.Sprintf("%s:%d", meta.Host, meta.Port))})
}

func (s *SASL) mechanism() (sasl.Mechanism, error) {
	pw, err := s.Password.Value("kafka sasl password")
	if err != nil {
		return nil, err
	}
	switch strings.ToUpper(s.Mechanism) {
	case "PLAIN":
		return plain.Auth{User: s.User, Pass: pw}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: s.User, Pass: pw}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: s.User, Pass: pw}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("kafka: sasl mechanism %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", messaging.Label(s.Mechanism))
}
