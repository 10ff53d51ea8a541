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
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
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

// options returns the client options Conn sets.
func (c *Conn) options() ([]kgo.Opt, error) {
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
