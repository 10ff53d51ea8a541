package dispatch_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/dispatch"
	"github.com/pirn-wasm/pirn/lineage"
)

// pipelines are run both locally and on workers by TestRemoteMatchesLocal:
// the examples that need no grants, and pipelines with knots that trap,
// time out, panic or return what is not CBOR, and Maps whose elements err
// and skip.
var pipelines = []string{
	"../examples/quickstart/pipeline.yaml",
	"../examples/pipelines/aggregator.yaml",
	"../examples/pipelines/branch.yaml",
	"../examples/pipelines/gate.yaml",
	"../examples/pipelines/map.yaml",
	"../examples/pipelines/policies.yaml",
	"../examples/pipelines/reduce.yaml",
	"../examples/pipelines/source_sink.yaml",
	"../testdata/pipelines/edges.yaml",
	"../testdata/pipelines/shared.yaml",
	"testdata/guests.yaml",
}

// TestRemoteMatchesLocal runs each pipeline on this process and on two
// workers over NATS, and checks that both runs have the same lineage:
// every record's kind, module, inputs, outcome, output and skip, and every
// error, with only the dispatcher and the times differing. Every module
// knot that produced a value, a Map's elements included, was a job.
func TestRemoteMatchesLocal(t *testing.T) {
	c := startCluster(t, 2, 4)
	e := open(t, cas.NewMemory())
	for _, path := range pipelines {
		t.Run(strings.TrimPrefix(path, "../"), func(t *testing.T) {
			p := load(t, e, path)
			local, err := e.Run(t.Context(), p.Tapestry, pirn.RunRequest{Pipeline: p.Spec.Name})
			if err != nil {
				t.Fatal(err)
			}
			remote, err := c.runRemote(t, t.Context(), path, pirn.RunRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if local.Status != remote.Status || local.PipelineDigest != remote.PipelineDigest || remote.Dispatcher != "nats" {
				t.Errorf("remote run: status %s, pipeline %s, dispatcher %s; local: %s, %s, %s", remote.Status, remote.PipelineDigest, remote.Dispatcher,
					local.Status, local.PipelineDigest, local.Dispatcher)
			}
			ignore := cmp.Options{
				cmpopts.IgnoreFields(lineage.Record{}, "RunID", "Dispatcher", "StartedAt", "FinishedAt"),
				cmpopts.IgnoreFields(lineage.ErrorRecord{}, "RunID", "OccurredAt", "Trace"),
				cmpopts.EquateEmpty(),
			}
			if diff := cmp.Diff(local.Records, remote.Records, ignore); diff != "" {
				t.Errorf("records (-local +remote):\n%s", diff)
			}
			if diff := cmp.Diff(local.Errors, remote.Errors, ignore); diff != "" {
				t.Errorf("errors (-local +remote):\n%s", diff)
			}
			if diff := cmp.Diff(local.Outputs, remote.Outputs); diff != "" {
				t.Errorf("outputs (-local +remote):\n%s", diff)
			}
			elements := 0
			for _, r := range remote.Records {
				// A module's value, and every element of a Map whatever
				// its outcome, came from one job. (A Map's own record
				// names its elements' module, and a pairwise Reduce's
				// combine runs once per element.)
				if r.Module == "" || r.Kind == lineage.KindMap || r.Kind == lineage.KindReduce || r.Outcome != lineage.OK && r.Kind != lineage.KindElement {
					continue
				}
				elements += btoi(r.Kind == lineage.KindElement)
				if n := ran(c.exec.runs(r.KnotID), remote.ID); n != 1 {
					t.Errorf("knot %s (%s, %s) ran %d times on the workers in run %s, want 1", r.KnotID, r.Knot, r.Outcome, n, remote.ID)
				}
			}
			t.Logf("%d records, %d elements run on workers, errors %v", len(remote.Records), elements, errorTypes(remote.Errors))
		})
	}
}

// ran counts the jobs of run.
func ran(jobs []*dispatch.Job, run string) int {
	n := 0
	for _, j := range jobs {
		if j.Run == run {
			n++
		}
	}
	return n
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func errorTypes(errs []lineage.ErrorRecord) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.KnotID+": "+e.Type)
	}
	return out
}
