package host_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/model"
)

const (
	capKnots = "testdata/wasm/go/capknots/capknots.wasm"
	netKnots = "testdata/wasm/go/netknots/netknots.wasm"
)

// invoke runs one knot of m with grants and returns the response.
func invoke(t *testing.T, m *host.Module, name string, g model.Grants, lim model.Limits, args ...abi.Arg) abi.Response {
	t.Helper()
	k, err := m.Knot(host.KnotConfig{Name: name, Grants: g, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	return k.Invoke(t.Context(), call(args...))
}

func wantErr(t *testing.T, r abi.Response, contains string) {
	t.Helper()
	if r.Outcome != abi.OutcomeErr || !strings.Contains(r.Error.Message, contains) {
		t.Errorf("%v %+v, want an err containing %q", r.Outcome, r.Error, contains)
	}
}

// grantDirs lays out a directory with links that lead outside it.
func grantDirs(t *testing.T) (data, out, outside string) {
	root := t.TempDir()
	data, out = filepath.Join(root, "data"), filepath.Join(root, "out")
	outside = filepath.Join(root, "outside.txt")
	for _, d := range []string{data, filepath.Join(data, "sub"), out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, s := range map[string]string{outside: "secret", filepath.Join(data, "a.txt"): "hello"} {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		filepath.Join(data, "abs"):           "/etc/passwd",
		filepath.Join(data, "rel"):           "../outside.txt",
		filepath.Join(data, "sub", "deeper"): "../../outside.txt",
		filepath.Join(data, "inside"):        "a.txt",
		filepath.Join(out, "escape"):         "../outside.txt",
	} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	return data, out, outside
}

func TestHermeticByDefault(t *testing.T) {
	h := newHost(t, host.Config{})
	m := load(t, h, capKnots)
	none, lim := model.Grants{}, model.Limits{MaxInvocations: 1}
	wantErr(t, invoke(t, m, "readfile", none, lim, arg(t, "path", "/etc/passwd")), "")
	wantErr(t, invoke(t, m, "listdir", none, lim, arg(t, "path", "/")), "")
	t.Setenv("PIRN_TEST_SECRET", "s3cret")
	if got := decode(t, invoke(t, m, "getenv", none, lim, arg(t, "name", "PIRN_TEST_SECRET"))); got != nil {
		t.Errorf("getenv without a grant = %v", got)
	}
	if got := decode(t, invoke(t, m, "environ", none, lim)); len(got.([]any)) != 0 {
		t.Errorf("environ without a grant = %v", got)
	}
	if got := decode(t, invoke(t, m, "now", none, lim)).(int64); got > time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC).Unix() {
		t.Errorf("now without a grant = %v, want the fake clock's 2022", time.Unix(got, 0))
	}
	// The random source is deterministic: fresh instances draw the same.
	a, b := decode(t, invoke(t, m, "random", none, lim)), decode(t, invoke(t, m, "random", none, lim))
	if a != b {
		t.Errorf("random without a grant: %v then %v, want the same", a, b)
	}
}

func TestGrantDirs(t *testing.T) {
	h := newHost(t, host.Config{})
	m := load(t, h, capKnots)
	data, out, outside := grantDirs(t)
	g := model.Grants{Dirs: []model.DirGrant{{Path: data, Mount: "/data"}, {Path: out, Mount: "/out", Write: true}}}
	lim := model.Limits{}
	if got := decode(t, invoke(t, m, "readfile", g, lim, arg(t, "path", "/data/a.txt"))); got != "hello" {
		t.Errorf("readfile /data/a.txt = %v", got)
	}
	if got := decode(t, invoke(t, m, "readfile", g, lim, arg(t, "path", "/data/inside"))); got != "hello" {
		t.Errorf("a link inside the directory: %v", got)
	}
	for _, p := range []string{"/data/abs", "/data/rel", "/data/sub/deeper", "/data/../outside.txt", "/data/sub/../../outside.txt", "/out/escape", "/etc/passwd"} {
		r := invoke(t, m, "readfile", g, lim, arg(t, "path", p))
		if r.Outcome == abi.OutcomeOK {
			t.Errorf("readfile %s = %q: escaped the granted directory", p, decode(t, r))
		}
	}
	got := decode(t, invoke(t, m, "listdir", g, lim, arg(t, "path", "/data")))
	if want := []any{"a.txt", "abs", "inside", "rel", "sub"}; !slices.Equal(got.([]any), want) {
		t.Errorf("listdir /data = %v, want %v", got, want)
	}
	// A named pipe or a device in the directory is refused, not waited on.
	if err := syscall.Mkfifo(filepath.Join(data, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := invoke(t, m, "readfile", g, model.Limits{Timeout: time.Minute}, arg(t, "path", "/data/pipe"))
	if r.Outcome != abi.OutcomeErr || time.Since(start) > 5*time.Second*slack {
		t.Errorf("readfile of a named pipe: %v %+v after %v", r.Outcome, r.Error, time.Since(start))
	}
	os.Remove(filepath.Join(data, "pipe"))
	// Read-only: no writes. Read-write: writes land on the host, but
	// never through a link to outside, and no links can be made.
	wantErr(t, invoke(t, m, "writefile", g, lim, arg(t, "path", "/data/new.txt"), arg(t, "data", "x")), "")
	if got := decode(t, invoke(t, m, "writefile", g, lim, arg(t, "path", "/out/new.txt"), arg(t, "data", "written"))); got != int64(7) {
		t.Errorf("writefile /out/new.txt = %v", got)
	}
	if b, err := os.ReadFile(filepath.Join(out, "new.txt")); err != nil || string(b) != "written" {
		t.Errorf("host file after write: %q, %v", b, err)
	}
	wantErr(t, invoke(t, m, "writefile", g, lim, arg(t, "path", "/out/escape"), arg(t, "data", "pwned")), "")
	wantErr(t, invoke(t, m, "symlink", g, lim, arg(t, "path", "/out/link")), "")
	if b, _ := os.ReadFile(outside); string(b) != "secret" {
		t.Errorf("the file outside was changed: %q", b)
	}
	if _, err := os.Lstat(filepath.Join(out, "link")); err == nil {
		t.Error("the guest made a symbolic link")
	}
}

func TestGrantEnvClockRandom(t *testing.T) {
	h := newHost(t, host.Config{})
	m := load(t, h, capKnots)
	t.Setenv("PIRN_TEST_REGION", "eu-west")
	t.Setenv("PIRN_TEST_SECRET", "s3cret")
	g := model.Grants{Env: []string{"PIRN_TEST_REGION", "PIRN_TEST_UNSET"}, Clock: true, Random: true}
	lim := model.Limits{MaxInvocations: 1}
	if got := decode(t, invoke(t, m, "getenv", g, lim, arg(t, "name", "PIRN_TEST_REGION"))); got != "eu-west" {
		t.Errorf("getenv granted = %v", got)
	}
	if got := decode(t, invoke(t, m, "environ", g, lim)); !slices.Equal(got.([]any), []any{"PIRN_TEST_REGION=eu-west"}) {
		t.Errorf("environ = %v, want only the granted, set variable", got)
	}
	if got := decode(t, invoke(t, m, "now", g, lim)).(int64); got < time.Now().Unix()-60 || got > time.Now().Unix()+60 {
		t.Errorf("now with the clock = %v", time.Unix(got, 0))
	}
	a, b := decode(t, invoke(t, m, "random", g, lim)), decode(t, invoke(t, m, "random", g, lim))
	if a == b {
		t.Errorf("random with the grant: %v twice", a)
	}
}

func TestGrantHTTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "hello %s", r.Method)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://pirn.invalid/", http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	h := newHost(t, host.Config{})
	m := load(t, h, netKnots)

	// The module imports pirn.http: a knot without the grant is refused.
	if _, err := m.Knot(host.KnotConfig{Name: "fetch"}); err == nil || !strings.Contains(err.Error(), "imports pirn.http (outbound HTTP), which knot fetch is not granted") {
		t.Errorf("fetch without a grant: %v", err)
	}
	g := model.Grants{HTTP: []model.HTTPGrant{{Host: "127.0.0.1"}}}
	got := decode(t, invoke(t, m, "fetch", g, model.Limits{}, arg(t, "url", srv.URL+"/hello")))
	if !equalValue(got, map[string]any{"status": int64(200), "body": "hello GET", "type": "text/plain"}) {
		t.Errorf("fetch = %v", got)
	}
	for _, tc := range []struct {
		args []abi.Arg
		want string
	}{
		{[]abi.Arg{arg(t, "url", srv.URL+"/hello"), arg(t, "method", "POST")}, "method POST is not granted for host 127.0.0.1 (granted: GET)"},
		{[]abi.Arg{arg(t, "url", strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)+"/hello")}, "host localhost is not granted (granted: 127.0.0.1)"},
		{[]abi.Arg{arg(t, "url", "file:///etc/passwd")}, "want an absolute http or https URL"},
		{[]abi.Arg{arg(t, "url", srv.URL+"/away")}, "host pirn.invalid is not granted"},
	} {
		r := invoke(t, m, "fetch", g, model.Limits{}, tc.args...)
		if r.Outcome != abi.OutcomeErr || r.Error.Type != "HTTPError" || !strings.Contains(r.Error.Message, tc.want) {
			t.Errorf("%v: %v %+v, want HTTPError containing %q", tc.args, r.Outcome, r.Error, tc.want)
		}
	}
	post := model.Grants{HTTP: []model.HTTPGrant{{Host: "127.0.0.1", Methods: []string{"get", "POST"}}}}
	if got := decode(t, invoke(t, m, "fetch", post, model.Limits{}, arg(t, "url", srv.URL+"/hello"), arg(t, "method", "POST"))); !equalValue(got, map[string]any{"status": int64(200), "body": "hello POST", "type": "text/plain"}) {
		t.Errorf("POST when granted = %v", got)
	}
	// A request is bounded by the knot's timeout.
	start := time.Now()
	r := invoke(t, m, "fetch", g, model.Limits{Timeout: 300 * time.Millisecond}, arg(t, "url", srv.URL+"/slow"))
	if r.Outcome != abi.OutcomeErr || time.Since(start) > 3*time.Second {
		t.Errorf("slow fetch: %v %+v after %v", r.Outcome, r.Error, time.Since(start))
	}
	// A response larger than MaxOutput is refused.
	wantErr(t, invoke(t, m, "fetch", g, model.Limits{MaxOutput: 4}, arg(t, "url", srv.URL+"/hello")), "exceeds the limit MaxOutput=4")
}

func TestGrantValidation(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	m := load(t, h, capKnots)
	dir := t.TempDir()
	for _, tc := range []struct {
		g    model.Grants
		want string
	}{
		{model.Grants{Dirs: []model.DirGrant{{Path: filepath.Join(dir, "nope"), Mount: "/d"}}}, "not a directory on the host"},
		{model.Grants{Dirs: []model.DirGrant{{Path: dir, Mount: "data"}}}, `mount "data" must be a clean absolute path`},
		{model.Grants{Dirs: []model.DirGrant{{Path: dir, Mount: "/d"}, {Path: dir, Mount: "/d"}}}, `mount "/d" is granted twice`},
		{model.Grants{Env: []string{"A=B"}}, `env "A=B": not a variable name`},
		{model.Grants{HTTP: []model.HTTPGrant{{Host: "http://x.org/"}}}, "want a host name"},
		{model.Grants{HTTP: []model.HTTPGrant{{Host: "x.org", Methods: []string{"FETCH"}}}}, `method "FETCH" is not an HTTP method`},
	} {
		_, err := m.Knot(host.KnotConfig{Name: "readfile", Grants: tc.g})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.g, err, tc.want)
		}
	}
	g := model.Grants{Dirs: []model.DirGrant{{Path: dir, Mount: "/d", Write: true}}, Env: []string{"B", "A"}, Clock: true,
		HTTP: []model.HTTPGrant{{Host: "*.example.com", Methods: []string{"post", "GET"}}}}
	want := []string{"clock", "dir:rw:/d=" + dir, "env:A", "env:B", "http:GET,POST:*.example.com"}
	if got := g.Describe(); !slices.Equal(got, want) {
		t.Errorf("Describe = %v, want %v", got, want)
	}
	if g.Empty() || !(model.Grants{}).Empty() {
		t.Error("Hermetic")
	}
	_ = cas.Sum
}

