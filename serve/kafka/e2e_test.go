package kafka

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/serve"
)

// forgetOffsets deletes the group's committed offsets, as a consumer
// that died before committing leaves them.
func forgetOffsets(t *testing.T, brokers []string, group, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = group
	rt := kmsg.NewOffsetDeleteRequestTopic()
	rt.Topic = topic
	for p := range int32(partitions) {
		rp := kmsg.NewOffsetDeleteRequestTopicPartition()
		rp.Partition = p
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(t.Context(), cl)
	if err == nil && resp.ErrorCode != 0 {
		t.Fatalf("OffsetDelete: error code %d", resp.ErrorCode)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestTriggerRealRuns runs a real pipeline per message through the
// server's Runner, then forgets the group's commits and starts again:
// every message is delivered a second time, and finds its run recorded;
// the history holds one run per message.
func TestTriggerRealRuns(t *testing.T) {
	t.Parallel()
	brokers := cluster(t, "in")
	const n = 6
	produce(t, brokers, "in", values(n)...)
	e, err := pirn.Open(t.Context(), pirn.Config{CacheDir: "-", AllowUnpinned: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	p, err := e.LoadPipeline(t.Context(), "testdata/ident.yaml")
	if err != nil {
		t.Fatal(err)
	}
	runner := serve.NewRunner(e, p, serve.RunnerConfig{Name: "ident"})
	t.Cleanup(func() { runner.Close(context.Background()) })
	cfg := TriggerConfig{SourceConfig: SourceConfig{Conn: Conn{Brokers: brokers}, Topic: "in", Group: "g"}}

	rec := &recording{Submitter: runner, more: make(chan struct{}, 1)}
	stop := runTrigger(t, cfg, nil, rec)
	rec.wait(t, n)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	first, err := e.History().Runs(t.Context(), lineage.Query{})
	if err != nil || len(first) != n {
		t.Fatalf("runs after the first pass = %d, %v; want %d", len(first), err, n)
	}
	run, err := e.History().Run(t.Context(), "kafka:g:in:1:0") // value 1
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != lineage.Succeeded || run.Pipeline != "ident" {
		t.Errorf("run of partition 1 offset 0: %+v", run)
	}

	forgetOffsets(t, brokers, "g", "in")
	again := &recording{Submitter: runner, more: make(chan struct{}, 1)}
	stop = runTrigger(t, cfg, nil, again)
	again.wait(t, n)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	again.mu.Lock()
	found := again.found
	again.mu.Unlock()
	if found != n {
		t.Errorf("redeliveries that found their run recorded = %d, want %d", found, n)
	}
	second, err := e.History().Runs(t.Context(), lineage.Query{})
	if err != nil || len(second) != n {
		t.Fatalf("runs after the redelivery = %d, %v; want still %d", len(second), err, n)
	}
	for i := range first {
		if first[i].ID != second[i].ID || !first[i].StartedAt.Equal(second[i].StartedAt) {
			t.Errorf("run %s was run again (%v, then %v)", first[i].ID, first[i].StartedAt, second[i].StartedAt)
		}
	}
	if got := committed(t, brokers, "g", "in"); !mapsEqual(got, map[int32]int64{0: 2, 1: 2, 2: 2}) {
		t.Errorf("committed offsets = %v", got)
	}
}
