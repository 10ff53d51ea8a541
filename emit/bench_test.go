package emit_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/emit/openlineage"
	"github.com/pirn-wasm/pirn/emit/otel"
)

// BenchmarkEmitters runs the quickstart pipeline (three nodes, two
// trivial Go knots, in-memory store and history) with no emitter and
// with each emitter behind a Hub, and reports runs/s. "run" measures the
// runs alone (what a caller of Run sees: events are queued, never
// waited for; drops/run says how many the emitter's queue of 1024
// could not take); "delivered" also waits (Hub.Wait) until the emitter
// has handled each run's events. "nop" returns at once: the Hub's own
// cost. "hung" is an emitter whose Emit never
// returns: the runs must go as fast as with none.
//
//	scripts/bench-emit.sh
func BenchmarkEmitters(b *testing.B) {
	e, p := engine(b)
	ol := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
	}))
	defer ol.Close()
	spans := tracetest.NewInMemoryExporter()
	hung := newGated("hung")
	defer close(hung.gate)
	makers := []struct {
		name string
		make func(b *testing.B) emit.Emitter
	}{
		{"none", nil},
		{"nop", func(*testing.B) emit.Emitter { return nopEmitter{} }},
		{"log", func(*testing.B) emit.Emitter {
			return emit.NewLog(emit.LogConfig{Logger: slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		}},
		{"otel", func(b *testing.B) emit.Emitter {
			em, err := otel.NewWithProviders(sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans)), nil)
			if err != nil {
				b.Fatal(err)
			}
			return em
		}},
		{"openlineage", func(b *testing.B) emit.Emitter {
			em, err := openlineage.New(openlineage.Config{URL: ol.URL})
			if err != nil {
				b.Fatal(err)
			}
			return em
		}},
		{"hung", func(*testing.B) emit.Emitter { return hung }},
	}
	for _, mode := range []string{"run", "delivered"} {
		for _, m := range makers {
			if mode == "delivered" && (m.make == nil || m.name == "hung" || m.name == "nop") {
				continue
			}
			b.Run(mode+"/"+m.name, func(b *testing.B) {
				var hub *emit.Hub
				req := pirn.RunRequest{Pipeline: p.Spec.Name}
				if m.make != nil {
					var err error
					hub, err = emit.NewHub(emit.HubConfig{Emitters: []emit.HubEmitter{{Emitter: m.make(b), Timeout: time.Hour}}})
					if err != nil {
						b.Fatal(err)
					}
					req.Observer = hub
				}
				for b.Loop() {
					res, err := e.Run(b.Context(), p.Tapestry, req)
					if err != nil {
						b.Fatal(err)
					}
					if mode == "delivered" {
						if err := hub.Wait(b.Context(), res.ID); err != nil {
							b.Fatal(err)
						}
						spans.Reset()
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "runs/s")
				if hub != nil {
					b.ReportMetric(float64(hub.Stats()[0].Dropped)/float64(b.N), "drops/run")
					if m.name != "hung" {
						hub.Close(b.Context())
					}
				}
				spans.Reset()
			})
		}
	}
}

// nopEmitter takes every event and does nothing.
type nopEmitter struct{}

func (nopEmitter) Name() string                            { return "nop" }
func (nopEmitter) Emit(context.Context, *emit.Event) error { return nil }
func (nopEmitter) Close(context.Context) error             { return nil }
