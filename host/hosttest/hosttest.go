// Package hosttest holds what tests that run modules on a host share:
// loading a module file on a fresh host, getting a knot, and collecting the
// host's log records, encoding a call's inputs and decoding its value.
package hosttest

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/host"
)

// Load reads the module at path and loads it, named path, on a new host
// with cfg that is closed when the test ends.
func Load(t testing.TB, cfg host.Config, path string) *host.Module {
	t.Helper()
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := host.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	m, err := h.Load(t.Context(), path, wasm)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Knot returns m's knot for cfg, failing the test if it has none.
func Knot(t testing.TB, m *host.Module, cfg host.KnotConfig) *host.Knot {
	t.Helper()
	k, err := m.Knot(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Logs collects log records as JSON lines. The host's goroutines may write
// to it while the test reads it.
type Logs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns the records written so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Logger returns a logger that writes records of level and above to l.
func (l *Logs) Logger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: level}))
}

// Args encodes name, value pairs as a call's inputs, in canonical order.
func Args(t testing.TB, kv ...any) []abi.Arg {
	t.Helper()
	if len(kv)%2 != 0 {
		t.Fatalf("hosttest.Args: %d arguments, want name, value pairs", len(kv))
	}
	out := make([]abi.Arg, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		b, err := cas.Encode(kv[i+1])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, abi.Arg{Name: kv[i].(string), Value: b})
	}
	abi.SortArgs(out)
	return out
}

// Call is a call of run "run-test", knot "k", with the name, value pairs
// as its inputs.
func Call(t testing.TB, kv ...any) *host.Call {
	t.Helper()
	return &host.Call{RunID: "run-test", KnotID: "k", Inputs: Args(t, kv...)}
}

// Invoke invokes k once with the name, value pairs as its inputs.
func Invoke(t testing.TB, k *host.Knot, kv ...any) abi.Response {
	t.Helper()
	return k.Invoke(t.Context(), Call(t, kv...))
}

// Value returns r's value, decoded, failing the test unless r is ok.
func Value(t testing.TB, r abi.Response) any {
	t.Helper()
	if r.Outcome != abi.OutcomeOK {
		t.Fatalf("outcome %v, error %+v, skip %+v; want ok", r.Outcome, r.Error, r.Skip)
	}
	v, err := cas.Decode(r.Value)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
