package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/scheduler"
)

// events collects the runs' events a test waits for.
type events struct {
	mu       sync.Mutex
	started  map[string]map[string]string // run id -> labels
	finished chan scheduler.Event
}

func newEvents() *events {
	return &events{started: map[string]map[string]string{}, finished: make(chan scheduler.Event, 1<<16)}
}

func (e *events) Event(ev scheduler.Event) {
	switch ev.Kind {
	case scheduler.RunStarted:
		e.mu.Lock()
		e.started[ev.RunID] = ev.Labels
		e.mu.Unlock()
	case scheduler.RunFinished:
		e.finished <- ev
	}
}

func (e *events) labels(id string) map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.started[id]
}

// waitFinished waits for the run id's RunFinished event.
func (e *events) waitFinished(t *testing.T, id string) scheduler.Event {
	t.Helper()
	for {
		select {
		case ev := <-e.finished:
			if ev.RunID == id {
				return ev
			}
		case <-t.Context().Done():
			t.Fatalf("run %s never finished", id)
		}
	}
}

// testServer is a Server running on 127.0.0.1:0 for one test.
type testServer struct {
	*Server
	eng    *pirn.Engine
	ev     *events
	url    string
	cancel context.CancelFunc
	done   chan error
}

// startServer parses src (pipelines relative to this package), starts
// the server and stops it when the test ends.
func startServer(t testing.TB, src string) *testServer {
	t.Helper()
	cfg, err := Parse("serve.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	cfg.Listen = "127.0.0.1:0"
	eng, err := pirn.Open(t.Context(), pirn.Config{CacheDir: testCache})
	if err != nil {
		t.Fatal(err)
	}
	ev := newEvents()
	srv, err := New(t.Context(), eng, cfg, Options{Observer: ev})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: srv, eng: eng, ev: ev, cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-ts.done:
		t.Fatalf("Run: %v", err)
	}
	ts.url = "http://" + srv.Addr().String()
	t.Cleanup(func() {
		ts.stop(t)
		eng.Close(context.Background())
	})
	return ts
}

// stop ends Run and waits for it.
func (ts *testServer) stop(t testing.TB) {
	ts.cancel()
	if err := <-ts.done; err != nil {
		t.Errorf("Run = %v", err)
	}
	ts.done <- nil // for a second stop
}

type response struct {
	code int
	body map[string]string
	hdr  http.Header
	raw  string
}

func post(t *testing.T, url string, body []byte, hdr map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: %d, body %q is not a JSON object of strings", req.Method, req.URL, resp.StatusCode, b)
	}
	return response{resp.StatusCode, m, resp.Header, string(b)}
}

// testCache keeps compiled modules across the tests' engines.
var testCache = filepath.Join(os.TempDir(), "pirn-serve-test-cache")

const hookSecret, hookToken = "s3cret-for-tests", "t0ken-for-tests"

func serveYAML(pipelines, triggers string) string {
	return "pipelines:\n" + pipelines + "triggers:\n" + triggers
}

var quickPipeline = "  - {name: quick, path: " + quickstart + "}\n"

// outputOf returns the digest of knot's output in the recorded run.
func outputOf(t *testing.T, h lineage.History, runID, knot string) cas.Digest {
	t.Helper()
	run, err := h.Run(t.Context(), runID)
	if err != nil {
		t.Fatalf("run %s not recorded: %v", runID, err)
	}
	for _, r := range run.Records {
		if r.KnotID == knot {
			return r.Output
		}
	}
	t.Fatalf("run %s has no record of %s", runID, knot)
	return cas.Digest{}
}

