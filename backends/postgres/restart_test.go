package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/lineagetest"
)

// cluster is a throw-away PostgreSQL server of a test's own, on a port
// of its own, so that the test may restart or stop it: the machine's
// server is never touched.
type cluster struct {
	t    *testing.T
	bin  string // the directory of initdb and pg_ctl
	dir  string // its data directory
	port int
	// asPostgres runs the server's programs as the postgres user:
	// initdb refuses to run as root.
	asPostgres bool
}

// newCluster initialises and starts a cluster, stopped at the end of the
// test. PIRN_TEST_PGBIN names the directory of initdb and pg_ctl;
// otherwise the newest of /usr/lib/postgresql/*/bin (Debian's layout) or
// the PATH is used. The test is skipped if there is none.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster of its own (-short)")
	}
	bin := os.Getenv("PIRN_TEST_PGBIN")
	if bin == "" {
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		sort.Slice(dirs, func(i, j int) bool { return majorOf(dirs[i]) > majorOf(dirs[j]) })
		if len(dirs) > 0 {
			bin = dirs[0]
		} else if p, err := exec.LookPath("initdb"); err == nil {
			bin = filepath.Dir(p)
		}
	}
	if _, err := os.Stat(filepath.Join(bin, "initdb")); bin == "" || err != nil {
		t.Skip("no initdb: install PostgreSQL's server programs or name their directory in PIRN_TEST_PGBIN")
	}
	c := &cluster{t: t, bin: bin, dir: t.TempDir(), port: freePort(t), asPostgres: os.Geteuid() == 0}
	if c.asPostgres {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("running as root and there is no postgres user to run initdb as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		// The server's user must own its directory and reach it.
		for d := c.dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
			os.Chmod(d, 0o755)
		}
		if err := os.Chown(c.dir, uid, -1); err != nil {
			t.Fatal(err)
		}
	}
	c.run("initdb", "-D", filepath.Join(c.dir, "data"), "-A", "trust", "-U", "postgres", "--no-sync", "--no-instructions")
	c.start()
	t.Cleanup(func() { c.pgctl("stop", "-m", "immediate") })
	return c
}

// majorOf orders Debian's /usr/lib/postgresql/<major>/bin directories.
func majorOf(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (c *cluster) run(name string, args ...string) {
	c.t.Helper()
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	if c.asPostgres {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(c.bin, name)}, args...)...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// pgctl runs pg_ctl on the cluster: start, stop or restart, waiting for
// it to finish. fsync is off: the test needs no durability across a
// crash of the machine, only across one of the server.
func (c *cluster) pgctl(action string, args ...string) {
	c.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", c.port, c.dir)
	c.run("pg_ctl", append([]string{"-D", filepath.Join(c.dir, "data"), "-l", filepath.Join(c.dir, "log"), "-w", "-o", opts, action}, args...)...)
}

func (c *cluster) start() { c.pgctl("start") }

func (c *cluster) dsn() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", c.port)
}

