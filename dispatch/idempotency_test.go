package dispatch_test

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/dispatch"
)

// TestJobRunsOnce publishes a job that has run again, as a redelivery
// would bring it: the broker's duplicate window drops it under its own
// message id, and under others the worker finds its result and acks it
// without running the knot, so that the results stream keeps one result
// for the job.
func TestJobRunsOnce(t *testing.T) {
	c := startCluster(t, 1, 2)
	res, err := c.runRemote(t, t.Context(), "../examples/quickstart/pipeline.yaml", pirn.RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Succeeded() || res.Outputs["answer"] != int64(15) {
		t.Fatalf("run: status %s, outputs %v", res.Status, res.Outputs)
	}
	jobs := c.exec.runs("d")
	if len(jobs) != 1 {
		t.Fatalf("knot d ran %d times, want 1", len(jobs))
	}
	b, key, err := jobs[0].Encode()
	if err != nil {
		t.Fatal(err)
	}
	r := c.result(t, res.ID, key)
	if r.Outcome != dispatch.OK || r.Key != key || r.Value.Digest != res.Records[1].Output.String() {
		t.Fatalf("result of d = %+v, want ok with %s", r, res.Records[1].Output)
	}
	subject := c.jobSubject(res.ID, key)

	ack, err := c.js.Publish(t.Context(), subject, b, jetstream.WithMsgID(key))
	if err != nil {
		t.Fatal(err)
	}
	if !ack.Duplicate {
		t.Errorf("publishing the job again under its key: %+v, want a duplicate", ack)
	}
	for i := range 3 {
		ack, err := c.js.Publish(t.Context(), subject, b, jetstream.WithMsgID(fmt.Sprintf("again-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if ack.Duplicate {
			t.Fatalf("publishing the job under another message id: %+v, want no duplicate", ack)
		}
	}
	c.drained(t)
	if n := c.messages(t, "JOBS", subject); n != 0 {
		t.Errorf("the jobs stream keeps %d messages of the job, want 0", n)
	}
	if n := len(c.exec.runs("d")); n != 1 {
		t.Errorf("knot d ran %d times, want 1", n)
	}
	if n := c.messages(t, "RESULTS", c.resultSubject(res.ID, key)); n != 1 {
		t.Errorf("the results stream holds %d results of the job, want 1", n)
	}
	if ran, _ := c.exec.total(); ran != 2 {
		t.Errorf("the worker ran %d jobs, want 2 (d and answer)", ran)
	}
}