func TestWebhookBearer(t *testing.T) {
	t.Setenv("HOOK_TOKEN", hookToken)
	ts := startServer(t, serveYAML(quickPipeline,
		"  - {type: webhook, pipeline: quick, path: /hooks/quick, max_body: 4096, auth: {bearer_token_env: HOOK_TOKEN}, rate: {per_second: 1000, burst: 1000}}\n"))
	url := ts.url + "/hooks/quick"
	auth := map[string]string{"Authorization": "Bearer " + hookToken}
	for _, tc := range []struct {
		name string
		body string
		hdr  map[string]string
		code int
		want string // in the error
	}{
		{"no auth", `{"x": 7}`, nil, 401, "unauthorized"},
		{"wrong token", `{"x": 7}`, map[string]string{"Authorization": "Bearer nope"}, 401, "unauthorized"},
		{"basic scheme", `{"x": 7}`, map[string]string{"Authorization": "Basic " + hookToken}, 401, "unauthorized"},
		{"bad JSON", `{"x": `, auth, 400, "not JSON"},
		{"trailing data", `{"x": 1} {}`, auth, 400, "data after"},
		{"not an object", `[1, 2]`, auth, 400, "is a list, not a JSON object"},
		{"unknown param", `{"y": 7}`, auth, 400, `unknown parameter "y"`},
		{"bad param type", `{"x": "seven"}`, auth, 400, `parameter "x"`},
		{"markup escaped", `{"<script>": 1}`, auth, 400, `unknown parameter "<script>"`},
		{"too large", `{"x": "` + strings.Repeat("a", 5000) + `"}`, auth, 413, "larger than 4096"},
		{"bad idempotency key", `{"x": 1}`, map[string]string{"Authorization": "Bearer " + hookToken, IdempotencyKeyHeader: strings.Repeat("k", 300)}, 400, "Idempotency-Key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, url, []byte(tc.body), tc.hdr)
			if r.code != tc.code || !strings.Contains(r.body["error"], tc.want) {
				t.Errorf("POST %s = %d %q, want %d with %q", tc.body, r.code, r.body, tc.code, tc.want)
			}
			if strings.Contains(tc.body, "<") && !strings.Contains(r.raw, `\u003cscript\u003e`) {
				t.Errorf("response %s: markup not escaped", r.raw)
			}
		})
	}
	get, _ := http.NewRequest(http.MethodGet, url, nil)
	if r := do(t, get); r.code != 405 || r.hdr.Get("Allow") != "POST" {
		t.Errorf("GET = %d (Allow %q), want 405 (Allow POST)", r.code, r.hdr.Get("Allow"))
	}
	if h, _ := ts.eng.History().Runs(t.Context(), lineage.Query{}); len(h) != 0 {
		t.Errorf("refused requests recorded %d runs, want 0", len(h))
	}

	r := post(t, url, []byte(`{"x": 7}`), auth)
	if r.code != 202 || !strings.HasPrefix(r.body["run_id"], "run-") {
		t.Fatalf("POST = %d %v, want 202 with a run id", r.code, r.body)
	}
	ev := ts.ev.waitFinished(t, r.body["run_id"])
	if ev.Result.Status != lineage.Succeeded {
		t.Fatalf("run %s: %s", r.body["run_id"], ev.Result.Status)
	}
	want, _ := cas.Hash(int64(21))
	if got := outputOf(t, ts.eng.History(), r.body["run_id"], "answer"); got != want {
		t.Errorf("answer of x=7 recorded as %s, want %s (21)", got, want)
	}
	if l := ts.ev.labels(r.body["run_id"]); l["trigger"] != "webhook" || l["path"] != "/hooks/quick" {
		t.Errorf("labels = %v, want trigger=webhook path=/hooks/quick", l)
	}
}

