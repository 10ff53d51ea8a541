package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/dispatch/dispatchtest"
)

// The remote-dispatch tests run real pirn worker processes against an
// embedded NATS server and, when one answers at 127.0.0.1:4222 (or
// $PIRN_TEST_NATS), against that one too; each test uses a prefix of its
// own, so they share a server without meeting.

const (
	spinmap = "../../testdata/dispatch/spinmap.yaml"
	poison  = "../../testdata/dispatch/poison.yaml"
)

type broker struct {
	name   string
	url    string
	server *dispatchtest.Server // nil for the machine's server
}

// brokers returns the servers a dispatch test runs against.
func brokers(t *testing.T) []broker {
	t.Helper()
	srv := dispatchtest.Start(t)
	bs := []broker{{"embedded", srv.URL(), srv}}
	if url := dispatchtest.External(); url != "" {
		bs = append(bs, broker{"machine", url, nil})
	}
	return bs
}

var prefixes atomic.Int64

// env is one test's broker, prefix and shared data store.
type env struct {
	t      testing.TB
	url    string
	prefix string
	state  string // the coordinator's state directory; workers share its data store
}

func newDispatchEnv(t *testing.T, url string) *env {
	prefix := fmt.Sprintf("ct%d%d", time.Now().UnixNano()%1e6, prefixes.Add(1))
	dispatchtest.Cleanup(t, url, prefix)
	return &env{t: t, url: url, prefix: prefix, state: t.TempDir()}
}

func (e *env) natsArgs() []string { return []string{"--nats-prefix", e.prefix} }

// run runs pirn run --dispatch with args.
func (e *env) run(t *testing.T, args ...string) result {
	t.Helper()
	all := append([]string{"run", "--dispatch", e.url, "--state", e.state, "--json"}, e.natsArgs()...)
	return runPirn(t, append(all, args...)...)
}

// worker is a pirn worker process.
type worker struct {
	cmd     *exec.Cmd
	mu      sync.Mutex
	lines   []string
	started atomic.Int64 // "job started" lines
	exited  chan struct{}
}

