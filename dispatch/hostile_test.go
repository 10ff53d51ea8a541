package dispatch_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/dispatch"
	"github.com/pirn-wasm/pirn/internal/pcbor"
	"github.com/pirn-wasm/pirn/scheduler"
)

// hostileRun is the run the hostile jobs claim to be of.
const hostileRun = "hostile"

// validJob returns a job that decodes: of hostileRun, for a module and
// an input the store does not have.
func validJob(knot string) dispatch.Job {
	return dispatch.Job{V: dispatch.Version, Run: hostileRun, Knot: knot,
		Spec:   dispatch.Spec{Module: cas.Sum([]byte("no such module")).String(), ABI: "pirn", Knot: "double"},
		Inputs: []dispatch.Ref{{Name: "x", Digest: cas.Sum([]byte("no such input")).String(), Size: 14}}}
}

// encode encodes j as Job.Encode does, without its checks.
func encode(t testing.TB, j any) []byte {
	t.Helper()
	b, err := pcbor.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withField encodes j with one more field, or a field replaced.
func withField(t testing.TB, j dispatch.Job, name string, v any) []byte {
	t.Helper()
	var m map[string]any
	if err := pcbor.UnmarshalValue(encode(t, j), &m); err != nil {
		t.Fatal(err)
	}
	m[name] = v
	return encode(t, m)
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// nested returns n arrays, each in the next, around 0.
func nested(n int) []byte {
	return append(bytes.Repeat([]byte{0x81}, n), 0x00)
}

// TestDecodeJob decodes valid and hostile jobs.
func TestDecodeJob(t *testing.T) {
	job := validJob("k")
	job.Config = []dispatch.Ref{{Name: "c", Digest: cas.Sum(nil).String()}}
	good := encode(t, job)
	if got, err := dispatch.DecodeJob(good); err != nil || !cmp.Equal(*got, job) {
		t.Fatalf("DecodeJob(valid) = %+v, %v, want %+v", got, err, job)
	}
	bad := func(f func(j *dispatch.Job)) []byte {
		j := validJob("k")
		f(&j)
		return encode(t, j)
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"not CBOR", []byte(`{"v": 1}`)},
		{"truncated", good[:len(good)-1]},
		{"trailing bytes", append(append([]byte(nil), good...), 0x00)},
		{"over MaxJob", append(append([]byte(nil), good...), make([]byte, dispatch.MaxJob)...)},
		{"another version", bad(func(j *dispatch.Job) { j.V = dispatch.Version + 1 })},
		{"version 0", bad(func(j *dispatch.Job) { j.V = 0 })},
		{"unknown field", withField(t, job, "priority", 1)},
		{"field of another type", withField(t, job, "v", "1")},
		{"a list", encode(t, []any{1, 2})},
		{"duplicate keys", []byte{0xa2, 0x61, 'v', 0x01, 0x61, 'v', 0x01}},
		{"a tag", append([]byte{0xc1}, good...)},
		{"nested too deep", nested(pcbor.MaxNestedLevels + 10)},
		{"no run", bad(func(j *dispatch.Job) { j.Run = "" })},
		{"run with a space", bad(func(j *dispatch.Job) { j.Run = "a run" })},
		{"run too long", bad(func(j *dispatch.Job) { j.Run = strings.Repeat("r", 300) })},
		{"knot with a slash", bad(func(j *dispatch.Job) { j.Knot = "a/b" })},
		{"module not a digest", bad(func(j *dispatch.Job) { j.Spec.Module = "md5:abc" })},
		{"input not a digest", bad(func(j *dispatch.Job) { j.Inputs[0].Digest = "sha256:zz" })},
		{"config not a digest", bad(func(j *dispatch.Job) { j.Config = []dispatch.Ref{{Name: "c", Digest: ""}} })},
		{"negative size", bad(func(j *dispatch.Job) { j.Inputs[0].Size = -1 })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if j, err := dispatch.DecodeJob(tc.b); err == nil {
				t.Errorf("DecodeJob(%x) = %+v, want an error", tc.b[:min(len(tc.b), 64)], j)
			}
		})
	}
}