// TestGrantDirsRace attacks a read-write grant with two instances at once:
// one keeps exchanging a directory and a symbolic link to a directory
// outside the grant (by renames, which a knot may do), the other reads
// and writes through the directory's name. Checking a path and then using
// it again by name would let the second reach outside between the two
// steps; every operation must go through the confined root.
func TestGrantDirsRace(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	m := load(t, h, capKnots)
	root := t.TempDir()
	grant, outside := filepath.Join(root, "grant"), filepath.Join(root, "outside")
	for _, d := range []string{filepath.Join(grant, "d"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, s := range map[string]string{filepath.Join(grant, "d", "secret"): "inside", filepath.Join(outside, "secret"): "OUTSIDE"} {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(grant, "l")); err != nil {
		t.Fatal(err)
	}
	g := model.Grants{Dirs: []model.DirGrant{{Path: grant, Mount: "/g", Write: true}}}
	lim := model.Limits{Timeout: time.Minute}
	rounds, n := 4, 2500
	if testing.Short() {
		rounds = 1
	}
	renames := int64(0)
	for range rounds {
		var swapped, probed abi.Response
		var wg sync.WaitGroup
		wg.Go(func() { swapped = invoke(t, m, "swap", g, lim, arg(t, "dir", "/g"), arg(t, "n", n)) })
		wg.Go(func() { probed = invoke(t, m, "probe", g, lim, arg(t, "dir", "/g"), arg(t, "n", n)) })
		wg.Wait()
		renames += decode(t, swapped).(int64)
		for _, s := range decode(t, probed).([]any) {
			if s != "inside" {
				t.Fatalf("probe read %q through the grant", s)
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(outside, "secret")); err != nil || string(b) != "OUTSIDE" {
		t.Errorf("the file outside is %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(outside, "new")); err == nil {
		t.Error("a file was created outside the grant")
	}
	t.Logf("%d rounds of %d swaps: %d renames raced the probe", rounds, n, renames)
	if renames == 0 {
		t.Error("no rename worked: the race was not run")
	}
}

// TestGrantedSleepEnds: a knot granted the real clock that sleeps for a
// day still ends at its timeout, and at once when its caller's context is
// cancelled (a run's SIGINT).
func TestGrantedSleepEnds(t *testing.T) {
	h := newHost(t, host.Config{})
	m := load(t, h, capKnots)
	g := model.Grants{Clock: true}
	day := int64(24 * time.Hour / time.Millisecond)
	start := time.Now()
	r := invoke(t, m, "sleep", g, model.Limits{Timeout: 300 * time.Millisecond}, arg(t, "ms", day))
	if d := time.Since(start); r.Outcome != abi.OutcomeErr || r.Error.Type != host.ErrTimeout || d > 3*time.Second*slack {
		t.Errorf("a day's sleep under a 300ms timeout: %v %+v after %v", r.Outcome, r.Error, d)
	}
	k, err := m.Knot(host.KnotConfig{Name: "sleep", Grants: g, Limits: model.Limits{Timeout: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)
	start = time.Now()
	r = k.Invoke(ctx, call(arg(t, "ms", day)))
	if d := time.Since(start); r.Outcome != abi.OutcomeErr || r.Error.Type != host.ErrCancelled || d > 3*time.Second*slack {
		t.Errorf("a day's sleep, cancelled after 200ms: %v %+v after %v", r.Outcome, r.Error, d)
	}
	// A short sleep still sleeps.
	start = time.Now()
	if got := decode(t, invoke(t, m, "sleep", g, model.Limits{}, arg(t, "ms", 50))); got != int64(50) || time.Since(start) < 50*time.Millisecond {
		t.Errorf("sleep 50ms = %v after %v", got, time.Since(start))
	}
}