// TestServerRestart restarts the server, and stops it and starts it
// again, while a History and a Store are in use: writes made while it is
// away are retried until it is back, a run in progress keeps its owner,
// and nothing recorded before is lost.
func TestServerRestart(t *testing.T) {
	c := newCluster(t)
	ctx := t.Context()
	h, err := Open(ctx, Config{DSN: c.dsn()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	s, err := OpenStore(ctx, StoreConfig{DSN: c.dsn()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	var mu sync.Mutex
	var recorded []*lineage.Run
	var values []cas.Value
	write := func(i int) error {
		r := lineagetest.SampleRun(t, fmt.Sprint("run-", i), time.Duration(i)*time.Second)
		if i%5 == 0 {
			r = lineagetest.LargeRun(t, r.ID, batchRows*3, 10)
		}
		v, err := cas.NewValue(fmt.Sprint("value ", i))
		if err != nil {
			return err
		}
		if err := h.RecordRun(ctx, r); err != nil {
			return err
		}
		if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
			return err
		}
		mu.Lock()
		recorded, values = append(recorded, r), append(values, v)
		mu.Unlock()
		return nil
	}
	for i := range 5 {
		if err := write(i); err != nil {
			t.Fatal(err)
		}
	}
	live := &lineage.Run{ID: "run-live", Status: lineage.Running, StartedAt: lineagetest.Base}
	if err := h.StartRun(ctx, live); err != nil {
		t.Fatal(err)
	}

	// Writers keep writing while the server restarts, then while it is
	// stopped for a second and started again.
	for round, outage := range []func(){
		func() { c.pgctl("restart", "-m", "fast") },
		func() {
			c.pgctl("stop", "-m", "immediate") // as if it crashed
			time.Sleep(time.Second)
			c.start()
		},
	} {
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for w := range 2 {
			wg.Go(func() {
				for k := range 10 {
					if err := write(100*(round+1) + 10*w + k); err != nil {
						errs <- err
					}
					time.Sleep(20 * time.Millisecond)
				}
			})
		}
		time.Sleep(50 * time.Millisecond)
		began := time.Now()
		outage()
		t.Logf("outage %d: %v", round+1, time.Since(began).Round(time.Millisecond))
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("write during outage %d: %v", round+1, err)
		}
	}

	for _, r := range recorded {
		checkRun(t, h, r)
	}
	for _, v := range values {
		if b, err := s.Get(ctx, v.Digest); err != nil || string(b) != string(v.Bytes) {
			t.Errorf("value %s after the outages: %q, %v", v.Digest, b, err)
		}
	}
	sums, err := h.Runs(ctx, lineage.Query{Limit: 1000})
	if err != nil || len(sums) != len(recorded)+1 {
		t.Errorf("Runs = %d, %v; want %d", len(sums), err, len(recorded)+1)
	}

	// The run in progress lost its owner session with the server; this
	// History takes it back at its next start, and records its end.
	if err := h.StartRun(ctx, &lineage.Run{ID: "run-next", Status: lineage.Running, StartedAt: lineagetest.Base}); err != nil {
		t.Fatal(err)
	}
	other, err := Open(ctx, Config{DSN: c.dsn()})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if got, err := other.Run(ctx, "run-live"); err != nil || got.Status != lineage.Running {
		t.Errorf("run-live seen by another process after the outages: %v, %v; want running", got, err)
	}
	done := lineagetest.SampleRun(t, "run-live", 0)
	if err := h.RecordRun(ctx, done); err != nil {
		t.Fatal(err)
	}
	checkRun(t, other, done)
}

// TestServerStaysAway: with the server stopped for longer than RetryFor,
// a write fails with an error that says so, and what was recorded before
// is there when the server is back.
func TestServerStaysAway(t *testing.T) {
	c := newCluster(t)
	ctx := t.Context()
	h, err := Open(ctx, Config{DSN: c.dsn()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	before := lineagetest.SampleRun(t, "run-before", 0)
	if err := h.RecordRun(ctx, before); err != nil {
		t.Fatal(err)
	}
	c.pgctl("stop", "-m", "fast")
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err = h.RecordRun(wctx, lineagetest.SampleRun(t, "run-lost", 0))
	if err == nil {
		t.Fatal("RecordRun with the server stopped succeeded")
	}
	t.Logf("error: %v", err)
	if want := fmt.Sprint(c.port); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "stopped retrying") {
		t.Errorf("error %q names neither the server's port %s nor the retrying", err, want)
	}
	c.start()
	checkRun(t, h, before)
	if _, err := h.Run(ctx, "run-lost"); err == nil {
		t.Error("the run that failed to record is there")
	}
}

// TestTransient: the errors of a lost connection are retried, whatever
// pgx says of their safety (every operation here is idempotent); the
// errors of a query, a cancellation or a deadline are not.
func TestTransient(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("insert run: %w", pgconn.ErrConnClosed), true},
		{&pgconn.PgError{Code: "57P01"}, true},
		{&pgconn.PgError{Code: "08006"}, true},
		{fmt.Errorf("x: %w", io.ErrUnexpectedEOF), true},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{&pgconn.PgError{Code: "23505"}, false},
		{fmt.Errorf("x: %w", context.Canceled), false},
		{context.DeadlineExceeded, false},
		{errors.New("no such table"), false},
	} {
		if got := transient(c.err); got != c.want {
			t.Errorf("transient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
