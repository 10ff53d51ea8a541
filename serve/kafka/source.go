package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/serve"
	"github.com/pirn-wasm/pirn/serve/internal/messaging"
)

// Bounds of a consumer, when its configuration leaves them at 0.
const (
	// DefaultCommitInterval is how often acknowledged offsets are
	// committed (also on a rebalance and on Close).
	DefaultCommitInterval = 5 * time.Second
	// DefaultMaxUncommitted bounds the values returned by Next and not
	// yet committed (acknowledged ones behind an earlier one still
	// running count too): past it Next waits.
	DefaultMaxUncommitted = 10_000
	// DefaultFetchMaxBytes bounds one fetch response's records.
	DefaultFetchMaxBytes = 16 << 20
	pollRecords          = 256
)

// SourceConfig configures a consumer of one topic in a group.
type SourceConfig struct {
	Conn
	Topic string `json:"topic"`
	Group string `json:"group"`
	// Start is where a group with no committed offset begins: "earliest"
	// (the default: nothing the topic holds is missed) or "latest".
	Start string `json:"start,omitempty"`
	// MaxBytes bounds a message's value (messaging.DefaultMaxBytes if 0);
	// a larger one is logged and skipped.
	MaxBytes       int           `json:"max_bytes,omitempty"`
	CommitInterval emit.Duration `json:"commit_interval,omitempty"`
	MaxUncommitted int           `json:"max_uncommitted,omitempty"`
	FetchMaxBytes  int           `json:"fetch_max_bytes,omitempty"`
	// SessionTimeout is how long the group waits for a member that went
	// silent (a killed process) before giving its partitions to another
	// or to the member's restart: 0 means the client's default, 45 s.
	// The broker bounds it (group.min.session.timeout.ms, 6 s by default).
	SessionTimeout emit.Duration `json:"session_timeout,omitempty"`
	// Pipeline names the entry's pipeline; the server reads it.
	Pipeline string `json:"pipeline,omitempty"`
}

// sourceEntry is a streams: entry: the config and what the server reads.
type sourceEntry struct {
	SourceConfig
	Param string `json:"param,omitempty"` // the pipeline's parameter each value goes to
}

// Source consumes a topic in a consumer group, one value per message.
// Each Item's Ack marks its offset; an offset is committed only once
// every earlier offset of its partition is acknowledged (or skipped as
// bad), so a restart resumes at the first message whose run was not
// recorded. A message whose value is over the bound or not JSON is
// logged with its topic, partition and offset, and skipped as if
// acknowledged (committing it keeps it from coming back forever). Next
// is called from one goroutine; Ack and Close from any.
type Source struct {
	name string
	cfg  SourceConfig
	cl   *kgo.Client
	bad  *messaging.BadLog

	freed chan struct{} // a value was committed: room under MaxUncommitted

	mu      sync.Mutex
	parts   map[topicPartition]*partition
	pending int           // values returned and not yet committed
	buf     []*kgo.Record // polled, not yet returned
	closed  sync.Once
}

var _ serve.Source = (*Source)(nil)

type topicPartition struct {
	topic     string
	partition int32
}

// partition holds a partition's values returned by Next, in offset
// order, until they are acknowledged in order.
type partition struct {
	queue []*entry
}

type entry struct {
	rec  *kgo.Record
	part *partition
	done bool
}

// NewSource makes a source of a streams: entry.
func NewSource(s emit.Spec) (*Source, error) {
	var e sourceEntry
	if err := s.Decode(&e); err != nil {
		return nil, err
	}
	return OpenSource(e.SourceConfig, s.Logger)
}

