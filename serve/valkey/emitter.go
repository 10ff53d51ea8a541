package valkey

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/valkey-io/valkey-go"

	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/serve/internal/messaging"
)

// DefaultMaxLen bounds the emitter's stream, when its configuration
// leaves max_len at 0: about this many entries (XADD MAXLEN ~).
const DefaultMaxLen = 100_000

// EmitterConfig configures an emitter.
type EmitterConfig struct {
	Conn
	Name string `json:"name,omitempty"` // default "valkey"
	// Mode is "stream" (the default) or "pubsub".
	Mode string `json:"mode,omitempty"`
	// Stream receives one entry per event, fields "kind", "run_id" and
	// "value" (the event's JSON); default "pirn:events". MaxLen caps it.
	Stream string `json:"stream,omitempty"`
	MaxLen int    `json:"max_len,omitempty"`
	// Channel receives one message per event, its JSON; default
	// "pirn:events".
	Channel string `json:"channel,omitempty"`
}

// Emitter appends each event to a capped stream, or publishes it.
type Emitter struct {
	cfg EmitterConfig
	cl  valkey.Client
}

var _ emit.Emitter = (*Emitter)(nil)

// NewEmitter makes an emitter of an emitters: entry.
func NewEmitter(s emit.Spec) (*Emitter, error) {
	var cfg EmitterConfig
	if err := s.Decode(&cfg); err != nil {
		return nil, err
	}
	return OpenEmitter(cfg)
}

// OpenEmitter connects and returns the emitter cfg describes.
func OpenEmitter(cfg EmitterConfig) (*Emitter, error) {
	if cfg.MaxLen < 0 {
		return nil, errors.New("valkey: max_len must not be negative")
	}
	cfg.MaxLen = cmp.Or(cfg.MaxLen, DefaultMaxLen)
	switch cfg.Mode {
	case "", "stream":
		cfg.Stream = cmp.Or(cfg.Stream, "pirn:events")
	case "pubsub":
		cfg.Channel = cmp.Or(cfg.Channel, "pirn:events")
	default:
		return nil, fmt.Errorf("valkey: mode %q is not stream or pubsub", messaging.Label(cfg.Mode))
	}
	cl, err := cfg.open()
	if err != nil {
		return nil, err
	}
	return &Emitter{cfg: cfg, cl: cl}, nil
}

// Name returns the configured name, "valkey" by default.
func (e *Emitter) Name() string { return cmp.Or(e.cfg.Name, Type) }

// Emit sends ev, within ctx.
func (e *Emitter) Emit(ctx context.Context, ev *emit.Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("valkey: encode %s event: %w", ev.Kind, err)
	}
	var cmd valkey.Completed
	if e.cfg.Mode == "pubsub" {
		cmd = e.cl.B().Publish().Channel(e.cfg.Channel).Message(string(b)).Build()
	} else {
		cmd = e.cl.B().Xadd().Key(e.cfg.Stream).Maxlen().Almost().Threshold(strconv.Itoa(e.cfg.MaxLen)).Id("*").
			FieldValue().FieldValue("kind", string(ev.Kind)).FieldValue("run_id", ev.RunID).FieldValue(defaultField, string(b)).Build()
	}
	if err := e.cl.Do(ctx, cmd).Error(); err != nil {
		return fmt.Errorf("valkey %s: %w", e.cfg.url(), err)
	}
	return nil
}

// Close closes the connection; nothing is buffered.
func (e *Emitter) Close(context.Context) error {
	e.cl.Close()
	return nil
}
