package valkey_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	neturl "net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	vk "github.com/valkey-io/valkey-go"

	"github.com/pirn-wasm/pirn/backends/valkey"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/cas/castest"
)

// defaultTestURL is the server and database the tests use unless
// PIRN_TEST_VALKEY names another. The tests flush that database.
const defaultTestURL = "valkey://127.0.0.1:6379/13"

func testURL() string {
	if u := os.Getenv("PIRN_TEST_VALKEY"); u != "" {
		return u
	}
	return defaultTestURL
}

// admin returns a client of its own on the test database, flushed now and
// when the test ends. The test fails if the server cannot be reached.
func admin(t testing.TB) vk.Client {
	t.Helper()
	opt, err := vk.ParseURL(testURL())
	if err != nil {
		t.Fatalf("PIRN_TEST_VALKEY: %v", err)
	}
	opt.ForceSingleClient, opt.DisableCache = true, true
	opt.Dialer.Timeout = 2 * time.Second
	c, err := vk.NewClient(opt)
	if err != nil {
		t.Fatalf("no Valkey or Redis server at %s: %v\n"+
			"(start one, or set PIRN_TEST_VALKEY to a valkey:// URL whose database the tests may flush)",
			valkey.Redact(testURL()), err)
	}
	flush := func() {
		if err := c.Do(context.Background(), c.B().Flushdb().Build()).Error(); err != nil {
			t.Errorf("FLUSHDB: %v", err)
		}
	}
	flush()
	t.Cleanup(func() { flush(); c.Close() })
	return c
}

func open(t testing.TB, cfg valkey.Config) *valkey.Store {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = testURL()
	}
	s, err := valkey.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func value(t testing.TB, v any) cas.Value {
	t.Helper()
	x, err := cas.NewValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestStore(t *testing.T) {
	for _, ttl := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprint("ttl=", ttl), func(t *testing.T) {
			castest.RunStore(t, func(t *testing.T) cas.Store {
				admin(t)
				return open(t, valkey.Config{TTL: ttl})
			})
		})
	}
}

func TestKeys(t *testing.T) {
	a := admin(t)
	ctx := t.Context()
	v := value(t, "where")
	for _, tc := range []struct{ prefix, key string }{
		{"", "pirn:v:" + v.Digest.String()},
		{"team-a/", "team-a/" + v.Digest.String()},
	} {
		s := open(t, valkey.Config{Prefix: tc.prefix})
		if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
			t.Fatal(err)
		}
		got, err := a.Do(ctx, a.B().Get().Key(tc.key).Build()).AsBytes()
		if err != nil || !bytes.Equal(got, v.Bytes) {
			t.Errorf("Prefix %q: GET %s = %x, %v; want %x", tc.prefix, tc.key, got, err, v.Bytes)
		}
	}
}

// Put of a digest that is present sends SET NX: it does not rewrite the
// value, which the tampered bytes surviving it show; and Get finds them.
func TestPutDoesNotRewriteAndGetVerifies(t *testing.T) {
	a := admin(t)
	s := open(t, valkey.Config{})
	ctx := t.Context()
	v := value(t, "original")
	key := valkey.DefaultPrefix + v.Digest.String()
	if err := a.Do(ctx, a.B().Set().Key(key).Value("tampered").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, v.Digest)
	if !errors.Is(err, cas.ErrCorrupt) || !strings.Contains(err.Error(), key) {
		t.Errorf("Get of tampered value = %q, %v; want an error wrapping ErrCorrupt naming %s", got, err, key)
	}
}

func TestPutMany(t *testing.T) {
	for _, ttl := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprint("ttl=", ttl), func(t *testing.T) {
			admin(t)
			s := open(t, valkey.Config{TTL: ttl})
			ctx := t.Context()
			vs := make([]cas.Value, 1000)
			for i := range vs {
				vs[i] = value(t, i)
			}
			if err := s.Put(ctx, vs[7].Digest, vs[7].Bytes); err != nil { // one already there
				t.Fatal(err)
			}
			if err := s.PutMany(ctx, vs); err != nil {
				t.Fatalf("PutMany: %v", err)
			}
			for _, v := range vs {
				if got, err := s.Get(ctx, v.Digest); err != nil || !bytes.Equal(got, v.Bytes) {
					t.Fatalf("Get(%s) after PutMany = %x, %v; want %x", v.Digest, got, err, v.Bytes)
				}
			}
			if err := s.PutMany(ctx, nil); err != nil {
				t.Errorf("PutMany(nil) = %v, want nil", err)
			}
		})
	}
}

