package ui_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/ui"
)

// runs records two runs of a real Wasm pipeline (x = 5, then x = 6) and
// one whose text is hostile.
func runs(t *testing.T) (lineage.History, cas.Store, []*pirn.RunResult) {
	t.Helper()
	ctx := context.Background()
	store, hist := cas.NewMemory(), lineage.NewMemory()
	eng, err := pirn.Open(ctx, pirn.Config{Store: store, History: hist})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(context.Background()) })
	arith, err := eng.LoadModule(ctx, "../examples/wasm/go/arith/arith.wasm")
	if err != nil {
		t.Fatal(err)
	}
	type in struct {
		X int64 `pirn:"x"`
	}
	boom := pirn.Func("boom", func(_ context.Context, v in) (int64, error) {
		return 0, errors.New(`<img src=x onerror="window.__pwned=1">`)
	})
	var out []*pirn.RunResult
	for i, x := range []int64{5, 6, 7} {
		tp := pirn.NewTapestry()
		xp, _ := tp.Parameter(pirn.Param{Name: "x", Type: "int"})
		d, _ := tp.Knot("d", arith.Knot("double"), pirn.In{"x": xp})
		tp.Knot("answer", arith.Knot("add"), pirn.In{"a": xp, "b": d})
		labels := map[string]string{"n": string(rune('a' + i))}
		if i == 2 {
			tp.Knot("xss", pirn.Expr(`"<script>window.__pwned=1</script>"`), pirn.In{"x": xp})
			tp.Knot("boom", boom, pirn.In{"x": d})
			labels["evil"] = "<b>\x1b[31m"
		}
		res, err := eng.Run(ctx, tp, pirn.RunRequest{Params: map[string]any{"x": x}, Labels: labels})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res)
	}
	return hist, store, out
}

func get(t *testing.T, srv *httptest.Server, path string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestPages(t *testing.T) {
	hist, store, rs := runs(t)
	s, err := ui.New(ui.Config{}, hist, store)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()

	code, h, body := get(t, srv, "/")
	if code != 200 || strings.Count(body, `class="run"`) != 3 {
		t.Fatalf("GET / = %d, %d runs:\n%s", code, strings.Count(body, `class="run"`), body)
	}
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("security headers: %v", h)
	}
	if _, _, body := get(t, srv, "/?status=failed"); strings.Count(body, `class="run"`) != 1 || !strings.Contains(body, rs[2].ID) {
		t.Errorf("status=failed does not list just the failed run")
	}
	if _, _, body := get(t, srv, "/?label=n%3Db"); strings.Count(body, `class="run"`) != 1 || !strings.Contains(body, rs[1].ID) {
		t.Errorf("label=n=b does not list just the second run")
	}
	if _, _, body := get(t, srv, "/?q="+rs[0].ID[len(rs[0].ID)-10:]); strings.Count(body, `class="run"`) != 1 {
		t.Errorf("search by a part of the id does not find one run")
	}

	code, h, body = get(t, srv, "/run/"+rs[2].ID)
	if code != 200 || !strings.Contains(body, `id="pirn-data"`) || !strings.Contains(body, "&lt;b&gt;\\u001b[31m") {
		t.Fatalf("GET /run = %d:\n%s", code, body)
	}
	if strings.Contains(body, "<script>window") || strings.Contains(body, "<img src=x") {
		t.Errorf("run page holds hostile markup unescaped")
	}
	if !strings.Contains(h.Get("Content-Security-Policy"), "'nonce-") {
		t.Errorf("run page CSP lacks a nonce: %s", h.Get("Content-Security-Policy"))
	}

	ans := rs[0].Values["answer"].Digest.String()
	code, _, body = get(t, srv, "/value/"+ans)
	if code != 200 || !strings.Contains(body, `<pre id="value">15</pre>`) {
		t.Errorf("GET /value = %d:\n%s", code, body)
	}
	xss := rs[2].Values["xss"].Digest.String()
	if _, _, body := get(t, srv, "/value/"+xss); !strings.Contains(body, `&#34;&lt;script&gt;window.__pwned=1&lt;/script&gt;&#34;`) {
		t.Errorf("xss value not shown escaped:\n%s", body)
	}
	if code, _, _ := get(t, srv, "/value/sha256:nope"); code != 400 {
		t.Errorf("GET /value/bad = %d, want 400", code)
	}

	_, _, body = get(t, srv, "/lineage?output="+url.QueryEscape(ans))
	if !strings.Contains(body, "1 records with output") || !strings.Contains(body, rs[0].ID) {
		t.Errorf("lineage by output:\n%s", body)
	}
	if _, _, body := get(t, srv, "/lineage?knot=answer"); !strings.Contains(body, "3 records with knot") {
		t.Errorf("lineage by knot:\n%s", body)
	}
	in := rs[0].Values["d"].Digest.String()
	if _, _, body := get(t, srv, "/lineage?input="+url.QueryEscape(in)); !strings.Contains(body, "1 records with input") {
		t.Errorf("lineage by input:\n%s", body)
	}

	code, _, body = get(t, srv, "/diff?a="+rs[0].ID+"&b="+rs[2].ID)
	if code != 200 || !strings.Contains(body, "5 nodes differ, 0 the same") || !strings.Contains(body, "only_b") || !strings.Contains(body, "→ 21") {
		t.Errorf("GET /diff = %d:\n%s", code, body)
	}
	if code, _, body := get(t, srv, "/diff?a="+rs[0].ID+"&b=nope"); code != 404 || !strings.Contains(body, "no run nope") {
		t.Errorf("diff with an unknown run = %d", code)
	}
	if code, _, _ := get(t, srv, "/run/nope"); code != 404 {
		t.Errorf("GET /run/nope = %d, want 404", code)
	}
	if code, _, _ := get(t, srv, "/nothing"); code != 404 {
		t.Errorf("GET /nothing = %d, want 404", code)
	}
	if code, _, _ := get(t, srv, "/?q="+strings.Repeat("a", 600)); code != 400 {
		t.Errorf("long query parameter = %d, want 400", code)
	}
	if code, _, _ := get(t, srv, "/?q="+strings.Repeat("a,", 1100)); code != 414 {
		t.Errorf("long query = %d, want 414", code)
	}
	resp, err := srv.Client().Post(srv.URL+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("POST / = %d, want 405", resp.StatusCode)
	}
}

