// Package nats connects pirn serve to NATS: a trigger and a streaming
// source on a core subject (at-most-once) or a JetStream durable consumer
// (acknowledged once the run is recorded, kept alive with "in progress"
// while it goes: at-least-once), and an emitter that publishes each
// event's JSON. The types register as "nats" in serve.Triggers,
// serve.Sources and emit.Emitters.
package nats

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/serve/internal/messaging"
)

// Type is the name the kinds register under.
const Type = "nats"

// DefaultReconnectBuffer bounds, when the configuration leaves
// reconnect_buffer at 0, what the client holds for the server while it
// reconnects: 8 MiB; past it a publish fails.
const DefaultReconnectBuffer = 8 << 20

// Conn is how an entry reaches the server.
type Conn struct {
	// URL is one server's URL or a comma-separated list
	// (nats://[user:password@]host:4222, tls://…); default
	// nats://127.0.0.1:4222. Errors and logs show it with passwords
	// hidden.
	URL string `json:"url,omitempty"`
	// Creds is a credentials file (a user JWT and its NKey seed).
	Creds string `json:"creds,omitempty"`
	// Token, or User and Password, authenticate otherwise; the secrets
	// are read from an environment variable or a file.
	Token    *messaging.Secret `json:"token,omitempty"`
	User     string            `json:"user,omitempty"`
	Password *messaging.Secret `json:"password,omitempty"`
	TLS      *messaging.TLS    `json:"tls,omitempty"`
	// MaxBackoff bounds the wait between reconnection attempts (10s if
	// 0; the first wait is 100ms). The client reconnects for ever.
	MaxBackoff      emit.Duration `json:"max_backoff,omitempty"`
	ReconnectBuffer int           `json:"reconnect_buffer,omitempty"`
}

const defaultURL = "nats://127.0.0.1:4222"

func (c *Conn) url() string { return messaging.Redact(cmp.Or(c.URL, defaultURL)) }

// connect connects; errors the connection meets later (a slow consumer)
// go to bad.
func (c *Conn) connect(bad *messaging.BadLog) (*nats.Conn, error) {
	if c.MaxBackoff < 0 || c.ReconnectBuffer < 0 {
		return nil, errors.New("nats: max_backoff and reconnect_buffer must not be negative")
	}
	backoff := messaging.Backoff(0, time.Duration(c.MaxBackoff))
	opts := []nats.Option{
		nats.Name("pirn"),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(func(attempts int) time.Duration { return backoff(attempts) }),
		nats.ReconnectBufSize(cmp.Or(c.ReconnectBuffer, DefaultReconnectBuffer)),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			origin := map[string]string{}
			if s != nil {
				origin["subject"] = messaging.Label(s.Subject)
			}
			bad.Log("nats", err, origin)
		}),
	}
	if c.Creds != "" {
		opts = append(opts, nats.UserCredentials(c.Creds))
	}
	tok, err := c.Token.Value("nats token")
	if err != nil {
		return nil, err
	}
	if tok != "" {
		opts = append(opts, nats.Token(tok))
	}
	pw, err := c.Password.Value("nats password")
	if err != nil {
		return nil, err
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, pw))
	}
	tc, err := c.TLS.Config()
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	if tc != nil {
		opts = append(opts, nats.Secure(tc))
	}
	nc, err := nats.Connect(cmp.Or(c.URL, defaultURL), opts...)
	if err != nil {
		return nil, fmt.Errorf("nats %s: %s", c.url(), messaging.Redact(err.Error()))
	}
	return nc, nil
}

// checkSubject checks a subject's tokens: none empty, none with
// whitespace, and wildcards ("*", ">" as a whole token) only where
// wildcards is true.
func checkSubject(s string, wildcards bool) error {
	if s == "" {
		return errors.New("the subject is empty")
	}
	toks := strings.Split(s, ".")
	for i, t := range toks {
		switch {
		case t == "":
			return fmt.Errorf("subject %q has an empty token", messaging.Label(s))
		case strings.ContainsAny(t, " \t\r\n\x00"):
			return fmt.Errorf("subject %q has whitespace", messaging.Label(s))
		case t == "*" || t == ">" && i == len(toks)-1:
			if !wildcards {
				return fmt.Errorf("subject %q has a wildcard; a published subject may not", messaging.Label(s))
			}
		case strings.ContainsAny(t, "*>"):
			return fmt.Errorf("subject %q has a wildcard inside a token", messaging.Label(s))
		}
	}
	return nil
}

// logger returns log, or one that discards.
func logger(log *slog.Logger) *slog.Logger { return cmp.Or(log, slog.New(slog.DiscardHandler)) }