// TestPutManyFailures puts through a user that may write only the keys
// whose digest starts with 0-7: PutMany stores those and reports the rest.
func TestPutManyFailures(t *testing.T) {
	a := admin(t)
	ctx := t.Context()
	user := fmt.Sprintf("pirn-test-%d", os.Getpid())
	acl := func(args ...string) {
		t.Helper()
		if err := a.Do(ctx, a.B().Arbitrary("ACL").Args(args...).Build()).Error(); err != nil {
			t.Fatalf("ACL %v: %v", args, err)
		}
	}
	acl("SETUSER", user, "on", ">hunter2", "~pirn:v:sha256:[0-7]*", "+@all")
	t.Cleanup(func() { a.Do(context.Background(), a.B().Arbitrary("ACL").Args("DELUSER", user).Build()) })
	s := open(t, valkey.Config{URL: strings.Replace(testURL(), "://", "://"+user+":hunter2@", 1)})

	vs := make([]cas.Value, 64)
	want := 0
	for i := range vs {
		vs[i] = value(t, i)
		if vs[i].Digest.Hex()[0] >= '8' {
			want++
		}
	}
	err := s.PutMany(ctx, vs)
	if err == nil || !strings.HasPrefix(err.Error(), fmt.Sprintf("%d of 64 puts failed; first: ", want)) ||
		!strings.Contains(err.Error(), user+":xxxxx@") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("PutMany = %v, want %d of 64 failed, naming the redacted URL", err, want)
	}
	for _, v := range vs {
		_, err := s.Get(ctx, v.Digest)
		if stored := v.Digest.Hex()[0] < '8'; stored != (err == nil) {
			t.Errorf("Get(%s) = %v; want stored: %v", v.Digest, err, stored)
		}
	}

	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.PutMany(done, vs); !errors.Is(err, context.Canceled) {
		t.Errorf("PutMany with a done context = %v, want an error wrapping context.Canceled", err)
	}
}

func TestTTL(t *testing.T) {
	a := admin(t)
	ctx := t.Context()
	pttl := func(v cas.Value) int64 {
		t.Helper()
		n, err := a.Do(ctx, a.B().Pttl().Key(valkey.DefaultPrefix+v.Digest.String()).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("Expires", func(t *testing.T) {
		s := open(t, valkey.Config{TTL: 100 * time.Millisecond})
		v := value(t, "short-lived")
		if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
			t.Fatal(err)
		}
		if ms := pttl(v); ms == -1 || ms > 100 { // -2: already gone
			t.Errorf("PTTL after Put = %d ms, want at most 100", ms)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			ok, err := s.Has(ctx, v.Digest)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("value with a 100ms TTL still there after 5s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := s.Get(ctx, v.Digest); !errors.Is(err, cas.ErrNotFound) {
			t.Errorf("Get after the TTL = %v, want ErrNotFound", err)
		}
	})

	t.Run("PutAgainExtends", func(t *testing.T) {
		s := open(t, valkey.Config{TTL: time.Hour})
		v := value(t, "extended")
		if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
			t.Fatal(err)
		}
		key := valkey.DefaultPrefix + v.Digest.String()
		if err := a.Do(ctx, a.B().Pexpire().Key(key).Milliseconds(1000).Build()).Error(); err != nil {
			t.Fatal(err) // as if it were nearly an hour old
		}
		if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
			t.Fatal(err)
		}
		if ms := pttl(v); ms < time.Hour.Milliseconds()-60_000 {
			t.Errorf("PTTL after a second Put = %d ms, want about an hour", ms)
		}
	})

	t.Run("NeverShortens", func(t *testing.T) {
		forever := open(t, valkey.Config{})
		short := open(t, valkey.Config{TTL: time.Second})
		v := value(t, "kept")
		if err := forever.Put(ctx, v.Digest, v.Bytes); err != nil {
			t.Fatal(err)
		}
		if err := short.Put(ctx, v.Digest, v.Bytes); err != nil {
			t.Fatal(err)
		}
		if ms := pttl(v); ms != -1 {
			t.Errorf("PTTL of a value put without TTL, then with one = %d, want -1 (none)", ms)
		}
	})
}