// TestJobEncodeBound checks that a job over MaxJob is not sent.
func TestJobEncodeBound(t *testing.T) {
	j := validJob("k")
	for i := range 1000 {
		j.Inputs = append(j.Inputs, dispatch.Ref{Name: fmt.Sprintf("input-%04d", i), Digest: cas.Sum(nil).String()})
	}
	if b, _, err := j.Encode(); err == nil {
		t.Fatalf("Encode() of a job of 1000 inputs = %d bytes, want an error (MaxJob is %d)", len(b), dispatch.MaxJob)
	}
}

// FuzzDecodeJob checks that DecodeJob never panics, and that what it
// accepts encodes and decodes again to the same job.
func FuzzDecodeJob(f *testing.F) {
	j := validJob("k")
	f.Add(encode(f, j))
	f.Add(withField(f, j, "v", 2))
	f.Add([]byte{0xa2, 0x61, 'v', 0x01, 0x61, 'v', 0x01})
	f.Add(nested(100))
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := dispatch.DecodeJob(b)
		if err != nil {
			return
		}
		again, _, err := j.Encode()
		if err != nil {
			return // over MaxJob once canonical
		}
		j2, err := dispatch.DecodeJob(again)
		if err != nil || !cmp.Equal(j, j2) {
			t.Fatalf("DecodeJob(Encode(%+v)) = %+v, %v", j, j2, err)
		}
	})
}

