package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valkey-io/valkey-go"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/dispatch/dispatchtest"
)

// killSource is a message source of TestServeKilledMidStream: it holds
// entries (value i is the integer i), the serve.yaml line that streams
// them, which entry a run came from (by its origin labels), and what is
// still unacknowledged.
type killSource struct {
	yaml    string
	ids     map[string]int64 // entry (as entry returns it) -> value
	entry   func(labels map[string]string) string
	pending func() (int64, error) // nil: not checked
}

// TestServeKilledMidStream kills `pirn serve` (SIGKILL: no drain, no
// clean-up) while it works through an at-least-once source (a Valkey
// stream in a consumer group, a Kafka topic in a group on an in-process
// cluster, a NATS JetStream durable on an embedded server), starts it
// again, and checks the promise end to end: every entry has exactly one
// recorded run, succeeded, with its value; the run the kill interrupted
// ran again; nothing is left pending.
func TestServeKilledMidStream(t *testing.T) {
	t.Parallel()
	const entries = 12
	for _, tc := range []struct {
		name string
		open func(t *testing.T) killSource
	}{
		{"valkey", valkeyKillSource},
		{"kafka", kafkaKillSource},
		{"nats", natsKillSource},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := tc.open(t)
			testKilledMidStream(t, src, entries)
		})
	}
}

func valkeyKillSource(t *testing.T) killSource {
	url := os.Getenv("PIRN_TEST_VALKEY_MSG")
	if url == "" {
		url = "redis://127.0.0.1:6379/11"
	}
	opt, err := valkey.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	c, err := valkey.NewClient(opt)
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("needs Valkey or Redis at %s (PIRN_TEST_VALKEY_MSG): %v", url, err)
		}
		t.Fatalf("needs Valkey or Redis at %s (PIRN_TEST_VALKEY_MSG): %v", url, err)
	}
	ctx := context.Background()
	stream := fmt.Sprintf("pirn-test-kill:%d", time.Now().UnixNano())
	t.Cleanup(func() {
		c.Do(context.Background(), c.B().Del().Key(stream).Build())
		c.Close()
	})
	ids := map[string]int64{}
	for i := range int64(killEntries) {
		id, err := c.Do(ctx, c.B().Xadd().Key(stream).Id("*").FieldValue().FieldValue("value", strconv.FormatInt(i, 10)).Build()).ToString()
		if err != nil {
			t.Fatal(err)
		}
		ids[id] = i
	}
	return killSource{
		yaml:  "{type: valkey, pipeline: spin, param: x, url: \"" + url + "\", stream: \"" + stream + "\", group: g, consumer: c1, count: 1, max_in_flight: 1}",
		ids:   ids,
		entry: func(l map[string]string) string { return l["origin.id"] },
		pending: func() (int64, error) {
			p, err := c.Do(ctx, c.B().Xpending().Key(stream).Group("g").Build()).ToArray()
			if err != nil {
				return 0, err
			}
			return p[0].AsInt64()
		},
	}
}

func kafkaKillSource(t *testing.T) killSource {
	cl, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "numbers"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	brokers := cl.ListenAddrs()
	pr, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	ids := map[string]int64{}
	for i := range int64(killEntries) {
		rec := &kgo.Record{Topic: "numbers", Value: []byte(strconv.FormatInt(i, 10))}
		if err := pr.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
		ids[strconv.FormatInt(rec.Offset, 10)] = i
	}
	return killSource{
		yaml:  "{type: kafka, pipeline: spin, param: x, brokers: [\"" + brokers[0] + "\"], topic: numbers, group: g, session_timeout: 6s, max_in_flight: 1}",
		ids:   ids,
		entry: func(l map[string]string) string { return l["origin.offset"] },
	}
}

