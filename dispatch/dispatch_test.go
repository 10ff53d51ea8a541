package dispatch_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/dispatch"
	"github.com/pirn-wasm/pirn/dispatch/dispatchtest"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/scheduler"
)

// counter is an Executor that counts the jobs it runs, by the job's knot
// id, and hands them to another.
type counter struct {
	next    dispatch.Executor
	started chan *dispatch.Job // if not nil, told of each job as it starts, while it has room

	mu      sync.Mutex
	jobs    map[string][]*dispatch.Job // by Job.Knot, in the order they ran
	running int
}

var _ dispatch.Executor = (*counter)(nil)

func (c *counter) Execute(ctx context.Context, job *dispatch.Job, call *host.Call) (abi.Response, error) {
	c.mu.Lock()
	if c.jobs == nil {
		c.jobs = map[string][]*dispatch.Job{}
	}
	c.jobs[job.Knot] = append(c.jobs[job.Knot], job)
	c.running++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.running--
		c.mu.Unlock()
	}()
	select {
	case c.started <- job: // a nil channel never is ready
	default:
	}
	return c.next.Execute(ctx, job, call)
}

// knots returns the number of jobs run so far, by knot id.
func (c *counter) knots() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, js := range c.jobs {
		out[k] = len(js)
	}
	return out
}

// runs returns the jobs of the knot id run so far.
func (c *counter) runs(knot string) []*dispatch.Job {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*dispatch.Job(nil), c.jobs[knot]...)
}

// ofRun returns how many jobs of run ran.
func (c *counter) ofRun(run string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, js := range c.jobs {
		for _, j := range js {
			n += btoi(j.Run == run)
		}
	}
	return n
}

// total returns how many jobs ran, and how many run now.
func (c *counter) total() (ran, running int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, js := range c.jobs {
		ran += len(js)
	}
	return ran, c.running
}

// logs collects what a logger writes.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logs) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// cluster is a coordinator and its in-process workers on the shared NATS
// server, under a prefix of their own, with the broker's objects at hand.
type cluster struct {
	cfg   dispatch.Config
	store *cas.Memory
	exec  *counter
	coord *dispatch.Coordinator
	logs  *logs
	b     *dispatch.Broker    // a connection of the test's own
	js    jetstream.JetStream // the same server, raw
	e     *pirn.Engine        // loads pipelines, keeping their modules in store
}

// startCluster starts n workers of slots slots each, running real
// modules read from the cluster's store.
func startCluster(t *testing.T, n, slots int) *cluster {
	t.Helper()
	url, prefix := dispatchtest.Shared(t)
	c := &cluster{store: cas.NewMemory(), logs: &logs{}}
	c.cfg = dispatch.Config{URL: url, Prefix: prefix, AckWait: 2 * time.Second, Logger: c.logs.logger()}
	c.exec = &counter{next: dispatch.NewModules(newHost(t), c.store)}
	c.coord = dispatchtest.Setup(t, url, c.cfg, c.store, c.exec, nil, n, slots)
	c.e = open(t, c.store)
	c.connect(t)
	return c
}

// connect opens the test's own connections to the cluster's broker.
func (c *cluster) connect(t *testing.T) {
	t.Helper()
	b, err := dispatch.Connect(t.Context(), c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	c.b = b
	nc, err := nats.Connect(c.cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
}

// Subjects and streams, as the package documents them.
func (c *cluster) jobSubject(run, key string) string {
	return c.cfg.Prefix + ".job." + dispatch.DefaultPool + "." + dispatch.RunToken(run) + "." + key
}

func (c *cluster) resultSubject(run, key string) string {
	return c.cfg.Prefix + ".result." + dispatch.RunToken(run) + "." + key
}

func (c *cluster) stream(t *testing.T, kind string) jetstream.Stream {
	t.Helper()
	s, err := c.js.Stream(t.Context(), strings.ToUpper(c.cfg.Prefix)+"_"+kind)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// messages counts the messages a stream holds on the subjects that
// match subject.
func (c *cluster) messages(t *testing.T, kind, subject string) uint64 {
	t.Helper()
	info, err := c.stream(t, kind).Info(t.Context(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, k := range info.State.Subjects {
		n += k
	}
	return n
}

// result waits for the result published under the job's key, and decodes
// it as the coordinator does.
func (c *cluster) result(t *testing.T, run, key string) *dispatch.Result {
	t.Helper()
	s := c.stream(t, "RESULTS")
	var m *jetstream.RawStreamMsg
	waitFor(t, 10*time.Second, "the result of job "+key, func() bool {
		var err error
		m, err = s.GetLastMsgForSubject(t.Context(), c.resultSubject(run, key))
		return err == nil
	})
	r, err := dispatch.DecodeResult(m.Data)
	if err != nil {
		t.Fatalf("result of job %s: %v", key, err)
	}
	return r
}

// pool returns the default pool's queue as the broker counts it.
func (c *cluster) pool(t *testing.T) dispatch.PoolStats {
	t.Helper()
	ps, err := c.b.Pools(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.Pool == dispatch.DefaultPool {
			return p
		}
	}
	t.Fatalf("Pools() = %+v, want the default pool", ps)
	return dispatch.PoolStats{}
}

// drained waits until the pool has no job queued or in flight.
func (c *cluster) drained(t *testing.T) {
	t.Helper()
	waitFor(t, 10*time.Second, "the pool to drain", func() bool {
		p := c.pool(t)
		return p.Queued == 0 && p.InFlight == 0
	})
}

// scheduler returns a scheduler that sends module knots to the cluster's
// workers through remote (its coordinator if nil).
func (c *cluster) scheduler(t *testing.T, remote scheduler.Remote) *scheduler.Scheduler {
	t.Helper()
	if remote == nil {
		remote = c.coord
	}
	s, err := scheduler.New(scheduler.Config{Remote: remote, Dispatcher: "nats", Workers: 16}, c.store, lineage.NewMemory())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// open opens an engine over store: the pipelines it loads keep their
// modules there.
func open(t *testing.T, store cas.Store) *pirn.Engine {
	t.Helper()
	e, err := pirn.Open(t.Context(), pirn.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

// load loads a pipeline.
func load(t *testing.T, e *pirn.Engine, path string) *pirn.Pipeline {
	t.Helper()
	p, err := e.LoadPipeline(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runRemote runs a pipeline over the cluster's workers.
func (c *cluster) runRemote(t *testing.T, ctx context.Context, path string, req pirn.RunRequest) (*scheduler.Result, error) {
	t.Helper()
	return c.runWith(t, ctx, nil, path, req)
}

// runWith runs a pipeline over the cluster's workers through remote.
func (c *cluster) runWith(t *testing.T, ctx context.Context, remote scheduler.Remote, path string, req pirn.RunRequest) (*scheduler.Result, error) {
	t.Helper()
	p := load(t, c.e, path)
	req.Pipeline = p.Spec.Name
	return c.scheduler(t, remote).Run(ctx, p.Tapestry.Scheduler(), req)
}

func newHost(t *testing.T) *host.Host {
	t.Helper()
	h, err := host.New(host.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h
}

// waitFor polls cond until it holds, failing the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
