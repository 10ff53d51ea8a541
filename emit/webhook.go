package emit

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// Bounds of the webhook emitter.
const (
	// MaxResponseBody is how much of a receiver's answer is read (and
	// discarded) so that the connection can be reused.
	MaxResponseBody = 64 << 10
	// errorBodyBytes is how much of a non-2xx answer goes into the error.
	errorBodyBytes = 200
)

// WebhookConfig configures a Webhook emitter.
type WebhookConfig struct {
	// URL receives each event as a JSON POST; http or https.
	URL string
	// Secret, if set, signs each delivery (Sign; the TimestampHeader and
	// SignatureHeader headers), as the webhook trigger checks.
	Secret []byte
	// CAFile, if set, is a PEM file of certificates trusted besides the
	// system's. Certificates are always verified.
	CAFile string
	// Timeout bounds each delivery besides the Hub's (0 means 10s).
	Timeout time.Duration
	// Client, if set, is used instead of one built from CAFile (tests).
	Client *http.Client
}

// Webhook is the "webhook" emitter: it POSTs each event's JSON to a URL.
// An answer other than 2xx is a failure; redirects are not followed.
type Webhook struct {
	cfg    WebhookConfig
	client *http.Client
}

var _ Emitter = (*Webhook)(nil)

// NewWebhook checks cfg and returns a Webhook emitter.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("webhook: url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("webhook: url %q: want http:// or https:// and a host", cfg.URL)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("webhook: timeout %v, want >= 0", cfg.Timeout)
	}
	cfg.Timeout = cmp.Or(cfg.Timeout, 10*time.Second)
	client := cfg.Client
	if client == nil {
		client, err = httpClient(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("webhook: %w", err)
		}
	}
	return &Webhook{cfg: cfg, client: client}, nil
}

// httpClient returns a client that verifies certificates (also against
// caFile's, if set) and does not follow redirects.
func httpClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}, nil
}

// webhookFromSpec builds a webhook emitter from a serve.yaml entry
// (type webhook).
func webhookFromSpec(s Spec) (Emitter, error) {
	var f struct {
		URL       string   `json:"url"`
		SecretEnv string   `json:"secret_env"`
		CAFile    string   `json:"ca_file"`
		Timeout   Duration `json:"timeout"`
	}
	if err := s.Decode(&f); err != nil {
		return nil, err
	}
	cfg := WebhookConfig{URL: f.URL, CAFile: f.CAFile, Timeout: time.Duration(f.Timeout)}
	if f.CAFile != "" && !filepath.IsAbs(f.CAFile) && s.Dir != "" {
		cfg.CAFile = filepath.Join(s.Dir, f.CAFile)
	}
	if f.SecretEnv != "" {
		v, ok := os.LookupEnv(f.SecretEnv)
		if !ok || v == "" {
			return nil, fmt.Errorf("webhook: secret_env: the environment variable %s is not set", f.SecretEnv)
		}
		cfg.Secret = []byte(v)
	}
	return NewWebhook(cfg)
}

// Name returns "webhook".
func (w *Webhook) Name() string { return "webhook" }

// Close closes idle connections.
func (w *Webhook) Close(context.Context) error {
	w.client.CloseIdleConnections()
	return nil
}

// Emit POSTs ev.
func (w *Webhook) Emit(ctx context.Context, ev *Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("webhook: encode: %w", err)
	}
	headers := http.Header{"X-Pirn-Event": {string(ev.Kind)}}
	if len(w.cfg.Secret) > 0 {
		now := time.Now()
		headers.Set(TimestampHeader, fmt.Sprint(now.Unix()))
		headers.Set(SignatureHeader, Sign(w.cfg.Secret, now, body))
	}
	return Post(ctx, w.client, w.cfg.URL, body, headers, w.cfg.Timeout)
}

// Post sends body as JSON to url with the headers, within timeout; an
// answer other than 2xx is an error quoting the first bytes of its body.
// At most MaxResponseBody bytes of the answer are read. The OpenLineage
// emitter sends through it too.
func Post(ctx context.Context, c *http.Client, url string, body []byte, headers http.Header, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range headers {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "pirn")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	head := make([]byte, errorBodyBytes)
	n, rerr := io.ReadFull(resp.Body, head)
	if rerr == nil {
		_, rerr = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseBody-errorBodyBytes))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &StatusError{Code: resp.StatusCode, Body: string(head[:n])}
	}
	if rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
		return fmt.Errorf("read the answer: %w", rerr)
	}
	return nil
}

// StatusError is a receiver's answer other than 2xx.
type StatusError struct {
	Code int
	Body string // its first bytes, as sent (quoted by Error)
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("the receiver answered %d %q", e.Code, e.Body)
}
