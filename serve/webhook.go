package serve

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/pirn-wasm/pirn/emit"
)

// Defaults and bounds of the webhook trigger.
const (
	DefaultMaxBody      = 1 << 20 // bytes of a request body
	DefaultReplayWindow = 5 * time.Minute
	DefaultRate         = 20    // requests per second per client
	DefaultBurst        = 40    // requests a client may send at once
	DefaultClients      = 10000 // clients whose rate is tracked (least recently seen forgotten)
	// MaxIdempotencyKey bounds the Idempotency-Key header.
	MaxIdempotencyKey = 256
	// MaxTraceState bounds the tracestate header passed on (W3C: 512).
	MaxTraceState = 512
	// maxErrorText bounds the error text of a response.
	maxErrorText = 1024
)

// Headers the webhook reads besides emit's signature headers.
const (
	IdempotencyKeyHeader = "Idempotency-Key"
	TraceParentHeader    = "Traceparent"
	TraceStateHeader     = "Tracestate"
)

// webhookConfig is a webhook trigger's entry.
type webhookConfig struct {
	Pipeline string      `json:"pipeline"`
	Path     string      `json:"path"`
	Auth     webhookAuth `json:"auth"`
	// MaxBody bounds a request body in bytes (default 1 MiB).
	MaxBody int64 `json:"max_body"`
	// Rate limits each client (by IP address).
	Rate rateConfig `json:"rate"`
	// QueueWait is how long a request waits for room in the pipeline's
	// queue before 503 (default 0: not at all).
	QueueWait emit.Duration `json:"queue_wait"`
	Mapping   *Mapping      `json:"mapping"`
}

type rateConfig struct {
	PerSecond float64 `json:"per_second"`
	Burst     int     `json:"burst"`
	Clients   int     `json:"clients"`
}

// webhookAuth is auth: none, or {hmac_secret_env: VAR} or
// {bearer_token_env: VAR}.
type webhookAuth struct {
	set, none      bool
	HMACSecretEnv  string        `json:"hmac_secret_env"`
	BearerTokenEnv string        `json:"bearer_token_env"`
	ReplayWindow   emit.Duration `json:"replay_window"`
}

func (a *webhookAuth) UnmarshalJSON(b []byte) error {
	a.set = true
	var s string
	if json.Unmarshal(b, &s) == nil {
		if s != "none" {
			return fmt.Errorf("auth: %q: want none, or {hmac_secret_env: VAR} or {bearer_token_env: VAR}", s)
		}
		a.none = true
		return nil
	}
	type plain webhookAuth
	var p plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	a.HMACSecretEnv, a.BearerTokenEnv, a.ReplayWindow = p.HMACSecretEnv, p.BearerTokenEnv, p.ReplayWindow
	return nil
}

// Webhook is the webhook trigger: POST requests to its path, each a JSON
// body turned into a run. See docs/serving.md for its responses.
type Webhook struct {
	cfg     webhookConfig
	secret  []byte // HMAC secret, or nil
	token   []byte // bearer token, or nil
	limit   *limiter
	lg      *slog.Logger
	now     func() time.Time
	mapping *Mapping

	mu  sync.Mutex
	sub Submitter // while Run runs
}

var (
	_ Trigger = (*Webhook)(nil)
	_ Route   = (*Webhook)(nil)
)

// NewWebhook builds a webhook trigger from its serve.yaml entry. The
// secret or token is read from its environment variable now: an unset
// or empty one is an error.
func NewWebhook(spec emit.Spec) (Trigger, error) {
	var c webhookConfig
	if err := spec.Decode(&c); err != nil {
		return nil, err
	}
	c.Path = webhookPath(c.Path)
	if strings.ContainsAny(c.Path, " {}\t\n") || strings.Contains(c.Path, "//") {
		return nil, fmt.Errorf("webhook: path %q: want a plain URL path such as /hooks/name", c.Path)
	}
	w := &Webhook{cfg: c, lg: spec.Logger, now: time.Now, mapping: c.Mapping}
	if w.lg == nil {
		w.lg = slog.New(slog.DiscardHandler)
	}
	if err := w.auth(); err != nil {
		return nil, fmt.Errorf("webhook %s: %w", c.Path, err)
	}
	switch {
	case c.MaxBody < 0:
		return nil, fmt.Errorf("webhook %s: max_body is %d, want > 0", c.Path, c.MaxBody)
	case c.MaxBody == 0:
		w.cfg.MaxBody = DefaultMaxBody
	}
	r := c.Rate
	if r.PerSecond < 0 || r.Burst < 0 || r.Clients < 0 || math.IsInf(r.PerSecond, 0) || math.IsNaN(r.PerSecond) {
		return nil, fmt.Errorf("webhook %s: rate: per_second, burst and clients must be positive", c.Path)
	}
	w.limit = newLimiter(orF(r.PerSecond, DefaultRate), orI(r.Burst, DefaultBurst), orI(r.Clients, DefaultClients))
	if c.QueueWait < 0 {
		return nil, fmt.Errorf("webhook %s: queue_wait must be >= 0", c.Path)
	}
	if w.mapping == nil {
		w.mapping = &Mapping{}
	}
	if err := w.mapping.Compile("webhook " + c.Path); err != nil {
		return nil, err
	}
	return w, nil
}

