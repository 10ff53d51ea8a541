package valkey

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/serve"
	"github.com/pirn-wasm/pirn/serve/internal/messaging"
	"github.com/pirn-wasm/pirn/serve/internal/messaging/messagingtest"
)

// testURL is the server the tests use: PIRN_TEST_VALKEY_MSG, or database
// 11 of the local one. Each test's keys have a prefix of their own and
// are deleted when it ends.
func testURL() string {
	if u := os.Getenv("PIRN_TEST_VALKEY_MSG"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/11"
}

// admin returns a client of the test database and a key prefix of the
// test's own, whose keys are deleted when the test ends.
func admin(t *testing.T) (valkey.Client, string) {
	t.Helper()
	opt, err := valkey.ParseURL(testURL())
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	c, err := valkey.NewClient(opt)
	if err != nil {
		t.Fatalf("the tests need Valkey or Redis at %s (or PIRN_TEST_VALKEY_MSG): %v", testURL(), err)
	}
	prefix := fmt.Sprintf("pirn-test-msg:%s:%d:", t.Name(), time.Now().UnixNano())
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := c.Do(ctx, c.B().Keys().Pattern(prefix+"*").Build()).AsStrSlice()
		for _, k := range keys {
			c.Do(ctx, c.B().Del().Key(k).Build())
		}
		c.Close()
	})
	return c, prefix
}