// TestConnectionDrop kills the store's connections between operations
// (CLIENT KILL, from another connection). Every operation, writes
// included, is retried on a new connection, so each succeeds.
func TestConnectionDrop(t *testing.T) {
	a := admin(t)
	ctx := t.Context()
	name := fmt.Sprintf("pirn-drop-test-%d", os.Getpid())
	url := testURL()
	if strings.Contains(url, "?") {
		url += "&client_name=" + name
	} else {
		url += "?client_name=" + name
	}
	s := open(t, valkey.Config{URL: url})
	kill := func() {
		t.Helper()
		// Only this store's connections (CLIENT KILL TYPE normal would
		// reach every client of a server others may share).
		// Pinned: valkey-go recycles a command's memory once it is
		// answered, and the race detector sees no order between its
		// writer goroutine's read of the last command (ordered by the
		// server's reply, through the kernel) and the next command's
		// build in the recycled memory.
		list, err := a.Do(ctx, a.B().ClientList().TypeNormal().Build().Pin()).ToString()
		if err != nil {
			t.Fatal(err)
		}
		killed := 0
		for line := range strings.Lines(list) {
			if !strings.Contains(line, " name="+name+" ") {
				continue
			}
			id, _, _ := strings.Cut(strings.TrimPrefix(line, "id="), " ")
			err := a.Do(ctx, a.B().Arbitrary("CLIENT", "KILL", "ID", id, "SKIPME", "yes").Build().Pin()).Error()
			if err != nil {
				t.Fatalf("CLIENT KILL ID %s: %v", id, err)
			}
			killed++
		}
		if killed == 0 {
			t.Fatalf("no connection named %s in CLIENT LIST:\n%s", name, list)
		}
	}
	before, after := value(t, "before"), value(t, "after")
	if err := s.Put(ctx, before.Digest, before.Bytes); err != nil {
		t.Fatal(err)
	}
	for _, op := range []struct {
		name string
		do   func() error
	}{
		{"Get", func() error {
			got, err := s.Get(ctx, before.Digest)
			if err == nil && !bytes.Equal(got, before.Bytes) {
				t.Errorf("Get = %x, want %x", got, before.Bytes)
			}
			return err
		}},
		{"Put", func() error { return s.Put(ctx, after.Digest, after.Bytes) }},
		{"PutMany", func() error { return s.PutMany(ctx, []cas.Value{value(t, 1), value(t, 2)}) }},
		{"Has", func() error {
			ok, err := s.Has(ctx, after.Digest)
			if err == nil && !ok {
				t.Error("Has of a value put after a drop = false, want true")
			}
			return err
		}},
		{"Delete", func() error { return s.Delete(ctx, before.Digest) }},
	} {
		kill()
		if err := op.do(); err != nil {
			t.Errorf("%s after a connection drop: %v", op.name, err)
		}
	}
}

// proxy forwards TCP connections to the test server until stopped, so
// that a test can take the server away and bring it back.
type proxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, addr: "127.0.0.1:0", target: target}
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) start() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Go(func() { io.Copy(up, c); up.Close() })
			p.wg.Go(func() { io.Copy(c, up); c.Close() })
		}
	})
}

