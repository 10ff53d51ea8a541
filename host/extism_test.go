package host_test

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/host/hosttest"
	"github.com/pirn-wasm/pirn/model"
)

const (
	wordfreq    = "examples/wasm/extism/wordfreq/wordfreq.wasm"
	plainPlugin = "testdata/wasm/extism/plain/plain.wasm"
)

func loadWith(t testing.TB, h *host.Host, p string, opts host.LoadOptions) *host.Module {
	t.Helper()
	m, err := h.LoadWith(t.Context(), p, readWasm(t, p), opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestExtismAware runs a plugin that describes itself with a JSON pirn
// manifest: typed knots, JSON documents, pirn responses.
func TestExtismAware(t *testing.T) {
	t.Parallel()
	var logs hosttest.Logs
	h := newHost(t, host.Config{Logger: logs.Logger(slog.LevelInfo)})
	m := loadWith(t, h, wordfreq, host.LoadOptions{ABI: host.ABIExtism})
	if m.Format() != host.FormatJSON {
		t.Errorf("format = %q, want json (the plugin's manifest is JSON)", m.Format())
	}
	if got := strings.Join(m.Manifest().KnotNames(), ","); got != "count_vowels,top_words" {
		t.Errorf("knots = %s", got)
	}
	spec, _ := m.Manifest().Knot("top_words")
	if spec.Output != "list[str]" || len(spec.Inputs) != 2 || spec.Inputs[1].Type != "int" {
		t.Errorf("top_words spec = %+v", spec)
	}
	ctx := t.Context()
	vowels := knot(t, m, "count_vowels", model.Limits{})
	if got := decode(t, vowels.Invoke(ctx, call(arg(t, "text", "Hello, World")))); got != int64(3) {
		t.Errorf("count_vowels = %v, want 3", got)
	}
	top := knot(t, m, "top_words", model.Limits{})
	got := decode(t, top.Invoke(ctx, call(arg(t, "text", "the cat and the hat and the bat"), arg(t, "n", "2"))))
	if !slices.Equal(got.([]any), []any{"the", "and"}) {
		t.Errorf("top_words = %v, want [the and]", got)
	}
	r := top.Invoke(ctx, call(arg(t, "text", "words"), arg(t, "n", 0)))
	if r.Outcome != abi.OutcomeErr || r.Error.Type != "ValueError" || r.Error.Message != "n must be at least 1" {
		t.Errorf("top_words n=0: %v %+v", r.Outcome, r.Error)
	}
	r = top.Invoke(ctx, call(arg(t, "text", "  42 "), arg(t, "n", 1)))
	if r.Outcome != abi.OutcomeSkip || r.Skip.Reason != "no words" {
		t.Errorf("top_words of no words: %v %+v", r.Outcome, r.Skip)
	}
	r = vowels.Invoke(ctx, call(arg(t, "text", 5)))
	if r.Outcome != abi.OutcomeErr || r.Error.Type != host.ErrType || !strings.Contains(r.Error.Message, `input "text"`) {
		t.Errorf("count_vowels(5): %v %+v", r.Outcome, r.Error)
	}
	if !strings.Contains(logs.String(), `"msg":"top_words: the and"`) || !strings.Contains(logs.String(), `"knot":"k"`) {
		t.Errorf("plugin log not forwarded with the knot id:\n%s", logs.String())
	}

	if _, err := h.LoadWith(ctx, wordfreq, readWasm(t, wordfreq), host.LoadOptions{ABI: host.ABIExtism, Format: host.FormatCBOR}); err == nil ||
		!strings.Contains(err.Error(), "the pipeline says format cbor, but the plugin's pirn_manifest is json") {
		t.Errorf("format mismatch: %v", err)
	}
}

// TestExtismPlain runs a plugin without a manifest: every function is a
// knot taking any inputs.
func TestExtismPlain(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	ctx := t.Context()
	js := loadWith(t, h, plainPlugin, host.LoadOptions{ABI: host.ABIExtism, Format: host.FormatJSON})
	want := "chatter,crash,flood,greet,grow,remember,size,spin"
	if got := strings.Join(js.Manifest().KnotNames(), ","); got != want {
		t.Errorf("knots = %s, want %s", got, want)
	}
	greet := knot(t, js, "greet", model.Limits{})
	if got := decode(t, greet.Invoke(ctx, call(arg(t, "name", "pirn")))); got != "Hello, pirn!" {
		t.Errorf("greet = %v", got)
	}
	r := greet.Invoke(ctx, call(arg(t, "nom", "pirn")))
	if r.Outcome != abi.OutcomeErr || r.Error.Type != host.ErrPlugin || r.Error.Message != "greet: no name given" {
		t.Errorf("greet without a name: %v %+v", r.Outcome, r.Error)
	}
	// Bytes travel as base64 text in JSON.
	r = greet.Invoke(ctx, call(arg(t, "name", []byte("hi"))))
	if got := decode(t, r); got != "Hello, base64:aGk=!" {
		t.Errorf("greet(bytes) = %v", got)
	}

	cb := loadWith(t, h, plainPlugin, host.LoadOptions{ABI: host.ABIExtism})
	if cb.Format() != host.FormatCBOR {
		t.Errorf("default format = %q, want cbor", cb.Format())
	}
	// {"a": 1} is a1 61 61 01: four bytes.
	if got := decode(t, knot(t, cb, "size", model.Limits{}).Invoke(ctx, call(arg(t, "a", 1)))); got != int64(4) {
		t.Errorf("size = %v, want 4", got)
	}

	for _, tc := range []struct {
		knot string
		lim  model.Limits
		typ  string
		msg  string
	}{
		{"spin", model.Limits{Timeout: 200 * time.Millisecond}, host.ErrTimeout, "exceeded its timeout of 200ms"},
		{"crash", model.Limits{}, host.ErrTrap, "unreachable"},
		{"chatter", model.Limits{}, host.ErrLimit, "MaxLog=1048576"},
		{"remember", model.Limits{}, host.ErrPlugin, "Vars are disabled by this host"},
		{"grow", model.Limits{Memory: 32 << 20}, host.ErrMemory, "memory limit reached"},
	} {
		t.Run(tc.knot, func(t *testing.T) {
			k := knot(t, js, tc.knot, tc.lim)
			start := time.Now()
			r := k.Invoke(ctx, call())
			if r.Outcome != abi.OutcomeErr || r.Error.Type != tc.typ || !strings.Contains(r.Error.Message, tc.msg) {
				t.Errorf("%s: %v %+v", tc.knot, r.Outcome, r.Error)
			}
			if tc.knot == "crash" && !strings.Contains(r.Error.Trace, "assignment to entry in nil map") {
				t.Errorf("crash: trace lacks the Go panic from stderr:\n%s", r.Error.Trace)
			}
			t.Logf("%s: %s: %s (%v)", tc.knot, r.Error.Type, r.Error.Message, time.Since(start))
			// The plugin's other knots carry on.
			if got := decode(t, greet.Invoke(ctx, call(arg(t, "name", "again")))); got != "Hello, again!" {
				t.Errorf("greet after %s = %v", tc.knot, got)
			}
		})
	}
}

// countWriter counts the bytes and lines written to it.
type countWriter struct {
	mu           sync.Mutex
	bytes, lines int
}

func (w *countWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.bytes += len(p)
	w.lines += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}

// TestLogFloodBounded floods the log with empty or one-byte records, by
// pirn.log, by lines of stdout, and by an Extism plugin's log: each
// invocation ends promptly with LimitExceeded naming MaxLogRecords, and
// what reaches the host's logger is bounded by the record limit, not by
// the timeout.
func TestLogFloodBounded(t *testing.T) {
	var w countWriter
	h := newHost(t, host.Config{Logger: slog.New(slog.NewTextHandler(&w, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	flood := load(t, h, "testdata/hostile/flood.wasm")
	plugin := loadWith(t, h, plainPlugin, host.LoadOptions{ABI: host.ABIExtism})
	lim := model.Limits{Timeout: 30 * time.Second, MaxLogRecords: 1000}
	for _, tc := range []struct {
		m    *host.Module
		knot string
	}{{flood, "empty"}, {flood, "byte"}, {flood, "newlines"}, {plugin, "flood"}} {
		before := w.lines
		start := time.Now()
		r := hosttest.Knot(t, tc.m, host.KnotConfig{Name: tc.knot, Limits: lim}).Invoke(t.Context(), call())
		d := time.Since(start)
		if r.Outcome != abi.OutcomeErr || r.Error.Type != host.ErrLimit || !strings.Contains(r.Error.Message, "MaxLogRecords=1000") {
			t.Errorf("%s: %v %+v, want LimitExceeded naming MaxLogRecords", tc.knot, r.Outcome, r.Error)
		}
		if d > 5*time.Second*slack {
			t.Errorf("%s: ended after %v", tc.knot, d)
		}
		if n := w.lines - before; n > 1000 {
			t.Errorf("%s: %d records reached the logger, over MaxLogRecords", tc.knot, n)
		}
	}
	t.Logf("%d records, %d bytes logged in all", w.lines, w.bytes)
	if w.bytes > 4*1000*300 {
		t.Errorf("%d bytes logged for 4 floods of at most 1000 records", w.bytes)
	}
}
