package emit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/scheduler"
)

// syncBuffer is a bytes.Buffer for a logger written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines decodes the JSON log lines written so far.
func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(s.b.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// receiver is a webhook receiver that checks each delivery's signature.
type receiver struct {
	secret []byte
	mu     sync.Mutex
	evs    []emit.Event
	bad    []string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.bad = append(r.bad, err.Error())
		return
	}
	if err := emit.Verify(r.secret, req.Header.Get(emit.TimestampHeader), req.Header.Get(emit.SignatureHeader), body, time.Now(), time.Minute); err != nil {
		r.bad = append(r.bad, err.Error())
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ev emit.Event
	if err := json.Unmarshal(body, &ev); err != nil || req.Header.Get("Content-Type") != "application/json" || req.Header.Get("X-Pirn-Event") != string(ev.Kind) {
		r.bad = append(r.bad, "bad body or headers: "+string(body))
		return
	}
	r.evs = append(r.evs, ev)
}

// TestHubRealRun runs the quickstart pipeline three times with a log, a
// webhook, a recording, a hung and a failing emitter: every run
// succeeds, the log, webhook and recording emitters get every event in
// order, the hung and failing ones are counted and logged once each.
func TestHubRealRun(t *testing.T) {
	e, p := engine(t)
	logs, hubLogs := &syncBuffer{}, &syncBuffer{}
	rcv := &receiver{secret: []byte("hook-secret")}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	t.Setenv("PIRN_TEST_HOOK_SECRET", "hook-secret")
	hook, err := emit.NewHubEmitter(emit.Spec{Type: "webhook", Fields: map[string]any{
		"url": srv.URL + "/events", "secret_env": "PIRN_TEST_HOOK_SECRET", "timeout": "5s", "queue": 4096}})
	if err != nil {
		t.Fatal(err)
	}
	logEm, err := emit.NewHubEmitter(emit.Spec{Type: "log", Fields: map[string]any{"policy": "warn"},
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{name: "recorder"}
	hung := newGated("hung")
	defer close(hung.gate)
	hub, err := emit.NewHub(emit.HubConfig{
		Emitters: []emit.HubEmitter{
			{Emitter: hung, Timeout: 20 * time.Millisecond},
			{Emitter: failing{"failing"}},
			logEm, hook,
			{Emitter: rec},
		},
		LogInterval: time.Hour,
		Logger:      slog.New(slog.NewJSONHandler(hubLogs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	const runs = 3
	var results []*scheduler.Result
	for range runs {
		res := run(t, e, p, hub, map[string]string{"trigger": "test"})
		if err := hub.Wait(t.Context(), res.ID); err != nil {
			t.Fatalf("Wait(%s) = %v, want nil (no emitter has policy fail)", res.ID, err)
		}
		results = append(results, res)
	}
	// Every run is handled (Wait), so only the hung emitter is busy: Close
	// gives up on it at its deadline and names it.
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := hub.Close(ctx); err == nil || !strings.Contains(err.Error(), "emitters hung still busy") {
		t.Errorf("Close = %v, want an error naming the hung emitter", err)
	}

	total := 0
	byRun := func(evs []emit.Event, id string) []emit.Event {
		var out []emit.Event
		for _, ev := range evs {
			if ev.RunID == id {
				out = append(out, ev)
			}
		}
		return out
	}
	for _, res := range results {
		n := eventsOf(res)
		total += n
		mine := byRun(rec.events(), res.ID)
		checkOrder(t, "recorder", mine, res.ID, n)
		last := mine[len(mine)-1]
		if last.State != "succeeded" || last.Run.Knots != len(res.Records) || last.Run.Finished.IsZero() {
			t.Errorf("run_finished = %+v", last.Run)
		}
		if mine[0].Labels["trigger"] != "test" {
			t.Errorf("run_started labels = %v", mine[0].Labels)
		}
		rcv.mu.Lock()
		hooked := byRun(rcv.evs, res.ID)
		rcv.mu.Unlock()
		checkOrder(t, "webhook", hooked, res.ID, n)
		if diff := cmp.Diff(normal(mine), normal(hooked)); diff != "" {
			t.Errorf("the webhook's events differ from the recorder's (-recorder +webhook):\n%s", diff)
		}
	}
	if len(rcv.bad) > 0 {
		t.Errorf("bad deliveries: %q", rcv.bad)
	}

	// The log: one record per event, with the expected levels.
	levels := map[string]string{}
	count := 0
	for _, l := range logs.lines(t) {
		count++
		levels[l["msg"].(string)] = l["level"].(string)
		if l["run"] == nil || l["seq"] == nil || l["state"] == nil {
			t.Errorf("log record without run, seq or state: %v", l)
		}
	}
	if count != total {
		t.Errorf("log emitter wrote %d records, want %d", count, total)
	}
	for msg, want := range map[string]string{"run started": "INFO", "knot running": "DEBUG", "knot finished": "INFO", "lineage record": "DEBUG", "run finished": "INFO"} {
		if levels[msg] != want {
			t.Errorf("level of %q = %q, want %q", msg, levels[msg], want)
		}
	}

	// The counts, and the hub's log: bounded, one line per kind of miss.
	want := map[string]emit.EmitterStats{
		"hung":     {Name: "hung", Policy: emit.Warn, Failed: 1, Dropped: uint64(total - 1)},
		"failing":  {Name: "failing", Policy: emit.Warn, Failed: uint64(total)},
		"log":      {Name: "log", Policy: emit.Warn, Delivered: uint64(total)},
		"webhook":  {Name: "webhook", Policy: emit.Warn, Delivered: uint64(total)},
		"recorder": {Name: "recorder", Policy: emit.Warn, Delivered: uint64(total)},
	}
	for _, st := range hub.Stats() {
		if diff := cmp.Diff(want[st.Name], st); diff != "" {
			t.Errorf("Stats of %s (-want +got):\n%s", st.Name, diff)
		}
	}
	lines := map[string]int{}
	for _, l := range hubLogs.lines(t) {
		lines[l["emitter"].(string)+": "+l["msg"].(string)]++
	}
	wantLines := map[string]int{
		"hung: emitter failed": 1, "hung: emitter dropped an event": 1, "hung: emitter missed events": 1,
		"failing: emitter failed": 1, "failing: emitter missed events": 1,
	}
	if diff := cmp.Diff(wantLines, lines); diff != "" {
		t.Errorf("hub log lines (-want +got):\n%s", diff)
	}
}

// normal drops what JSON does not carry exactly (monotonic clock readings).
func normal(evs []emit.Event) []emit.Event {
	out := make([]emit.Event, len(evs))
	for i, ev := range evs {
		ev.Time = ev.Time.Round(0).UTC()
		out[i] = ev
	}
	b, _ := json.Marshal(out)
	var back []emit.Event
	json.Unmarshal(b, &back)
	return back
}

// TestHubFullQueue fills a blocked emitter's queue of 2: the run is not
// held up, the other emitter gets every event, the blocked one gets what
// fitted, in order, once released, and the rest are counted as dropped.
func TestHubFullQueue(t *testing.T) {
	e, p := engine(t)
	blocked := newGated("blocked")
	rec := &recorder{name: "recorder"}
	hub, err := emit.NewHub(emit.HubConfig{Emitters: []emit.HubEmitter{
		{Emitter: blocked, Queue: 2, Timeout: time.Hour},
		{Emitter: rec},
	}})
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, e, p, hub, nil)
	n := eventsOf(res)
	<-blocked.entered
	st := hub.Stats()[0]
	if st.Dropped == 0 || st.Queued > 2 {
		t.Errorf("blocked emitter's stats while blocked: %+v, want drops and at most 2 queued", st)
	}
	close(blocked.gate)
	if err := hub.Wait(t.Context(), res.ID); err != nil {
		t.Fatal(err)
	}
	if err := hub.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkOrder(t, "recorder", rec.events(), res.ID, n)
	got := blocked.events()
	st = hub.Stats()[0]
	if int(st.Delivered) != len(got) || int(st.Delivered+st.Dropped) != n || st.Failed != 0 {
		t.Errorf("blocked emitter: %d events, stats %+v, want delivered+dropped = %d", len(got), st, n)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Errorf("blocked emitter got seq %d after %d", got[i].Seq, got[i-1].Seq)
		}
	}
}

// TestHubPolicyFail: Wait names a "fail" emitter that failed or dropped
// an event of the run, and not one of policy warn.
func TestHubPolicyFail(t *testing.T) {
	e, p := engine(t)
	blocked := newGated("slow")
	hub, err := emit.NewHub(emit.HubConfig{Emitters: []emit.HubEmitter{
		{Emitter: failing{"down"}, Policy: emit.Fail},
		{Emitter: failing{"flaky"}, Policy: emit.Warn},
		{Emitter: blocked, Policy: emit.Fail, Queue: 1, Timeout: time.Hour},
		{Emitter: &recorder{name: "fine"}, Policy: emit.Fail},
	}})
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, e, p, hub, nil)
	close(blocked.gate)
	err = hub.Wait(t.Context(), res.ID)
	fe, ok := errors.AsType[*emit.FailedError](err)
	if !ok {
		t.Fatalf("Wait = %v, want a *FailedError", err)
	}
	if diff := cmp.Diff([]string{"down", "slow"}, fe.Emitters); diff != "" || fe.RunID != res.ID {
		t.Errorf("Wait = %v (-want +got emitters):\n%s", err, diff)
	}
	if !strings.Contains(err.Error(), "down") {
		t.Errorf("Wait's error %q does not name the emitter", err)
	}
	if err := hub.Wait(t.Context(), res.ID); err != nil {
		t.Errorf("a second Wait = %v, want nil (the run is forgotten)", err)
	}
	if err := hub.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestHubCloseDrains: Close lets a slow emitter handle everything queued.
func TestHubCloseDrains(t *testing.T) {
	e, p := engine(t)
	slow := newGated("slow")
	hub, err := emit.NewHub(emit.HubConfig{Emitters: []emit.HubEmitter{{Emitter: slow, Timeout: time.Hour}}})
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, e, p, hub, nil)
	<-slow.entered
	closed := make(chan error, 1)
	go func() { closed <- hub.Close(t.Context()) }()
	close(slow.gate)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	checkOrder(t, "slow", slow.events(), res.ID, eventsOf(res))
	hub.Event(scheduler.Event{Kind: scheduler.RunStarted, RunID: "late"}) // after Close: dropped, no panic
	if st := hub.Stats()[0]; st.Dropped != 1 {
		t.Errorf("an event after Close: stats %+v, want 1 dropped", st)
	}
}

// TestHubCloseDeadline: Close returns at its deadline, naming the emitter
// stuck in a call that ignores its context.
func TestHubCloseDeadline(t *testing.T) {
	stuck := newGated("stuck")
	defer close(stuck.gate)
	hub, err := emit.NewHub(emit.HubConfig{Emitters: []emit.HubEmitter{{Emitter: stuck, Timeout: time.Hour}}})
	if err != nil {
		t.Fatal(err)
	}
	hub.Event(scheduler.Event{Kind: scheduler.RunStarted, RunID: "r", Run: &lineage.Run{ID: "r"}})
	<-stuck.entered
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := hub.Close(ctx); err == nil || !strings.Contains(err.Error(), "stuck") {
		t.Errorf("Close = %v, want an error naming the stuck emitter", err)
	}
}

// TestHubRedact: error messages and traces, the run's error and labels'
// values are redacted before any emitter sees them.
func TestHubRedact(t *testing.T) {
	rec := &recorder{name: "rec"}
	hub, err := emit.NewHub(emit.HubConfig{Emitters: []emit.HubEmitter{{Emitter: rec}},
		Redact: func(s string) string { return strings.ReplaceAll(s, "s3cret", "[redacted]") }})
	if err != nil {
		t.Fatal(err)
	}
	hub.Event(scheduler.Event{Kind: scheduler.RunStarted, RunID: "r", Run: &lineage.Run{ID: "r", Pipeline: "p", Status: lineage.Running},
		Labels: map[string]string{"auth": "token s3cret"}})
	hub.Event(scheduler.Event{Kind: scheduler.KnotFinished, RunID: "r", Record: lineage.Record{KnotID: "k", Outcome: lineage.Err},
		Error: &lineage.ErrorRecord{Type: "Boom", Message: "bad s3cret", Trace: "at s3cret"}})
	hub.Event(scheduler.Event{Kind: scheduler.RunFinished, RunID: "r", Result: &scheduler.Result{Run: lineage.Run{ID: "r", Status: lineage.Failed}},
		Err: errors.New("recording failed: s3cret")})
	if err := hub.Wait(t.Context(), "r"); err != nil {
		t.Fatal(err)
	}
	hub.Close(t.Context())
	b, _ := json.Marshal(rec.events())
	if strings.Contains(string(b), "s3cret") || strings.Count(string(b), "[redacted]") != 4 {
		t.Errorf("events: %s", b)
	}
	if evs := rec.events(); evs[1].Pipeline != "p" || evs[2].State != "failed" {
		t.Errorf("pipeline %q, state %q", evs[1].Pipeline, evs[2].State)
	}
}

func TestNewHubErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  emit.HubConfig
	}{
		{"nil emitter", emit.HubConfig{Emitters: []emit.HubEmitter{{}}}},
		{"bad policy", emit.HubConfig{Emitters: []emit.HubEmitter{{Emitter: &recorder{name: "r"}, Policy: "loud"}}}},
		{"negative queue", emit.HubConfig{Emitters: []emit.HubEmitter{{Emitter: &recorder{name: "r"}, Queue: -1}}}},
		{"negative interval", emit.HubConfig{LogInterval: -time.Second}},
	} {
		if _, err := emit.NewHub(tc.cfg); err == nil {
			t.Errorf("%s: NewHub succeeded", tc.name)
		}
	}
	hub, err := emit.NewHub(emit.HubConfig{Emitters: []emit.HubEmitter{{Emitter: &recorder{name: "r"}}, {Emitter: &recorder{name: "r"}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close(t.Context())
	if st := hub.Stats(); st[0].Name != "r" || st[1].Name != "r#2" || st[0].Policy != emit.Warn {
		t.Errorf("Stats = %+v", st)
	}
}

func TestNewHubEmitter(t *testing.T) {
	he, err := emit.NewHubEmitter(emit.Spec{Type: "log", Fields: map[string]any{"policy": "fail", "queue": 7, "timeout": "2s"}})
	if err != nil {
		t.Fatal(err)
	}
	if he.Policy != emit.Fail || he.Queue != 7 || he.Timeout != 2*time.Second || he.Emitter.Name() != "log" {
		t.Errorf("NewHubEmitter = %+v", he)
	}
	for _, tc := range []struct {
		name  string
		spec  emit.Spec
		inErr string
	}{
		{"unknown type", emit.Spec{Type: "carrier-pigeon"}, "unknown type"},
		{"unknown field", emit.Spec{Type: "log", Fields: map[string]any{"colour": "red"}}, "colour"},
		{"bad policy", emit.Spec{Type: "log", Fields: map[string]any{"policy": "loud"}}, "loud"},
		{"bad timeout", emit.Spec{Type: "log", Fields: map[string]any{"timeout": 5}}, "duration"},
		{"negative queue", emit.Spec{Type: "log", Fields: map[string]any{"queue": -1}}, "negative"},
	} {
		if _, err := emit.NewHubEmitter(tc.spec); err == nil || !strings.Contains(err.Error(), tc.inErr) {
			t.Errorf("%s: NewHubEmitter = %v, want an error with %q", tc.name, err, tc.inErr)
		}
	}
}

// TestHubConcurrentRuns: four runs at once of a pipeline with three Maps
// (elements run in parallel, so the scheduler calls Event from several
// goroutines at once): every run's events reach the emitter numbered in
// order, with each element's start before its end.
func TestHubConcurrentRuns(t *testing.T) {
	e, _ := engine(t)
	p, err := e.LoadPipeline(t.Context(), "../examples/pipelines/map.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{name: "rec"}
	hub, err := emit.NewHub(emit.HubConfig{Emitters: []emit.HubEmitter{{Emitter: rec, Policy: emit.Fail}}})
	if err != nil {
		t.Fatal(err)
	}
	results := make([]*scheduler.Result, 4)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			res, err := e.Run(t.Context(), p.Tapestry, pirn.RunRequest{Pipeline: "map", Observer: hub})
			if err != nil {
				t.Error(err)
				return
			}
			results[i] = res
		})
	}
	wg.Wait()
	for _, res := range results {
		if res == nil {
			t.FailNow()
		}
		if err := hub.Wait(t.Context(), res.ID); err != nil {
			t.Fatal(err)
		}
	}
	hub.Close(t.Context())
	all := rec.events()
	for _, res := range results {
		var mine []emit.Event
		for _, ev := range all {
			if ev.RunID == res.ID {
				mine = append(mine, ev)
			}
		}
		checkOrder(t, "rec", mine, res.ID, eventsOf(res))
	}
}
