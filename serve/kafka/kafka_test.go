package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/serve"
	"github.com/pirn-wasm/pirn/serve/internal/messaging"
	"github.com/pirn-wasm/pirn/serve/internal/messaging/messagingtest"
)

const partitions = 3

// cluster starts an in-process Kafka cluster with the given topics.
func cluster(t testing.TB, topics ...string) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// produce writes values to topic, value i to partition i%partitions.
func produce(t testing.TB, brokers []string, topic string, values ...[]byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Partition: int32(i % partitions), Key: []byte("k" + strconv.Itoa(i)), Value: v}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// committed returns the group's committed offset of each partition.
func committed(t *testing.T, brokers []string, group, topic string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = topic
	for p := range int32(partitions) {
		rt.Partitions = append(rt.Partitions, p)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int32]int64{}
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			got[p.Partition] = p.Offset
		}
	}
	return got
}

func values(n int) [][]byte {
	vs := make([][]byte, n)
	for i := range vs {
		vs[i] = fmt.Appendf(nil, `{"x": %d}`, i)
	}
	return vs
}

// runTrigger runs a trigger until the returned stop is called, which
// waits for Run to return and gives its error.
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

// TestTriggerRestart stops a trigger while one run (partition 0, offset
// 2) is still going and the rest are recorded, then starts another on the
// same group: the committed offsets stop before the unrecorded run, every
// message is recorded exactly once, and the redelivered ones find their
// runs recorded.
func TestTriggerRestart(t *testing.T) {
	t.Parallel()
	brokers := cluster(t, "in")
	const n = 30
	produce(t, brokers, "in", values(n)...)
	cfg := TriggerConfig{SourceConfig: SourceConfig{Conn: Conn{Brokers: brokers}, Topic: "in", Group: "g", CommitInterval: emit.Duration(time.Hour)},
		TriggerSettings: messaging.TriggerSettings{Drain: emit.Duration(time.Millisecond)}}
	held := "kafka:g:in:0:2"
	var restarted atomic.Bool // the second consumer's runs all finish
	sub := &messagingtest.Submitter{Hold: func(r serve.Request) bool { return r.RunID == held && !restarted.Load() }}
	stop := runTrigger(t, cfg, nil, sub)
	sub.Wait(t, "all but the held run recorded", func(s messagingtest.State) bool { return len(s.Recorded) == n-1 && s.Held == 1 })
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	sub.Release()
	// Partition 0 holds offsets 0..9 (values 0, 3, 6, …); offset 2 never
	// finished, so its commit stops there. The others are committed whole.
	if got, want := committed(t, brokers, "g", "in"), map[int32]int64{0: 2, 1: n / partitions, 2: n / partitions}; !mapsEqual(got, want) {
		t.Fatalf("committed offsets = %v, want %v", got, want)
	}

	restarted.Store(true)
	stop = runTrigger(t, cfg, nil, sub)
	// The held run was recorded on its release; the restarted consumer
	// must still be given offsets 3..9 of partition 0 again.
	st := sub.Wait(t, "every message recorded and the uncommitted ones delivered again", func(s messagingtest.State) bool {
		return len(s.Recorded) == n && s.Dups >= n/partitions-3
	})
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	for id, times := range st.Recorded {
		if times != 1 {
			t.Errorf("run %s recorded %d times", id, times)
		}
	}
	// Offsets 3..9 of partition 0 were delivered again and found recorded.
	if st.Dups != n/partitions-3 {
		t.Errorf("redeliveries answered by a recorded run = %d, want %d", st.Dups, n/partitions-3)
	}
	r := st.Requests["kafka:g:in:1:4"]
	if r.Params["x"] != float64(13) || r.Labels["topic"] != "in" || r.Labels["partition"] != "1" || r.Labels["offset"] != "4" || r.Labels["key"] != "k13" {
		t.Errorf("request of partition 1 offset 4 = %+v", r)
	}
	if got := committed(t, brokers, "g", "in"); !mapsEqual(got, map[int32]int64{0: 10, 1: 10, 2: 10}) {
		t.Errorf("committed offsets at the end = %v", got)
	}
}

