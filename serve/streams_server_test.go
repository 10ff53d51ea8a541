package serve

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/emit"
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