func TestWebhookHMAC(t *testing.T) {
	t.Setenv("HOOK_SECRET", hookSecret)
	ts := startServer(t, serveYAML(quickPipeline,
		"  - {type: webhook, pipeline: quick, path: /h, auth: {hmac_secret_env: HOOK_SECRET}, mapping: {params: {x: \"event.n * 2\"}}}\n"))
	body := []byte(`{"n": 4}`)
	signed := func(at time.Time, secret string, b []byte) map[string]string {
		return map[string]string{emit.TimestampHeader: strconv.FormatInt(at.Unix(), 10), emit.SignatureHeader: emit.Sign([]byte(secret), at, b)}
	}
	now := time.Now()
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		code int
		want string
	}{
		{"unsigned", nil, 401, "no signature"},
		{"other secret", signed(now, "other", body), 401, "does not match"},
		{"other body", signed(now, hookSecret, []byte(`{"n": 5}`)), 401, "does not match"},
		{"replayed", signed(now.Add(-6*time.Minute), hookSecret, body), 401, "replay window"},
		{"from the future", signed(now.Add(6*time.Minute), hookSecret, body), 401, "replay window"},
	} {
		if r := post(t, ts.url+"/h", body, tc.hdr); r.code != tc.code || !strings.Contains(r.body["error"], tc.want) {
			t.Errorf("%s: %d %v, want %d with %q", tc.name, r.code, r.body, tc.code, tc.want)
		}
	}
	r := post(t, ts.url+"/h", body, signed(now, hookSecret, body))
	if r.code != 202 {
		t.Fatalf("signed POST = %d %v, want 202", r.code, r.body)
	}
	ts.ev.waitFinished(t, r.body["run_id"])
	want, _ := cas.Hash(int64(8)) // x = event.n * 2
	if got := outputOf(t, ts.eng.History(), r.body["run_id"], "x"); got != want {
		t.Errorf("x recorded as %s, want %s (8, from the mapping)", got, want)
	}
}

func TestWebhookIdempotencyAndTrace(t *testing.T) {
	ts := startServer(t, serveYAML(quickPipeline, "  - {type: webhook, pipeline: quick, path: /h, auth: none}\n"))
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	hdr := map[string]string{IdempotencyKeyHeader: "delivery-42", TraceParentHeader: tp, TraceStateHeader: "rojo=00f067aa0ba902b7"}
	first := post(t, ts.url+"/h", []byte(`{"x": 2}`), hdr)
	second := post(t, ts.url+"/h", []byte(`{"x": 2}`), hdr)
	if first.code != 202 || second.code != 202 || first.body["run_id"] != second.body["run_id"] {
		t.Fatalf("two deliveries with one key = %d %v and %d %v, want 202 twice with one run id", first.code, first.body, second.code, second.body)
	}
	id := first.body["run_id"]
	if id != IdempotentRunID("quick", "delivery-42") {
		t.Errorf("run id %s, want IdempotentRunID's %s", id, IdempotentRunID("quick", "delivery-42"))
	}
	ts.ev.waitFinished(t, id)
	third := post(t, ts.url+"/h", []byte(`{"x": 2}`), hdr) // after it was recorded
	if third.code != 202 || third.body["run_id"] != id {
		t.Errorf("a retry after the run was recorded = %d %v, want 202 with %s", third.code, third.body, id)
	}
	runs, err := ts.eng.History().Runs(t.Context(), lineage.Query{})
	if err != nil || len(runs) != 1 {
		t.Errorf("history holds %d runs (%v), want 1", len(runs), err)
	}
	l := ts.ev.labels(id)
	if l["traceparent"] != tp || l["tracestate"] != "rojo=00f067aa0ba902b7" || l["idempotency_key"] != "delivery-42" {
		t.Errorf("labels = %v, want the traceparent, tracestate and idempotency key", l)
	}
	// A malformed traceparent is dropped, not refused.
	for _, bad := range []string{"00-zz-00f067aa0ba902b7-01", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", tp + "-extra"} {
		r := post(t, ts.url+"/h", []byte(`{"x": 3}`), map[string]string{TraceParentHeader: bad, TraceStateHeader: "a=b"})
		if r.code != 202 {
			t.Fatalf("traceparent %q: %d %v, want 202", bad, r.code, r.body)
		}
		ts.ev.waitFinished(t, r.body["run_id"])
		if l := ts.ev.labels(r.body["run_id"]); l["traceparent"] != "" || l["tracestate"] != "" {
			t.Errorf("traceparent %q kept: %v", bad, l)
		}
	}
}

func TestWebhookRateLimit(t *testing.T) {
	ts := startServer(t, serveYAML(quickPipeline,
		"  - {type: webhook, pipeline: quick, path: /h, auth: none, rate: {per_second: 0.001, burst: 2}}\n"))
	codes := []int{}
	for range 3 {
		r := post(t, ts.url+"/h", []byte(`{"x": 1}`), nil)
		codes = append(codes, r.code)
		if r.code == 429 && r.hdr.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
	}
	if fmt.Sprint(codes) != "[202 202 429]" {
		t.Errorf("three requests from one client with a burst of 2 = %v, want [202 202 429]", codes)
	}
}