// stop closes the listener and every connection, and waits for the
// copying goroutines.
func (p *proxy) stop() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// TestServerGoneAndBack takes the server away (through a proxy): an
// operation retries for a few seconds, then fails with an error naming
// the server; one started while the server is away and finished after it
// is back succeeds.
func TestServerGoneAndBack(t *testing.T) {
	admin(t)
	ctx := t.Context()
	opt, err := vk.ParseURL(testURL())
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, opt.InitAddress[0])
	u, err := neturl.Parse(testURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.addr
	s := open(t, valkey.Config{URL: u.String()})
	v := value(t, "survives")
	if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
		t.Fatal(err)
	}

	p.stop()
	start := time.Now()
	_, err = s.Get(ctx, v.Digest)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), u.Redacted()) {
		t.Errorf("Get with the server gone = %v, want an error naming %s", err, u.Redacted())
	}
	if took > 15*time.Second {
		t.Errorf("Get with the server gone took %v, want a few seconds of retries", took)
	}
	t.Logf("Get with the server gone: %v, after %v", err, took.Round(time.Millisecond))

	w := value(t, "written across a restart")
	errc := make(chan error, 1)
	go func() { errc <- s.Put(ctx, w.Digest, w.Bytes) }()
	time.Sleep(300 * time.Millisecond)
	p.start() // the same address
	if err := <-errc; err != nil {
		t.Fatalf("Put while the server restarts: %v", err)
	}
	for _, x := range []cas.Value{v, w} {
		if got, err := s.Get(ctx, x.Digest); err != nil || !bytes.Equal(got, x.Bytes) {
			t.Errorf("Get(%s) after the server is back = %x, %v; want %x", x.Digest, got, err, x.Bytes)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	admin(t) // the server must be there for the wrong password to be refused
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		cfg  valkey.Config
		want string // in the error
	}{
		{"NoURL", valkey.Config{}, "URL is empty"},
		{"Scheme", valkey.Config{URL: "http://u:hunter2@127.0.0.1:6379"}, `scheme "http"`},
		{"Unparsable", valkey.Config{URL: "valkey://u:hunter2@127.0.0.1:port/13"}, "valkey://u:xxxxx@127.0.0.1:port/13"},
		{"Database", valkey.Config{URL: "valkey://u:hunter2@127.0.0.1:6379/x"}, "valkey://u:xxxxx@127.0.0.1:6379/x"},
		{"TTL", valkey.Config{URL: testURL(), TTL: -time.Second}, "TTL = -1s"},
		{"TinyTTL", valkey.Config{URL: testURL(), TTL: time.Microsecond}, "TTL = 1µs"},
		{"Unreachable", valkey.Config{URL: "valkey://u:hunter2@127.0.0.1:1/13"}, "valkey: open valkey://u:xxxxx@127.0.0.1:1/13: "},
		{"WrongPassword", valkey.Config{URL: strings.Replace(testURL(), "://", "://nobody:hunter2@", 1)}, "://nobody:xxxxx@"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := valkey.Open(ctx, tc.cfg)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded, want an error", tc.cfg.URL)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Open(%q) = %v, want an error containing %q and not the password", tc.cfg.URL, err, tc.want)
			}
		})
	}
}

func TestOpenDoneContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := valkey.Open(ctx, valkey.Config{URL: testURL()}); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a done context = %v, want an error wrapping context.Canceled", err)
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"valkey://127.0.0.1:6379/13", "valkey://127.0.0.1:6379/13"},
		{"valkey://user:pass@host", "valkey://user:xxxxx@host"},
		{"valkey://user:pass@host:6379/2", "valkey://user:xxxxx@host:6379/2"},
		{"redis://:pass@host", "redis://:xxxxx@host"},
		{"valkey://user@host", "valkey://user@host"},
		{"valkey://user:p%40ss@host/1?dial_timeout=1s", "valkey://user:xxxxx@host/1?dial_timeout=1s"},
		// Unparsable URLs: the password still goes.
		{"valkey://user:pa/ss@host", "valkey://user:xxxxx@host"},
		{"valkey://user:pass@host:port", "valkey://user:xxxxx@host:port"},
		{"valkey://user:p@ss@host:port", "valkey://user:xxxxx@host:port"},
	} {
		if got := valkey.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestClosed(t *testing.T) {
	admin(t)
	s := open(t, valkey.Config{})
	s.Close()
	v := value(t, "late")
	if err := s.Put(t.Context(), v.Digest, v.Bytes); err == nil {
		t.Error("Put after Close succeeded, want an error")
	}
}
