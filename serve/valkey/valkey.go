// Package valkey connects pirn serve to Valkey (or Redis): a trigger and
// a streaming source on a stream read in a consumer group (XREADGROUP,
// XACK once the run is recorded: at-least-once) or on a pub/sub channel
// (at-most-once), and an emitter that appends events to a capped stream
// (XADD MAXLEN ~) or publishes them. The types register as "valkey" in
// serve.Triggers, serve.Sources and emit.Emitters.
package valkey

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/serve/internal/messaging"
)

// Type is the name the kinds register under.
const Type = "valkey"

// Conn is how an entry reaches the server.
type Conn struct {
	// URL is redis://[user[:password]@]host:port[/db] (rediss:// for
	// TLS); default redis://127.0.0.1:6379. Errors and logs show it with
	// its password hidden.
	URL string `json:"url,omitempty"`
	// Password, if set, is read from an environment variable or a file
	// and wins over the URL's.
	Password *messaging.Secret `json:"password,omitempty"`
	TLS      *messaging.TLS    `json:"tls,omitempty"`
	// MaxBackoff bounds the wait between retries of a failed connection
	// or read (10s if 0; the first wait is 100ms).
	MaxBackoff emit.Duration `json:"max_backoff,omitempty"`
}

const defaultURL = "redis://127.0.0.1:6379"

func (c *Conn) url() string { return messaging.Redact(cmp.Or(c.URL, defaultURL)) }

// open connects. valkey-go connects at once, so a server that is not
// there is an error here.
func (c *Conn) open() (valkey.Client, error) {
	if c.MaxBackoff < 0 {
		return nil, errors.New("valkey: max_backoff must not be negative")
	}
	opt, err := valkey.ParseURL(cmp.Or(c.URL, defaultURL))
	if err != nil {
		return nil, fmt.Errorf("valkey %s: %w", c.url(), err)
	}
	pw, err := c.Password.Value("valkey password")
	if err != nil {
		return nil, err
	}
	if pw != "" {
		opt.Password = pw
	}
	tc, err := c.TLS.Config()
	if err != nil {
		return nil, fmt.Errorf("valkey: %w", err)
	}
	if tc != nil {
		opt.TLSConfig = tc
	}
	backoff := c.backoff()
	opt.DisableCache = true // no client-side caching (CLIENT TRACKING) is needed
	opt.RetryDelay = func(attempts int, _ valkey.Completed, _ error) time.Duration { return backoff(attempts + 1) }
	cl, err := valkey.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("valkey %s: %w", c.url(), err)
	}
	return cl, nil
}

func (c *Conn) backoff() func(int) time.Duration {
	return messaging.Backoff(0, time.Duration(c.MaxBackoff))
}
