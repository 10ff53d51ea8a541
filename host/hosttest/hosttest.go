// Package hosttest holds what tests that run modules on a host share:
// loading a module file on a fresh host, getting a knot, and collecting the
// host's log records.
package hosttest

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"

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
	k, err := m.Knot(t.Context(), cfg)
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