// OpenSource returns a source of cfg's topic; it connects in the
// background (errors of the connection are logged and retried).
func OpenSource(cfg SourceConfig, log *slog.Logger) (*Source, error) {
	log = cmp.Or(log, slog.New(slog.DiscardHandler))
	if cfg.Topic == "" || cfg.Group == "" {
		return nil, errors.New("kafka: a trigger or stream needs topic and group")
	}
	if cfg.MaxBytes < 0 || cfg.MaxUncommitted < 0 || cfg.FetchMaxBytes < 0 || cfg.CommitInterval < 0 || cfg.SessionTimeout < 0 {
		return nil, errors.New("kafka: max_bytes, max_uncommitted, fetch_max_bytes, commit_interval and session_timeout must not be negative")
	}
	cfg.MaxBytes = cmp.Or(cfg.MaxBytes, messaging.DefaultMaxBytes)
	cfg.MaxUncommitted = cmp.Or(cfg.MaxUncommitted, DefaultMaxUncommitted)
	cfg.FetchMaxBytes = cmp.Or(cfg.FetchMaxBytes, max(DefaultFetchMaxBytes, 2*cfg.MaxBytes))
	cfg.CommitInterval = cmp.Or(cfg.CommitInterval, emit.Duration(DefaultCommitInterval))
	start := kgo.NewOffset().AtStart()
	switch cfg.Start {
	case "", "earliest":
	case "latest":
		start = kgo.NewOffset().AtEnd()
	default:
		return nil, fmt.Errorf("kafka: start %q is not earliest or latest", messaging.Label(cfg.Start))
	}
	opts, err := cfg.options(log)
	if err != nil {
		return nil, err
	}
	s := &Source{name: "kafka:" + cfg.Topic, cfg: cfg, bad: messaging.NewBadLog(log),
		freed: make(chan struct{}, 1), parts: map[topicPartition]*partition{}}
	opts = append(opts,
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(start),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(time.Duration(cfg.CommitInterval)),
		kgo.FetchMaxBytes(int32(min(cfg.FetchMaxBytes, 1<<30))),
		kgo.FetchMaxPartitionBytes(int32(min(cfg.FetchMaxBytes, 1<<30))),
		kgo.BrokerMaxReadBytes(int32(min(2*cfg.FetchMaxBytes+1<<20, 1<<30))),
		kgo.MaxConcurrentFetches(2),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.lost),
	)
	if t := time.Duration(cfg.SessionTimeout); t > 0 {
		opts = append(opts, kgo.SessionTimeout(t), kgo.HeartbeatInterval(min(t/3, 3*time.Second)))
	}
	s.cl, err = kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka %s: %w", cfg.brokers(), err)
	}
	return s, nil
}

// Name returns "kafka:" and the topic.
func (s *Source) Name() string { return s.name }

// Next returns the next message's value, decoded from JSON, with its
// origin (topic, partition, offset, key), a run id derived from the
// group, topic, partition and offset, and its Ack.
func (s *Source) Next(ctx context.Context) (serve.Item, error) {
	for {
		s.mu.Lock()
		if s.pending >= s.cfg.MaxUncommitted {
			s.mu.Unlock()
			select {
			case <-s.freed:
				continue
			case <-ctx.Done():
				return serve.Item{}, ctx.Err()
			}
		}
		if len(s.buf) > 0 {
			rec := s.buf[0]
			s.buf[0] = nil
			s.buf = s.buf[1:]
			e := s.track(rec)
			s.mu.Unlock()
			if e == nil {
				continue // its partition was revoked
			}
			if it, ok := s.item(e); ok {
				return it, nil
			}
			continue
		}
		s.mu.Unlock()
		if err := s.poll(ctx); err != nil {
			return serve.Item{}, err
		}
	}
}