// TestWorkerRefusesBadJobs publishes jobs straight to the jobs stream:
// each that its worker cannot read ends as an err result of type BadJob
// under the key its subject names, one whose module or inputs the store
// lacks as Unavailable, one on a subject of the wrong shape is dropped;
// an oversized one the stream refuses. The worker goes on running jobs.
func TestWorkerRefusesBadJobs(t *testing.T) {
	c := startCluster(t, 1, 2)
	notWasm := cas.Sum([]byte("not a module"))
	if err := c.store.Put(t.Context(), notWasm, []byte("not a module")); err != nil {
		t.Fatal(err)
	}
	job := func(knot string, f func(*dispatch.Job)) []byte {
		j := validJob(knot)
		f(&j)
		return encode(t, j)
	}
	cases := []struct {
		name string
		b    []byte
		key  string // "" means the bytes' hash
		typ  string
		msg  string
	}{
		{name: "bytes not hashing to the key", b: encode(t, validJob("k")), key: sum([]byte("another job")), typ: dispatch.ErrBadJob, msg: "do not hash"},
		{name: "not CBOR", b: []byte("{\"v\": 1}"), typ: dispatch.ErrBadJob, msg: "decode job"},
		{name: "empty", b: nil, typ: dispatch.ErrBadJob, msg: "decode job"},
		{name: "another version", b: job("v2", func(j *dispatch.Job) { j.V = dispatch.Version + 1 }), typ: dispatch.ErrBadJob, msg: "version"},
		{name: "unknown field", b: withField(t, validJob("k"), "priority", 1), typ: dispatch.ErrBadJob, msg: "decode job"},
		{name: "nested too deep", b: nested(200), typ: dispatch.ErrBadJob, msg: "decode job"},
		{name: "run other than its subject's", b: job("k", func(j *dispatch.Job) { j.Run = "other" }), typ: dispatch.ErrBadJob, msg: "subject"},
		{name: "module not a digest", b: job("k", func(j *dispatch.Job) { j.Spec.Module = "sha256:00" }), typ: dispatch.ErrBadJob, msg: "module"},
		{name: "negative size", b: job("k", func(j *dispatch.Job) { j.Inputs[0].Size = -5 }), typ: dispatch.ErrBadJob, msg: "size"},
		{name: "input not in the store", b: job("no-input", func(*dispatch.Job) {}), typ: dispatch.ErrUnavailable, msg: "input x"},
		{name: "module not in the store", b: job("no-module", func(j *dispatch.Job) { j.Inputs = nil }), typ: dispatch.ErrUnavailable, msg: "module"},
		{name: "module not WebAssembly", b: job("not-wasm", func(j *dispatch.Job) { j.Inputs, j.Spec.Module = nil, notWasm.String() }), typ: "LoadError"},
		{name: "inputs over MaxInput", b: job("too-big", func(j *dispatch.Job) { j.Inputs[0].Size = 1 << 40 }), typ: dispatch.ErrUnavailable, msg: "MaxInput"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.key
			if key == "" {
				key = sum(tc.b)
			}
			if _, err := c.js.Publish(t.Context(), c.jobSubject(hostileRun, key), tc.b); err != nil {
				t.Fatal(err)
			}
			r := c.result(t, hostileRun, key)
			if r.Outcome != dispatch.Err || r.Key != key || r.Error.Type != tc.typ || !strings.Contains(r.Error.Message, tc.msg) {
				t.Errorf("result = %s %+v, want an err of type %s saying %q", r.Outcome, r.Error, tc.typ, tc.msg)
			}
		})
	}
	refused := len(cases)

	// Subjects of the wrong shape: no result, and the job is not kept.
	for _, subject := range []string{c.cfg.Prefix + ".job.default." + hostileRun, c.cfg.Prefix + ".job.default." + hostileRun + ".k.extra"} {
		b := encode(t, validJob("k"))
		if _, err := c.js.Publish(t.Context(), subject, b); err != nil {
			t.Fatal(err)
		}
	}
	// Over MaxJob: the stream refuses it.
	big := make([]byte, dispatch.MaxJob+1)
	if _, err := c.js.Publish(t.Context(), c.jobSubject(hostileRun, sum(big)), big); err == nil {
		t.Errorf("publishing a job of %d bytes: no error, want the stream to refuse it", len(big))
	}
	c.drained(t)
	if n := c.messages(t, "RESULTS", c.resultSubject(hostileRun, "*")); n != uint64(refused) {
		t.Errorf("the results stream holds %d results of run %s, want %d", n, hostileRun, refused)
	}
	if got, want := c.exec.knots(), map[string]int{"no-module": 1, "not-wasm": 1}; !cmp.Equal(got, want) {
		t.Errorf("the executor ran jobs of knots %v, want %v", got, want)
	}

	res, err := c.runRemote(t, t.Context(), "../examples/quickstart/pipeline.yaml", pirn.RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Succeeded() || res.Outputs["answer"] != int64(15) {
		t.Errorf("a run after the hostile jobs: status %s, outputs %v", res.Status, res.Outputs)
	}
	waitFor(t, 5*time.Second, "the worker's entry to count the failures", func() bool {
		ws, err := c.b.Workers(t.Context())
		return err == nil && len(ws) == 1 && ws[0].Failed == int64(refused) && ws[0].Done == int64(refused+2)
	})
}

// badResults are results the coordinator cannot read, by what is wrong
// with them; each names key.
func badResults(t *testing.T, key string) map[string][]byte {
	t.Helper()
	ok := dispatch.Result{V: dispatch.Version, Key: key, Outcome: dispatch.OK, Value: &dispatch.Ref{Name: "output", Digest: cas.Sum(nil).String()}, Worker: "w"}
	change := func(f func(r *dispatch.Result)) []byte {
		r := ok
		f(&r)
		return encode(t, r)
	}
	return map[string][]byte{
		"not CBOR":             []byte("garbage"),
		"empty":                nil,
		"another version":      change(func(r *dispatch.Result) { r.V = dispatch.Version + 1 }),
		"another key":          change(func(r *dispatch.Result) { r.Key = sum([]byte("another job")) }),
		"an unknown outcome":   change(func(r *dispatch.Result) { r.Outcome = "maybe" }),
		"ok without a value":   change(func(r *dispatch.Result) { r.Value = nil }),
		"err without an error": change(func(r *dispatch.Result) { r.Outcome = dispatch.Err; r.Value = nil }),
		"skip without a skip":  change(func(r *dispatch.Result) { r.Outcome = dispatch.Skip; r.Value = nil }),
		"a value not a digest": change(func(r *dispatch.Result) { r.Value.Digest = "sha256:zz" }),
		"nested too deep":      nested(200),
		"over MaxResult":       append(encode(t, ok), make([]byte, dispatch.MaxResult)...),
	}
}