// startWorker starts a worker with debug logs and a 1s ack wait.
func (e *env) startWorker(extra ...string) *worker {
	e.t.Helper()
	args := append([]string{"--log-level", "debug", "worker", "--nats", e.url, "--state", e.state, "--ack-wait", "1s", "--slots", "1", "--drain", "1s"}, e.natsArgs()...)
	cmd := exec.Command(pirnBin, append(args, extra...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	w := &worker{cmd: cmd, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		defer close(w.exited)
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			w.mu.Lock()
			w.lines = append(w.lines, line)
			w.mu.Unlock()
			if strings.Contains(line, "worker started") {
				once.Do(func() { close(ready) })
			}
			if strings.Contains(line, "job started") {
				w.started.Add(1)
			}
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
	}()
	e.t.Cleanup(func() { w.kill() })
	select {
	case <-ready:
	case <-w.exited:
		e.t.Fatalf("worker exited at once:\n%s", w.log())
	case <-time.After(30 * time.Second):
		e.t.Fatalf("worker not ready:\n%s", w.log())
	}
	return w
}

func (w *worker) kill() {
	if w.cmd.ProcessState == nil {
		w.cmd.Process.Kill() // SIGKILL: no drain, no goodbye
	}
	<-w.exited
}

func (w *worker) log() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

// startedKnots lists the knot ids of the worker's "job started" lines.
func (w *worker) startedKnots() []string { return w.knotsLogging("job started") }

// publishedKnots lists the knots whose results the worker has published.
func (w *worker) publishedKnots() []string { return w.knotsLogging("result published") }

func (w *worker) knotsLogging(msg string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, l := range w.lines {
		if !strings.Contains(l, msg) {
			continue
		}
		for f := range strings.FieldsSeq(l) {
			if k, ok := strings.CutPrefix(f, "knot="); ok {
				out = append(out, k)
			}
		}
	}
	return out
}

type runDoc struct {
	RunID   string         `json:"run_id"`
	Status  string         `json:"status"`
	Outputs map[string]any `json:"outputs"`
	Knots   []jsonKnot     `json:"knots"`
	Errors  []jsonError    `json:"errors"`
}

func decodeRun(t *testing.T, r result) runDoc {
	t.Helper()
	var d runDoc
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("run output is not JSON (%v); exit %d\nstdout:\n%s\nstderr:\n%s", err, r.code, r.stdout, r.stderr)
	}
	return d
}

// lineageOf is what must agree between a local and a remote run: every
// record but its timing and dispatcher.
func lineageOf(d runDoc) []string {
	var out []string
	for _, k := range d.Knots {
		k.DurationMS = 0
		b, _ := json.Marshal(k)
		out = append(out, string(b))
	}
	for _, e := range d.Errors {
		out = append(out, e.Type+": "+e.Message)
	}
	return out
}

// TestDispatchMatchesLocal runs the example pipelines locally and on two
// workers: the same outcomes, outputs and lineage.
func TestDispatchMatchesLocal(t *testing.T) {
	pipelines, _ := filepath.Glob("../../examples/pipelines/*.yaml")
	pipelines = append(pipelines, quickstart, spinmap)
	for _, b := range brokers(t) {
		t.Run(b.name, func(t *testing.T) {
			e := newDispatchEnv(t, b.url)
			w1, w2 := e.startWorker("--slots", "2"), e.startWorker()
			for _, p := range pipelines {
				local := decodeRun(t, runPirn(t, "run", "--memory", "--json", p))
				remote := decodeRun(t, e.run(t, p))
				if local.Status != remote.Status || fmt.Sprint(local.Outputs) != fmt.Sprint(remote.Outputs) {
					t.Errorf("%s: local %s %v, remote %s %v", p, local.Status, local.Outputs, remote.Status, remote.Outputs)
				}
				if l, r := lineageOf(local), lineageOf(remote); strings.Join(l, "\n") != strings.Join(r, "\n") {
					t.Errorf("%s: lineage differs:\nlocal:\n%s\nremote:\n%s", p, strings.Join(l, "\n"), strings.Join(r, "\n"))
				}
			}
			if w1.started.Load()+w2.started.Load() == 0 {
				t.Errorf("no worker ran a job:\n%s\n%s", w1.log(), w2.log())
			}
		})
	}
}

// TestDispatchWorkerKilled SIGKILLs one of two workers mid-run: its job
// goes to the other after the ack wait and the run is complete and
// correct, each element recorded once.
func TestDispatchWorkerKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes")
	}
	count, n := 200, "100000" // about 10 ms each
	if c, err := strconv.Atoi(os.Getenv("PIRN_TEST_KILL_COUNT")); err == nil && c > 0 {
		count, n = c, "1000" // scripts/bench-dispatch.sh: 10,000 short jobs
	}
	args := []string{spinmap, "-p", fmt.Sprint("count=", count), "-p", "n=" + n}
	want := decodeRun(t, runPirn(t, append([]string{"run", "--memory", "--json"}, args...)...))
	for _, b := range brokers(t) {
		t.Run(b.name, func(t *testing.T) {
			e := newDispatchEnv(t, b.url)
			w1, w2 := e.startWorker(), e.startWorker()
			done := make(chan result, 1)
			go func() {
				r, err := execPirn(append(append([]string{"run", "--dispatch", e.url, "--state", e.state, "--json"}, e.natsArgs()...), args...)...)
				if err != nil {
					r.stderr = err.Error()
				}
				done <- r
			}()
			waitFor(t, 60*time.Second, func() bool { return w1.started.Load() >= int64(count/10) })
			killed := time.Now()
			w1.kill()
			r := <-done
			got := decodeRun(t, r)
			if got.Status != "succeeded" || fmt.Sprint(got.Outputs) != fmt.Sprint(want.Outputs) {
				t.Fatalf("after the kill: %s %v, want %v\nstderr:\n%s", got.Status, got.Outputs, want.Outputs, r.stderr)
			}
			if l, w := lineageOf(got), lineageOf(want); strings.Join(l, "\n") != strings.Join(w, "\n") {
				t.Errorf("lineage differs from a local run's")
			}
			elements := 0
			for _, k := range got.Knots {
				if strings.HasPrefix(k.ID, "spun:") {
					elements++
				}
			}
			if elements != count {
				t.Errorf("%d element records, want %d", elements, count)
			}
			started := w1.started.Load() + w2.started.Load()
			t.Logf("jobs started %d for %d jobs (%d ran twice); run ended %v after the kill",
				started, count+2, started-int64(count+2), time.Since(killed).Round(time.Millisecond))
		})
	}
}

func waitFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v", limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDispatchPoisonJob kills every worker that starts the poison knot:
// after --max-deliver deliveries it ends as an err, and the other knot is
// ok.
func TestDispatchPoisonJob(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes")
	}
	for _, b := range brokers(t) {
		t.Run(b.name, func(t *testing.T) {
			e := newDispatchEnv(t, b.url)
			done := make(chan result, 1)
			go func() {
				r, _ := execPirn(append(append([]string{"run", "--dispatch", e.url, "--state", e.state, "--json"}, e.natsArgs()...), poison)...)
				done <- r
			}()
			kills := 0
			var last *worker
			for {
				w := e.startWorker("--max-deliver", "3")
				last = w
				killed := false
				for !killed {
					select {
					case r := <-done:
						d := decodeRun(t, r)
						outcomes := map[string]string{}
						for _, k := range d.Knots {
							outcomes[k.ID] = k.Outcome
						}
						if outcomes["poison"] != "err" || outcomes["fine"] != "ok" || r.code != 1 {
							t.Fatalf("exit %d, outcomes %v\n%s\n%s", r.code, outcomes, r.stdout, last.log())
						}
						if len(d.Errors) != 1 || d.Errors[0].Type != "WorkerLost" {
							t.Fatalf("errors %+v", d.Errors)
						}
						if kills != 2 { // max-deliver 3: two runs, then the third delivery ends it
							t.Errorf("%d workers killed, want 2", kills)
						}
						t.Logf("after %d killed workers: %s", kills, d.Errors[0].Message)
						return
					case <-time.After(10 * time.Millisecond):
					}
					// Killed once poison runs, and not while the result of
					// a job that ran before it (fine) is still being
					// published: its slot is free once the knot has run,
					// so poison may start meanwhile, and a kill then
					// would lose fine's result too (rightly counted as a
					// delivery to a worker that stopped).
					started := w.startedKnots()
					if slices.Contains(started, "poison") && len(w.publishedKnots()) >= len(started)-1 {
						w.kill()
						kills++
						killed = true
					}
					if kills > 5 {
						t.Fatalf("the poison job keeps coming back: %d kills", kills)
					}
				}
			}
		})
	}
}

// TestDispatchBrokerRestart restarts the embedded server (file storage)
// mid-run: no job is lost and the result is the local one.
func TestDispatchBrokerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes")
	}
	args := []string{spinmap, "-p", "count=300", "-p", "n=50000"}
	want := decodeRun(t, runPirn(t, append([]string{"run", "--memory", "--json"}, args...)...))
	b := brokers(t)[0]
	e := newDispatchEnv(t, b.url)
	w1, w2 := e.startWorker(), e.startWorker()
	done := make(chan result, 1)
	go func() {
		r, _ := execPirn(append(append([]string{"run", "--dispatch", e.url, "--state", e.state, "--json"}, e.natsArgs()...), args...)...)
		done <- r
	}()
	waitFor(t, 60*time.Second, func() bool { return w1.started.Load()+w2.started.Load() >= 50 })
	b.server.Restart(500 * time.Millisecond)
	r := <-done
	got := decodeRun(t, r)
	if got.Status != "succeeded" || fmt.Sprint(got.Outputs) != fmt.Sprint(want.Outputs) {
		t.Fatalf("after the restart: %s %v, want %v\nstderr:\n%s", got.Status, got.Outputs, want.Outputs, r.stderr)
	}
	t.Logf("jobs started %d for 302 jobs", w1.started.Load()+w2.started.Load())
}