func mapsEqual(a, b map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestTriggerHostile sends values that are not JSON, not objects, too
// large, refused by the submitter, with terminal escapes in the key: each
// is logged (escaped, naming its offset) and committed, and the good ones
// run.
func TestTriggerHostile(t *testing.T) {
	t.Parallel()
	brokers := cluster(t, "in")
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	bad := []string{`not json`, `[1, 2]`, `{"x": "` + strings.Repeat("a", 200) + `"}`, `{"refuse": true}`, ``}
	var recs []*kgo.Record
	for i, v := range append(bad, `{"x": 1}`, `{"x": 2}`) {
		recs = append(recs, &kgo.Record{Topic: "in", Key: []byte("\x1b[31mred" + strconv.Itoa(i)), Value: []byte(v)})
	}
	recs = append(recs, &kgo.Record{Topic: "in", Key: bytes.Repeat([]byte("k"), 10_000), Value: []byte(`{"x": 3}`)})
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	sub := &messagingtest.Submitter{Refuse: func(r serve.Request) bool { return r.Params["refuse"] == true }}
	cfg := TriggerConfig{SourceConfig: SourceConfig{Conn: Conn{Brokers: brokers}, Topic: "in", Group: "g", MaxBytes: 100}}
	stop := runTrigger(t, cfg, log, sub)
	st := sub.Wait(t, "the good messages", func(s messagingtest.State) bool { return len(s.Recorded) == 3 })
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	for _, r := range st.Requests {
		if len(r.Labels["key"]) > 300 {
			t.Errorf("a key label of %d bytes", len(r.Labels["key"]))
		}
	}
	if got := committed(t, brokers, "g", "in"); got[0] != int64(len(recs)) {
		t.Errorf("committed offsets = %v, want partition 0 at %d", got, len(recs))
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if strings.Contains(out, "\x1b") {
		t.Errorf("the log holds a raw escape:\n%s", out)
	}
	for _, want := range []string{"offset=0", "not JSON", "offset=1", "not a JSON object", "offset=2", "message too large", "offset=3", "refused", "offset=4", `\x1b[31mred0`} {
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

// TestSourceAckOrder acknowledges offsets 0, 2 and 3 of a partition but
// not 1: only offset 0 is committed, and the next consumer starts at 1.
func TestSourceAckOrder(t *testing.T) {
	t.Parallel()
	brokers := cluster(t, "in")
	vs := values(4 * partitions)
	produce(t, brokers, "in", vs...)
	cfg := SourceConfig{Conn: Conn{Brokers: brokers}, Topic: "in", Group: "s", CommitInterval: emit.Duration(time.Hour)}
	src, err := OpenSource(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	byOffset := map[string]serve.Item{}
	for len(byOffset) < 4 {
		it, err := src.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if it.Origin["partition"] == "0" {
			byOffset[it.Origin["offset"]] = it
		}
	}
	for _, o := range []string{"0", "2", "3"} {
		if err := byOffset[o].Ack(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if byOffset["2"].Value.(map[string]any)["x"] != float64(6) || byOffset["2"].ID != "kafka:s:in:0:2" {
		t.Errorf("offset 2 = %+v", byOffset["2"])
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if got := committed(t, brokers, "s", "in")[0]; got != 1 {
		t.Fatalf("committed offset of partition 0 = %d, want 1", got)
	}
	src, err = OpenSource(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for {
		it, err := src.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if it.Origin["partition"] == "0" {
			if it.Origin["offset"] != "1" {
				t.Fatalf("the restarted source began partition 0 at offset %s, want 1", it.Origin["offset"])
			}
			break
		}
	}
}

// TestSourceMaxUncommitted: with two values unacknowledged, Next waits
// (here until its context ends) instead of reading more.
func TestSourceMaxUncommitted(t *testing.T) {
	t.Parallel()
	brokers := cluster(t, "in")
	produce(t, brokers, "in", values(6)...)
	src, err := OpenSource(SourceConfig{Conn: Conn{Brokers: brokers}, Topic: "in", Group: "u", MaxUncommitted: 2}, nil)
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
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := src.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next past the bound = %v, want it to wait until its context ends", err)
	}
	if err := first.Ack(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Next(t.Context()); err != nil {
		t.Fatalf("Next after an Ack: %v", err)
	}
}

// TestEmitter sends events to per-kind topics and a default one; each is
// the JSON of the event, keyed by the run id.
func TestEmitter(t *testing.T) {
	t.Parallel()
	brokers := cluster(t, "events", "runs")
	e, err := NewEmitter(emit.Spec{Type: Type, Fields: map[string]any{"brokers": brokers, "topic": "events", "topics": map[string]any{"run_finished": "runs"}}})
	if err != nil {
		t.Fatal(err)
	}
	evs := []*emit.Event{
		{Kind: emit.RunStarted, RunID: "r1", Seq: 1, Pipeline: "p"},
		{Kind: emit.KnotStatus, RunID: "r1", Seq: 2, Knot: "d", State: "running"},
		{Kind: emit.RunFinished, RunID: "r1", Seq: 3, State: "succeeded"},
	}
	for _, ev := range evs {
		if err := e.Emit(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("events", "runs"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string][]emit.Event{}
	for n := 0; n < len(evs); {
		fs := cl.PollFetches(t.Context())
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			var ev emit.Event
			if err := json.Unmarshal(r.Value, &ev); err != nil || string(r.Key) != ev.RunID {
				t.Errorf("record %q key %q: %v", r.Value, r.Key, err)
			}
			got[r.Topic] = append(got[r.Topic], ev)
			n++
		})
	}
	if len(got["events"]) != 2 || got["events"][0].Seq != 1 || got["events"][1].Knot != "d" || len(got["runs"]) != 1 || got["runs"][0].State != "succeeded" {
		t.Errorf("events by topic = %+v", got)
	}
}

// TestEmitterConfig: per-kind topics alone are enough (the original
// refused them); no topic at all, or an unknown kind, is an error.
func TestEmitterConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		fields map[string]any
		err    string
	}{
		{"per-kind only", map[string]any{"topics": map[string]any{"lineage_record": "lin"}}, ""},
		{"no topic", map[string]any{}, "needs topic or topics"},
		{"unknown kind", map[string]any{"topics": map[string]any{"status": "s"}}, `"status", not an event kind`},
		{"unknown field", map[string]any{"topic": "t", "bootstrap": "x"}, `unknown field "bootstrap"`},
		{"bad sasl", map[string]any{"topic": "t", "sasl": map[string]any{"mechanism": "GSSAPI"}}, "GSSAPI"},
		{"password env unset", map[string]any{"topic": "t", "sasl": map[string]any{"mechanism": "PLAIN", "user": "u", "password": map[string]any{"env": "PIRN_TEST_NO_SUCH_VAR"}}}, "PIRN_TEST_NO_SUCH_VAR is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fields["brokers"] = []string{"127.0.0.1:1"}
			e, err := NewEmitter(emit.Spec{Type: Type, Fields: tc.fields})
			if err == nil {
				e.Close(t.Context())
			}
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("NewEmitter(%v) = %v, want %q", tc.fields, err, tc.err)
			}
		})
	}
}

// TestEmitterBoundedBuffer: with no broker, the buffer fills at
// max_buffered records and Emit then returns when its context ends.
func TestEmitterBoundedBuffer(t *testing.T) {
	t.Parallel()
	e, err := OpenEmitter(EmitterConfig{Conn: Conn{Brokers: []string{"127.0.0.1:1"}, MaxBackoff: emit.Duration(50 * time.Millisecond)}, Topic: "t", MaxBuffered: 2})
	if err != nil {
		t.Fatal(err)
	}
	ev := &emit.Event{Kind: emit.RunStarted, RunID: "r"}
	for range 2 {
		if err := e.Emit(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := e.Emit(ctx, ev); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "buffer stayed full") {
		t.Fatalf("Emit on a full buffer = %v", err)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := e.Close(ctx); err == nil {
		t.Fatal("Close with two undelivered records = nil")
	}
}
