package valkey

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/serve"
	"github.com/pirn-wasm/pirn/serve/internal/messaging"
)

// Bounds of a source, when its configuration leaves them at 0.
const (
	DefaultCount  = 16   // entries one XREADGROUP returns
	DefaultBuffer = 1024 // pub/sub messages waiting for Next; more are dropped
	blockMillis   = 1000 // how long one XREADGROUP waits for new entries
	defaultField  = "value"
)

// SourceConfig configures a source (and the reading part of a trigger).
type SourceConfig struct {
	Conn
	// Mode is "stream" (the default: a consumer group, at-least-once) or
	// "pubsub" (a channel; what arrives while nobody listens, or past
	// the buffer, is lost).
	Mode string `json:"mode,omitempty"`
	// Stream, Group and Consumer name the stream and who reads it.
	// Consumer defaults to the host's name; it must stay the same across
	// restarts for a consumer to take back its own unacknowledged
	// entries.
	Stream   string `json:"stream,omitempty"`
	Group    string `json:"group,omitempty"`
	Consumer string `json:"consumer,omitempty"`
	// Start is where a group created now begins: "0" (the default: the
	// whole stream) or "$" (only new entries).
	Start string `json:"start,omitempty"`
	// Field is the entry field holding the JSON value (default "value").
	Field string `json:"field,omitempty"`
	// ClaimIdle, if set, also takes over on start the entries other
	// consumers of the group left unacknowledged for this long.
	ClaimIdle emit.Duration `json:"claim_idle,omitempty"`
	Count     int           `json:"count,omitempty"`
	// Channel is the pub/sub channel; Buffer bounds its messages waiting
	// for Next.
	Channel string `json:"channel,omitempty"`
	Buffer  int    `json:"buffer,omitempty"`
	// MaxBytes bounds a value (messaging.DefaultMaxBytes if 0); a larger
	// one is logged and skipped.
	MaxBytes int `json:"max_bytes,omitempty"`
	// Pipeline names the entry's pipeline; the server reads it.
	Pipeline string `json:"pipeline,omitempty"`
}

type sourceEntry struct {
	SourceConfig
	Param string `json:"param,omitempty"` // read by the server
}

// NewSource makes a source of a streams: entry.
func NewSource(s emit.Spec) (serve.Source, error) {
	var e sourceEntry
	if err := s.Decode(&e); err != nil {
		return nil, err
	}
	return OpenSource(e.SourceConfig, s.Logger)
}

// OpenSource connects and returns a stream or pub/sub source.
func OpenSource(cfg SourceConfig, log *slog.Logger) (serve.Source, error) {
	log = cmp.Or(log, slog.New(slog.DiscardHandler))
	if cfg.MaxBytes < 0 || cfg.Count < 0 || cfg.Buffer < 0 || cfg.ClaimIdle < 0 {
		return nil, errors.New("valkey: max_bytes, count, buffer and claim_idle must not be negative")
	}
	cfg.MaxBytes = cmp.Or(cfg.MaxBytes, messaging.DefaultMaxBytes)
	cfg.Count = cmp.Or(cfg.Count, DefaultCount)
	cfg.Buffer = cmp.Or(cfg.Buffer, DefaultBuffer)
	cfg.Field = cmp.Or(cfg.Field, defaultField)
	switch cfg.Mode {
	case "", "stream":
		if cfg.Stream == "" || cfg.Group == "" {
			return nil, errors.New("valkey: a stream trigger or source needs stream and group")
		}
		if cfg.Start != "" && cfg.Start != "0" && cfg.Start != "$" {
			return nil, fmt.Errorf("valkey: start %q is not 0 or $", messaging.Label(cfg.Start))
		}
		if cfg.Consumer == "" {
			h, err := os.Hostname()
			if err != nil {
				return nil, fmt.Errorf("valkey: no consumer name given and none from the host: %w", err)
			}
			cfg.Consumer = h
		}
		cl, err := cfg.open()
		if err != nil {
			return nil, err
		}
		return &StreamSource{cfg: cfg, cl: cl, bad: messaging.NewBadLog(log), backoff: cfg.backoff(), cursor: "0"}, nil
	case "pubsub":
		if cfg.Channel == "" {
			return nil, errors.New("valkey: a pubsub trigger or source needs channel")
		}
		cl, err := cfg.open()
		if err != nil {
			return nil, err
		}
		return openPubSub(cfg, cl, log), nil
	}
	return nil, fmt.Errorf("valkey: mode %q is not stream or pubsub", messaging.Label(cfg.Mode))
}

// StreamSource reads a stream in a consumer group. On start it first
// reads again this consumer's entries delivered and never acknowledged
// (before a crash or restart), then, with claim_idle, those other
// consumers left idle, then new entries. Each Item's Ack is an XACK; an
// entry that is deleted, lacks the field, is over the bound or is not
// JSON is logged with its stream and id and acknowledged (so that it is
// not read again forever). Next is called from one goroutine; Ack and
// Close from any.
type StreamSource struct {
	cfg     SourceConfig
	cl      valkey.Client
	bad     *messaging.BadLog
	backoff func(int) time.Duration

	ready  bool   // the group exists
	phase  phase  // what fill reads next
	cursor string // own pending: the last id read; claim: XAUTOCLAIM's cursor
	fails  int    // failed reads in a row
	buf    []valkey.XRangeEntry
	closed sync.Once
}