// TestDispatchCancel interrupts the coordinator: the run is recorded
// cancelled, its queued jobs are purged and its job in flight stops.
func TestDispatchCancel(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes")
	}
	for _, b := range brokers(t) {
		t.Run(b.name, func(t *testing.T) {
			e := newDispatchEnv(t, b.url)
			w := e.startWorker()
			args := append(append([]string{"run", "--dispatch", e.url, "--state", e.state, "--json"}, e.natsArgs()...), spinmap, "-p", "count=50", "-p", "n=5000000")
			cmd := exec.Command(pirnBin, args...)
			var out bytes.Buffer
			cmd.Stdout = &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 60*time.Second, func() bool { return w.started.Load() >= 2 })
			interrupted := time.Now()
			cmd.Process.Signal(syscall.SIGINT)
			cmd.Wait()
			took := time.Since(interrupted)
			d := decodeRun(t, result{stdout: out.String()})
			if d.Status != "cancelled" {
				t.Fatalf("status %s after SIGINT", d.Status)
			}
			var doc struct {
				Workers []struct {
					Busy int `json:"busy"`
				} `json:"workers"`
				Pools []struct {
					Pool   string `json:"pool"`
					Queued int    `json:"queued"`
				} `json:"pools"`
			}
			waitFor(t, 10*time.Second, func() bool {
				r := runPirn(t, append([]string{"workers", "--nats", e.url, "--json"}, e.natsArgs()...)...)
				if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
					t.Fatalf("%v: %s", err, r.stdout)
				}
				return len(doc.Pools) == 1 && doc.Pools[0].Queued == 0 && len(doc.Workers) == 1 && doc.Workers[0].Busy == 0
			})
			if started := w.started.Load(); started > 5 {
				t.Errorf("the worker started %d jobs: the queue was not purged", started)
			}
			t.Logf("pirn run ended %v after SIGINT", took.Round(time.Millisecond))
		})
	}
}

// TestDispatchNoWorker: with no worker alive the run says so, and gives
// up after --worker-wait.
func TestDispatchNoWorker(t *testing.T) {
	for _, b := range brokers(t) {
		t.Run(b.name, func(t *testing.T) {
			e := newDispatchEnv(t, b.url)
			r := e.run(t, "--worker-wait", "2s", quickstart)
			d := decodeRun(t, r)
			if r.code != 1 || d.Status != "failed" || len(d.Errors) != 1 || d.Errors[0].Type != "NoWorkers" {
				t.Fatalf("exit %d, %+v", r.code, d)
			}
			if !strings.Contains(r.stderr, "no pirn worker of pool default is alive") {
				t.Errorf("stderr does not say no worker is alive:\n%s", r.stderr)
			}
		})
	}
}

// TestDispatchResume SIGKILLs the coordinator mid-run; pirn resume
// finishes the run under its id without running a finished knot again.
func TestDispatchResume(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes")
	}
	const count = 60
	args := []string{spinmap, "-p", fmt.Sprint("count=", count), "-p", "n=300000"}
	want := decodeRun(t, runPirn(t, append([]string{"run", "--memory", "--json"}, args...)...))
	for _, b := range brokers(t) {
		t.Run(b.name, func(t *testing.T) {
			e := newDispatchEnv(t, b.url)
			w := e.startWorker()
			runID := "run-resume-test"
			cmd := exec.Command(pirnBin, append(append([]string{"run", "--dispatch", e.url, "--state", e.state, "--run-id", runID}, e.natsArgs()...), args...)...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 60*time.Second, func() bool { return w.started.Load() >= 10 })
			cmd.Process.Kill()
			cmd.Wait()
			r := runPirn(t, append([]string{"resume", runID, "--dispatch", e.url, "--state", e.state, "--json"}, e.natsArgs()...)...)
			got := decodeRun(t, r)
			if got.RunID != runID || got.Status != "succeeded" || fmt.Sprint(got.Outputs) != fmt.Sprint(want.Outputs) {
				t.Fatalf("resumed: %s %s %v, want %v\nstderr:\n%s", got.RunID, got.Status, got.Outputs, want.Outputs, r.stderr)
			}
			seen := map[string]int{}
			for _, k := range w.startedKnots() {
				seen[k]++
			}
			for k, n := range seen {
				if n > 1 {
					t.Errorf("knot %s ran %d times", k, n)
				}
			}
			if len(seen) != count+2 {
				t.Errorf("%d knots ran, want %d", len(seen), count+2)
			}
			// Resuming a finished run is refused.
			r = runPirn(t, append([]string{"resume", runID, "--dispatch", e.url, "--state", e.state}, e.natsArgs()...)...)
			if r.code != 2 || !strings.Contains(r.stderr, "nothing to resume") {
				t.Errorf("second resume: exit %d\n%s", r.code, r.stderr)
			}
		})
	}
}
