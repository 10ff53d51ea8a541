package messaging

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/serve"
)

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		max  int
		err  string
	}{
		{"object", `{"x": 1}`, 0, ""},
		{"number", `42`, 0, ""},
		{"empty", ``, 0, "not JSON"},
		{"garbage", "\x00\xff", 0, "not JSON"},
		{"trailing", `{} {}`, 0, "not JSON"},
		{"over the bound", `{"x": 12345}`, 5, "message too large"},
		{"deep", strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000), 0, "not JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.body), tc.max)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("Decode(%.20q) = %v, want %q", tc.body, err, tc.err)
			}
		})
	}
	if _, err := Decode(make([]byte, DefaultMaxBytes+1), 0); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Decode of DefaultMaxBytes+1 bytes = %v, want ErrTooLarge", err)
	}
}

func TestLabel(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"orders", "orders"},
		{"\x1b[31mred", `\x1b[31mred`},
		{`a\b`, `a\\b`},
		{"é", "é"},
		{"\xff", `\xff`},
		{"a\u202eb", `a\u202eb`},
	} {
		if got := Label(tc.in); got != tc.want {
			t.Errorf("Label(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := Label(strings.Repeat("é", 1000))
	if !strings.HasSuffix(long, "…") || len(long) > MaxLabel+len("…") || strings.Contains(long, `\x`) {
		t.Errorf("Label of 2000 bytes = %d bytes %q…", len(long), long[:20])
	}
	if got := Label(strings.Repeat("\x00", 10_000)); len(got) > 4*MaxLabel+len("…") {
		t.Errorf("Label of 10,000 NULs is %d bytes", len(got))
	}
}

func TestRunID(t *testing.T) {
	if got := RunID("kafka", "g", "orders", "3", "17"); got != "kafka:g:orders:3:17" {
		t.Errorf("RunID = %q", got)
	}
	a := RunID("valkey", "a stream", "g", "1-0")
	if !strings.HasPrefix(a, "valkey:") || len(a) != len("valkey:")+32 || !validRunID(a) {
		t.Errorf("RunID with a space = %q", a)
	}
	if b := RunID("valkey", "a stream", "g", "1-0"); b != a {
		t.Errorf("RunID is not stable: %q, %q", a, b)
	}
	if b := RunID("valkey", "a stream", "g", "1-1"); b == a {
		t.Errorf("two entries, one id %q", a)
	}
	if b := RunID("x", "ab", "c"); b == RunID("x", "a", "bc") {
		t.Errorf("parts are not delimited: %q", b)
	}
	if long := RunID("kafka", strings.Repeat("t", 300)); len(long) > 256 || !validRunID(long) {
		t.Errorf("RunID of 300 characters = %q", long)
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"redis://user:pw@h:6379/2", "redis://user:xxxxx@h:6379/2"},
		{"nats://tok@h:4222", "nats://xxxxx@h:4222"},
		{"nats://a:b@h1,nats://c:d@h2", "nats://a:xxxxx@h1,nats://c:xxxxx@h2"},
		{"u:p@host:9092", "u:xxxxx@host:9092"},
		{"redis://h:6379/0?x=a@b", "redis://h:6379/0?x=a@b"},
		{"redis://u:p@ss@h:1", "redis://u:xxxxx@h:1"},
		{"h:9092", "h:9092"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSecret(t *testing.T) {
	t.Setenv("PIRN_TEST_SECRET", "s3")
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		s    *Secret
		want string
		err  string
	}{
		{nil, "", ""},
		{&Secret{Env: "PIRN_TEST_SECRET"}, "s3", ""},
		{&Secret{File: file}, "from-file", ""},
		{&Secret{Env: "PIRN_TEST_UNSET_SECRET"}, "", "PIRN_TEST_UNSET_SECRET is not set"},
		{&Secret{Env: "X", File: file}, "", "not both"},
		{&Secret{File: file + ".missing"}, "", "no such file"},
	} {
		got, err := tc.s.Value("pw")
		if got != tc.want || tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%+v.Value() = %q, %v; want %q, %q", tc.s, got, err, tc.want, tc.err)
		}
	}
}

func TestTLS(t *testing.T) {
	if c, err := (*TLS)(nil).Config(); c != nil || err != nil {
		t.Errorf("nil TLS = %v, %v", c, err)
	}
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca")
	os.WriteFile(notPEM, []byte("nope"), 0o600)
	for _, tc := range []struct {
		t   TLS
		err string
	}{
		{TLS{CA: notPEM}, "no PEM certificate"},
		{TLS{Cert: "c"}, "go together"},
		{TLS{CA: filepath.Join(dir, "missing")}, "no such file"},
	} {
		if _, err := tc.t.Config(); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v.Config() = %v, want %q", tc.t, err, tc.err)
		}
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff(10*time.Millisecond, time.Second)
	for _, tries := range []int{-5, 0, 1, 2, 10, 63, 64, 1 << 30} {
		if d := b(tries); d < 8*time.Millisecond || d > time.Second {
			t.Errorf("Backoff(10ms, 1s)(%d) = %v", tries, d)
		}
	}
	if d := b(1 << 30); d < 800*time.Millisecond {
		t.Errorf("the wait after many tries = %v, want near the 1s bound", d)
	}
	if d := Backoff(0, 0)(100); d > DefaultMaxBackoff {
		t.Errorf("default bound exceeded: %v", d)
	}
}

// TestBadLogBound: a flood of bad messages writes a bounded number of
// records, and the next one after a pause counts those left out.
func TestBadLogBound(t *testing.T) {
	var buf bytes.Buffer
	b := NewBadLog(slog.New(slog.NewTextHandler(&buf, nil)))
	now := time.Unix(0, 0)
	b.now = func() time.Time { return now }
	for range 10_000 {
		b.Log("message skipped", errors.New("not JSON"), map[string]string{"offset": "1"})
	}
	if n := strings.Count(buf.String(), "\n"); n != badLogBurst {
		t.Errorf("%d records for 10,000 bad messages at one instant, want %d", n, badLogBurst)
	}
	now = now.Add(time.Second)
	buf.Reset()
	b.Log("message skipped", errors.New("\x1b[2J"), nil)
	if out := buf.String(); !strings.Contains(out, "suppressed=9990") || strings.Contains(out, "\x1b") {
		t.Errorf("the record after the pause = %s", out)
	}
}

// source is a Source of given items; Next then waits for ctx.
type source struct {
	mu    sync.Mutex
	items []serve.Item
	acked []string
	done  chan struct{}
}

func (s *source) Name() string { return "test" }
func (s *source) Next(ctx context.Context) (serve.Item, error) {
	s.mu.Lock()
	if len(s.items) > 0 {
		it := s.items[0]
		s.items = s.items[1:]
		s.mu.Unlock()
		return it, nil
	}
	s.mu.Unlock()
	<-ctx.Done()
	return serve.Item{}, ctx.Err()
}
func (s *source) Close() error { return nil }

func (s *source) item(id string, v any) serve.Item {
	return serve.Item{ID: id, Value: v, Origin: map[string]string{"n": id}, Ack: func(context.Context) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.acked = append(s.acked, id)
		if len(s.acked) == 3 {
			close(s.done)
		}
		return nil
	}}
}

// submitter records runs; a run of params["fail"] ends ErrBadRequest.
type submitter struct {
	mu   sync.Mutex
	reqs []serve.Request
}

func (s *submitter) Submit(_ context.Context, r serve.Request) (*serve.Run, error) {
	s.mu.Lock()
	s.reqs = append(s.reqs, r)
	s.mu.Unlock()
	if r.Params["fail"] == true {
		return serve.Finished(r.RunID, nil, serve.ErrBadRequest), nil
	}
	return serve.Finished(r.RunID, nil, nil), nil
}

// TestTrigger: good values run with the mapping's parameters and labels;
// a value the mapping refuses, and one whose run is a bad request, are
// acknowledged all the same.
func TestTrigger(t *testing.T) {
	src := &source{done: make(chan struct{})}
	src.items = []serve.Item{src.item("a", map[string]any{"x": 1.0}), src.item("b", "not an object"), src.item("c", map[string]any{"fail": true})}
	sub := &submitter{}
	tr := NewTrigger("t", src, TriggerConfig{Mapping: serve.Mapping{Static: map[string]any{"y": 2}}})
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- tr.Run(ctx, sub) }()
	<-src.done
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if len(sub.reqs) != 2 || sub.reqs[0].RunID != "a" || sub.reqs[0].Params["x"] != 1.0 || sub.reqs[0].Params["y"] != 2 || sub.reqs[0].Labels["trigger"] != "t" || sub.reqs[0].Labels["n"] != "a" {
		t.Errorf("requests = %+v", sub.reqs)
	}
}