func TestWebhookQueueFullAndStopping(t *testing.T) {
	ts := startServer(t, serveYAML("  - {name: slow, path: testdata/slow.yaml, concurrency: 1, queue: 0}\n",
		"  - {type: webhook, pipeline: slow, path: /h, auth: none}\n"))
	first := post(t, ts.url+"/h", nil, nil)
	if first.code != 202 {
		t.Fatalf("first = %d %v, want 202", first.code, first.body)
	}
	if r := post(t, ts.url+"/h", nil, nil); r.code != 503 || !strings.Contains(r.body["error"], "queue is full") {
		t.Errorf("second while the first runs = %d %v, want 503 queue full", r.code, r.body)
	}
	// Stopping: the slow run keeps the server draining while we ask.
	ts.cfg.Drain = time.Minute
	ts.cancel()
	for ts.state.Load() != draining {
		time.Sleep(time.Millisecond)
	}
	if r := post(t, ts.url+"/h", nil, nil); r.code != 503 {
		t.Errorf("POST while draining = %d %v, want 503", r.code, r.body)
	}
	ready, _ := http.NewRequest(http.MethodGet, ts.url+"/readyz", nil)
	if r := do(t, ready); r.code != 503 || r.body["status"] != "draining" {
		t.Errorf("/readyz while draining = %d %v, want 503 draining", r.code, r.body)
	}
	// The slow run ends at its knot's timeout of a minute unless
	// cancelled: cancel it through the runner, as the drain deadline
	// would, and check it is recorded as cancelled.
	ts.Runner("slow").cancel()
	ev := ts.ev.waitFinished(t, first.body["run_id"])
	if ev.Result == nil || ev.Result.Status != lineage.Cancelled {
		t.Errorf("the run in flight ended %v, want cancelled", ev.Result)
	}
}