// TestDecodeResult decodes hostile results.
func TestDecodeResult(t *testing.T) {
	key := sum([]byte("job"))
	for name, b := range badResults(t, key) {
		if name == "another key" {
			continue // readable: the coordinator compares it with its subject's
		}
		if r, err := dispatch.DecodeResult(b); err == nil {
			t.Errorf("DecodeResult(%s) = %+v, want an error", name, r)
		}
	}
	good := dispatch.Result{V: dispatch.Version, Key: key, Outcome: dispatch.Err, Error: &abi.Error{Type: "ValueError", Message: "no"}}
	if r, err := dispatch.DecodeResult(encode(t, good)); err != nil || !cmp.Equal(*r, good) {
		t.Errorf("DecodeResult(err result) = %+v, %v, want %+v", r, err, good)
	}
}

// TestCoordinatorIgnoresBadResults publishes unreadable results for a
// run before it starts, under the keys its jobs will have and under
// another: the coordinator logs and ignores each, the workers run the
// jobs (an unreadable result does not make a job done), and the run
// finishes with their results. A resumed run, which looks for each job's
// result before it sends the job, does the same.
func TestCoordinatorIgnoresBadResults(t *testing.T) {
	c := startCluster(t, 1, 2)
	const path = "../examples/quickstart/pipeline.yaml"
	// A first run shows the jobs the others will send, but for their run.
	if _, err := c.runRemote(t, t.Context(), path, pirn.RunRequest{RunID: "run-first"}); err != nil {
		t.Fatal(err)
	}
	var first []dispatch.Job
	for _, knot := range []string{"d", "answer"} {
		first = append(first, *c.exec.runs(knot)[0])
	}
	for _, tc := range []struct {
		name   string
		remote scheduler.Remote
	}{
		{"started", c.coord},
		{"resumed", c.coord.Resuming()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := "run-garbage-" + tc.name
			keys := []string{sum([]byte("no job"))}
			for _, j := range first {
				j.Run = run
				_, key, err := j.Encode()
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys, key)
			}
			before := strings.Count(c.logs.String(), "ignoring an unreadable result")
			published := 0
			for _, key := range keys {
				for name, b := range badResults(t, key) {
					_, err := c.js.Publish(t.Context(), c.resultSubject(run, key), b)
					switch {
					case name == "over MaxResult" && err == nil:
						t.Errorf("publishing a result of %d bytes: no error, want the stream to refuse it", len(b))
					case name != "over MaxResult" && err != nil:
						t.Fatalf("publish a result (%s): %v", name, err)
					case err == nil:
						published++
					}
				}
			}
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			res, err := c.runWith(t, ctx, tc.remote, path, pirn.RunRequest{RunID: run})
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("the run did not finish: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			if !res.Succeeded() || res.Outputs["answer"] != int64(15) {
				t.Errorf("run: status %s, outputs %v", res.Status, res.Outputs)
			}
			if n := strings.Count(c.logs.String(), "ignoring an unreadable result") - before; n != published {
				t.Errorf("the coordinator logged %d unreadable results, want %d:\n%s", n, published, c.logs)
			}
		})
	}
}