func natsKillSource(t *testing.T) killSource {
	srv := dispatchtest.Start(t)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "NUMBERS", Subjects: []string{"numbers"}})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int64{}
	for i := range int64(killEntries) {
		ack, err := js.Publish(ctx, "numbers", []byte(strconv.FormatInt(i, 10)))
		if err != nil {
			t.Fatal(err)
		}
		ids[strconv.FormatUint(ack.Sequence, 10)] = i
	}
	return killSource{
		yaml:  "{type: nats, pipeline: spin, param: x, url: \"" + srv.URL() + "\", jetstream: {stream: NUMBERS, durable: d, ack_wait: 2s}, max_in_flight: 1}",
		ids:   ids,
		entry: func(l map[string]string) string { return l["origin.seq"] },
		pending: func() (int64, error) {
			c, err := stream.Consumer(ctx, "d")
			if err != nil {
				return 0, err
			}
			info, err := c.Info(ctx)
			if err != nil {
				return 0, err
			}
			return int64(info.NumAckPending) + int64(info.NumPending), nil
		},
	}
}

const killEntries = 12

func testKilledMidStream(t *testing.T, src killSource, entries int) {
	dir := t.TempDir()
	work, _ := filepath.Abs("../../testdata/wasm/go/work/work.wasm")
	p := filepath.Join(dir, "spin.yaml")
	os.WriteFile(p, []byte("name: spin\nmodules: {work: "+work+"}\nnodes:\n"+
		"  - {id: x, type: parameter, type_: int}\n"+
		"  - {id: n, type: parameter, type_: int, default: 15000000}\n"+
		"  - {id: s, type: knot, module: work, knot: spin_seed, parents: {seed: x, n: n}}\n"), 0o644)
	if r := runPirn(t, "lock", p); r.code != 0 {
		t.Fatalf("lock: %s", r.stderr)
	}
	cfg := filepath.Join(dir, "serve.yaml")
	os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\nstate: st\npipelines:\n  - {name: spin, path: "+p+", concurrency: 1}\n"+
		"streams:\n  - "+src.yaml+"\n"), 0o644)
	state := filepath.Join(dir, "st")

	recorded := func() map[string]string {
		r := runPirn(t, "runs", "--state", state, "--json", "--limit", "1000")
		var runs []struct {
			ID     string `json:"run_id"`
			Status string `json:"status"`
		}
		json.Unmarshal([]byte(r.stdout), &runs)
		got := map[string]string{}
		for _, run := range runs {
			got[run.ID] = run.Status
		}
		return got
	}

	// First life: killed after its third run is recorded.
	cmd, log, err := startUntil("serving on", "--log-level", "debug", "serve", cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		done := 0
		for _, s := range recorded() {
			if s == "succeeded" {
				done++
			}
		}
		if done >= 3 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no 3 runs recorded in 2 min\n%s", log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	before := recorded()
	if len(before) >= entries {
		t.Fatalf("every entry was recorded before the kill; nothing tested: %v", before)
	}
	t.Logf("recorded when killed: %v", before) // usually one "running": the run the kill cut short

	// Second life, the same consumer: it reads its unacknowledged
	// entries first, then the rest.
	cmd, log, err = startUntil("serving on", "--log-level", "debug", "serve", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	// Every entry ends with exactly one succeeded run, found by the
	// origin labels the stream gives it, which consumed its value.
	deadline = time.Now().Add(3 * time.Minute)
	for {
		got := recorded()
		ok := 0
		for _, s := range got {
			if s == "succeeded" {
				ok++
			}
		}
		if ok >= entries {
			if len(got) != entries {
				t.Errorf("%d runs recorded, want one per entry (%d): %v", len(got), entries, got)
			}
			seen := map[string]bool{}
			for id := range got {
				r := runPirn(t, "runs", "show", "--state", state, "--json", id)
				var run jsonRun
				if err := json.Unmarshal([]byte(r.stdout), &run); err != nil {
					t.Fatalf("runs show %s: %v %s", id, err, r.stderr)
				}
				entry := src.entry(run.Labels)
				v, known := src.ids[entry]
				wantX, _ := cas.Hash(v)
				found := false
				for _, k := range run.Knots {
					found = found || (k.ID == "x" && k.Output == wantX.String())
				}
				if !known || seen[entry] || !found {
					t.Errorf("run %s: entry %q (known %v, seen before %v), want parameter x = %d: %s", id, entry, known, seen[entry], v, r.stdout)
				}
				seen[entry] = true
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart %d of %d entries have a succeeded run: %v\n%s", ok, entries, got, log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Every entry acknowledged: nothing pending.
	if src.pending == nil {
		return
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		n, err := src.pending()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d entries still pending after every run was recorded", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
