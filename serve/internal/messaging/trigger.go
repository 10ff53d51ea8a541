package messaging

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/serve"
)

// DefaultDrain is how long, when the configuration leaves drain at 0, a
// stopping trigger waits for its runs in flight to be recorded so that
// their messages are committed; the messages of runs still going after it
// are delivered again on the next start (and find their runs recorded).
const DefaultDrain = 10 * time.Second

// TriggerConfig configures a Trigger.
type TriggerConfig struct {
	// Mapping turns a message's value into parameters; the zero Mapping
	// takes a JSON object's fields.
	Mapping serve.Mapping
	// InFlight bounds the runs submitted and not yet recorded
	// (DefaultInFlight if 0): past it the trigger reads no more messages.
	InFlight int
	// Drain bounds the wait for runs in flight on stop (DefaultDrain if 0).
	Drain  time.Duration
	Logger *slog.Logger // nil discards
}

// TriggerSettings are the serve.yaml fields every message trigger has
// besides its source's: embedded in the Kafka, Valkey and NATS
// triggers' configurations.
type TriggerSettings struct {
	serve.Mapping
	// InFlight bounds runs submitted and not recorded (DefaultInFlight if 0).
	InFlight int `json:"in_flight,omitempty"`
	// Drain bounds the wait on stop for runs in flight (DefaultDrain if 0).
	Drain emit.Duration `json:"drain,omitempty"`
}

// Open returns the trigger of src with these settings.
func (t TriggerSettings) Open(src serve.Source, log *slog.Logger) *Trigger {
	return NewTrigger(src.Name(), src, TriggerConfig{Mapping: t.Mapping, InFlight: t.InFlight, Drain: time.Duration(t.Drain), Logger: log})
}

// Trigger runs a pipeline once per value of a Source (a Kafka topic, a
// Valkey stream, a NATS subject), naming each run after the value's
// Item.ID when it has one, and acknowledges each value once its run is
// recorded. A value whose parameters cannot be made, or that the
// Submitter refuses as a bad request, is logged (at a bounded rate) and
// acknowledged, so that it does not come back forever.
type Trigger struct {
	name string
	src  serve.Source
	cfg  TriggerConfig
	bad  *BadLog
}

var _ serve.Trigger = (*Trigger)(nil)

// NewTrigger returns a trigger reading src; the trigger closes src when
// Run returns.
func NewTrigger(name string, src serve.Source, cfg TriggerConfig) *Trigger {
	cfg.InFlight = cmp.Or(max(cfg.InFlight, 0), DefaultInFlight)
	cfg.Drain = cmp.Or(max(cfg.Drain, 0), DefaultDrain)
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	return &Trigger{name: name, src: src, cfg: cfg, bad: NewBadLog(cfg.Logger)}
}

// Name returns the trigger's name.
func (t *Trigger) Name() string { return t.name }

// Run submits a run per value until ctx ends (nil), the Submitter stops
// (nil), or the source fails (its error). On the way out it waits up to
// the drain bound for runs in flight, acknowledging those recorded.
func (t *Trigger) Run(ctx context.Context, s serve.Submitter) error {
	defer t.src.Close()
	slots := make(chan struct{}, t.cfg.InFlight)
	ackCtx := context.WithoutCancel(ctx) // acks outlive ctx, each bounded
	stopWaiting := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		timer := time.NewTimer(t.cfg.Drain)
		defer timer.Stop()
		select {
		case <-done:
		case <-timer.C:
		}
		close(stopWaiting)
		<-done
	}()
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		it, err := t.src.Next(ctx)
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%s: %w", t.name, err)
		}
		run, err := t.submit(ctx, s, it)
		switch {
		case err == nil:
		case ctx.Err() != nil || errors.Is(err, serve.ErrStopping):
			<-slots
			return nil // not acknowledged: delivered again on the next start
		default:
			t.bad.Log("message skipped", err, it.Origin)
			t.ack(ackCtx, it)
			<-slots
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			select {
			case <-run.Done():
			case <-stopWaiting:
				select {
				case <-run.Done(): // recorded in the meantime: acknowledge it
				default:
					return
				}
			}
			if _, err := run.Result(); errors.Is(err, serve.ErrBadRequest) {
				t.bad.Log("message skipped", err, it.Origin)
			} else if errors.Is(err, serve.ErrStopping) {
				return // never recorded: delivered again
			}
			t.ack(ackCtx, it)
		}()
	}
}