func TestHealth(t *testing.T) {
	cfg, err := Parse("serve.yaml", []byte(serveYAML(quickPipeline, "  - {type: cron, pipeline: quick, every: 1h}\n")))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := pirn.Open(t.Context(), pirn.Config{CacheDir: testCache})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(context.Background())
	srv, err := New(t.Context(), eng, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Before Run: alive, not ready.
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503} {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want {
			t.Errorf("%s before Run = %d, want %d", path, rec.Code, want)
		}
	}
	cfg.Listen = "127.0.0.1:0"
	srv, err = New(t.Context(), eng, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	<-srv.Ready()
	for _, path := range []string{"/healthz", "/readyz"} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Addr().String()+path, nil)
		if r := do(t, req); r.code != 200 {
			t.Errorf("%s = %d, want 200", path, r.code)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if err := srv.Run(t.Context()); err == nil {
		t.Errorf("a second Run = nil, want an error")
	}
}

func TestNewReportsEveryLoadError(t *testing.T) {
	cfg, err := Parse("serve.yaml", []byte("pipelines:\n  - {name: a, path: testdata/missing.yaml}\n  - {name: b, path: testdata/gone.yaml}\ntriggers:\n  - {type: cron, pipeline: a, every: 1h}\n  - {type: cron, pipeline: b, every: 1h, params: {y: 1}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	eng, _ := pirn.Open(t.Context(), pirn.Config{CacheDir: testCache})
	defer eng.Close(context.Background())
	_, err = New(t.Context(), eng, cfg, Options{})
	if err == nil || !strings.Contains(err.Error(), "serve.yaml:2: pipeline a") || !strings.Contains(err.Error(), "serve.yaml:3: pipeline b") {
		t.Errorf("New = %v, want errors naming both pipelines and their lines", err)
	}
	cfg, _ = Parse("serve.yaml", []byte(serveYAML(quickPipeline, "  - {type: cron, pipeline: quick, every: 1h, params: {y: 1}}\n")))
	if _, err := New(t.Context(), eng, cfg, Options{}); err == nil || !strings.Contains(err.Error(), `serve.yaml:4: trigger cron: params: unknown parameter "y"`) {
		t.Errorf("New with a cron trigger's bad params = %v, want an error naming the line and parameter", err)
	}
}

// TestHostileWebhook: junk headers, huge bodies and more clients than
// the rate limiter tracks never crash the server, and its state stays
// bounded.
func TestHostileWebhook(t *testing.T) {
	ts := startServer(t, serveYAML(quickPipeline,
		"  - {type: webhook, pipeline: quick, path: /h, auth: none, max_body: 1024, rate: {per_second: 1, burst: 1, clients: 16}}\n"))
	wh := ts.trigs[0].Trigger.(*Webhook)
	// 64 clients, from 127.0.0.2 to 127.0.0.65: the limiter keeps 16.
	for i := range 64 {
		ip := net.IPv4(127, 0, 0, byte(2+i))
		c := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}).DialContext}}
		resp, err := c.Post(ts.url+"/h", "application/json", strings.NewReader(`{"x": "junk"}`))
		if err != nil {
			t.Fatalf("client %s: %v", ip, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("client %s: %d, want 400 (its bucket is new)", ip, resp.StatusCode)
		}
		c.CloseIdleConnections()
	}
	if n := wh.limit.len(); n != 16 {
		t.Errorf("the limiter tracks %d clients, want its bound 16", n)
	}
	// A body of 64 MiB, streamed: refused at 1 KiB.
	huge := io.LimitReader(zeros{}, 64<<20)
	resp, err := http.Post(ts.url+"/h", "application/json", huge)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Errorf("64 MiB body = %d, want 413", resp.StatusCode)
		}
	} // else: the server closed the connection mid-upload, which is fine
	// Junk headers: oversized, binary, many.
	req, _ := http.NewRequest(http.MethodPost, ts.url+"/h", strings.NewReader(`{}`))
	req.Header.Set("X-Junk", strings.Repeat("j", 2*MaxHeaderBytes))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("oversized header = %d, want 431", resp.StatusCode)
		}
	}
	raw, err := net.Dial("tcp", ts.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(raw, "POST /h HTTP/1.1\r\nHost: x\r\nTraceparent: \x00\x01\xff\r\nIdempotency-Key: \x7f\r\nContent-Length: 2\r\n\r\n{}")
	io.Copy(io.Discard, io.LimitReader(raw, 4096))
	raw.Close()
	// Still serving.
	health, _ := http.NewRequest(http.MethodGet, ts.url+"/healthz", nil)
	if r := do(t, health); r.code != 200 {
		t.Errorf("/healthz after hostile input = %d", r.code)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestRunnerBadRequestRecordsNothing(t *testing.T) {
	eng, _ := pirn.Open(t.Context(), pirn.Config{CacheDir: testCache})
	defer eng.Close(context.Background())
	p, err := eng.LoadPipeline(t.Context(), quickstart)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRunner(eng, p, RunnerConfig{Name: "quick"})
	for _, params := range []map[string]any{{"y": 1}, {"x": "seven"}, {"x": []any{1}}} {
		if _, err := r.Submit(t.Context(), Request{Params: params}); !errors.Is(err, ErrBadRequest) {
			t.Errorf("Submit(%v) = %v, want ErrBadRequest", params, err)
		}
	}
	if _, err := r.Submit(t.Context(), Request{RunID: "bad id!"}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("Submit with a bad run id = %v, want ErrBadRequest", err)
	}
	if runs, _ := eng.History().Runs(t.Context(), lineage.Query{}); len(runs) != 0 {
		t.Errorf("bad requests recorded %d runs", len(runs))
	}
	run, err := r.Submit(t.Context(), Request{RunID: "run-once", Params: map[string]any{"x": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run.Result(); err != nil {
		t.Fatal(err)
	}
	again, err := r.Submit(t.Context(), Request{RunID: "run-once", Params: map[string]any{"x": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := again.Result(); res == nil || res.Status != lineage.Succeeded || res.ID != "run-once" {
		t.Errorf("a recorded run id = %v, want the recorded run", res)
	}
	if err := r.Close(t.Context()); err != nil {
		t.Errorf("Close = %v", err)
	}
	if _, err := r.Submit(t.Context(), Request{}); !errors.Is(err, ErrStopping) {
		t.Errorf("Submit after Close = %v, want ErrStopping", err)
	}
}