var _ serve.Source = (*StreamSource)(nil)

type phase uint8

const (
	ownPending phase = iota
	claimIdle
	newEntries
)

// Name returns "valkey:" and the stream.
func (s *StreamSource) Name() string { return "valkey:" + s.cfg.Stream }

// Next returns the next entry's value, decoded from JSON, with its origin
// (stream, id), a run id derived from the stream, group and entry id,
// and its Ack.
func (s *StreamSource) Next(ctx context.Context) (serve.Item, error) {
	for {
		if len(s.buf) > 0 {
			e := s.buf[0]
			s.buf = s.buf[1:]
			if it, ok := s.item(ctx, e); ok {
				return it, nil
			}
			continue
		}
		err := s.fill(ctx)
		if ctx.Err() != nil {
			return serve.Item{}, ctx.Err()
		}
		if err == nil {
			s.fails = 0
			continue
		}
		s.fails++
		s.bad.Log("valkey read failed; retrying", err, map[string]string{"stream": messaging.Label(s.cfg.Stream)})
		t := time.NewTimer(s.backoff(s.fails))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return serve.Item{}, ctx.Err()
		}
	}
}

// fill reads the next entries into buf (none, when a blocking read timed
// out).
func (s *StreamSource) fill(ctx context.Context) error {
	if !s.ready {
		err := s.cl.Do(ctx, s.cl.B().XgroupCreate().Key(s.cfg.Stream).Group(s.cfg.Group).Id(cmp.Or(s.cfg.Start, "0")).Mkstream().Build()).Error()
		if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
			return fmt.Errorf("valkey %s: create group: %w", s.cfg.url(), err)
		}
		s.ready = true
	}
	switch s.phase {
	case ownPending:
		entries, err := s.read(ctx, s.cl.B().Xreadgroup().Group(s.cfg.Group, s.cfg.Consumer).Count(int64(s.cfg.Count)).Streams().Key(s.cfg.Stream).Id(s.cursor).Build())
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			s.phase, s.cursor = claimIdle, "0-0"
			return nil
		}
		s.cursor = entries[len(entries)-1].ID
		s.buf = entries
	case claimIdle:
		if s.cfg.ClaimIdle == 0 {
			s.phase = newEntries
			return nil
		}
		res, err := s.cl.Do(ctx, s.cl.B().Xautoclaim().Key(s.cfg.Stream).Group(s.cfg.Group).Consumer(s.cfg.Consumer).
			MinIdleTime(fmt.Sprint(time.Duration(s.cfg.ClaimIdle).Milliseconds())).Start(s.cursor).Count(int64(s.cfg.Count)).Build()).ToArray()
		if err != nil {
			return fmt.Errorf("valkey %s: XAUTOCLAIM: %w", s.cfg.url(), err)
		}
		if len(res) < 2 {
			return fmt.Errorf("valkey %s: XAUTOCLAIM answered %d elements", s.cfg.url(), len(res))
		}
		next, err := res[0].ToString()
		if err != nil {
			return err
		}
		entries, err := res[1].AsXRange()
		if err != nil {
			return err
		}
		s.cursor, s.buf = next, entries
		if next == "0-0" {
			s.phase = newEntries
		}
	case newEntries:
		entries, err := s.read(ctx, s.cl.B().Xreadgroup().Group(s.cfg.Group, s.cfg.Consumer).Count(int64(s.cfg.Count)).Block(blockMillis).Streams().Key(s.cfg.Stream).Id(">").Build())
		if err != nil {
			return err
		}
		s.buf = entries
	}
	return nil
}

func (s *StreamSource) read(ctx context.Context, cmd valkey.Completed) ([]valkey.XRangeEntry, error) {
	m, err := s.cl.Do(ctx, cmd).AsXRead()
	if valkey.IsValkeyNil(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("valkey %s: XREADGROUP: %w", s.cfg.url(), err)
	}
	return m[s.cfg.Stream], nil
}