func xadd(t *testing.T, c valkey.Client, stream string, fields ...string) string {
	t.Helper()
	cmd := c.B().Xadd().Key(stream).Id("*").FieldValue()
	for i := 0; i+1 < len(fields); i += 2 {
		cmd = cmd.FieldValue(fields[i], fields[i+1])
	}
	id, err := c.Do(t.Context(), cmd.Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func pending(t *testing.T, c valkey.Client, stream, group string) int64 {
	t.Helper()
	res, err := c.Do(t.Context(), c.B().Xpending().Key(stream).Group(group).Build()).ToArray()
	if err != nil {
		t.Fatal(err)
	}
	n, err := res[0].AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	return n
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

// TestStreamTriggerRestart stops a trigger while one entry's run is still
// going: only that entry stays pending, and the restarted consumer reads
// it again first; every entry is recorded exactly once.
func TestStreamTriggerRestart(t *testing.T) {
	t.Parallel()
	c, prefix := admin(t)
	stream := prefix + "in"
	const n = 10
	var ids []string
	for i := range n {
		ids = append(ids, xadd(t, c, stream, "value", fmt.Sprintf(`{"x": %d}`, i)))
	}
	held := "valkey:" + stream + ":g:" + ids[3]
	var restarted atomic.Bool
	sub := &messagingtest.Submitter{Hold: func(r serve.Request) bool { return r.RunID == held && !restarted.Load() }}
	cfg := TriggerConfig{SourceConfig: SourceConfig{Conn: Conn{URL: testURL()}, Stream: stream, Group: "g", Consumer: "c1"}, TriggerSettings: messaging.TriggerSettings{Drain: emit.Duration(time.Millisecond)}}
	stop := runTrigger(t, cfg, nil, sub)
	sub.Wait(t, "all but the held run", func(s messagingtest.State) bool { return len(s.Recorded) == n-1 && s.Held == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	sub.Release()
	if got := pending(t, c, stream, "g"); got != 1 {
		t.Fatalf("pending entries after the stop = %d, want 1 (the held run's)", got)
	}
	restarted.Store(true)
	stop = runTrigger(t, cfg, nil, sub)
	st := sub.Wait(t, "every entry", func(s messagingtest.State) bool { return len(s.Recorded) == n })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for id, times := range st.Recorded {
		if times != 1 {
			t.Errorf("run %s recorded %d times", id, times)
		}
	}
	if r := st.Requests[held]; r.Params["x"] != float64(3) || r.Labels["stream"] != stream || r.Labels["id"] != ids[3] {
		t.Errorf("the held entry's request = %+v", r)
	}
	if got := pending(t, c, stream, "g"); got != 0 {
		t.Errorf("pending entries at the end = %d, want 0", got)
	}
}

// TestStreamClaimIdle: a consumer that died with entries unacknowledged
// leaves them to another with claim_idle.
func TestStreamClaimIdle(t *testing.T) {
	t.Parallel()
	c, prefix := admin(t)
	stream := prefix + "in"
	for i := range 3 {
		xadd(t, c, stream, "value", fmt.Sprintf(`{"x": %d}`, i))
	}
	a, err := OpenSource(SourceConfig{Conn: Conn{URL: testURL()}, Stream: stream, Group: "g", Consumer: "a"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := a.Next(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	a.Close() // two entries delivered to a, never acknowledged
	// A claim_idle under a millisecond claims whatever is pending.
	b, err := OpenSource(SourceConfig{Conn: Conn{URL: testURL()}, Stream: stream, Group: "g", Consumer: "b", ClaimIdle: emit.Duration(time.Nanosecond)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var xs []any
	for range 3 {
		it, err := b.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if err := it.Ack(t.Context()); err != nil {
			t.Fatal(err)
		}
		xs = append(xs, it.Value.(map[string]any)["x"])
	}
	if fmt.Sprint(xs) != "[0 1 2]" {
		t.Errorf("b read %v, want the two claimed entries, then the third", xs)
	}
	if got := pending(t, c, stream, "g"); got != 0 {
		t.Errorf("pending entries = %d, want 0", got)
	}
}

// TestStreamHostile: entries without the field, not JSON, too large, not
// objects, refused, are logged (escaped, with their id) and acknowledged.
func TestStreamHostile(t *testing.T) {
	t.Parallel()
	c, prefix := admin(t)
	stream := prefix + "in"
	var ids []string
	for _, fv := range [][]string{
		{"other", "1"},
		{"value", "\x1b[2Jnot json"},
		{"value", `{"x": "` + strings.Repeat("a", 200) + `"}`},
		{"value", `[1]`},
		{"value", `{"refuse": true}`},
		{"value", `{"x": 1}`},
	} {
		ids = append(ids, xadd(t, c, stream, fv...))
	}
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	sub := &messagingtest.Submitter{Refuse: func(r serve.Request) bool { return r.Params["refuse"] == true }}
	stop := runTrigger(t, TriggerConfig{SourceConfig: SourceConfig{Conn: Conn{URL: testURL()}, Stream: stream, Group: "g", Consumer: "c", MaxBytes: 100}}, log, sub)
	sub.Wait(t, "the good entry", func(s messagingtest.State) bool { return len(s.Recorded) == 1 })
	// Wait for every entry to be acknowledged: the skipped ones are
	// acknowledged before the good one is read.
	for deadline := time.Now().Add(10 * time.Second); pending(t, c, stream, "g") != 0; {
		if time.Now().After(deadline) {
			t.Fatal("entries still pending")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if strings.Contains(out, "\x1b") {
		t.Errorf("the log holds a raw escape:\n%s", out)
	}
	for _, want := range []string{`no field \"value\"`, "not JSON", "message too large", "not a JSON object", "refused", "id=" + ids[0], "id=" + ids[4]} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
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

// subscribed waits until the channel has n subscribers.
func subscribed(t *testing.T, c valkey.Client, channel string, n int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		m, err := c.Do(t.Context(), c.B().PubsubNumsub().Channel(channel).Build()).AsMap()
		if err != nil {
			t.Fatal(err)
		}
		v := m[channel]
		if got, _ := v.AsInt64(); got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never had %d subscribers", channel, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func publish(t *testing.T, c valkey.Client, channel string, msgs ...string) {
	t.Helper()
	for _, m := range msgs {
		if err := c.Do(t.Context(), c.B().Publish().Channel(channel).Message(m).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPubSubTrigger runs a pipeline per good message of a channel.
func TestPubSubTrigger(t *testing.T) {
	t.Parallel()
	c, prefix := admin(t)
	ch := prefix + "ch"
	sub := &messagingtest.Submitter{}
	stop := runTrigger(t, TriggerConfig{SourceConfig: SourceConfig{Conn: Conn{URL: testURL()}, Mode: "pubsub", Channel: ch}}, nil, sub)
	subscribed(t, c, ch, 1)
	publish(t, c, ch, `{"x": 1}`, `nope`, `{"x": 2}`)
	st := sub.Wait(t, "two runs", func(s messagingtest.State) bool { return len(s.Recorded) == 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, r := range st.Requests {
		if r.Labels["channel"] != ch || r.RunID != "" {
			t.Errorf("request %+v", r)
		}
	}
}

// TestPubSubBuffer: past its buffer a subscriber drops messages (and
// counts them) instead of growing.
func TestPubSubBuffer(t *testing.T) {
	t.Parallel()
	c, prefix := admin(t)
	ch := prefix + "ch"
	src, err := OpenSource(SourceConfig{Conn: Conn{URL: testURL()}, Mode: "pubsub", Channel: ch, Buffer: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ps := src.(*PubSub)
	subscribed(t, c, ch, 1)
	for i := range 10 {
		publish(t, c, ch, fmt.Sprintf(`{"x": %d}`, i))
	}
	for deadline := time.Now().Add(10 * time.Second); ps.Dropped() != 8; {
		if time.Now().After(deadline) {
			t.Fatalf("dropped = %d, want 8", ps.Dropped())
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := range 2 {
		it, err := src.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if it.Value.(map[string]any)["x"] != float64(i) {
			t.Errorf("message %d = %v", i, it.Value)
		}
	}
}

// TestEmitterStream appends events to a capped stream.
func TestEmitterStream(t *testing.T) {
	t.Parallel()
	c, prefix := admin(t)
	stream := prefix + "events"
	e, err := NewEmitter(emit.Spec{Type: Type, Fields: map[string]any{"url": testURL(), "stream": stream, "max_len": 10}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(t.Context())
	const n = 500
	for i := range n {
		if err := e.Emit(t.Context(), &emit.Event{Kind: emit.KnotStatus, RunID: "r1", Seq: uint64(i + 1), Knot: "d"}); err != nil {
			t.Fatal(err)
		}
	}
	xlen, err := c.Do(t.Context(), c.B().Xlen().Key(stream).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	if xlen >= n || xlen < 10 {
		t.Errorf("XLEN = %d after %d events with max_len 10, want it trimmed (approximately)", xlen, n)
	}
	last, err := c.Do(t.Context(), c.B().Xrevrange().Key(stream).End("+").Start("-").Count(1).Build()).AsXRange()
	if err != nil || len(last) != 1 {
		t.Fatal(last, err)
	}
	f := last[0].FieldValues
	if f["kind"] != "knot_status" || f["run_id"] != "r1" || !strings.Contains(f["value"], fmt.Sprintf(`"seq":%d`, n)) {
		t.Errorf("last entry = %v", f)
	}
}

// TestEmitterPubSub publishes each event's JSON.
func TestEmitterPubSub(t *testing.T) {
	t.Parallel()
	c, prefix := admin(t)
	ch := prefix + "events"
	got := make(chan string, 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Receive(ctx, c.B().Subscribe().Channel(ch).Build(), func(m valkey.PubSubMessage) {
			select {
			case got <- m.Message:
			default:
			}
		})
	}()
	defer func() { cancel(); <-done }()
	subscribed(t, c, ch, 1)
	e, err := OpenEmitter(EmitterConfig{Conn: Conn{URL: testURL()}, Mode: "pubsub", Channel: ch})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(t.Context())
	if err := e.Emit(t.Context(), &emit.Event{Kind: emit.RunFinished, RunID: "r9", State: "succeeded"}); err != nil {
		t.Fatal(err)
	}
	if m := <-got; !strings.Contains(m, `"run_id":"r9"`) || !strings.Contains(m, `"kind":"run_finished"`) {
		t.Errorf("published %s", m)
	}
}

// TestRedactedErrors: a URL's password never shows in an error.
func TestRedactedErrors(t *testing.T) {
	t.Parallel()
	_, err := OpenEmitter(EmitterConfig{Conn: Conn{URL: "redis://user:hunter2@127.0.0.1:1/0"}})
	if err == nil {
		t.Fatal("connecting to a closed port succeeded")
	}
	if strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "user:xxxxx@") {
		t.Errorf("error = %v", err)
	}
}
