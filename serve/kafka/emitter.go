package kafka

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/serve/internal/messaging"
)

// Bounds of an emitter, when its configuration leaves them at 0.
const (
	DefaultMaxBuffered      = 10_000   // records produced and not yet acknowledged by the broker
	DefaultMaxBufferedBytes = 64 << 20 // their bytes
	DefaultDeliveryTimeout  = 30 * time.Second
)

// EmitterConfig configures an emitter.
type EmitterConfig struct {
	Conn
	// Logger receives the client's warnings and errors (nil discards).
	Logger *slog.Logger `json:"-"`
	Name   string       `json:"name,omitempty"` // default "kafka"
	// Topic receives the events of every kind Topics does not name.
	Topic string `json:"topic,omitempty"`
	// Topics maps an event kind (run_started, knot_status,
	// lineage_record, run_finished) to its topic. A kind with neither
	// its own topic nor Topic is not sent; at least one topic is needed.
	Topics map[string]string `json:"topics,omitempty"`
	// MaxBuffered and MaxBufferedBytes bound what waits for the broker:
	// past them Emit waits, within its context.
	MaxBuffered      int `json:"max_buffered,omitempty"`
	MaxBufferedBytes int `json:"max_buffered_bytes,omitempty"`
	// DeliveryTimeout fails a record the broker has not taken by then.
	DeliveryTimeout emit.Duration `json:"delivery_timeout,omitempty"`
}

// Emitter produces one JSON message (emit.Event) per event, keyed by the
// run id, so that a run's events stay in order on one partition.
// Produce is asynchronous: Emit returns once the record is buffered, and
// a record the broker later refuses (or does not take within the
// delivery timeout) is counted and reported by the next Emit's error.
type Emitter struct {
	cfg    EmitterConfig
	cl     *kgo.Client
	topics map[emit.Kind]string
	life   context.Context // the records'; ended by Close
	end    context.CancelFunc

	failed  atomic.Int64
	mu      sync.Mutex
	lastErr error
}

var _ emit.Emitter = (*Emitter)(nil)

// NewEmitter makes an emitter of an emitters: entry.
func NewEmitter(s emit.Spec) (*Emitter, error) {
	var cfg EmitterConfig
	if err := s.Decode(&cfg); err != nil {
		return nil, err
	}
	cfg.Logger = s.Logger
	return OpenEmitter(cfg)
}

var kinds = []emit.Kind{emit.RunStarted, emit.KnotStatus, emit.LineageRecord, emit.RunFinished}

// OpenEmitter returns the emitter cfg describes; it connects on the
// first event.
func OpenEmitter(cfg EmitterConfig) (*Emitter, error) {
	if cfg.MaxBuffered < 0 || cfg.MaxBufferedBytes < 0 || cfg.DeliveryTimeout < 0 {
		return nil, errors.New("kafka: max_buffered, max_buffered_bytes and delivery_timeout must not be negative")
	}
	topics := map[emit.Kind]string{}
	for k, t := range cfg.Topics {
		if t == "" {
			return nil, fmt.Errorf("kafka: topics.%s is empty", messaging.Label(k))
		}
		kind := emit.Kind(k)
		if !slices.Contains(kinds, kind) {
			return nil, fmt.Errorf("kafka: topics names %q, not an event kind (%v)", messaging.Label(k), kinds)
		}
		topics[kind] = t
	}
	for _, k := range kinds {
		if topics[k] == "" && cfg.Topic != "" {
			topics[k] = cfg.Topic
		}
	}
	if len(topics) == 0 {
		return nil, errors.New("kafka: an emitter needs topic or topics")
	}
	opts, err := cfg.options(cfg.Logger)
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		kgo.MaxBufferedRecords(cmp.Or(cfg.MaxBuffered, DefaultMaxBuffered)),
		kgo.MaxBufferedBytes(cmp.Or(cfg.MaxBufferedBytes, DefaultMaxBufferedBytes)),
		kgo.RecordDeliveryTimeout(time.Duration(cmp.Or(cfg.DeliveryTimeout, emit.Duration(DefaultDeliveryTimeout)))),
		kgo.ProducerLinger(5*time.Millisecond),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka %s: %w", cfg.brokers(), err)
	}
	life, end := context.WithCancel(context.Background())
	return &Emitter{cfg: cfg, cl: cl, topics: topics, life: life, end: end}, nil
}

// Name returns the configured name, "kafka" by default.
func (e *Emitter) Name() string { return cmp.Or(e.cfg.Name, Type) }

// Emit buffers ev's message, waiting within ctx while the buffer is
// full. Its error also reports records that failed since the last call.
func (e *Emitter) Emit(ctx context.Context, ev *emit.Event) error {
	earlier := e.failures()
	topic := e.topics[ev.Kind]
	if topic == "" {
		return earlier
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return errors.Join(earlier, fmt.Errorf("kafka: encode %s event: %w", ev.Kind, err))
	}
	if err := ctx.Err(); err != nil {
		return errors.Join(earlier, err)
	}
	rec := &kgo.Record{Topic: topic, Key: []byte(ev.RunID), Value: b, Context: e.life}
	e.cl.Produce(ctx, rec, e.promise)
	if err := ctx.Err(); err != nil {
		return errors.Join(earlier, fmt.Errorf("kafka %s: the produce buffer stayed full: %w", e.cfg.brokers(), err))
	}
	return earlier
}

// promise counts a record the broker did not take. A record failed by
// Emit's own context while it waited for room is reported by that Emit.
func (e *Emitter) promise(_ *kgo.Record, err error) {
	if err == nil || (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) && e.life.Err() == nil {
		return
	}
	e.mu.Lock()
	e.lastErr = err
	e.mu.Unlock()
	e.failed.Add(1)
}

func (e *Emitter) failures() error {
	n := e.failed.Swap(0)
	if n == 0 {
		return nil
	}
	e.mu.Lock()
	err := e.lastErr
	e.mu.Unlock()
	return fmt.Errorf("kafka %s: %d earlier event(s) not delivered, the last: %w", e.cfg.brokers(), n, err)
}

// Close flushes the buffered records within ctx, then closes the client;
// records still buffered then are dropped and reported.
func (e *Emitter) Close(ctx context.Context) error {
	err := e.cl.Flush(ctx)
	e.end()
	e.cl.Close()
	if err != nil {
		return errors.Join(fmt.Errorf("kafka %s: flush on close: %w", e.cfg.brokers(), err), e.failures())
	}
	return e.failures()
}
