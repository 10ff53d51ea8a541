package backends_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/backends"
	"github.com/pirn-wasm/pirn/lineage"
)

// BenchmarkBackendPairs measures what a run costs end to end with each
// pair of history and store, opened by URL as pirn run opens them: a
// parameter and a chain of 10 Wasm knots (arith's inc), each run with a
// new parameter, so that it writes 11 new values and records 11 lineage
// records. Postgres is the server on loopback; S3 the in-process server;
// Valkey the Redis on loopback (database 13).
//
//	go test -run '^$' -bench BackendPairs -benchtime 200x ./backends
func BenchmarkBackendPairs(b *testing.B) {
	const knots = 10
	for _, pair := range []struct {
		name string
		urls func(b *testing.B) (history, store string)
	}{
		{"memory", func(*testing.B) (string, string) { return "memory:", "memory:" }},
		{"sqlite+disk", func(b *testing.B) (string, string) {
			dir := b.TempDir()
			return "sqlite:" + filepath.Join(dir, "history.db"), "file:" + filepath.Join(dir, "data")
		}},
		{"postgres+s3", func(b *testing.B) (string, string) {
			b.Setenv("AWS_ACCESS_KEY_ID", "pirn-test")
			b.Setenv("AWS_SECRET_ACCESS_KEY", "pirn-test-secret")
			backend := s3mem.New()
			if err := backend.CreateBucket("pirn"); err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer(gofakes3.New(backend).Server())
			b.Cleanup(srv.Close)
			return postgresURL(b), "s3://pirn/values?region=us-east-1&path_style=true&endpoint=" + url.QueryEscape(srv.URL)
		}},
		{"postgres+valkey", func(b *testing.B) (string, string) {
			prefix := fmt.Sprintf("pirn-bench-%d-%d:", os.Getpid(), b.N)
			return postgresURL(b), "valkey://127.0.0.1:6379/13?prefix=" + prefix + "&ttl=2m" // expire soon after
		}},
	} {
		b.Run(pair.name, func(b *testing.B) {
			ctx := context.Background()
			hu, su := pair.urls(b)
			h, err := backends.OpenHistory(ctx, hu)
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			s, err := backends.OpenStore(ctx, su)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			e, err := pirn.Open(ctx, pirn.Config{History: h, Store: s})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close(ctx)
			m, err := e.LoadModule(ctx, "../examples/wasm/go/arith/arith.wasm")
			if err != nil {
				b.Fatal(err)
			}
			t := pirn.NewTapestry()
			prev, err := t.Parameter(pirn.Param{Name: "x", Type: "int"})
			if err != nil {
				b.Fatal(err)
			}
			for i := range knots {
				if prev, err = t.Knot(fmt.Sprintf("k%d", i), m.Knot("inc"), pirn.In{"x": prev}); err != nil {
					b.Fatal(err)
				}
			}
			if err := e.Prepare(ctx, t); err != nil {
				b.Fatal(err)
			}
			x := 0
			for b.Loop() {
				x++
				res, err := e.Run(ctx, t, pirn.RunRequest{Params: map[string]any{"x": x*1000 + b.N}})
				if err != nil || res.Status != lineage.Succeeded {
					b.Fatalf("run: %v, %+v", err, res)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "runs/s")
			b.ReportMetric(float64(b.N*(knots+1))/b.Elapsed().Seconds(), "records/s")
		})
	}
}
