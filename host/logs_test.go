package host_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/host/hosttest"
	"github.com/pirn-wasm/pirn/model"
)

// TestKeptLogs: the lines a guest logs (by pirn.log, stdout and stderr)
// come back in its response, with their levels, whatever the outcome; an
// invocation that logs nothing has none.
func TestKeptLogs(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	m := load(t, h, outcomes)
	ctx := t.Context()

	r := knot(t, m, "fail", model.Limits{}).Invoke(ctx, call(arg(t, "x", 3)))
	if want := []abi.LogLine{{Level: abi.LogWarn, Msg: "about to fail on x=3"}}; r.Outcome != abi.OutcomeErr || !slices.Equal(r.Logs, want) {
		t.Errorf("fail: %v, logs %q, want %q", r.Outcome, r.Logs, want)
	}
	r = knot(t, m, "noisy", model.Limits{}).Invoke(ctx, call(arg(t, "x", 9)))
	if want := []abi.LogLine{{Level: abi.LogInfo, Msg: "noisy got x=9"}, {Level: abi.LogWarn, Msg: "noisy warns about x=9"}}; r.Outcome != abi.OutcomeOK || !slices.Equal(r.Logs, want) {
		t.Errorf("noisy: %v, logs %q, want %q", r.Outcome, r.Logs, want)
	}
	r = knot(t, m, "skip_odd", model.Limits{}).Invoke(ctx, call(arg(t, "x", 4)))
	if r.Outcome != abi.OutcomeOK || r.Logs != nil {
		t.Errorf("skip_odd(4): %v, logs %q, want none", r.Outcome, r.Logs)
	}
}

// TestKeptLogsBounded: a flood keeps at most abi.MaxLogLines lines and a
// last line counting the rest, whether by pirn.log, by stdout or by an
// Extism plugin's log; long lines are clipped to abi.MaxLogLineBytes.
func TestKeptLogsBounded(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	flood := load(t, h, "testdata/hostile/flood.wasm")
	plugin := loadWith(t, h, plainPlugin, host.LoadOptions{ABI: host.ABIExtism})
	lim := model.Limits{Timeout: 30 * time.Second, MaxLogRecords: 1000}
	for _, tc := range []struct {
		m    *host.Module
		knot string
	}{{flood, "byte"}, {flood, "newlines"}, {plugin, "flood"}} {
		r := hosttest.Knot(t, tc.m, host.KnotConfig{Name: tc.knot, Limits: lim}).Invoke(t.Context(), call())
		if r.Outcome != abi.OutcomeErr || r.Error.Type != host.ErrLimit {
			t.Errorf("%s: %v %+v, want LimitExceeded", tc.knot, r.Outcome, r.Error)
		}
		if len(r.Logs) != abi.MaxLogLines+1 {
			t.Errorf("%s: %d lines kept, want %d and a count of the rest", tc.knot, len(r.Logs), abi.MaxLogLines+1)
			continue
		}
		if last, want := r.Logs[abi.MaxLogLines], fmt.Sprintf("[%d more log lines dropped", 1000-abi.MaxLogLines); last.Level != abi.LogWarn || !strings.HasPrefix(last.Msg, want) {
			t.Errorf("%s: last line %+v, want a warning starting %q", tc.knot, last, want)
		}
	}

	// misbehave's flood logs lines of 64 KiB until MaxLog ends it.
	m := load(t, h, misbehave)
	r := knot(t, m, "flood", model.Limits{}).Invoke(t.Context(), call())
	if r.Outcome != abi.OutcomeErr || len(r.Logs) == 0 {
		t.Fatalf("flood: %v, %d lines kept", r.Outcome, len(r.Logs))
	}
	size := 0
	for _, l := range r.Logs {
		if len(l.Msg) > abi.MaxLogLineBytes || !strings.HasSuffix(l.Msg, " bytes clipped]") {
			t.Errorf("flood: a line of %d bytes ends %q, want at most %d ending with a note of the clipping", len(l.Msg), l.Msg[max(len(l.Msg)-30, 0):], abi.MaxLogLineBytes)
		}
		size += len(l.Msg)
	}
	if size > abi.MaxLogBytes {
		t.Errorf("flood: %d bytes kept, over %d", size, abi.MaxLogBytes)
	}
}
