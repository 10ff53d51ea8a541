package host_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/model"
)

const misbehave = "testdata/hostile/misbehave.wasm"

// TestMisbehavingKnotsAreContained invokes each misbehaving knot and checks
// that it errs with the right record, that the instance it broke is
// replaced, and that the healthy knot of the same module still works.
func TestMisbehavingKnotsAreContained(t *testing.T) {
	h := newHost(t, host.Config{Logger: slog.New(slog.DiscardHandler)})
	m := load(t, h, misbehave)
	lim := model.Limits{Timeout: 200 * time.Millisecond, Memory: 16 << 20, MaxOutput: 1 << 20, MaxLog: 256 << 10, MaxInstances: 1}
	ctx := t.Context()
	for _, tc := range []struct {
		knot    string
		typ     string
		message string
	}{
		{"trap", host.ErrTrap, "unreachable"},
		{"loop", host.ErrTimeout, "exceeded its timeout of 200ms"}, // the only knot that should reach the timeout
		{"grow", host.ErrMemory, "of the limit Memory=16777216"},
		{"badcbor", host.ErrABI, "malformed message: response"},
		{"ptr", host.ErrABI, "output(ptr=2147483632, len=64) lies outside memory"},
		{"silent", host.ErrABI, "pirn_invoke returned without calling pirn.output"},
		{"flood", host.ErrLimit, "MaxLog=262144"},
		{"deep", host.ErrTrap, "stack overflow"},
		{"huge", host.ErrABI, "output(ptr=0, len=3221225472) lies outside memory"},
		{"massive", host.ErrLimit, "output of 10485760 bytes exceeds the limit MaxOutput=1048576"},
		{"retcode", host.ErrABI, "pirn_invoke returned 7"},
	} {
		t.Run(tc.knot, func(t *testing.T) {
			l := lim
			if tc.typ != host.ErrTimeout {
				// "grow" grows to the limit, then loops until the
				// timeout, which reports the full memory. Under the
				// race detector growing takes longer than the loop's
				// 200ms: give the other cases more time there.
				l.Timeout = time.Second * slack
			}
			start := time.Now()
			r := knot(t, m, tc.knot, l).Invoke(ctx, call())
			if r.Outcome != abi.OutcomeErr {
				t.Fatalf("outcome = %v, want err", r.Outcome)
			}
			if r.Error.Type != tc.typ || !strings.Contains(r.Error.Message, tc.message) {
				t.Errorf("error = %s: %q, want %s containing %q", r.Error.Type, r.Error.Message, tc.typ, tc.message)
			}
			if d := time.Since(start); d > 5*time.Second*slack {
				t.Errorf("containing %s took %s", tc.knot, d)
			}
			// The pool heals: the healthy knot of the same module works.
			if got := decode(t, knot(t, m, "one", l).Invoke(ctx, call())); got != int64(1) {
				t.Errorf("one after %s = %v, want 1", tc.knot, got)
			}
		})
	}
}

func TestEcho(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	m := load(t, h, misbehave)
	k := knot(t, m, "echo", model.Limits{})
	for _, v := range []any{int64(5), "hello", []any{int64(1), map[string]any{"a": 2.5}}} {
		got := decode(t, k.Invoke(t.Context(), call(arg(t, "x", v))))
		want, _ := cas.Encode(v)
		gotb, _ := cas.Encode(got)
		if string(want) != string(gotb) {
			t.Errorf("echo(%v) = %v", v, got)
		}
	}
}

func TestTimeoutIsPerInvocation(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	m := load(t, h, misbehave)
	loop := knot(t, m, "loop", model.Limits{Timeout: 50 * time.Millisecond})
	ctx, cancel := t.Context(), func() {}
	defer cancel()
	r := loop.Invoke(ctx, call())
	if r.Outcome != abi.OutcomeErr || r.Error.Type != host.ErrTimeout {
		t.Fatalf("loop: %v %+v", r.Outcome, r.Error)
	}
}
