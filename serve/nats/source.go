package nats

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/serve"
	"github.com/pirn-wasm/pirn/serve/internal/messaging"
)

// Bounds of a source, when its configuration leaves them at 0.
const (
	// DefaultPending and DefaultPendingBytes bound a core subscription's
	// messages waiting for Next; past them the client drops messages and
	// reports a slow consumer (logged).
	DefaultPending      = 1024
	DefaultPendingBytes = 64 << 20
	// DefaultAckWait is how long JetStream waits for an ack before it
	// delivers a message again; while a run goes, "in progress" is sent
	// every third of it.
	DefaultAckWait = 30 * time.Second
	// DefaultMaxAckPending bounds the messages delivered and not yet
	// acknowledged.
	DefaultMaxAckPending = 64
)

// JetStream names a durable consumer of a stream.
type JetStream struct {
	Stream  string `json:"stream"`
	Durable string `json:"durable"`
	// AckWait and MaxAckPending are set on the consumer.
	AckWait       emit.Duration `json:"ack_wait,omitempty"`
	MaxAckPending int           `json:"max_ack_pending,omitempty"`
}

// SourceConfig configures a source (and the reading part of a trigger).
type SourceConfig struct {
	Conn
	// Subject is the subject to read (wildcards allowed); with JetStream
	// it filters the stream, and may be left empty for all of it.
	Subject string `json:"subject,omitempty"`
	// Queue, for a core subject, shares its messages among the
	// subscribers of this queue group.
	Queue string `json:"queue,omitempty"`
	// JetStream, if set, reads through a durable consumer instead.
	JetStream *JetStream `json:"jetstream,omitempty"`
	// Pending and PendingBytes bound a core subscription's buffer.
	Pending      int `json:"pending,omitempty"`
	PendingBytes int `json:"pending_bytes,omitempty"`
	// MaxBytes bounds a message (messaging.DefaultMaxBytes if 0); a
	// larger one is logged and skipped.
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

// OpenSource connects and returns a core or JetStream source.
func OpenSource(cfg SourceConfig, log *slog.Logger) (serve.Source, error) {
	log = logger(log)
	if cfg.MaxBytes < 0 || cfg.Pending < 0 || cfg.PendingBytes < 0 {
		return nil, errors.New("nats: max_bytes, pending and pending_bytes must not be negative")
	}
	cfg.MaxBytes = cmp.Or(cfg.MaxBytes, messaging.DefaultMaxBytes)
	if cfg.JetStream == nil || cfg.Subject != "" {
		if err := checkSubject(cfg.Subject, true); err != nil {
			return nil, fmt.Errorf("nats: %w", err)
		}
	}
	bad := messaging.NewBadLog(log)
	if cfg.JetStream != nil {
		return openJetStream(cfg, bad)
	}
	nc, err := cfg.connect(bad)
	if err != nil {
		return nil, err
	}
	var sub *nats.Subscription
	if cfg.Queue != "" {
		sub, err = nc.QueueSubscribeSync(cfg.Subject, cfg.Queue)
	} else {
		sub, err = nc.SubscribeSync(cfg.Subject)
	}
	if err == nil {
		err = nc.Flush() // the server has the subscription once Next can be called
	}
	if err == nil {
		err = sub.SetPendingLimits(cmp.Or(cfg.Pending, DefaultPending), cmp.Or(cfg.PendingBytes, DefaultPendingBytes))
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats %s: subscribe %s: %w", cfg.url(), messaging.Label(cfg.Subject), err)
	}
	return &Core{cfg: cfg, nc: nc, sub: sub, bad: bad}, nil
}

// Core reads a core NATS subject: at-most-once. Messages published while
// the source is not subscribed, or dropped past its pending bounds (a
// slow consumer, logged), are lost. Items have no Ack and no ID.
type Core struct {
	cfg SourceConfig
	nc  *nats.Conn
	sub *nats.Subscription
	bad *messaging.BadLog
}

var _ serve.Source = (*Core)(nil)

// Name returns "nats:" and the subject.
func (c *Core) Name() string { return "nats:" + c.cfg.Subject }

// Next returns the next message's value, decoded from JSON, with its
// origin (subject).
func (c *Core) Next(ctx context.Context) (serve.Item, error) {
	for {
		m, err := c.sub.NextMsgWithContext(ctx)
		if errors.Is(err, nats.ErrSlowConsumer) {
			continue // reported by the error handler
		}
		if err != nil {
			if ctx.Err() != nil {
				return serve.Item{}, ctx.Err()
			}
			return serve.Item{}, fmt.Errorf("nats %s: %w", c.cfg.url(), err)
		}
		origin := map[string]string{"subject": messaging.Label(m.Subject)}
		v, err := messaging.Decode(m.Data, c.cfg.MaxBytes)
		if err != nil {
			c.bad.Log("message skipped", err, origin)
			continue
		}
		return serve.Item{Value: v, Origin: origin}, nil
	}
}

// Close unsubscribes and closes the connection.
func (c *Core) Close() error {
	c.nc.Close()
	return nil
}

// Durable reads a JetStream stream through a durable consumer:
// at-least-once. Each Item's Ack acknowledges its message (and waits for
// the server to confirm); until then the message is kept from
// redelivery by "in progress" signals every third of AckWait. A message
// over the bound or not JSON is logged with its stream and sequence and
// terminated (never delivered again). On Close, messages handed out and
// not acknowledged are given back (nak) for redelivery at once.
type Durable struct {
	cfg  SourceConfig
	js   *JetStream
	nc   *nats.Conn
	it   jetstream.MessagesContext
	bad  *messaging.BadLog
	wait time.Duration // ack wait

	life   context.Context // the heartbeats'
	end    context.CancelFunc
	mu     sync.Mutex
	out    map[*outstanding]struct{}
	wg     sync.WaitGroup
	closed sync.Once
}

var _ serve.Source = (*Durable)(nil)

// outstanding is a message handed out and not yet acknowledged.
type outstanding struct {
	msg  jetstream.Msg
	stop chan struct{} // ends its heartbeat
	once sync.Once
}

func openJetStream(cfg SourceConfig, bad *messaging.BadLog) (*Durable, error) {
	j := cfg.JetStream
	if j.Stream == "" || j.Durable == "" {
		return nil, errors.New("nats: jetstream needs stream and durable")
	}
	if j.AckWait < 0 || j.MaxAckPending < 0 {
		return nil, errors.New("nats: ack_wait and max_ack_pending must not be negative")
	}
	wait := time.Duration(cmp.Or(j.AckWait, emit.Duration(DefaultAckWait)))
	maxPending := cmp.Or(j.MaxAckPending, DefaultMaxAckPending)
	nc, err := cfg.connect(bad)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fail := func(what string, err error) (*Durable, error) {
		nc.Close()
		return nil, fmt.Errorf("nats %s: %s: %w", cfg.url(), what, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fail("jetstream", err)
	}
	stream, err := js.Stream(ctx, j.Stream)
	if err != nil {
		return fail("stream "+messaging.Label(j.Stream), err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: j.Durable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: wait,
		MaxAckPending: maxPending, FilterSubject: cfg.Subject, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fail("consumer "+messaging.Label(j.Durable), err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(min(maxPending, 256)))
	if err != nil {
		return fail("consume", err)
	}
	life, end := context.WithCancel(context.Background())
	return &Durable{cfg: cfg, js: j, nc: nc, it: it, bad: bad, wait: wait, life: life, end: end, out: map[*outstanding]struct{}{}}, nil
}

// Name returns "nats:" and the stream and durable.
func (d *Durable) Name() string { return "nats:" + d.js.Stream + ":" + d.js.Durable }

// Next returns the next message's value, decoded from JSON, with its
// origin (subject, stream, sequence, delivery count), a run id derived
// from the stream, durable and sequence, and its Ack.
func (d *Durable) Next(ctx context.Context) (serve.Item, error) {
	for {
		m, err := d.it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return serve.Item{}, ctx.Err()
			}
			return serve.Item{}, fmt.Errorf("nats %s: %w", d.cfg.url(), err)
		}
		origin := map[string]string{"subject": messaging.Label(m.Subject()), "stream": messaging.Label(d.js.Stream)}
		meta, err := m.Metadata()
		if err != nil {
			d.bad.Log("message skipped", err, origin)
			m.Term()
			continue
		}
		seq := strconv.FormatUint(meta.Sequence.Stream, 10)
		origin["seq"], origin["delivered"] = seq, strconv.FormatUint(meta.NumDelivered, 10)
		v, err := messaging.Decode(m.Data(), d.cfg.MaxBytes)
		if err != nil {
			d.bad.Log("message skipped", err, origin)
			if err := m.Term(); err != nil {
				d.bad.Log("terminating a skipped message failed", err, origin)
			}
			continue
		}
		o := d.track(m)
		return serve.Item{Value: v, Origin: origin, Ack: func(ctx context.Context) error { return d.ack(ctx, o) },
			ID: messaging.RunID("nats", d.js.Stream, d.js.Durable, seq)}, nil
	}
}

// track records m as handed out and starts its heartbeat.
func (d *Durable) track(m jetstream.Msg) *outstanding {
	o := &outstanding{msg: m, stop: make(chan struct{})}
	d.mu.Lock()
	d.out[o] = struct{}{}
	d.mu.Unlock()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		t := time.NewTicker(max(d.wait/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if err := m.InProgress(); err != nil {
					d.bad.Log("nats in-progress signal failed", err, map[string]string{"subject": messaging.Label(m.Subject())})
				}
			case <-o.stop:
				return
			case <-d.life.Done():
				return
			}
		}
	}()
	return o
}

func (d *Durable) untrack(o *outstanding) bool {
	first := false
	o.once.Do(func() {
		first = true
		close(o.stop)
		d.mu.Lock()
		delete(d.out, o)
		d.mu.Unlock()
	})
	return first
}

func (d *Durable) ack(ctx context.Context, o *outstanding) error {
	if !d.untrack(o) {
		return nil
	}
	if err := o.msg.DoubleAck(ctx); err != nil {
		return fmt.Errorf("nats %s: ack: %w", d.cfg.url(), err)
	}
	return nil
}

// closeWait bounds each wait of Durable.Close.
const closeWait = 2 * time.Second

// Close gives back the messages not acknowledged, stops consuming and
// closes the connection.
func (d *Durable) Close() error {
	d.closed.Do(func() {
		// Stop pulling, and give back what the client fetched and never
		// handed out (Stop would drop it, and the server would hold it
		// for the ack wait). Then wait until the subscription is gone,
		// so that no message given back is delivered to its pull
		// request again, held in this closing client for the ack wait.
		d.it.Drain()
		for {
			m, err := d.it.Next(jetstream.NextMaxWait(closeWait))
			if err != nil {
				break
			}
			m.Nak()
		}
		if c, ok := d.it.(interface{ Closed() <-chan struct{} }); ok {
			select {
			case <-c.Closed():
			case <-time.After(closeWait):
			}
		}
		d.mu.Lock()
		out := make([]*outstanding, 0, len(d.out))
		for o := range d.out {
			out = append(out, o)
		}
		d.mu.Unlock()
		for _, o := range out {
			if d.untrack(o) {
				o.msg.Nak()
			}
		}
		d.end()
		d.wg.Wait()
		d.nc.Drain()
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
	return cfg.TriggerSettings.Open(src, logger(log)), nil
}
