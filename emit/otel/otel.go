// Package otel is the "otel" emitter: it sends pirn's runs to
// OpenTelemetry as traces (one per run: a span "run <pipeline>" and a
// child span per knot, with the records' own start and end times) and
// metrics (knot durations, outcomes, runs, and the emitters' queue
// depths), over OTLP/HTTP or through providers a Go program hands it.
// It is the only package of pirn that imports the OpenTelemetry SDK.
package otel

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/pirn-wasm/pirn/emit"
)

// Bounds of the emitter's own state, for runs whose end it never sees
// (its run_finished event was dropped).
const (
	// MaxOpenRuns is how many runs may have an open span; past it the
	// oldest is ended, marked pirn.incomplete.
	MaxOpenRuns = 1024
	// MaxOpenKnots is how many knot spans of one run may be open at once;
	// past it a knot's span is made when it finishes instead.
	MaxOpenKnots = 4096
	// maxStatus bounds a span status's description (an error's type).
	maxStatus = 256
)

// Attribute keys.
const (
	AttrRunID      = "pirn.run_id"
	AttrPipeline   = "pirn.pipeline"
	AttrKnot       = "pirn.knot"
	AttrKind       = "pirn.kind"
	AttrModule     = "pirn.module"
	AttrFunction   = "pirn.function"
	AttrOutcome    = "pirn.outcome"
	AttrOutput     = "pirn.output"
	AttrInput      = "pirn.input." // + the input's name
	AttrGrants     = "pirn.grants"
	AttrSkipReason = "pirn.skip_reason"
	AttrErrorType  = "pirn.error.type"
	AttrMap        = "pirn.map"
	AttrIndex      = "pirn.index"
	AttrStatus     = "pirn.status"
	AttrIncomplete = "pirn.incomplete"
	AttrEmitter    = "pirn.emitter"
)

// Config configures an emitter that exports over OTLP/HTTP.
type Config struct {
	// Endpoint is the collector's base URL, such as
	// "http://127.0.0.1:4318": traces go to its path + /v1/traces, metrics
	// to + /v1/metrics.
	Endpoint string
	// Insecure must be set for an http:// Endpoint (no TLS). An https://
	// endpoint's certificate is always verified.
	Insecure bool
	// Headers are sent with every export (an API key, say).
	Headers map[string]string
	// ServiceName is the resource's service.name; "" means "pirn".
	ServiceName string
	// MetricInterval is how often metrics are exported; 0 means 60s.
	MetricInterval time.Duration
	// Timeout bounds each export; 0 means 10s.
	Timeout time.Duration
}

// Emitter is the OpenTelemetry emitter. Emit is called from one goroutine
// (the Hub's); Close flushes and, for an emitter made by New, shuts the
// providers down.
type Emitter struct {
	tracer   trace.Tracer
	duration metric.Float64Histogram
	outcomes metric.Int64Counter
	runCount metric.Int64Counter
	stats    atomic.Pointer[func() []emit.EmitterStats]
	closeFns []func(context.Context) error

	runs  map[string]*runSpans
	order []string // run ids with an open span, oldest first (may hold ended ones)
}

var (
	_ emit.Emitter   = (*Emitter)(nil)
	_ emit.StatsUser = (*Emitter)(nil)
)

// runSpans is one run's open spans.
type runSpans struct {
	ctx   context.Context // carries the run's span, the knots' parent
	span  trace.Span
	knots map[string]trace.Span
}

// New returns an emitter exporting to cfg.Endpoint over OTLP/HTTP. It
// makes no connection: the first export does.
func New(ctx context.Context, cfg Config) (*Emitter, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("otel: endpoint: %w", err)
	}
	switch {
	case u.Host == "" || u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("otel: endpoint %q: want http:// or https:// and a host", cfg.Endpoint)
	case u.Scheme == "http" && !cfg.Insecure:
		return nil, fmt.Errorf("otel: endpoint %q is http://: set insecure: true to send without TLS", cfg.Endpoint)
	case cfg.MetricInterval < 0 || cfg.Timeout < 0:
		return nil, errors.New("otel: metric_interval and timeout must not be negative")
	}
	cfg.Timeout = cmp.Or(cfg.Timeout, 10*time.Second)
	base := strings.TrimSuffix(u.Path, "/")
	topts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(u.Host), otlptracehttp.WithURLPath(base + "/v1/traces"),
		otlptracehttp.WithHeaders(cfg.Headers), otlptracehttp.WithTimeout(cfg.Timeout)}
	mopts := []otlpmetrichttp.Option{otlpmetrichttp.WithEndpoint(u.Host), otlpmetrichttp.WithURLPath(base + "/v1/metrics"),
		otlpmetrichttp.WithHeaders(cfg.Headers), otlpmetrichttp.WithTimeout(cfg.Timeout)}
	if u.Scheme == "http" {
		topts = append(topts, otlptracehttp.WithInsecure())
		mopts = append(mopts, otlpmetrichttp.WithInsecure())
	}
	texp, err := otlptracehttp.New(ctx, topts...)
	if err != nil {
		return nil, fmt.Errorf("otel: trace exporter: %w", err)
	}
	mexp, err := otlpmetrichttp.New(ctx, mopts...)
	if err != nil {
		return nil, fmt.Errorf("otel: metric exporter: %w", err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", cmp.Or(cfg.ServiceName, "pirn")))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(texp), sdktrace.WithResource(res))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(
		sdkmetric.NewPeriodicReader(mexp, sdkmetric.WithInterval(cmp.Or(cfg.MetricInterval, time.Minute)))))
	e, err := NewWithProviders(tp, mp)
	if err != nil {
		return nil, err
	}
	e.closeFns = []func(context.Context) error{tp.Shutdown, mp.Shutdown}
	return e, nil
}

