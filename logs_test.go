package pirn_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

// logsPipeline: noisy prints a line to stdout and one to stderr, bad logs
// a warning and fails (optional), flood floods pirn.log with one-byte
// lines until MaxLogRecords ends it (optional), d logs nothing.
func logsPipeline(t *testing.T) string {
	t.Helper()
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	src := `name: logs
instance: reset
modules:
  arith: ` + abs("examples/wasm/go/arith/arith.wasm") + `
  outcomes: ` + abs("examples/wasm/go/outcomes/outcomes.wasm") + `
  flood: ` + abs("testdata/hostile/flood.wasm") + `
nodes:
  - {id: x, type: parameter, type_: int, default: 5}
  - {id: d, type: knot, module: arith, knot: double, parents: {x: x}}
  - {id: noisy, type: knot, module: outcomes, knot: noisy, parents: {x: x}}
  - {id: bad, type: knot, module: outcomes, knot: fail, optional: true, parents: {x: x}}
  - {id: flood, type: source, module: flood, knot: byte, optional: true, limits: {max_log_records: 1000}}
`
	path := filepath.Join(t.TempDir(), "logs.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// storedLogs reads a record's log lines back from the data store.
func storedLogs(t *testing.T, s cas.Store, d cas.Digest) []map[string]any {
	t.Helper()
	b, err := s.Get(t.Context(), d)
	if err != nil {
		t.Fatalf("logs %s: %v", d, err)
	}
	v, err := cas.Decode(b)
	if err != nil {
		t.Fatalf("logs %s: %v", d, err)
	}
	l, _ := v.([]any)
	out := make([]map[string]any, len(l))
	for i, e := range l {
		out[i], _ = e.(map[string]any)
	}
	return out
}

// TestRecordedLogs runs Wasm knots that log: each record names its lines
// in the data store (ok or err alike), a flood keeps a bounded number,
// a knot that logs nothing has none, and a reused record has none of its
// own.
func TestRecordedLogs(t *testing.T) {
	t.Parallel()
	store, hist := cas.NewMemory(), lineage.NewMemory()
	e := open(t, pirn.Config{Store: store, History: hist, AllowUnpinned: true})
	path := logsPipeline(t)
	res := runMemo(t, e, path, pirn.RunRequest{})
	recs := map[string]lineage.Record{}
	for _, r := range res.Records {
		recs[r.KnotID] = r
	}
	if !recs["d"].Logs.IsZero() || !recs["x"].Logs.IsZero() {
		t.Errorf("d and x log nothing, but their records name logs %v, %v", recs["d"].Logs, recs["x"].Logs)
	}
	for id, want := range map[string][]map[string]any{
		"noisy": {{"level": "info", "msg": "noisy got x=5"}, {"level": "warn", "msg": "noisy warns about x=5"}},
		"bad":   {{"level": "warn", "msg": "about to fail on x=5"}},
	} {
		r := recs[id]
		if r.Logs.IsZero() {
			t.Errorf("%s (%s): no logs recorded", id, r.Outcome)
			continue
		}
		got := storedLogs(t, store, r.Logs)
		if len(got) != len(want) {
			t.Errorf("%s: logs %v, want %v", id, got, want)
			continue
		}
		for i := range want {
			if got[i]["level"] != want[i]["level"] || got[i]["msg"] != want[i]["msg"] || len(got[i]) != 2 {
				t.Errorf("%s: line %d = %v, want %v", id, i, got[i], want[i])
			}
		}
	}
	fl := recs["flood"]
	if fl.Outcome != lineage.Err || fl.Logs.IsZero() {
		t.Fatalf("flood: %s, logs %v", fl.Outcome, fl.Logs)
	}
	lines := storedLogs(t, store, fl.Logs)
	if len(lines) != abi.MaxLogLines+1 {
		t.Errorf("flood: %d lines kept, want %d", len(lines), abi.MaxLogLines+1)
	} else if msg, _ := lines[abi.MaxLogLines]["msg"].(string); !strings.HasPrefix(msg, "[900 more log lines dropped") {
		t.Errorf("flood: last line %q, want a count of the dropped", msg)
	}

	// The second run reuses noisy's result: it did not execute, so it
	// logged nothing of its own.
	again := runMemo(t, e, path, pirn.RunRequest{})
	for _, r := range again.Records {
		if r.KnotID == "noisy" && (!r.Reused() || !r.Logs.IsZero()) {
			t.Errorf("second run: noisy reused from %q with logs %v; want reused, no logs", r.ReusedFrom, r.Logs)
		}
	}
	// gc keeps the logs of a kept run.
	if _, err := lineage.Scrub(t.Context(), hist, store, lineage.ScrubOptions{KeepRuns: 2}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := store.Has(t.Context(), recs["noisy"].Logs); !ok {
		t.Error("scrub keeping every run removed noisy's logs")
	}
	st, err := lineage.Scrub(t.Context(), hist, store, lineage.ScrubOptions{KeepRuns: 0, Now: res.StartedAt.Add(1 << 40)})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := store.Has(t.Context(), recs["noisy"].Logs); ok {
		t.Errorf("scrub expiring every run kept noisy's logs (removed %v)", st.Removed)
	}
}