// item makes e's Item; a bad entry is logged, acknowledged and false.
func (s *StreamSource) item(ctx context.Context, e valkey.XRangeEntry) (serve.Item, bool) {
	origin := map[string]string{"stream": messaging.Label(s.cfg.Stream), "id": messaging.Label(e.ID)}
	ack := func(ctx context.Context) error {
		if err := s.cl.Do(ctx, s.cl.B().Xack().Key(s.cfg.Stream).Group(s.cfg.Group).Id(e.ID).Build()).Error(); err != nil {
			return fmt.Errorf("valkey %s: XACK %s: %w", s.cfg.url(), messaging.Label(e.ID), err)
		}
		return nil
	}
	body, ok := e.FieldValues[s.cfg.Field]
	var v any
	var err error
	switch {
	case e.FieldValues == nil:
		err = errors.New("the entry was deleted before it was read again")
	case !ok:
		err = fmt.Errorf("the entry has no field %q", messaging.Label(s.cfg.Field))
	default:
		v, err = messaging.Decode([]byte(body), s.cfg.MaxBytes)
	}
	if err != nil {
		s.bad.Log("message skipped", err, origin)
		if err := ack(ctx); err != nil {
			s.bad.Log("acknowledging a skipped message failed", err, origin)
		}
		return serve.Item{}, false
	}
	return serve.Item{Value: v, Origin: origin, Ack: ack,
		ID: messaging.RunID("valkey", s.cfg.Stream, s.cfg.Group, e.ID)}, true
}

// Close closes the connection; entries not acknowledged stay pending for
// this consumer, and are read again when it starts next.
func (s *StreamSource) Close() error {
	s.closed.Do(s.cl.Close)
	return nil
}

// PubSub reads a pub/sub channel: at-most-once. Messages published while
// the source is not subscribed (before it starts, between a lost
// connection and the next, after it closes) are lost, and so are those
// arriving while Buffer messages wait for Next (counted and logged):
// Valkey would otherwise disconnect a slow subscriber. Items have no Ack.
type PubSub struct {
	cfg     SourceConfig
	cl      valkey.Client
	bad     *messaging.BadLog
	msgs    chan string
	dropped atomic.Int64
	cancel  context.CancelFunc
	done    chan struct{}
	closed  sync.Once
}

var _ serve.Source = (*PubSub)(nil)

func openPubSub(cfg SourceConfig, cl valkey.Client, log *slog.Logger) *PubSub {
	ctx, cancel := context.WithCancel(context.Background())
	p := &PubSub{cfg: cfg, cl: cl, bad: messaging.NewBadLog(log), msgs: make(chan string, cfg.Buffer), cancel: cancel, done: make(chan struct{})}
	go p.receive(ctx)
	return p
}

// receive subscribes, again after a lost connection, until ctx ends.
func (p *PubSub) receive(ctx context.Context) {
	defer close(p.done)
	backoff := p.cfg.backoff()
	for fails := 1; ; fails++ {
		err := p.cl.Receive(ctx, p.cl.B().Subscribe().Channel(p.cfg.Channel).Build(), func(m valkey.PubSubMessage) {
			select {
			case p.msgs <- m.Message:
			default:
				p.dropped.Add(1)
			}
		})
		if ctx.Err() != nil {
			return
		}
		p.bad.Log("valkey subscription lost; subscribing again", fmt.Errorf("valkey %s: %w", p.cfg.url(), err), map[string]string{"channel": messaging.Label(p.cfg.Channel)})
		t := time.NewTimer(backoff(fails))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// Name returns "valkey:" and the channel.
func (p *PubSub) Name() string { return "valkey:" + p.cfg.Channel }

// Next returns the next message's value, decoded from JSON, with its
// origin (channel). A message over the bound or not JSON is logged and
// skipped.
func (p *PubSub) Next(ctx context.Context) (serve.Item, error) {
	origin := map[string]string{"channel": messaging.Label(p.cfg.Channel)}
	for {
		if n := p.dropped.Swap(0); n > 0 {
			p.bad.Log("messages dropped", fmt.Errorf("%d pub/sub message(s) arrived while %d waited", n, p.cfg.Buffer), origin)
		}
		select {
		case m := <-p.msgs:
			v, err := messaging.Decode([]byte(m), p.cfg.MaxBytes)
			if err != nil {
				p.bad.Log("message skipped", err, origin)
				continue
			}
			return serve.Item{Value: v, Origin: origin}, nil
		case <-ctx.Done():
			return serve.Item{}, ctx.Err()
		}
	}
}

// Dropped returns how many messages were dropped for want of room and
// not yet logged.
func (p *PubSub) Dropped() int64 { return p.dropped.Load() }

// Close unsubscribes and closes the connection.
func (p *PubSub) Close() error {
	p.closed.Do(func() {
		p.cancel()
		<-p.done
		p.cl.Close()
	})
	return nil
}

// TriggerConfig configures a trigger: a source, and how its values
// become runs.
type TriggerConfig struct {
	SourceConfig
	messaging.TriggerSettings
}

// NewTrigger makes a trigger of a triggers: entry.
func NewTrigger(s emit.Spec) (*messaging.Trigger, error) {
	var cfg TriggerConfig
	if err := s.Decode(&cfg); err != nil {
		return nil, err
	}
	return OpenTrigger(cfg, s.Logger)
}

// OpenTrigger returns the trigger cfg describes.
func OpenTrigger(cfg TriggerConfig, log *slog.Logger) (*messaging.Trigger, error) {
	src, err := OpenSource(cfg.SourceConfig, log)
	if err != nil {
		return nil, err
	}
	return cfg.TriggerSettings.Open(src, log), nil
}