// poll fetches records into buf.
func (s *Source) poll(ctx context.Context) error {
	fs := s.cl.PollRecords(ctx, pollRecords)
	if fs.IsClientClosed() {
		return errors.New("kafka: the source is closed")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fs.EachError(func(topic string, p int32, err error) {
		if !errors.Is(err, context.Canceled) {
			s.bad.Log("kafka fetch failed", err, map[string]string{"topic": messaging.Label(topic), "partition": strconv.Itoa(int(p))})
		}
	})
	s.mu.Lock()
	fs.EachRecord(func(r *kgo.Record) { s.buf = append(s.buf, r) })
	s.mu.Unlock()
	return nil
}

// track queues rec on its partition; nil if the partition is not ours.
func (s *Source) track(rec *kgo.Record) *entry {
	p := s.parts[topicPartition{rec.Topic, rec.Partition}]
	if p == nil {
		return nil
	}
	e := &entry{rec: rec, part: p}
	p.queue = append(p.queue, e)
	s.pending++
	return e
}

// item makes e's Item; a bad message is logged, acknowledged and false.
func (s *Source) item(e *entry) (serve.Item, bool) {
	r := e.rec
	origin := map[string]string{
		"topic":     messaging.Label(r.Topic),
		"partition": strconv.Itoa(int(r.Partition)),
		"offset":    strconv.FormatInt(r.Offset, 10),
	}
	if r.Key != nil {
		origin["key"] = messaging.Label(string(r.Key))
	}
	v, err := messaging.Decode(r.Value, s.cfg.MaxBytes)
	if err != nil {
		s.bad.Log("message skipped", err, origin)
		s.ack(e)
		return serve.Item{}, false
	}
	return serve.Item{
		Value:  v,
		Origin: origin,
		ID:     messaging.RunID("kafka", s.cfg.Group, r.Topic, origin["partition"], origin["offset"]),
		Ack:    func(context.Context) error { s.ack(e); return nil },
	}, true
}

// ack marks e done and, past every earlier done value of its partition,
// marks the last of them for the next commit.
func (s *Source) ack(e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.done {
		return
	}
	e.done = true
	e.rec.Key, e.rec.Value, e.rec.Headers = nil, nil, nil // only the offset is still needed
	p := e.part
	if s.parts[topicPartition{e.rec.Topic, e.rec.Partition}] != p {
		return // revoked meanwhile: its new owner reads it again
	}
	n := 0
	for n < len(p.queue) && p.queue[n].done {
		n++
	}
	if n == 0 {
		return
	}
	s.cl.MarkCommitRecords(p.queue[n-1].rec)
	clear(p.queue[:n])
	p.queue = p.queue[n:]
	s.pending -= n
	select {
	case s.freed <- struct{}{}:
	default:
	}
}

func (s *Source) assigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, ps := range m {
		for _, p := range ps {
			if s.parts[topicPartition{t, p}] == nil {
				s.parts[topicPartition{t, p}] = &partition{}
			}
		}
	}
}

// revoked forgets the partitions (their values' runs still in flight are
// read again by the partitions' new owner) and commits what is marked.
func (s *Source) revoked(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	s.lost(ctx, cl, m)
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		s.bad.Log("kafka commit on rebalance failed", err, map[string]string{"topic": messaging.Label(s.cfg.Topic)})
	}
}

func (s *Source) lost(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, ps := range m {
		for _, p := range ps {
			key := topicPartition{t, p}
			if q := s.parts[key]; q != nil {
				s.pending -= len(q.queue)
				delete(s.parts, key)
			}
		}
	}
	kept := s.buf[:0]
	for _, r := range s.buf {
		if s.parts[topicPartition{r.Topic, r.Partition}] != nil {
			kept = append(kept, r)
		}
	}
	clear(s.buf[len(kept):])
	s.buf = kept
	select {
	case s.freed <- struct{}{}:
	default:
	}
}

// Close commits the acknowledged offsets (within 10 s) and leaves the
// group. Values not acknowledged are delivered again to the group.
func (s *Source) Close() error {
	var err error
	s.closed.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if e := s.cl.CommitMarkedOffsets(ctx); e != nil {
			err = fmt.Errorf("kafka %s: commit on close: %w", s.cfg.brokers(), e)
		}
		s.cl.CloseAllowingRebalance()
	})
	return err
}

// TriggerConfig configures a trigger: a consumer, and how its messages
// become runs.
type TriggerConfig struct {
	SourceConfig
	messaging.TriggerSettings
}

// NewTrigger makes a trigger of a triggers: entry: a run per message,
// its parameters the message's JSON object (or as the mapping says).
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