// NewWithProviders returns an emitter that sends through a Go program's
// own providers (mp may be nil: no metrics). Close flushes them (if they
// have ForceFlush) but does not shut them down.
func NewWithProviders(tp trace.TracerProvider, mp metric.MeterProvider) (*Emitter, error) {
	if tp == nil {
		return nil, errors.New("otel: no TracerProvider")
	}
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	const scope = "github.com/pirn-wasm/pirn/emit/otel"
	e := &Emitter{tracer: tp.Tracer(scope), runs: map[string]*runSpans{}}
	m := mp.Meter(scope)
	var err error
	e.duration, err = m.Float64Histogram("pirn.knot.duration", metric.WithUnit("s"),
		metric.WithDescription("How long knots ran, by outcome and kind."))
	if err != nil {
		return nil, fmt.Errorf("otel: %w", err)
	}
	if e.outcomes, err = m.Int64Counter("pirn.knot.outcomes", metric.WithDescription("Knots finished, by outcome and kind.")); err != nil {
		return nil, fmt.Errorf("otel: %w", err)
	}
	if e.runCount, err = m.Int64Counter("pirn.runs", metric.WithDescription("Runs finished, by status.")); err != nil {
		return nil, fmt.Errorf("otel: %w", err)
	}
	queue, err := m.Int64ObservableGauge("pirn.emitter.queue", metric.WithDescription("Events waiting in each emitter's queue."))
	if err != nil {
		return nil, fmt.Errorf("otel: %w", err)
	}
	dropped, err := m.Int64ObservableCounter("pirn.emitter.dropped", metric.WithDescription("Events each emitter dropped."))
	if err != nil {
		return nil, fmt.Errorf("otel: %w", err)
	}
	failed, err := m.Int64ObservableCounter("pirn.emitter.failed", metric.WithDescription("Events each emitter failed to send."))
	if err != nil {
		return nil, fmt.Errorf("otel: %w", err)
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		f := e.stats.Load()
		if f == nil {
			return nil
		}
		for _, st := range (*f)() {
			at := metric.WithAttributes(attribute.String(AttrEmitter, st.Name))
			o.ObserveInt64(queue, int64(st.Queued), at)
			o.ObserveInt64(dropped, int64(st.Dropped), at)
			o.ObserveInt64(failed, int64(st.Failed), at)
		}
		return nil
	}, queue, dropped, failed)
	if err != nil {
		return nil, fmt.Errorf("otel: %w", err)
	}
	if f, ok := tp.(interface{ ForceFlush(context.Context) error }); ok {
		e.closeFns = append(e.closeFns, f.ForceFlush)
	}
	if f, ok := mp.(interface{ ForceFlush(context.Context) error }); ok {
		e.closeFns = append(e.closeFns, f.ForceFlush)
	}
	return e, nil
}

// FromSpec builds the emitter from a serve.yaml entry (type otel); pirn
// serve registers it in emit.Emitters.
func FromSpec(s emit.Spec) (emit.Emitter, error) {
	var f struct {
		Endpoint       string            `json:"endpoint"`
		Insecure       bool              `json:"insecure"`
		Headers        map[string]string `json:"headers"`
		HeadersEnv     map[string]string `json:"headers_env"`
		ServiceName    string            `json:"service_name"`
		MetricInterval emit.Duration     `json:"metric_interval"`
		Timeout        emit.Duration     `json:"timeout"`
	}
	if err := s.Decode(&f); err != nil {
		return nil, err
	}
	cfg := Config{Endpoint: f.Endpoint, Insecure: f.Insecure, Headers: map[string]string{}, ServiceName: f.ServiceName,
		MetricInterval: time.Duration(f.MetricInterval), Timeout: time.Duration(f.Timeout)}
	for k, v := range f.Headers {
		cfg.Headers[k] = v
	}
	for k, env := range f.HeadersEnv {
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return nil, fmt.Errorf("otel: headers_env: the environment variable %s (header %s) is not set", env, k)
		}
		cfg.Headers[k] = v
	}
	return New(context.Background(), cfg)
}

