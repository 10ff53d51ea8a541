// Package ui is pirn ui: a local, read-only web UI over a run history and
// its data store (any backend: it sees them as [lineage.History] and
// [cas.Store]). It lists runs (filtered by pipeline, status and label,
// searched by id or pipeline), shows a run as package page draws it, a
// value by digest (decoded to JSON, bounded), lineage queries (which
// records produced or consumed a value, every record of a knot id) and the
// diff of two runs (package rundiff).
//
// Every page is rendered on the server with html/template; the only script
// is the run page's, allowed by a per-response nonce in the
// Content-Security-Policy. The server answers GET and HEAD only, bounds
// query strings and what it decodes, and sets security headers. A
// [Config.Token], when set, is required on every request (checked in
// constant time), as an "Authorization: Bearer" header or as the cookie a
// first visit with ?token= sets; [CheckAddr] requires one for an address
// that is not loopback. A Server is safe for concurrent use.
package ui

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/rundiff"
	"github.com/pirn-wasm/pirn/viz/page"
)

// Config configures a Server. Each field's zero value is the default
// beside it.
type Config struct {
	// Token, if set, is required on every request.
	Token string
	// MaxRuns is the most runs the list reads from the history (then
	// filters by status and search). 0 means 500.
	MaxRuns int
	// MaxRecords is the most lineage records a query lists. 0 means 500.
	MaxRecords int
	// MaxValueBytes bounds the JSON text of the value page. 0 means 64 KiB.
	MaxValueBytes int
	// Page bounds the run pages (its Links and Nonce are set per request).
	Page page.Config
	// Diff bounds the diffs.
	Diff rundiff.Config
	// Logger logs failed requests; nil discards.
	Logger *slog.Logger
}

// Limits of a request.
const (
	maxQuery = 2048 // bytes of the whole query string
	maxParam = 512  // bytes of one query value
)

// Server serves the UI.
type Server struct {
	cfg   Config
	hist  lineage.History
	store cas.Store
	token [32]byte // SHA-256 of Config.Token
	mux   *http.ServeMux
}

// New returns a Server over hist and store.
func New(cfg Config, hist lineage.History, store cas.Store) (*Server, error) {
	if hist == nil || store == nil {
		return nil, errors.New("ui: a history and a store are needed")
	}
	if cfg.MaxRuns < 0 || cfg.MaxRecords < 0 || cfg.MaxValueBytes < 0 {
		return nil, fmt.Errorf("ui: negative limit in %+v", cfg)
	}
	cfg.MaxRuns = cmp.Or(cfg.MaxRuns, 500)
	cfg.MaxRecords = cmp.Or(cfg.MaxRecords, 500)
	cfg.MaxValueBytes = cmp.Or(cfg.MaxValueBytes, 64<<10)
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	s := &Server{cfg: cfg, hist: hist, store: store, token: sha256.Sum256([]byte(cfg.Token))}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /{$}", s.runs)
	s.mux.HandleFunc("GET /run/{id}", s.run)
	s.mux.HandleFunc("GET /value/{digest}", s.value)
	s.mux.HandleFunc("GET /lineage", s.lineage)
	s.mux.HandleFunc("GET /diff", s.diff)
	s.mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusNotFound, "no such page")
	})
	return s, nil
}

// CheckAddr refuses to listen on addr (host:port) without a token unless
// its host is loopback (127.0.0.0/8, ::1 or localhost).
func CheckAddr(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("ui: address %q: %w", addr, err)
	}
	if token != "" || host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("ui: %q is not a loopback address: anyone who reaches it could read every run, so a token is required (--token or PIRN_UI_TOKEN)", addr)
}

// Serve serves on ln until ctx ends, then shuts down (waiting up to 5s for
// requests in flight). The http.Server has timeouts on reading headers
// and bodies, writing and idling, and bounds the header size.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-done
	return err
}

const cookieName = "pirn_ui_token"

// ServeHTTP checks the method, the query's size and the token, sets the
// security headers and dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		s.fail(w, r, http.StatusMethodNotAllowed, "this UI is read-only: GET and HEAD only")
		return
	}
	if len(r.URL.RawQuery) > maxQuery {
		s.fail(w, r, http.StatusRequestURITooLong, fmt.Sprintf("query string over %d bytes", maxQuery))
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "malformed query string")
		return
	}
	for k, vs := range q {
		if len(vs) > 1 {
			s.fail(w, r, http.StatusBadRequest, "query parameter given twice: "+k)
			return
		}
		if len(vs[0]) > maxParam {
			s.fail(w, r, http.StatusBadRequest, fmt.Sprintf("query parameter %s over %d bytes", k, maxParam))
			return
		}
	}
	if s.cfg.Token == "" && !loopbackHost(r.Host) {
		// With no token, the UI trusts where it listens (loopback). A
		// page on another site could still reach it through a name that
		// resolves to 127.0.0.1 (DNS rebinding): such a request names
		// that site in its Host header, not a loopback address.
		s.fail(w, r, http.StatusMisdirectedRequest, "this UI answers only to a loopback host name (127.0.0.1, [::1], localhost); serve it with --token to reach it by another name")
		return
	}
	if s.cfg.Token != "" && !s.authorized(w, r, q) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

// loopbackHost reports whether a request's Host header names a loopback
// address or localhost (with or without a port).
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// authorized checks the token; a valid ?token= sets the cookie and
// redirects to the URL without it.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request, q url.Values) bool {
	if t := q.Get("token"); t != "" {
		if !s.tokenOK(t) {
			s.fail(w, r, http.StatusUnauthorized, "wrong token")
			return false
		}
		http.SetCookie(w, &http.Cookie{Name: cookieName, Value: t, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		q.Del("token")
		u := *r.URL
		u.RawQuery = q.Encode()
		http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
		return false
	}
	if b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && s.tokenOK(b) {
		return true
	}
	if c, err := r.Cookie(cookieName); err == nil && s.tokenOK(c.Value) {
		return true
	}
	s.fail(w, r, http.StatusUnauthorized, "a token is required: open the URL pirn ui printed (with ?token=), or send Authorization: Bearer TOKEN")
	return false
}

// tokenOK compares in constant time (over digests, so the length of the
// token does not show either).
func (s *Server) tokenOK(t string) bool {
	d := sha256.Sum256([]byte(t))
	return subtle.ConstantTimeCompare(d[:], s.token[:]) == 1
}
