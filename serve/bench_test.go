package serve

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"
)

// BenchmarkWebhook posts requests to a webhook of the quickstart pipeline
// on 127.0.0.1, one at a time, and reports the latency to the 202 (p50,
// p99) and the runs recorded per second, counting until the last is
// recorded. The count is bounded by -benchtime.
func BenchmarkWebhook(b *testing.B) {
	ts := startServer(b, serveYAML("  - {name: quick, path: "+quickstart+", concurrency: 4, queue: 256}\n",
		"  - {type: webhook, pipeline: quick, path: /h, auth: none, queue_wait: 10s, rate: {per_second: 1000000, burst: 1000000}}\n"))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	body := []byte(`{"x": 7}`)
	var lat []time.Duration
	start := time.Now()
	n := 0
	for b.Loop() {
		t0 := time.Now()
		resp, err := client.Post(ts.url+"/h", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			b.Fatalf("POST = %d", resp.StatusCode)
		}
		lat = append(lat, time.Since(t0))
		n++
	}
	for range n {
		<-ts.ev.finished
	}
	elapsed := time.Since(start)
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(n)/elapsed.Seconds(), "runs/s")
}
