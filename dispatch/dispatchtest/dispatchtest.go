// Package dispatchtest holds what tests of remote dispatch share: an
// embedded NATS server with JetStream (restartable on the same storage),
// and an executor that runs the scheduler's host-native functions on
// in-process workers, so that the scheduler's own tests can run over NATS.
package dispatchtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/dispatch"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/scheduler"
)

// Server is an embedded NATS server with JetStream on a file store.
type Server struct {
	t    testing.TB
	opts server.Options
	mu   sync.Mutex
	s    *server.Server
}

// Start starts a server on a free loopback port with its store in a
// temporary directory; it shuts down when the test ends. opts, if given,
// adjusts the options (authentication, TLS) before the start.
func Start(t testing.TB, opts ...func(*server.Options)) *Server {
	t.Helper()
	// A fixed port, so that a restart keeps the URL.
	s := &Server{t: t, opts: server.Options{Host: "127.0.0.1", Port: freePort(t), JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}}
	for _, o := range opts {
		o(&s.opts)
	}
	s.start()
	t.Cleanup(s.Shutdown)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	opts := s.opts
	ns, err := server.NewServer(&opts)
	if err != nil {
		s.t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		s.t.Fatal("nats server not ready")
	}
	s.mu.Lock()
	s.s = ns
	s.mu.Unlock()
}

// URL is the server's client URL.
func (s *Server) URL() string {
	scheme := "nats"
	if s.opts.TLSConfig != nil {
		scheme = "tls"
	}
	return fmt.Sprintf("%s://127.0.0.1:%d", scheme, s.opts.Port)
}

// Shutdown stops the server (and waits for it).
func (s *Server) Shutdown() {
	s.mu.Lock()
	ns := s.s
	s.s = nil
	s.mu.Unlock()
	if ns != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
	}
}

// Restart stops the server and starts it again on the same port and
// storage after pause.
func (s *Server) Restart(pause time.Duration) {
	s.Shutdown()
	time.Sleep(pause)
	s.start()
}

var (
	sharedOnce sync.Once
	shared     *Server
	prefixes   atomic.Int64
)

// Shared returns a server that every test of the process shares, started
// on first use and never stopped, and a prefix of its own for the caller.
func Shared(t testing.TB) (url, prefix string) {
	sharedOnce.Do(func() {
		shared = &Server{t: t, opts: server.Options{Host: "127.0.0.1", Port: freePort(t), JetStream: true, NoLog: true, NoSigs: true,
			JetStreamMaxStore: 1 << 40, JetStreamMaxMemory: 1 << 34}} // reservations, not use: tests make many streams
		dir, err := os.MkdirTemp("", "pirn-nats-")
		if err != nil {
			t.Fatal(err)
		}
		shared.opts.StoreDir = dir
		shared.start()
	})
	return shared.URL(), fmt.Sprintf("t%d", prefixes.Add(1))
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// External returns the URL of the NATS server at 127.0.0.1:4222 (or
// $PIRN_TEST_NATS) if one with JetStream answers there, else "".
func External() string {
	url := os.Getenv("PIRN_TEST_NATS")
	addr := "127.0.0.1:4222"
	if url == "" {
		url = "nats://" + addr
	} else if url == "off" {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	b, err := dispatch.Connect(ctx, dispatch.Config{URL: url, Prefix: "pirnprobe", ConnectTimeout: time.Second})
	if err != nil {
		return ""
	}
	b.Remove(ctx)
	b.Close()
	return url
}

// Cleanup removes the streams and buckets under prefix from the server at
// url when the test ends, so that a shared server does not fill up.
func Cleanup(t testing.TB, url, prefix string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if b, err := dispatch.Connect(ctx, dispatch.Config{URL: url, Prefix: prefix}); err == nil {
			b.Remove(ctx)
			b.Close()
		}
	})
}

// Funcs ships any function to workers of the same process: the spec
// names the function, and its Execute calls it there. It is a
// CoordinatorConfig.Ship and an Executor.
type Funcs struct{ fns sync.Map } // name → scheduler.Invoker

// Ship names fn by the address of its node's Fn.
func (f *Funcs) Ship(fn *scheduler.Fn) (dispatch.Spec, bool) {
	name := fmt.Sprintf("fn-%p", fn)
	f.fns.Store(name, fn.Invoker)
	return dispatch.Spec{Module: cas.Sum([]byte(name)).String(), ABI: "test", Knot: name}, true
}

// Execute calls the function the job names.
func (f *Funcs) Execute(ctx context.Context, job *dispatch.Job, call *host.Call) (abi.Response, error) {
	inv, ok := f.fns.Load(job.Spec.Knot)
	if !ok {
		return abi.Fail("Unknown", "no function "+job.Spec.Knot), nil
	}
	return inv.(scheduler.Invoker).Invoke(ctx, (*scheduler.Call)(call)), nil
}

// Setup connects a coordinator and n in-process workers (each with slots
// slots) to the server at url with cfg, sharing store and running jobs
// with exec; they stop when the test ends.
func Setup(t testing.TB, url string, cfg dispatch.Config, store cas.Store, exec dispatch.Executor, ship func(*scheduler.Fn) (dispatch.Spec, bool), n, slots int) *dispatch.Coordinator {
	t.Helper()
	ctx := context.Background()
	cfg.URL = url
	b, err := dispatch.Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Remove(ctx)
		b.Close()
	})
	coord, err := dispatch.NewCoordinator(b, store, dispatch.CoordinatorConfig{Ship: ship, WorkerWait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var stops []context.CancelFunc
	for range n {
		wb, err := dispatch.Connect(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		w, err := dispatch.NewWorker(wb, store, exec, dispatch.WorkerConfig{Slots: slots, Drain: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		wctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = w.Run(wctx) }()
		stops = append(stops, stop)
		t.Cleanup(func() { <-done; wb.Close() })
	}
	t.Cleanup(func() { // first: stop every worker at once
		for _, stop := range stops {
			stop()
		}
	})
	return coord
}
