package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vbauerster/mpb/v8/decor"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/scheduler"
)

// syncBuffer is a bytes.Buffer safe for mpb's goroutine and the test's.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestProgressRenders drives the progress display with a real run's
// events, on a writer taken for a terminal.
func TestProgressRenders(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	eng, err := pirn.Open(ctx, pirn.Config{AllowUnpinned: true, CacheDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	p, err := eng.LoadPipeline(ctx, progressPipeline(t))
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	nodes := shedSize(p.Tapestry.Scheduler(), nil)
	pr := newProgress(&out, true, nodes)
	res, err := eng.Run(ctx, p.Tapestry, pirn.RunRequest{Observer: pr})
	pr.Stop()
	if err != nil || res.Status != lineage.Succeeded {
		t.Fatalf("run: %v %v", res.Status, err)
	}
	// 6 nodes and 3 Maps of 4 elements.
	if got := out.String(); nodes != 6 || !strings.Contains(got, "18/18 knots") || !strings.Contains(got, "[") {
		t.Errorf("nodes %d; the display ends:\n%q", nodes, got[max(0, len(got)-300):])
	}
	if pr.failed.Load() != 0 || len(pr.running) != 0 {
		t.Errorf("after the run: %d failed, running %v", pr.failed.Load(), pr.running)
	}
}

// progressPipeline writes a pipeline of 6 nodes, three of them Maps of 4
// elements, whose only module is a WAT one: compiled in milliseconds
// even in a race-detector build (a Go module takes long enough there to
// pass the compile timeout on a loaded machine).
func progressPipeline(t *testing.T) string {
	t.Helper()
	negate, _ := filepath.Abs("../../examples/wasm/wat/negate.wasm")
	p := filepath.Join(t.TempDir(), "progress.yaml")
	yaml := "name: progress\nmodules: {negate: " + negate + "}\nnodes:\n" +
		"  - {id: xs, type: parameter, type_: \"list[int]\", default: [0, 1, 2, 3]}\n" +
		"  - {id: squares, type: map, over: xs, each: \"item * item\"}\n" +
		"  - {id: halves, type: map, over: xs, each: \"item / 2\"}\n" +
		"  - {id: doubled, type: map, over: xs, each: \"item * 2\"}\n" +
		"  - {id: n, type: parameter, type_: int, default: 4}\n" +
		"  - {id: neg, type: knot, module: negate, knot: negate, parents: {x: n}}\n"
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestProgressEvents: what the display counts and shows of running knots
// (escaped, clipped, at most a few by name), and a subset run's total.
func TestProgressEvents(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	pr := newProgress(&out, true, 3)
	long := strings.Repeat("k", 40)
	for _, id := range []string{"a\x1b[2J", long, "c", "d"} {
		pr.Event(scheduler.Event{Kind: scheduler.KnotStarted, Record: lineage.Record{KnotID: id}})
	}
	pr.Event(scheduler.Event{Kind: scheduler.KnotStarted, Record: lineage.Record{KnotID: "m:0", Kind: lineage.KindElement}})
	pr.Event(scheduler.Event{Kind: scheduler.KnotFinished, Record: lineage.Record{KnotID: "c", Outcome: lineage.Err}})
	line := pr.describe(decor.Statistics{})
	for _, want := range []string{"1/5 knots", "1 failed", `a\u001b[2J`, strings.Repeat("k", 23) + "…", "+1"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	if strings.Contains(line, "\x1b") {
		t.Errorf("line %q holds an escape character", line)
	}
	pr.Stop()

	eng, err := pirn.Open(t.Context(), pirn.Config{AllowUnpinned: true, CacheDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(t.Context())
	p, err := eng.LoadPipeline(t.Context(), progressPipeline(t))
	if err != nil {
		t.Fatal(err)
	}
	if n := shedSize(p.Tapestry.Scheduler(), []string{"neg"}); n != 2 {
		t.Errorf("shedSize(neg) = %d, want 2 (neg and its parameter)", n)
	}
}

// TestProgressOnlyOnTerminals: pirn run shows progress on a terminal (a
// pseudo-terminal from script(1)) and none when its output is piped, or
// with --json or --no-progress.
func TestProgressOnlyOnTerminals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := slowPipeline(t, dir)
	r := runPirn(t, "run", "--state", filepath.Join(dir, "s"), p)
	if r.code != 0 || strings.Contains(r.stderr, "knots") || strings.Contains(r.stderr, "\x1b") {
		t.Errorf("piped run: exit %d, stderr %q", r.code, r.stderr)
	}
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("no script(1) to run pirn on a pseudo-terminal")
	}
	onTerminal := func(args ...string) string {
		// A pseudo-terminal of script(1) has no size; mpb draws nothing
		// on a terminal 0 lines high.
		cmd := "stty cols 120 rows 40; " + strings.Join(append([]string{pirnBin}, args...), " ")
		out, err := exec.Command(script, "-qefc", cmd, "/dev/null").CombinedOutput()
		if err != nil {
			t.Fatalf("script -c %q: %v\n%s", cmd, err, out)
		}
		return string(out)
	}
	out := onTerminal("run", "--state", filepath.Join(dir, "s"), p)
	if !strings.Contains(out, "44/44 knots") || !strings.Contains(out, "succeeded") {
		t.Errorf("run on a terminal shows no progress:\n%q", out)
	}
	for _, flag := range []string{"--no-progress", "--quiet", "--json"} {
		if out := onTerminal("run", flag, "--state", filepath.Join(dir, "s"), p); strings.Contains(out, "knots ·") || strings.Contains(out, "/44 knots") {
			t.Errorf("run %s on a terminal shows progress:\n%q", flag, out)
		}
	}
}

// BenchmarkProgressEvent is what the display costs a run per knot: its
// KnotStarted and KnotFinished events.
func BenchmarkProgressEvent(b *testing.B) {
	pr := newProgress(io.Discard, false, 1)
	defer pr.Stop()
	start := scheduler.Event{Kind: scheduler.KnotStarted, Record: lineage.Record{KnotID: "k"}}
	finish := scheduler.Event{Kind: scheduler.KnotFinished, Record: lineage.Record{KnotID: "k", Outcome: lineage.OK}}
	for b.Loop() {
		pr.Event(start)
		pr.Event(finish)
	}
}
