package otel_test

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/emit/otel"
	"github.com/pirn-wasm/pirn/lineage"
)

const (
	callerTrace = "0af7651916cd43dd8448eb211c80319c"
	callerSpan  = "b7ad6b7169203331"
)

var shared struct {
	once sync.Once
	e    *pirn.Engine
	p    *pirn.Pipeline
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.e != nil {
		shared.e.Close(context.Background())
	}
	os.Exit(code)
}

// runQuickstart runs the README's pipeline once with the emitter behind a
// Hub, waits for the Hub and closes it.
func runQuickstart(t *testing.T, em emit.Emitter, labels map[string]string) *pirn.RunResult {
	t.Helper()
	shared.once.Do(func() {
		ctx := context.Background()
		shared.e, shared.err = pirn.Open(ctx, pirn.Config{CacheDir: "-", AllowUnpinned: true})
		if shared.err == nil {
			shared.p, shared.err = shared.e.LoadPipeline(ctx, "../../examples/quickstart/pipeline.yaml")
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	hub, err := emit.NewHub(emit.HubConfig{Emitters: []emit.HubEmitter{{Emitter: em, Policy: emit.Fail}}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := shared.e.Run(t.Context(), shared.p.Tapestry, pirn.RunRequest{Pipeline: shared.p.Spec.Name, Observer: hub, Labels: labels})
	if err != nil || res.Status != lineage.Succeeded {
		t.Fatalf("Run = %v, %v", res, err)
	}
	if err := hub.Wait(t.Context(), res.ID); err != nil {
		t.Fatal(err)
	}
	if err := hub.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	return res
}

func attrs(kvs []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// TestTrace: one trace per run, the run's span a child of the caller's
// (traceparent), a span per knot its child with the record's times and
// attributes; and the metrics.
func TestTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	em, err := otel.NewWithProviders(tp, mp)
	if err != nil {
		t.Fatal(err)
	}
	res := runQuickstart(t, em, map[string]string{"traceparent": "00-" + callerTrace + "-" + callerSpan + "-01", "tracestate": "vendor=1"})

	spans := exp.GetSpans()
	if len(spans) != len(res.Records)+1 {
		t.Fatalf("%d spans, want %d (a run and %d records)", len(spans), len(res.Records)+1, len(res.Records))
	}
	var runSpan tracetest.SpanStub
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = s
		if s.Name == "run quickstart" {
			runSpan = s
		}
	}
	if runSpan.Name == "" {
		t.Fatalf("no span \"run quickstart\" among %v", byName)
	}
	if got := runSpan.SpanContext.TraceID().String(); got != callerTrace {
		t.Errorf("run span's trace %s, want the caller's %s", got, callerTrace)
	}
	if got := runSpan.Parent.SpanID().String(); got != callerSpan || !runSpan.Parent.IsRemote() {
		t.Errorf("run span's parent %s (remote %v), want the caller's %s", got, runSpan.Parent.IsRemote(), callerSpan)
	}
	if runSpan.Parent.TraceState().Get("vendor") != "1" {
		t.Errorf("tracestate %q, want vendor=1", runSpan.Parent.TraceState())
	}
	if a := attrs(runSpan.Attributes); a["pirn.run_id"] != res.ID || a["pirn.status"] != "succeeded" {
		t.Errorf("run span attributes %v", a)
	}
	if !runSpan.StartTime.Equal(res.StartedAt) || !runSpan.EndTime.Equal(res.FinishedAt) {
		t.Errorf("run span %v–%v, want %v–%v", runSpan.StartTime, runSpan.EndTime, res.StartedAt, res.FinishedAt)
	}
	for _, r := range res.Records {
		s, ok := byName["knot "+r.KnotID]
		if !ok {
			t.Errorf("no span for %s", r.KnotID)
			continue
		}
		if s.Parent.SpanID() != runSpan.SpanContext.SpanID() || s.SpanContext.TraceID() != runSpan.SpanContext.TraceID() {
			t.Errorf("%s: parent %s in trace %s, want the run span %s", r.KnotID, s.Parent.SpanID(), s.SpanContext.TraceID(), runSpan.SpanContext.SpanID())
		}
		if !s.StartTime.Equal(r.StartedAt) || !s.EndTime.Equal(r.FinishedAt) {
			t.Errorf("%s: span %v–%v, want the record's %v–%v", r.KnotID, s.StartTime, s.EndTime, r.StartedAt, r.FinishedAt)
		}
		a := attrs(s.Attributes)
		want := map[string]string{"pirn.run_id": res.ID, "pirn.knot": r.KnotID, "pirn.kind": string(r.Kind), "pirn.outcome": "ok",
			"pirn.output": r.Output.String()}
		if r.Module != "" {
			want["pirn.module"], want["pirn.function"] = r.Module, r.Knot
		}
		for _, in := range r.Inputs {
			want["pirn.input."+in.Name] = in.Digest.String()
		}
		for k, v := range want {
			if a[k] != v {
				t.Errorf("%s: attribute %s = %q, want %q", r.KnotID, k, a[k], v)
			}
		}
		if s.Status.Code != codes.Unset {
			t.Errorf("%s: status %v", r.KnotID, s.Status)
		}
	}
	if _, ok := byName["knot answer"]; !ok || len(byName["knot answer"].Attributes) < 7 {
		t.Errorf("knot answer's span: %+v", byName["knot answer"])
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					got[m.Name] += int64(p.Count)
				}
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					got[m.Name] += p.Value
				}
			case metricdata.Gauge[int64]:
				got[m.Name] += int64(len(d.DataPoints))
			}
		}
	}
	n := int64(len(res.Records))
	want := map[string]int64{"pirn.knot.duration": n, "pirn.knot.outcomes": n, "pirn.runs": 1, "pirn.emitter.queue": 1}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("metric %s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}

// TestTraceErrAndOrphans: an err knot's span has status Error and its
// error type; a run whose start was dropped still gets a run span (marked
// incomplete) and its knots are its children; without a traceparent the
// run's span is a root.
func TestTraceErrAndOrphans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	em, err := otel.NewWithProviders(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	rec := &emit.Record{Knot: "k", Kind: "knot", Outcome: "err", Started: t0, Finished: t0.Add(time.Second)}
	for _, ev := range []emit.Event{
		{Kind: emit.KnotStatus, RunID: "r", Knot: "k", State: "err", Record: rec, Error: &emit.Error{Type: "DivideByZero", Message: "no"}},
		{Kind: emit.RunFinished, RunID: "r", State: "failed", Time: t0.Add(2 * time.Second), Run: &emit.Run{Status: "failed", Finished: t0.Add(2 * time.Second)}},
	} {
		if err := em.Emit(t.Context(), &ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := em.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	knot, run := spans[0], spans[1]
	if knot.Status.Code != codes.Error || attrs(knot.Attributes)["pirn.error.type"] != "DivideByZero" {
		t.Errorf("err knot: status %v, attributes %v", knot.Status, attrs(knot.Attributes))
	}
	if run.Status.Code != codes.Error || attrs(run.Attributes)["pirn.incomplete"] != "true" || run.Parent.IsValid() {
		t.Errorf("run span: status %v, attributes %v, parent %v", run.Status, attrs(run.Attributes), run.Parent)
	}
	if knot.Parent.SpanID() != run.SpanContext.SpanID() {
		t.Errorf("knot's parent %s, want the run's %s", knot.Parent.SpanID(), run.SpanContext.SpanID())
	}
}

// collector is an OTLP/HTTP receiver: it decodes the protobuf requests.
type collector struct {
	mu      sync.Mutex
	traces  []*coltracepb.ExportTraceServiceRequest
	metrics int
	auth    []string
	bad     []string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.auth = append(c.auth, r.Header.Get("Authorization"))
	if err != nil || r.Header.Get("Content-Type") != "application/x-protobuf" {
		c.bad = append(c.bad, r.URL.Path+": "+r.Header.Get("Content-Type"))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var resp proto.Message
	switch r.URL.Path {
	case "/otlp/v1/traces":
		req := &coltracepb.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(body, req); err != nil {
			c.bad = append(c.bad, err.Error())
		}
		c.traces = append(c.traces, req)
		resp = &coltracepb.ExportTraceServiceResponse{}
	case "/otlp/v1/metrics":
		req := &colmetricpb.ExportMetricsServiceRequest{}
		if err := proto.Unmarshal(body, req); err != nil {
			c.bad = append(c.bad, err.Error())
		}
		c.metrics++
		resp = &colmetricpb.ExportMetricsServiceResponse{}
	default:
		c.bad = append(c.bad, "path "+r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
		return
	}
	b, _ := proto.Marshal(resp)
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(b)
}

// TestOTLP sends a run's trace and metrics to an OTLP/HTTP receiver
// through the emitter serve.yaml configures.
func TestOTLP(t *testing.T) {
	c := &collector{}
	srv := httptest.NewServer(c)
	defer srv.Close()
	t.Setenv("PIRN_TEST_OTLP_TOKEN", "Bearer t0ken")
	em, err := otel.FromSpec(emit.Spec{Type: "otel", Fields: map[string]any{
		"endpoint": srv.URL + "/otlp", "insecure": true, "service_name": "pirn-test",
		"headers_env": map[string]any{"Authorization": "PIRN_TEST_OTLP_TOKEN"}, "metric_interval": "1h"}})
	if err != nil {
		t.Fatal(err)
	}
	res := runQuickstart(t, em, nil) // the Hub's Close flushes the emitter

	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.bad) > 0 || c.metrics == 0 {
		t.Errorf("bad requests %q; %d metric exports", c.bad, c.metrics)
	}
	for _, a := range c.auth {
		if a != "Bearer t0ken" {
			t.Errorf("Authorization %q", a)
		}
	}
	ids := map[string]string{} // span id -> name
	parents := map[string]string{}
	var service string
	for _, req := range c.traces {
		for _, rs := range req.ResourceSpans {
			for _, kv := range rs.Resource.Attributes {
				if kv.Key == "service.name" {
					service = kv.Value.GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					ids[hex.EncodeToString(s.SpanId)] = s.Name
					parents[s.Name] = hex.EncodeToString(s.ParentSpanId)
				}
			}
		}
	}
	if service != "pirn-test" || len(ids) != len(res.Records)+1 {
		t.Fatalf("service %q, spans %v", service, ids)
	}
	for _, r := range res.Records {
		if p := ids[parents["knot "+r.KnotID]]; p != "run quickstart" {
			t.Errorf("knot %s's parent is %q, want the run's span", r.KnotID, p)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fields map[string]any
		inErr  string
	}{
		{"http without insecure", map[string]any{"endpoint": "http://127.0.0.1:4318"}, "insecure"},
		{"not http", map[string]any{"endpoint": "grpc://127.0.0.1:4317"}, "http"},
		{"no endpoint", map[string]any{}, "endpoint"},
		{"unknown field", map[string]any{"endpoint": "https://x", "sampler": "all"}, "sampler"},
		{"unset header variable", map[string]any{"endpoint": "https://x", "headers_env": map[string]any{"X-Key": "PIRN_TEST_NO_SUCH_VAR"}}, "PIRN_TEST_NO_SUCH_VAR"},
	} {
		_, err := otel.FromSpec(emit.Spec{Type: "otel", Fields: tc.fields})
		if err == nil || !strings.Contains(err.Error(), tc.inErr) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.inErr)
		}
	}
}

// TestTraceMap: a Map's elements are children of the Map's span, which
// is a child of the run's.
func TestTraceMap(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	em, err := otel.NewWithProviders(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)), nil)
	if err != nil {
		t.Fatal(err)
	}
	runQuickstart(t, em, nil) // opens the shared engine
	exp.Reset()
	em, err = otel.NewWithProviders(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := shared.e.LoadPipeline(t.Context(), "../../examples/pipelines/map.yaml")
	if err != nil {
		t.Fatal(err)
	}
	hub, err := emit.NewHub(emit.HubConfig{Emitters: []emit.HubEmitter{{Emitter: em}}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := shared.e.Run(t.Context(), p.Tapestry, pirn.RunRequest{Pipeline: "map", Observer: hub})
	if err != nil || res.Status != lineage.Succeeded {
		t.Fatalf("Run = %v, %v", res, err)
	}
	hub.Wait(t.Context(), res.ID)
	hub.Close(t.Context())
	ids := map[string]string{} // span id -> name
	for _, s := range exp.GetSpans() {
		ids[s.SpanContext.SpanID().String()] = s.Name
	}
	elements := 0
	for _, s := range exp.GetSpans() {
		a := attrs(s.Attributes)
		want := "run map"
		switch {
		case s.Name == "run map":
			continue
		case a["pirn.kind"] == "element":
			want = "knot " + a["pirn.map"]
			elements++
		}
		if got := ids[s.Parent.SpanID().String()]; got != want {
			t.Errorf("%s's parent is %q, want %q", s.Name, got, want)
		}
	}
	if elements != 12 {
		t.Errorf("%d element spans, want 12 (three Maps of four)", elements)
	}
}
