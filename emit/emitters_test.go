package emit_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/emit"
)

// TestLogEscapes: a knot's error text with a newline and format verbs
// stays one record, as attribute values.
func TestLogEscapes(t *testing.T) {
	var buf bytes.Buffer
	l := emit.NewLog(emit.LogConfig{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	ev := &emit.Event{Kind: emit.KnotStatus, RunID: "r", Seq: 3, Knot: "k", State: "err",
		Record: &emit.Record{Knot: "k", Kind: "knot", Outcome: "err"},
		Error:  &emit.Error{Type: "Boom", Message: "line 1\ntime=now level=ERROR msg=forged %s %!"}}
	if err := l.Emit(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, `level=WARN msg="knot failed"`) || !strings.Contains(out, `error.message="line 1\ntime=now`) {
		t.Errorf("log output %q", out)
	}
}

// TestWebhookHostileReceiver: a receiver that answers with an endless
// body is read no further than the bound; non-2xx and redirects are
// failures quoting a bounded prefix of the answer.
func TestWebhookHostileReceiver(t *testing.T) {
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/endless":
			for { // until the client hangs up
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		case "/teapot":
			w.WriteHeader(http.StatusTeapot)
			w.Write(append([]byte("\x1b[31mred\n"), chunk...))
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}
	}))
	defer srv.Close()
	ev := &emit.Event{Kind: emit.RunStarted, RunID: "r", Seq: 1}
	for _, tc := range []struct {
		path string
		code int // 0: no error
	}{{"/endless", 0}, {"/teapot", http.StatusTeapot}, {"/moved", http.StatusFound}} {
		w, err := emit.NewWebhook(emit.WebhookConfig{URL: srv.URL + tc.path, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		err = w.Emit(t.Context(), ev)
		se, ok := errors.AsType[*emit.StatusError](err)
		switch {
		case tc.code == 0 && err != nil:
			t.Errorf("%s: %v", tc.path, err)
		case tc.code != 0 && (!ok || se.Code != tc.code || len(se.Body) > 200):
			t.Errorf("%s: %v, want a StatusError %d with at most 200 bytes", tc.path, err, tc.code)
		case tc.code == http.StatusTeapot && strings.Contains(err.Error(), "\x1b"):
			t.Errorf("%s: the error %q carries the receiver's escape bytes", tc.path, err)
		}
		w.Close(t.Context())
	}
}

func TestWebhookConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fields map[string]any
		inErr  string
	}{
		{"no url", map[string]any{}, "url"},
		{"ftp", map[string]any{"url": "ftp://example.com/x"}, "http"},
		{"inline secret", map[string]any{"url": "https://example.com", "secret": "s"}, "secret"},
		{"unset secret variable", map[string]any{"url": "https://example.com", "secret_env": "PIRN_TEST_NO_SUCH_VAR"}, "PIRN_TEST_NO_SUCH_VAR"},
		{"missing CA file", map[string]any{"url": "https://example.com", "ca_file": "no-such.pem"}, "no-such.pem"},
	} {
		_, err := emit.Emitters.New(emit.Spec{Type: "webhook", Fields: tc.fields, Dir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), tc.inErr) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.inErr)
		}
	}
}