func TestToken(t *testing.T) {
	hist, store, _ := runs(t)
	s, err := ui.New(ui.Config{Token: "s3cret"}, hist, store)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	if code, _, _ := get(t, srv, "/"); code != 401 {
		t.Errorf("no token: %d, want 401", code)
	}
	if code, _, _ := get(t, srv, "/?token=wrong"); code != 401 {
		t.Errorf("wrong token: %d, want 401", code)
	}
	if code, _, _ := get(t, srv, "/", "Authorization", "Bearer s3cret"); code != 200 {
		t.Errorf("bearer token: %d, want 200", code)
	}
	code, h, _ := get(t, srv, "/lineage?knot=d&token=s3cret")
	if code != 303 || h.Get("Location") != "/lineage?knot=d" || !strings.Contains(h.Get("Set-Cookie"), "HttpOnly") {
		t.Fatalf("?token= = %d, %v; want a redirect without it and a cookie", code, h)
	}
	cookie := strings.Split(h.Get("Set-Cookie"), ";")[0]
	if code, _, body := get(t, srv, "/lineage?knot=d", "Cookie", cookie); code != 200 || !strings.Contains(body, "3 records") {
		t.Errorf("with the cookie: %d", code)
	}
}

// TestHostCheck: without a token the UI answers only requests that name a
// loopback host, so a page of another site cannot read it through a name
// that resolves to 127.0.0.1 (DNS rebinding); with a token, any host.
func TestHostCheck(t *testing.T) {
	hist, store, _ := runs(t)
	open, err := ui.New(ui.Config{}, hist, store)
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]int{"127.0.0.1:8470": 200, "localhost:8470": 200, "[::1]:8470": 200, "LOCALHOST": 200,
		"evil.example:8470": 421, "127.0.0.1.evil.example": 421, "": 421} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Host = host
		w := httptest.NewRecorder()
		open.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("Host %q, no token: %d, want %d", host, w.Code, want)
		}
	}
	tok, err := ui.New(ui.Config{Token: "s3cret"}, hist, store)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Host = "pirn.internal:8470"
	r.Header.Set("Authorization", "Bearer s3cret")
	w := httptest.NewRecorder()
	tok.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Errorf("Host pirn.internal with the token: %d, want 200", w.Code)
	}
}

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:8080", "", true}, {"[::1]:0", "", true}, {"localhost:1", "", true}, {"127.1.2.3:9", "", true},
		{"0.0.0.0:8080", "", false}, {":8080", "", false}, {"192.0.2.1:80", "", false}, {"0.0.0.0:8080", "t", true}, {"nope", "", false},
	} {
		if err := ui.CheckAddr(tc.addr, tc.token); (err == nil) != tc.ok {
			t.Errorf("CheckAddr(%q, %q) = %v, want ok %v", tc.addr, tc.token, err, tc.ok)
		}
	}
}

func TestServe(t *testing.T) {
	hist, store, _ := runs(t)
	s, err := ui.New(ui.Config{}, hist, store)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/lineage?knot=d")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "3 records") {
		t.Errorf("GET over Serve = %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after its ctx ended = %v, want nil", err)
	}
	if _, err := ui.New(ui.Config{MaxRuns: -1}, hist, store); err == nil {
		t.Error("New(MaxRuns: -1) = nil error")
	}
}
