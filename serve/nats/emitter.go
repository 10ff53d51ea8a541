package nats

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/serve/internal/messaging"
)

// EmitterConfig configures an emitter.
type EmitterConfig struct {
	Conn
	Name string `json:"name,omitempty"` // default "nats"
	// Prefix makes each event's subject <prefix>.<kind>.<run id> (a run
	// id's '.' written '_', so it stays one token); default
	// "pirn.events". Subject, if set, is the one subject of every event.
	Prefix  string `json:"prefix,omitempty"`
	Subject string `json:"subject,omitempty"`
}

// Emitter publishes each event's JSON (core NATS; a stream whose
// subjects take it keeps it).
type Emitter struct {
	cfg EmitterConfig
	nc  *nats.Conn
	bad *messaging.BadLog
}

var _ emit.Emitter = (*Emitter)(nil)

// NewEmitter makes an emitter of an emitters: entry.
func NewEmitter(s emit.Spec) (*Emitter, error) {
	var cfg EmitterConfig
	if err := s.Decode(&cfg); err != nil {
		return nil, err
	}
	return OpenEmitter(cfg, s)
}

// OpenEmitter connects and returns the emitter cfg describes; the spec
// gives its logger.
func OpenEmitter(cfg EmitterConfig, s emit.Spec) (*Emitter, error) {
	cfg.Prefix = cmp.Or(cfg.Prefix, "pirn.events")
	if err := checkSubject(cfg.Prefix, false); err != nil {
		return nil, fmt.Errorf("nats: prefix: %w", err)
	}
	if cfg.Subject != "" {
		if err := checkSubject(cfg.Subject, false); err != nil {
			return nil, fmt.Errorf("nats: %w", err)
		}
	}
	bad := messaging.NewBadLog(logger(s.Logger))
	nc, err := cfg.connect(bad)
	if err != nil {
		return nil, err
	}
	return &Emitter{cfg: cfg, nc: nc, bad: bad}, nil
}

// Name returns the configured name, "nats" by default.
func (e *Emitter) Name() string { return cmp.Or(e.cfg.Name, Type) }

// subject returns ev's subject.
func (e *Emitter) subject(ev *emit.Event) string {
	if e.cfg.Subject != "" {
		return e.cfg.Subject
	}
	return e.cfg.Prefix + "." + string(ev.Kind) + "." + strings.ReplaceAll(cmp.Or(ev.RunID, "_"), ".", "_")
}

// Emit publishes ev; the client buffers it (within the reconnect buffer
// while disconnected), so Emit does not wait for the server.
func (e *Emitter) Emit(ctx context.Context, ev *emit.Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("nats: encode %s event: %w", ev.Kind, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := e.nc.Publish(e.subject(ev), b); err != nil {
		return fmt.Errorf("nats %s: publish: %w", e.cfg.url(), err)
	}
	return nil
}

// Close flushes what the client buffers, within ctx (10 s if it has no
// deadline), and closes.
func (e *Emitter) Close(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok { // the client insists on one
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	err := e.nc.FlushWithContext(ctx)
	e.nc.Close()
	if err != nil {
		return fmt.Errorf("nats %s: flush on close: %w", e.cfg.url(), err)
	}
	return nil
}
