package nats

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pirn-wasm/pirn/dispatch/dispatchtest"
	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/serve"
	"github.com/pirn-wasm/pirn/serve/internal/messaging"
	"github.com/pirn-wasm/pirn/serve/internal/messaging/messagingtest"
)

// server starts an embedded NATS server with JetStream and returns its
// URL and a client of it.
func server(t *testing.T) (string, *nats.Conn) {
	t.Helper()
	url := dispatchtest.Start(t).URL()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return url, nc
}

// stream creates stream IN on subjects in.> and publishes msgs to in.x.
func stream(t *testing.T, nc *nats.Conn, msgs ...string) jetstream.Stream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "IN", Subjects: []string{"in.>"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if _, err := js.Publish(t.Context(), "in.x", []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func runTrigger(t *testing.T, cfg TriggerConfig, log *slog.Logger, s serve.Submitter) (stop func() error) {
	t.Helper()
	tr, err := OpenTrigger(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- tr.Run(ctx, s) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() { cancel(); runErr = <-errc })
		return runErr
	}
	t.Cleanup(func() { stop() })
	return stop
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func (w lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.String()
}

// TestCoreTrigger runs a pipeline per good message of a core subject.
func TestCoreTrigger(t *testing.T) {
	t.Parallel()
	url, nc := server(t)
	sub := &messagingtest.Submitter{}
	stop := runTrigger(t, TriggerConfig{SourceConfig: SourceConfig{Conn: Conn{URL: url}, Subject: "in.>"}, TriggerSettings: messaging.TriggerSettings{Mapping: serve.Mapping{Param: "v"}}}, nil, sub)
	for _, m := range []string{`{"x": 1}`, `nope`, `[2]`} {
		if err := nc.Publish("in.a", []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	st := sub.Wait(t, "two runs", func(s messagingtest.State) bool { return len(s.Recorded) == 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, r := range st.Requests {
		if r.Labels["subject"] != "in.a" || r.Params["v"] == nil || r.RunID != "" {
			t.Errorf("request %+v", r)
		}
	}
}

// TestCorePendingBound: a subscriber that does not keep up holds at most
// its pending bound; the rest are dropped (and reported), not buffered.
func TestCorePendingBound(t *testing.T) {
	t.Parallel()
	url, nc := server(t)
	var logs bytes.Buffer
	w := lockedWriter{&sync.Mutex{}, &logs}
	src, err := OpenSource(SourceConfig{Conn: Conn{URL: url}, Subject: "in", Pending: 2}, slog.New(slog.NewTextHandler(w, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for i := range 10 {
		if err := nc.Publish("in", fmt.Appendf(nil, `{"x": %d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	core := src.(*Core)
	if err := core.nc.Flush(); err != nil { // every message has reached the subscriber
		t.Fatal(err)
	}
	if n, _, _ := core.sub.Pending(); n > 2 {
		t.Errorf("pending messages = %d, want at most 2", n)
	}
	if d, _ := core.sub.Dropped(); d != 8 {
		t.Errorf("dropped = %d, want 8", d)
	}
}

// TestDurableRestart stops a trigger while one message's run is still
// going: that message is given back, the restarted trigger runs it, and
// every message is recorded exactly once.
func TestDurableRestart(t *testing.T) {
	t.Parallel()
	url, nc := server(t)
	const n = 10
	var msgs []string
	for i := range n {
		msgs = append(msgs, fmt.Sprintf(`{"x": %d}`, i))
	}
	s := stream(t, nc, msgs...)
	held := "nats:IN:d:4" // the fourth message (sequences start at 1)
	var restarted atomic.Bool
	sub := &messagingtest.Submitter{Hold: func(r serve.Request) bool { return r.RunID == held && !restarted.Load() }}
	cfg := TriggerConfig{SourceConfig: SourceConfig{Conn: Conn{URL: url}, JetStream: &JetStream{Stream: "IN", Durable: "d"}}, TriggerSettings: messaging.TriggerSettings{Drain: emit.Duration(time.Millisecond)}}
	stop := runTrigger(t, cfg, nil, sub)
	sub.Wait(t, "all but the held run", func(s messagingtest.State) bool { return len(s.Recorded) == n-1 && s.Held == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	sub.Release()
	restarted.Store(true)
	stop = runTrigger(t, cfg, nil, sub)
	st := sub.Wait(t, "every message", func(s messagingtest.State) bool { return len(s.Recorded) == n })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for id, times := range st.Recorded {
		if times != 1 {
			t.Errorf("run %s recorded %d times", id, times)
		}
	}
	if r := st.Requests[held]; r.Params["x"] != float64(3) || r.Labels["seq"] != "4" || r.Labels["stream"] != "IN" || r.Labels["delivered"] != "2" {
		t.Errorf("the held message's request = %+v", r)
	}
	c, err := s.Consumer(t.Context(), "d")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.AckFloor.Stream != n {
		t.Errorf("consumer: %d unacknowledged, ack floor %d; want 0 and %d", info.NumAckPending, info.AckFloor.Stream, n)
	}
}

// TestDurableInProgress: a message whose run takes several ack waits is
// not delivered again while it goes, and is acknowledged at the end.
func TestDurableInProgress(t *testing.T) {
	t.Parallel()
	url, nc := server(t)
	s := stream(t, nc, `{"x": 1}`)
	src, err := OpenSource(SourceConfig{Conn: Conn{URL: url}, JetStream: &JetStream{Stream: "IN", Durable: "d", AckWait: emit.Duration(100 * time.Millisecond)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	it, err := src.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The property needs time to pass: four ack waits.
	ctx, cancel := context.WithTimeout(t.Context(), 400*time.Millisecond)
	defer cancel()
	if again, err := src.Next(ctx); err == nil {
		t.Fatalf("delivered again while in progress: %+v", again)
	}
	if err := it.Ack(t.Context()); err != nil {
		t.Fatal(err)
	}
	c, err := s.Consumer(t.Context(), "d")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.NumRedelivered != 0 {
		t.Errorf("consumer: %d unacknowledged, %d redelivered; want 0, 0", info.NumAckPending, info.NumRedelivered)
	}
}

// TestDurableHostile: messages too large or not JSON are logged with
// their sequence and terminated; the good one runs.
func TestDurableHostile(t *testing.T) {
	t.Parallel()
	url, nc := server(t)
	s := stream(t, nc, "\x1b]0;title\x07", `{"x": "`+strings.Repeat("a", 200)+`"}`, `{"x": 1}`)
	var logs bytes.Buffer
	w := lockedWriter{&sync.Mutex{}, &logs}
	sub := &messagingtest.Submitter{}
	stop := runTrigger(t, TriggerConfig{SourceConfig: SourceConfig{Conn: Conn{URL: url}, MaxBytes: 100, JetStream: &JetStream{Stream: "IN", Durable: "d"}}},
		slog.New(slog.NewTextHandler(w, nil)), sub)
	sub.Wait(t, "the good message", func(s messagingtest.State) bool { return len(s.Recorded) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	out := w.String()
	for _, want := range []string{"seq=1", "not JSON", "seq=2", "message too large"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("the log holds a raw escape:\n%s", out)
	}
	c, err := s.Consumer(t.Context(), "d")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := c.Info(t.Context()); err != nil || info.NumAckPending != 0 {
		t.Errorf("consumer info = %+v, %v; want nothing unacknowledged", info, err)
	}
}

// TestEmitter publishes events on <prefix>.<kind>.<run>.
func TestEmitter(t *testing.T) {
	t.Parallel()
	url, nc := server(t)
	got, err := nc.SubscribeSync("pirn.events.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	e, err := NewEmitter(emit.Spec{Type: Type, Fields: map[string]any{"url": url}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []*emit.Event{{Kind: emit.RunStarted, RunID: "kafka:g:in:0:2"}, {Kind: emit.RunFinished, RunID: "a.b"}} {
		if err := e.Emit(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pirn.events.run_started.kafka:g:in:0:2", "pirn.events.run_finished.a_b"} {
		m, err := got.NextMsgWithContext(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != want || !bytes.Contains(m.Data, []byte(`"run_id":`)) {
			t.Errorf("message on %s: %s; want subject %s", m.Subject, m.Data, want)
		}
	}
}

// TestSubjects: bad prefixes and subjects are refused before connecting.
func TestSubjects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fields map[string]any
		err    string
	}{
		{map[string]any{"prefix": "a..b"}, "empty token"},
		{map[string]any{"prefix": "a.*"}, "wildcard"},
		{map[string]any{"prefix": "a.>"}, "wildcard"},
		{map[string]any{"subject": "a b"}, "whitespace"},
		{map[string]any{"subject": "a.b>"}, "wildcard inside a token"},
	} {
		tc.fields["url"] = "nats://127.0.0.1:1"
		if _, err := NewEmitter(emit.Spec{Type: Type, Fields: tc.fields}); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("NewEmitter(%v) = %v, want %q", tc.fields, err, tc.err)
		}
	}
	if _, err := NewSource(emit.Spec{Type: Type, Fields: map[string]any{"subject": "in..x"}}); err == nil || !strings.Contains(err.Error(), "empty token") {
		t.Errorf("NewSource(in..x) = %v", err)
	}
}

// TestRedactedErrors: passwords in URLs never show in an error.
func TestRedactedErrors(t *testing.T) {
	t.Parallel()
	_, err := OpenEmitter(EmitterConfig{Conn: Conn{URL: "nats://u:hunter2@127.0.0.1:1,nats://v:pw2@127.0.0.1:2"}}, emit.Spec{})
	if err == nil {
		t.Fatal("connecting to closed ports succeeded")
	}
	if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "pw2") || !strings.Contains(err.Error(), "u:xxxxx@") {
		t.Errorf("error = %v", err)
	}
}

// TestDurableMaxAckPending: with two messages unacknowledged the server
// delivers no third until one is acknowledged.
func TestDurableMaxAckPending(t *testing.T) {
	t.Parallel()
	url, nc := server(t)
	stream(t, nc, `{"x": 1}`, `{"x": 2}`, `{"x": 3}`)
	src, err := OpenSource(SourceConfig{Conn: Conn{URL: url}, JetStream: &JetStream{Stream: "IN", Durable: "d", MaxAckPending: 2}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	first, err := src.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Next(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Absence needs a window of time: 200 ms.
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if third, err := src.Next(ctx); err == nil {
		t.Fatalf("a third message past max_ack_pending 2: %+v", third)
	}
	if err := first.Ack(t.Context()); err != nil {
		t.Fatal(err)
	}
	third, err := src.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if third.Value.(map[string]any)["x"] != float64(3) {
		t.Errorf("third = %+v", third)
	}
}
