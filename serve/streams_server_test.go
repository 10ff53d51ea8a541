package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/redact"
	"github.com/pirn-wasm/pirn/scheduler"
)

// TestServeStreamAndEmitters runs a serve.yaml with a file stream and a
// webhook emitter: each line appended to the file is one run, recorded
// with the line's origin in its labels, and the receiver gets every
// run's events in order, run_finished last.
func TestServeStreamAndEmitters(t *testing.T) {
	var mu sync.Mutex
	events := map[string][]emit.Event{}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var ev emit.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Errorf("the receiver got %q: %v", b, err)
		}
		mu.Lock()
		events[ev.RunID] = append(events[ev.RunID], ev)
		mu.Unlock()
	}))
	defer recv.Close()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(in, []byte("1\n2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, fmt.Sprintf(`
pipelines:
  - {name: neg, path: testdata/negate.yaml}
streams:
  - {type: file, pipeline: neg, param: x, path: %q, from_start: true, poll: 10ms}
emitters:
  - {type: webhook, url: %q, policy: warn, queue: 256}
`, in, recv.URL))
	f, err := os.OpenFile(in, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "3")
	f.Close()
	var runs []string
	for len(runs) < 3 {
		var ev scheduler.Event
		select {
		case ev = <-ts.ev.finished:
		case <-time.After(30 * time.Second):
			t.Fatalf("%d runs of the stream after 30 s, want 3", len(runs))
		}
		runs = append(runs, ev.RunID)
		if got := ev.Result.Outputs["neg"]; got == nil {
			t.Errorf("run %s: outputs %v", ev.RunID, ev.Result.Outputs)
		}
		if l := ts.ev.labels(ev.RunID); l["origin.file"] != in || l["origin.line"] == "" {
			t.Errorf("run %s: labels %v, want the file and line", ev.RunID, l)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		complete := 0
		for _, id := range runs {
			evs := events[id]
			if n := len(evs); n > 0 && evs[n-1].Kind == emit.RunFinished {
				complete++
				for i, ev := range evs {
					if ev.Seq != uint64(i+1) {
						t.Errorf("run %s: event %d has seq %d", id, i, ev.Seq)
					}
				}
			}
		}
		mu.Unlock()
		if complete == len(runs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook receiver has the whole of %d of %d runs", complete, len(runs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeRedactsEverySink plants a secret in a knot's error: the value
// of an environment variable granted to it, which it also writes to
// stderr. A served run of it (from a file stream) leaves the secret in
// none of the server's logs (the log emitter's records included), the
// events a webhook emitter delivers, or the history; the error reads
// "[REDACTED]" where the secret was.
func TestServeRedactsEverySink(t *testing.T) {
	const secret = "tok-77a1c9e3b5"
	t.Setenv("PIRN_TEST_TOKEN", secret)
	var mu sync.Mutex
	var delivered []byte
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		delivered = append(append(delivered, b...), '\n')
		mu.Unlock()
	}))
	defer recv.Close()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte("1\n"), 0o644)
	cfg, err := Parse("serve.yaml", []byte(fmt.Sprintf(`
listen: "-"
pipelines:
  - {name: leak, path: testdata/leak.yaml}
streams:
  - {type: file, pipeline: leak, param: x, path: %q, from_start: true, poll: 10ms}
emitters:
  - {type: log}
  - {type: webhook, url: %q}
`, in, recv.URL)))
	if err != nil {
		t.Fatal(err)
	}
	red, err := redact.New(redact.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	lg := slog.New(red.Handler(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	eng, err := pirn.Open(t.Context(), pirn.Config{CacheDir: testCache, Redactor: red, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(context.Background())
	ev := newEvents()
	srv, err := New(t.Context(), eng, cfg, Options{Logger: lg, Observer: ev, Redact: red.String})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var fin scheduler.Event
	select {
	case fin = <-ev.finished:
	case <-time.After(30 * time.Second):
		t.Fatal("no run after 30 s")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rec, err := eng.History().Run(context.Background(), fin.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Errors) != 1 || rec.Errors[0].Message != "login with token [REDACTED] refused" {
		t.Errorf("recorded errors: %+v", rec.Errors)
	}
	hist, _ := json.Marshal(rec)
	mu.Lock()
	defer mu.Unlock()
	for name, text := range map[string]string{"logs": logs.String(), "webhook events": string(delivered), "history": string(hist)} {
		if strings.Contains(text, secret) {
			t.Errorf("%s hold the secret:\n%s", name, text)
		}
		if !strings.Contains(text, "[REDACTED]") {
			t.Errorf("%s do not show the masked error:\n%.2000s", name, text)
		}
	}
}

// lockedBuffer is a bytes.Buffer for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