func (t *Trigger) submit(ctx context.Context, s serve.Submitter, it serve.Item) (*serve.Run, error) {
	labels := make(map[string]string, len(it.Origin)+1)
	for k, v := range it.Origin {
		labels[k] = v
	}
	labels["trigger"] = t.name
	params, err := t.cfg.Mapping.Apply(it.Value, labels)
	if err != nil {
		return nil, err
	}
	return s.Submit(ctx, serve.Request{Params: params, RunID: it.ID, Labels: labels})
}

// Acknowledgement bounds: an ack that fails is tried again, up to
// ackTries times in all, and all of them within ackTimeout. A failure can
// be passing: a client's connection being dialled again, or one another
// caller's cancelled context broke, must not cost a redelivery.
const (
	ackTries   = 4
	ackTimeout = 10 * time.Second
)

var ackBackoff = Backoff(20*time.Millisecond, time.Second)

func (t *Trigger) ack(ctx context.Context, it serve.Item) {
	if it.Ack == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, ackTimeout)
	defer cancel()
	for try := 1; ; try++ {
		err := it.Ack(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		if try == ackTries {
			t.bad.Log("acknowledging a message failed; it will be delivered again", err, it.Origin)
			return
		}
		timer := time.NewTimer(ackBackoff(try))
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return
		}
	}
}

// BadLog logs skipped messages and failures at a bounded rate: a burst of
// badLogBurst records, then one a second; the records left out are
// counted and their number logged with the next record. Safe for
// concurrent use.
type BadLog struct {
	log *slog.Logger
	now func() time.Time

	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed int
}

const badLogBurst = 10

// NewBadLog returns a BadLog writing to log.
func NewBadLog(log *slog.Logger) *BadLog {
	return &BadLog{log: log, now: time.Now, tokens: badLogBurst}
}

// Log writes a warning with err's text (escaped, bounded) and the
// message's origin labels, unless the rate bound is reached.
func (b *BadLog) Log(msg string, err error, origin map[string]string) {
	b.mu.Lock()
	now := b.now()
	if !b.last.IsZero() {
		b.tokens = min(badLogBurst, b.tokens+now.Sub(b.last).Seconds())
	}
	b.last = now
	if b.tokens < 1 {
		b.suppressed++
		b.mu.Unlock()
		return
	}
	b.tokens--
	suppressed := b.suppressed
	b.suppressed = 0
	b.mu.Unlock()
	attrs := make([]any, 0, 2*len(origin)+4)
	attrs = append(attrs, "error", Text(err.Error(), 1024))
	for k, v := range origin {
		attrs = append(attrs, Label(k), v)
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	b.log.Warn(msg, attrs...)
}

// Text returns s, from outside, bounded to max bytes (cut at a
// character's start, marked with "…") and escaped for a terminal:
// printable UTF-8 is kept, anything else (and a backslash) is written as
// a Go escape ("\x1b", "\u200b").
func Text(s string, max int) string {
	cut := false
	if len(s) > max {
		s, cut = s[:max], true
		for i := 0; i < utf8.UTFMax && i < len(s) && !utf8.ValidString(s); i++ {
			s = s[:len(s)-1]
		}
	}
	if !printable(s) {
		q := strconv.QuoteToGraphic(s)
		s = q[1 : len(q)-1]
	}
	if cut {
		s += "…"
	}
	return s
}