func orF(v, d float64) float64 {
	if v == 0 {
		return d
	}
	return v
}

func orI(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

// webhookPath is the path a webhook entry's path field serves (default
// /hooks/run).
func webhookPath(p string) string {
	switch {
	case p == "":
		return "/hooks/run"
	case !strings.HasPrefix(p, "/"):
		return "/" + p
	}
	return p
}

// auth checks the auth entry and reads the secret.
func (w *Webhook) auth() error {
	a := w.cfg.Auth
	switch {
	case !a.set:
		return errors.New("authentication is required: set auth: {hmac_secret_env: VAR} or {bearer_token_env: VAR}, or auth: none to accept anyone")
	case a.none:
		return nil
	case (a.HMACSecretEnv == "") == (a.BearerTokenEnv == ""):
		return errors.New("auth: want exactly one of hmac_secret_env and bearer_token_env")
	case a.ReplayWindow < 0:
		return errors.New("auth: replay_window must be > 0")
	case a.BearerTokenEnv != "" && a.ReplayWindow != 0:
		return errors.New("auth: replay_window applies to hmac_secret_env")
	}
	env := a.HMACSecretEnv + a.BearerTokenEnv
	v := os.Getenv(env)
	if v == "" {
		return fmt.Errorf("auth: the environment variable %s is not set (or empty)", env)
	}
	if a.HMACSecretEnv != "" {
		w.secret = []byte(v)
		if a.ReplayWindow == 0 {
			w.cfg.Auth.ReplayWindow = emit.Duration(DefaultReplayWindow)
		}
	} else {
		w.token = []byte(v)
	}
	return nil
}

// Name is "webhook PATH".
func (w *Webhook) Name() string { return "webhook " + w.cfg.Path }

// Path is the URL path the webhook serves.
func (w *Webhook) Path() string { return w.cfg.Path }

// Run accepts requests until ctx ends; before and after, the webhook
// answers 503.
func (w *Webhook) Run(ctx context.Context, s Submitter) error {
	if w.cfg.Auth.none {
		w.lg.Warn("webhook accepts unauthenticated requests (auth: none)", "path", w.cfg.Path)
	}
	w.arm(s)
	<-ctx.Done()
	w.mu.Lock()
	w.sub = nil
	w.mu.Unlock()
	return nil
}

// arm makes the webhook accept requests for s.
func (w *Webhook) arm(s Submitter) {
	w.mu.Lock()
	w.sub = s
	w.mu.Unlock()
}

// httpError is a response other than 202.
type httpError struct {
	code int
	msg  string
}

func (w *Webhook) fail(rw http.ResponseWriter, r *http.Request, e httpError) {
	msg := e.msg
	if len(msg) > maxErrorText {
		msg = msg[:maxErrorText] + "…"
	}
	switch e.code {
	case http.StatusMethodNotAllowed:
		rw.Header().Set("Allow", http.MethodPost)
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		rw.Header().Set("Retry-After", "1")
	case http.StatusUnauthorized:
		if w.token != nil {
			rw.Header().Set("WWW-Authenticate", "Bearer")
		}
	}
	// Refused requests are logged at debug level only: their volume is
	// the sender's to choose.
	w.lg.Debug("webhook request refused", "path", w.cfg.Path, "client", r.RemoteAddr, "status", e.code, "error", msg)
	writeJSON(rw, e.code, map[string]string{"error": msg})
}

// ServeHTTP answers one delivery.
func (w *Webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	sub := w.sub
	w.mu.Unlock()
	if sub == nil {
		w.fail(rw, r, httpError{http.StatusServiceUnavailable, "the webhook is not accepting requests (starting or stopping)"})
		return
	}
	if r.Method != http.MethodPost {
		w.fail(rw, r, httpError{http.StatusMethodNotAllowed, "method " + r.Method + " not allowed: POST a JSON object"})
		return
	}
	if !w.limit.allow(clientIP(r), w.now()) {
		w.fail(rw, r, httpError{http.StatusTooManyRequests, "rate limit exceeded"})
		return
	}
	if w.token != nil && !w.bearerOK(r) {
		w.fail(rw, r, httpError{http.StatusUnauthorized, "unauthorized: want Authorization: Bearer <token>"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, w.cfg.MaxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			w.fail(rw, r, httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", w.cfg.MaxBody)})
		} else {
			w.fail(rw, r, httpError{http.StatusBadRequest, "read body: " + err.Error()})
		}
		return
	}
	if w.secret != nil {
		err := emit.Verify(w.secret, r.Header.Get(emit.TimestampHeader), r.Header.Get(emit.SignatureHeader), body, w.now(), time.Duration(w.cfg.Auth.ReplayWindow))
		if err != nil {
			w.fail(rw, r, httpError{http.StatusUnauthorized, "unauthorized: " + err.Error()})
			return
		}
	}
	req, herr := w.request(r, body)
	if herr != nil {
		w.fail(rw, r, *herr)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(w.cfg.QueueWait))
	defer cancel()
	run, err := sub.Submit(ctx, req)
	switch {
	case errors.Is(err, ErrBadRequest):
		w.fail(rw, r, httpError{http.StatusBadRequest, strings.TrimPrefix(err.Error(), ErrBadRequest.Error()+": ")})
	case errors.Is(err, ErrBusy):
		w.fail(rw, r, httpError{http.StatusServiceUnavailable, "the pipeline's queue is full: retry later"})
	case errors.Is(err, ErrStopping):
		w.fail(rw, r, httpError{http.StatusServiceUnavailable, "the server is stopping"})
	case err != nil:
		w.lg.Error("webhook: submit", "path", w.cfg.Path, "error", err)
		w.fail(rw, r, httpError{http.StatusInternalServerError, "the run could not be started"})
	default:
		writeJSON(rw, http.StatusAccepted, map[string]string{"run_id": run.ID})
	}
}

// bearerOK compares the Authorization header's token in constant time.
func (w *Webhook) bearerOK(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	// Hash both sides so the comparison takes the same time whatever
	// the lengths.
	a, b := sha256.Sum256([]byte(tok)), sha256.Sum256(w.token)
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// request builds the run request of a delivery.
func (w *Webhook) request(r *http.Request, body []byte) (Request, *httpError) {
	event, err := decodeBody(body)
	if err != nil {
		return Request{}, &httpError{http.StatusBadRequest, "body: " + err.Error()}
	}
	labels := map[string]string{"trigger": "webhook", "path": w.cfg.Path}
	if tp, ok := traceParent(r.Header.Get(TraceParentHeader)); ok {
		labels["traceparent"] = tp
		if ts := r.Header.Get(TraceStateHeader); validTraceState(ts) && ts != "" {
			labels["tracestate"] = ts
		}
	}
	req := Request{Pipeline: w.cfg.Pipeline, Labels: labels}
	if key := r.Header.Get(IdempotencyKeyHeader); key != "" {
		if len(key) > MaxIdempotencyKey || !printable(key) {
			return Request{}, &httpError{http.StatusBadRequest, fmt.Sprintf("%s: want at most %d printable ASCII characters", IdempotencyKeyHeader, MaxIdempotencyKey)}
		}
		req.RunID = IdempotentRunID(w.cfg.Pipeline, key)
		labels["idempotency_key"] = key
	}
	params, err := w.mapping.Apply(event, labels)
	if err != nil {
		return Request{}, &httpError{http.StatusBadRequest, strings.TrimPrefix(err.Error(), ErrBadRequest.Error()+": ")}
	}
	req.Params = params
	return req, nil
}

// IdempotentRunID is the run id of a webhook delivery to pipeline with
// an Idempotency-Key: a retried delivery names the same run.
func IdempotentRunID(pipeline, key string) string {
	h := sha256.Sum256([]byte(pipeline + "\x00" + key))
	return "hook-" + hex.EncodeToString(h[:16])
}

// decodeBody decodes a JSON body (empty: an empty object); integers
// become int64, other numbers float64.
func decodeBody(body []byte) (any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not JSON: data after the first value")
	}
	return numbers(v), nil
}

// clientIP is the request's peer address (a proxy's X-Forwarded-For is
// not trusted).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

var traceParentRE = regexp.MustCompile(`^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$`)

// traceParent validates a W3C traceparent header (version 00's format;
// a later version's first four fields), returning it unchanged.
func traceParent(h string) (string, bool) {
	if len(h) < 55 {
		return "", false
	}
	m := traceParentRE.FindStringSubmatch(h[:55])
	if m == nil || m[1] == "ff" || (m[1] == "00" && len(h) != 55) || (len(h) > 55 && h[55] != '-') ||
		m[2] == strings.Repeat("0", 32) || m[3] == strings.Repeat("0", 16) {
		return "", false
	}
	if len(h) > 55 && !printable(h) || len(h) > 512 {
		return "", false
	}
	return h, true
}

// validTraceState accepts a tracestate header of at most MaxTraceState
// printable characters in at most 32 members.
func validTraceState(h string) bool {
	return len(h) <= MaxTraceState && printable(h) && strings.Count(h, ",") < 32
}

// printable reports whether s is printable ASCII.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