// TestTriggerAckRetry: an acknowledgement that fails is tried again (a
// passing failure costs no redelivery); one that keeps failing is tried
// ackTries times, logged once, and does not hold the trigger.
func TestTriggerAckRetry(t *testing.T) {
	for _, tc := range []struct {
		name      string
		failures  int
		wantCalls int
		wantLog   bool
	}{
		{"passing", 2, 3, false},
		{"lasting", 1000, ackTries, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			calls := 0
			done := make(chan struct{})
			src := &source{done: make(chan struct{})}
			src.items = []serve.Item{{ID: "a", Value: map[string]any{}, Origin: map[string]string{"n": "a"}, Ack: func(context.Context) error {
				mu.Lock()
				defer mu.Unlock()
				calls++
				if calls == min(tc.failures+1, ackTries) {
					close(done)
				}
				if calls <= tc.failures {
					return errors.New("dial tcp: operation was canceled")
				}
				return nil
			}}}
			var logs bytes.Buffer
			tr := NewTrigger("t", src, TriggerConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			ctx, cancel := context.WithCancel(t.Context())
			errc := make(chan error, 1)
			go func() { errc <- tr.Run(ctx, &submitter{}) }()
			<-done
			cancel()
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if calls != tc.wantCalls {
				t.Errorf("Ack called %d times, want %d", calls, tc.wantCalls)
			}
			if got := strings.Count(logs.String(), "acknowledging a message failed"); got != map[bool]int{true: 1}[tc.wantLog] {
				t.Errorf("%d failure records, want log=%v:\n%s", got, tc.wantLog, logs.String())
			}
		})
	}
}