// Name returns "otel".
func (e *Emitter) Name() string { return "otel" }

// UseStats hands the emitter the Hub's figures for its emitter gauges.
func (e *Emitter) UseStats(stats func() []emit.EmitterStats) { e.stats.Store(&stats) }

// Close ends the spans of runs still open (marked pirn.incomplete),
// flushes, and shuts down the providers New made, within ctx.
func (e *Emitter) Close(ctx context.Context) error {
	now := time.Now()
	for _, id := range e.order {
		if rs := e.runs[id]; rs != nil {
			e.abandon(rs, now)
		}
	}
	e.runs, e.order = map[string]*runSpans{}, nil
	var errs []error
	for _, f := range e.closeFns {
		if err := f(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("otel: close: %w", err)
	}
	return nil
}

// Emit turns ev into spans and measurements.
func (e *Emitter) Emit(_ context.Context, ev *emit.Event) error {
	switch ev.Kind {
	case emit.RunStarted:
		e.startRun(ev)
	case emit.KnotStatus:
		if ev.Record == nil {
			return nil
		}
		if ev.State == emit.StateRunning {
			e.startKnot(ev)
		} else {
			e.endKnot(ev)
		}
	case emit.RunFinished:
		e.endRun(ev)
	}
	return nil
}

// startRun opens the run's span, a child of the caller's span if the
// run's labels carry a W3C traceparent.
func (e *Emitter) startRun(ev *emit.Event) {
	if old := e.runs[ev.RunID]; old != nil { // the id is reused: end the old one
		e.abandon(old, ev.Time)
		delete(e.runs, ev.RunID)
	}
	parent := context.Background()
	if tp := ev.Labels["traceparent"]; tp != "" {
		carrier := propagation.MapCarrier{"traceparent": tp}
		if ts := ev.Labels["tracestate"]; ts != "" {
			carrier["tracestate"] = ts
		}
		parent = propagation.TraceContext{}.Extract(parent, carrier)
	}
	start := ev.Time
	attrs := []attribute.KeyValue{attribute.String(AttrRunID, ev.RunID), attribute.String(AttrPipeline, ev.Pipeline)}
	if r := ev.Run; r != nil {
		start = cmp.Or(r.Started, start)
		if len(r.Terminals) > 0 {
			attrs = append(attrs, attribute.StringSlice("pirn.terminals", r.Terminals))
		}
		if r.PipelineDigest != "" {
			attrs = append(attrs, attribute.String("pirn.pipeline_digest", r.PipelineDigest))
		}
		if r.Dispatcher != "" {
			attrs = append(attrs, attribute.String("pirn.dispatcher", r.Dispatcher))
		}
	}
	e.open(ev.RunID, parent, "run "+cmp.Or(ev.Pipeline, ev.RunID), start, attrs)
}

// open starts a run's span and bounds the open runs.
func (e *Emitter) open(runID string, parent context.Context, name string, start time.Time, attrs []attribute.KeyValue) *runSpans {
	ctx, span := e.tracer.Start(parent, name, trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	rs := &runSpans{ctx: ctx, span: span, knots: map[string]trace.Span{}}
	e.runs[runID] = rs
	e.order = append(e.order, runID)
	for len(e.runs) > MaxOpenRuns || len(e.order) > 2*MaxOpenRuns {
		old := e.order[0]
		e.order = e.order[1:]
		if ors := e.runs[old]; ors != nil && len(e.runs) > MaxOpenRuns {
			e.abandon(ors, start)
			delete(e.runs, old)
		}
	}
	return rs
}

// run returns the run's open spans, opening a run span (marked
// pirn.incomplete) if its run_started event never came.
func (e *Emitter) run(ev *emit.Event) *runSpans {
	if rs := e.runs[ev.RunID]; rs != nil {
		return rs
	}
	start := ev.Time
	if ev.Record != nil {
		start = ev.Record.Started
	}
	return e.open(ev.RunID, context.Background(), "run "+cmp.Or(ev.Pipeline, ev.RunID), start,
		[]attribute.KeyValue{attribute.String(AttrRunID, ev.RunID), attribute.String(AttrPipeline, ev.Pipeline), attribute.Bool(AttrIncomplete, true)})
}

// parentOf is the context a knot's span starts in: its Map's span for an
// element, else the run's.
func (rs *runSpans) parentOf(r *emit.Record) context.Context {
	if r.Map != "" {
		if m := rs.knots[r.Map]; m != nil {
			return trace.ContextWithSpan(rs.ctx, m)
		}
	}
	return rs.ctx
}

func (e *Emitter) startKnot(ev *emit.Event) {
	rs := e.run(ev)
	if len(rs.knots) >= MaxOpenKnots || rs.knots[ev.Knot] != nil {
		return
	}
	rs.knots[ev.Knot] = e.knotSpan(rs, ev)
}

func (e *Emitter) knotSpan(rs *runSpans, ev *emit.Event) trace.Span {
	r := ev.Record
	_, span := e.tracer.Start(rs.parentOf(r), "knot "+ev.Knot, trace.WithTimestamp(r.Started),
		trace.WithAttributes(attribute.String(AttrRunID, ev.RunID), attribute.String(AttrKnot, ev.Knot), attribute.String(AttrKind, r.Kind)))
	return span
}

func (e *Emitter) endKnot(ev *emit.Event) {
	rs := e.run(ev)
	span := rs.knots[ev.Knot]
	if span == nil {
		span = e.knotSpan(rs, ev)
	}
	delete(rs.knots, ev.Knot)
	r := ev.Record
	span.SetAttributes(knotAttrs(r)...)
	if ev.Error != nil {
		span.SetAttributes(attribute.String(AttrErrorType, ev.Error.Type))
		span.SetStatus(codes.Error, clip(ev.Error.Type))
	} else if r.Outcome == "err" {
		span.SetStatus(codes.Error, "err")
	}
	span.End(trace.WithTimestamp(r.Finished))
	by := metric.WithAttributes(attribute.String(AttrOutcome, r.Outcome), attribute.String(AttrKind, r.Kind))
	e.duration.Record(context.Background(), r.Finished.Sub(r.Started).Seconds(), by)
	e.outcomes.Add(context.Background(), 1, by)
}

// knotAttrs are a finished knot's attributes.
func knotAttrs(r *emit.Record) []attribute.KeyValue {
	a := []attribute.KeyValue{attribute.String(AttrOutcome, r.Outcome)}
	add := func(k, v string) {
		if v != "" {
			a = append(a, attribute.String(k, v))
		}
	}
	add(AttrModule, r.Module)
	add(AttrFunction, r.Function)
	add(AttrOutput, r.Output)
	add(AttrSkipReason, r.SkipReason)
	add(AttrMap, r.Map)
	if r.Map != "" {
		a = append(a, attribute.Int(AttrIndex, r.Index))
	}
	if len(r.Grants) > 0 {
		a = append(a, attribute.StringSlice(AttrGrants, r.Grants))
	}
	for _, in := range r.Inputs {
		a = append(a, attribute.String(AttrInput+in.Name, in.Digest))
	}
	return a
}

func (e *Emitter) endRun(ev *emit.Event) {
	rs := e.run(ev)
	delete(e.runs, ev.RunID)
	end := ev.Time
	status := ev.State
	if r := ev.Run; r != nil {
		end = cmp.Or(r.Finished, end)
		rs.span.SetAttributes(attribute.Int("pirn.knots", r.Knots), attribute.Int("pirn.failed", r.Failed), attribute.Int("pirn.skipped", r.Skipped))
	}
	for _, k := range rs.knots { // knots whose end never came
		k.SetAttributes(attribute.Bool(AttrIncomplete, true))
		k.End(trace.WithTimestamp(end))
	}
	rs.span.SetAttributes(attribute.String(AttrStatus, status))
	if status != "succeeded" {
		rs.span.SetStatus(codes.Error, status)
	}
	rs.span.End(trace.WithTimestamp(end))
	e.runCount.Add(context.Background(), 1, metric.WithAttributes(attribute.String(AttrStatus, status)))
}

// abandon ends a run's spans whose end the emitter will not see.
func (e *Emitter) abandon(rs *runSpans, at time.Time) {
	for _, k := range rs.knots {
		k.SetAttributes(attribute.Bool(AttrIncomplete, true))
		k.End(trace.WithTimestamp(at))
	}
	rs.span.SetAttributes(attribute.Bool(AttrIncomplete, true))
	rs.span.End(trace.WithTimestamp(at))
}

func clip(s string) string {
	if len(s) > maxStatus {
		return s[:maxStatus]
	}
	return s
}
