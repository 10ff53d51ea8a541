package serve_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/scheduler"
	"github.com/pirn-wasm/pirn/serve"
)

// openEngine opens an engine in memory with no module cache.
func openEngine(t testing.TB) *pirn.Engine {
	t.Helper()
	e, err := pirn.Open(context.Background(), pirn.Config{CacheDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

// negate loads a one-knot pipeline: x (int), neg = -x.
func negate(t testing.TB, e *pirn.Engine) *pirn.Pipeline {
	t.Helper()
	p, err := e.LoadPipeline(context.Background(), "testdata/negate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runner returns a runner of p, closed at the end of the test.
func runner(t testing.TB, e *pirn.Engine, p *pirn.Pipeline, cfg serve.RunnerConfig) *serve.Runner {
	t.Helper()
	r := serve.NewRunner(e, p, cfg)
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

// labelsSeen is an Observer keeping each run's labels and finished runs.
type labelsSeen struct {
	mu       sync.Mutex
	labels   map[string]map[string]string // by run id
	finished map[string]*scheduler.Result
	done     chan string // run ids, as they finish (buffered)
	started  chan string // run ids, as they start (buffered)
}

func newLabelsSeen() *labelsSeen {
	return &labelsSeen{labels: map[string]map[string]string{}, finished: map[string]*scheduler.Result{}, done: make(chan string, 1024), started: make(chan string, 1024)}
}

func (o *labelsSeen) Event(ev scheduler.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch ev.Kind {
	case scheduler.RunStarted:
		o.labels[ev.RunID] = ev.Labels
		o.started <- ev.RunID
	case scheduler.RunFinished:
		o.finished[ev.RunID] = ev.Result
		o.done <- ev.RunID
	}
}

// collect returns an OnRun that appends to runs.
func collect(mu *sync.Mutex, runs *[]serve.StreamRun) func(serve.StreamRun) {
	return func(r serve.StreamRun) {
		mu.Lock()
		*runs = append(*runs, r)
		mu.Unlock()
	}
}

func TestStreamOneRunPerValue(t *testing.T) {
	t.Parallel()
	e := openEngine(t)
	obs := newLabelsSeen()
	r := runner(t, e, negate(t, e), serve.RunnerConfig{Name: "negate", Observer: obs})
	var mu sync.Mutex
	var runs []serve.StreamRun
	err := serve.RunStream(t.Context(), r, serve.Values("nums", 1, 2, 3), serve.StreamOptions{Pipeline: "negate", Param: "x", OnRun: collect(&mu, &runs)})
	if err != nil {
		t.Fatalf("RunStream: %v", err)
	}
	if len(runs) != 3 {
		t.Fatalf("%d runs, want 3: %+v", len(runs), runs)
	}
	for i, sr := range runs {
		if sr.Status != lineage.Succeeded || sr.Err != nil || sr.Values != 1 {
			t.Errorf("run %d: %+v, want one value, succeeded", i, sr)
		}
		rec, err := e.History().Run(t.Context(), sr.RunID)
		if err != nil {
			t.Fatalf("run %d not in the history: %v", i, err)
		}
		if rec.Pipeline != "negate" {
			t.Errorf("run %d pipeline %q", i, rec.Pipeline)
		}
		res := obs.finished[sr.RunID]
		if got, want := res.Outputs["neg"], int64(-(i + 1)); got != want {
			t.Errorf("run %d: neg = %v, want %v", i, got, want)
		}
		want := map[string]string{"stream": "nums", "origin.source": "nums", "origin.index": strconv.Itoa(i)}
		if diff := cmp.Diff(want, obs.labels[sr.RunID]); diff != "" {
			t.Errorf("run %d labels (-want +got):\n%s", i, diff)
		}
		if diff := cmp.Diff(want, sr.Labels); diff != "" {
			t.Errorf("run %d StreamRun labels (-want +got):\n%s", i, diff)
		}
	}
}

// gate is a pipeline whose knot "hold" returns its x once the test
// releases that x: runs finish in the order the test chooses.
type gate struct {
	mu      sync.Mutex
	release map[int64]chan struct{}
}

func (g *gate) ch(x int64) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.release == nil {
		g.release = map[int64]chan struct{}{}
	}
	c, ok := g.release[x]
	if !ok {
		c = make(chan struct{})
		g.release[x] = c
	}
	return c
}

func (g *gate) open(x int64) { close(g.ch(x)) }

// pipeline builds x (int) -> hold; hold fails for a negative x.
func (g *gate) pipeline(t testing.TB) *pirn.Pipeline {
	t.Helper()
	type in struct {
		X int64 `pirn:"x"`
	}
	hold := pirn.Func("hold", func(ctx context.Context, in in) (int64, error) {
		if in.X < 0 {
			return 0, errors.New("negative")
		}
		select {
		case <-g.ch(in.X):
			return in.X, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	tp := pirn.NewTapestry()
	x, err := tp.Parameter(pirn.Param{Name: "x", Type: "int"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Knot("hold", hold, pirn.In{"x": x}); err != nil {
		t.Fatal(err)
	}
	return &pirn.Pipeline{Tapestry: tp}
}

// ackSource yields the values given, then io.EOF (or blocks, if
// endless), recording acks; onAck and onNext, if set, run on each.
type ackSource struct {
	values  []any
	endless bool // yield 0, 1, 2, ... for ever
	mu      sync.Mutex
	next    int
	acked   []int
	onAck   func(i int)
	onNext  func(reads, acks int)
}

func (s *ackSource) Name() string { return "acks" }
func (s *ackSource) Close() error { return nil }

func (s *ackSource) Next(ctx context.Context) (serve.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.next
	var v any = int64(i)
	if !s.endless {
		if i >= len(s.values) {
			return serve.Item{}, io.EOF
		}
		v = s.values[i]
	}
	s.next++
	if s.onNext != nil {
		s.onNext(s.next, len(s.acked))
	}
	return serve.Item{Value: v, Origin: map[string]string{"i": strconv.Itoa(i)}, Ack: func(context.Context) error {
		if s.onAck != nil {
			s.onAck(i)
		}
		s.mu.Lock()
		s.acked = append(s.acked, i)
		s.mu.Unlock()
		return nil
	}}, nil
}

func (s *ackSource) acks() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.acked...)
}

// TestStreamAcksInSourceOrder: runs finish in reverse order, yet each
// value is acked only once its run and every earlier one is recorded,
// and in source order.
func TestStreamAcksInSourceOrder(t *testing.T) {
	t.Parallel()
	e := openEngine(t)
	g := &gate{}
	obs := newLabelsSeen()
	r := runner(t, e, g.pipeline(t), serve.RunnerConfig{Concurrency: 4, Observer: obs})
	src := &ackSource{values: []any{0, 1, 2, 3}}
	var mu sync.Mutex
	var runs []serve.StreamRun
	ids := map[int]string{} // value -> run id, from the labels
	src.onAck = func(i int) {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		for id, l := range obs.labels {
			if n, _ := strconv.Atoi(l["origin.i"]); n <= i && obs.finished[id] == nil {
				t.Errorf("value %d acked before the run of value %d (%s) was recorded", i, n, id)
			}
			if l["origin.i"] == strconv.Itoa(i) {
				ids[i] = id
			}
		}
		if _, err := e.History().Run(context.Background(), ids[i]); err != nil {
			t.Errorf("value %d acked, its run %q not in the history: %v", i, ids[i], err)
		}
	}
	done := make(chan error, 1)
	go func() {
		done <- serve.RunStream(t.Context(), r, src, serve.StreamOptions{Param: "x", OnRun: collect(&mu, &runs)})
	}()
	for _, x := range []int64{3, 2, 1} {
		g.open(x)
		<-obs.done
		if got := src.acks(); len(got) != 0 {
			t.Fatalf("after the run of %d finished: acks %v, want none before value 0's run", x, got)
		}
	}
	g.open(0)
	if err := <-done; err != nil {
		t.Fatalf("RunStream: %v", err)
	}
	if diff := cmp.Diff([]int{0, 1, 2, 3}, src.acks()); diff != "" {
		t.Errorf("ack order (-want +got):\n%s", diff)
	}
	for i, sr := range runs {
		if got := sr.Labels["origin.i"]; got != strconv.Itoa(i) {
			t.Errorf("OnRun %d: origin %q, want source order", i, got)
		}
	}
}

// TestStreamBackpressure: with a slow pipeline the source is never read
// more than MaxInFlight values ahead of the acks, and does reach it.
func TestStreamBackpressure(t *testing.T) {
	t.Parallel()
	e := openEngine(t)
	g := &gate{}
	obs := newLabelsSeen()
	const bound = 3
	// Every run in flight runs (the Runner starts queued runs in no
	// particular order, and the gate opens them in order).
	r := runner(t, e, g.pipeline(t), serve.RunnerConfig{Concurrency: bound, Observer: obs})
	var mu sync.Mutex
	maxAhead := 0
	atBound := make(chan struct{}, 64)
	src := &ackSource{endless: true}
	src.onNext = func(reads, acks int) {
		mu.Lock()
		defer mu.Unlock()
		ahead := reads - acks
		maxAhead = max(maxAhead, ahead)
		if ahead > bound {
			t.Errorf("read %d values with %d acked: %d ahead, bound %d", reads, acks, ahead, bound)
		}
		if ahead == bound {
			atBound <- struct{}{}
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- serve.RunStream(ctx, r, src, serve.StreamOptions{Param: "x", MaxInFlight: bound}) }()
	for x := range int64(10) {
		<-atBound // the reading stops here until a run is recorded
		g.open(x)
	}
	cancel()
	// The runs in flight (values 10, 11, 12) are drained: release them.
	for x := int64(10); x < 10+bound; x++ {
		g.open(x)
	}
	if err := <-done; err != nil {
		t.Fatalf("RunStream: %v", err)
	}
	if maxAhead != bound {
		t.Errorf("at most %d values ahead, want the bound %d reached", maxAhead, bound)
	}
	if n := len(src.acks()); n < 10 {
		t.Errorf("%d values acked, want at least 10", n)
	}
}

// TestStreamWindowByCount: windows of 2 values, the last one closed by
// the source's end; each run receives the list and the labels of its
// first and last values.
func TestStreamWindowByCount(t *testing.T) {
	t.Parallel()
	e := openEngine(t)
	obs := newLabelsSeen()
	r := runner(t, e, sumPipeline(t), serve.RunnerConfig{Observer: obs})
	var mu sync.Mutex
	var runs []serve.StreamRun
	err := serve.RunStream(t.Context(), r, serve.Values("w", 1, 2, 3, 4, 5), serve.StreamOptions{Param: "xs",
		Window: serve.Window{Count: 2}, Params: map[string]any{"k": 10}, OnRun: collect(&mu, &runs)})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		sum         int64
		n           string
		first, last string
	}{{13, "2", "0", "1"}, {17, "2", "2", "3"}, {15, "1", "4", "4"}}
	if len(runs) != len(want) {
		t.Fatalf("%d runs, want %d", len(runs), len(want))
	}
	for i, w := range want {
		sr := runs[i]
		if got := obs.finished[sr.RunID].Outputs["sum"]; got != w.sum {
			t.Errorf("window %d: sum %v, want %d", i, got, w.sum)
		}
		l := obs.labels[sr.RunID]
		if l["window.values"] != w.n || l["origin.first.index"] != w.first || l["origin.last.index"] != w.last || l["stream"] != "w" {
			t.Errorf("window %d labels %v, want %s values from %s to %s", i, l, w.n, w.first, w.last)
		}
	}
}

// TestStreamWindowByTime: a window of up to 100 values closes Every
// after its first value when no more come (the test waits for it: no
// other way closes it), and the source's end closes the last.
func TestStreamWindowByTime(t *testing.T) {
	t.Parallel()
	e := openEngine(t)
	obs := newLabelsSeen()
	r := runner(t, e, sumPipeline(t), serve.RunnerConfig{Observer: obs})
	ch := make(chan any)
	ran := make(chan serve.StreamRun, 4)
	done := make(chan error, 1)
	go func() {
		done <- serve.RunStream(t.Context(), r, serve.FromChan("t", ch), serve.StreamOptions{Param: "xs",
			Window: serve.Window{Count: 100, Every: emit.Duration(20 * time.Millisecond)}, OnRun: func(sr serve.StreamRun) { ran <- sr }})
	}()
	ch <- 4
	sr := <-ran // no more values: the window closed by time
	if got := obs.finished[sr.RunID].Outputs["sum"]; sr.Values != 1 || got != int64(14) {
		t.Errorf("time window: %d values, sum %v; want 1 value, 14", sr.Values, got)
	}
	ch <- 6
	close(ch)
	sr = <-ran
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if sr.Values != 1 || sr.Labels["origin.first.index"] != "1" {
		t.Errorf("second window %+v, want value 1 alone", sr)
	}
}

// sumPipeline: xs (list[int]) and k (int, default 10) -> sum = k + sum(xs).
func sumPipeline(t testing.TB) *pirn.Pipeline {
	t.Helper()
	type in struct {
		XS []int64 `pirn:"xs"`
		K  int64   `pirn:"k"`
	}
	sum := pirn.Func("sum", func(_ context.Context, in in) (int64, error) {
		s := in.K
		for _, x := range in.XS {
			s += x
		}
		return s, nil
	})
	tp := pirn.NewTapestry()
	xs, err := tp.Parameter(pirn.Param{Name: "xs", Type: "list[int]"})
	if err != nil {
		t.Fatal(err)
	}
	k, err := tp.Parameter(pirn.Param{Name: "k", Type: "int", Default: 10, HasDefault: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Knot("sum", sum, pirn.In{"xs": xs, "k": k}); err != nil {
		t.Fatal(err)
	}
	return &pirn.Pipeline{Tapestry: tp}
}

// TestStreamPoisonAndFailedRuns: a value the parameter refuses is logged
// with its origin and acked; a run that fails is recorded and acked; the
// stream goes on.
func TestStreamPoisonAndFailedRuns(t *testing.T) {
	t.Parallel()
	e := openEngine(t)
	g := &gate{}
	g.open(1)
	g.open(3)
	r := runner(t, e, g.pipeline(t), serve.RunnerConfig{})
	var logs bytes.Buffer
	var lmu sync.Mutex
	lg := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &lmu}, nil))
	src := &ackSource{values: []any{1, "not a number", -2, 3}}
	var mu sync.Mutex
	var runs []serve.StreamRun
	if err := serve.RunStream(t.Context(), r, src, serve.StreamOptions{Param: "x", Logger: lg, OnRun: collect(&mu, &runs)}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{0, 1, 2, 3}, src.acks()); diff != "" {
		t.Errorf("acks (-want +got):\n%s", diff)
	}
	got := make([]string, len(runs))
	for i, sr := range runs {
		got[i] = fmt.Sprintf("%s rejected=%v", sr.Status, sr.Rejected)
	}
	want := []string{"succeeded rejected=false", " rejected=true", "failed rejected=false", "succeeded rejected=false"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("runs (-want +got):\n%s", diff)
	}
	if !errors.Is(runs[1].Err, serve.ErrBadRequest) || runs[1].RunID != "" {
		t.Errorf("rejected run: id %q, err %v; want no id, ErrBadRequest", runs[1].RunID, runs[1].Err)
	}
	lmu.Lock()
	out := logs.String()
	lmu.Unlock()
	if !bytes.Contains([]byte(out), []byte(`"origin":{"origin.i":"1","stream":"acks"}`)) || !bytes.Contains([]byte(out), []byte("rejected")) {
		t.Errorf("log of the rejected value lacks its origin:\n%s", out)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestStreamDrain: when ctx ends, the runs in flight are waited for and
// acked; past the drain deadline, the unrecorded ones are not acked and
// RunStream says so.
func TestStreamDrain(t *testing.T) {
	t.Parallel()
	e := openEngine(t)
	g := &gate{}
	obs := newLabelsSeen()
	r := runner(t, e, g.pipeline(t), serve.RunnerConfig{Concurrency: 4, Observer: obs})
	src := &ackSource{endless: true}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- serve.RunStream(ctx, r, src, serve.StreamOptions{Param: "x", MaxInFlight: 2}) }()
	<-obs.started
	<-obs.started
	cancel()
	g.open(1)
	g.open(0)
	if err := <-done; err != nil {
		t.Fatalf("RunStream after a drain: %v", err)
	}
	if diff := cmp.Diff([]int{0, 1}, src.acks()); diff != "" {
		t.Errorf("acks after the drain (-want +got):\n%s", diff)
	}

	// Now a run that never finishes: the drain deadline passes.
	g2 := &gate{}
	obs2 := newLabelsSeen()
	r2 := runner(t, e, g2.pipeline(t), serve.RunnerConfig{Observer: obs2})
	src2 := &ackSource{endless: true}
	ctx2, cancel2 := context.WithCancel(t.Context())
	go func() {
		done <- serve.RunStream(ctx2, r2, src2, serve.StreamOptions{Param: "x", MaxInFlight: 1, DrainTimeout: emit.Duration(time.Millisecond)})
	}()
	<-obs2.started
	cancel2()
	err := <-done
	if err == nil || len(src2.acks()) != 0 {
		t.Errorf("RunStream past the drain deadline: %v, acks %v; want an error and no ack", err, src2.acks())
	}
	g2.open(0)
}

// TestStreamRunIDFromItemID: items with IDs name their runs, so a value
// delivered again starts no second run.
func TestStreamRunIDFromItemID(t *testing.T) {
	t.Parallel()
	e := openEngine(t)
	obs := newLabelsSeen()
	r := runner(t, e, negate(t, e), serve.RunnerConfig{Observer: obs})
	var ids [2][]string
	for pass := range 2 {
		src := &idSource{ids: []string{"t/0/7", "t/0/8"}}
		err := serve.RunStream(t.Context(), r, src, serve.StreamOptions{Pipeline: "q", Param: "x",
			OnRun: func(sr serve.StreamRun) { ids[pass] = append(ids[pass], sr.RunID) }})
		if err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(ids[0], ids[1]); diff != "" || len(ids[0]) != 2 || ids[0][0] == ids[0][1] {
		t.Errorf("run ids of two deliveries %v and %v, want the same two", ids[0], ids[1])
	}
	if n := len(obs.finished); n != 2 {
		t.Errorf("%d runs ran, want 2 (the second delivery runs nothing)", n)
	}
}

type idSource struct {
	ids []string
	i   int
}

func (s *idSource) Name() string { return "ids" }
func (s *idSource) Close() error { return nil }
func (s *idSource) Next(context.Context) (serve.Item, error) {
	if s.i == len(s.ids) {
		return serve.Item{}, io.EOF
	}
	s.i++
	return serve.Item{Value: s.i, ID: s.ids[s.i-1]}, nil
}

// TestStreamOptionsChecked: bad options are errors naming them.
func TestStreamOptionsChecked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts serve.StreamOptions
		want string
	}{
		{serve.StreamOptions{}, "no parameter"},
		{serve.StreamOptions{Param: "x", Window: serve.Window{Count: -1}}, "window count -1"},
		{serve.StreamOptions{Param: "x", Window: serve.Window{Count: 10}, MaxInFlight: 5}, "max_in_flight 5 is less than the window count 10"},
		{serve.StreamOptions{Param: "x", MaxInFlight: -1}, "max_in_flight -1"},
	} {
		err := serve.RunStream(t.Context(), nil, serve.Values("v"), tc.opts)
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
			t.Errorf("RunStream(%+v) = %v, want %q", tc.opts, err, tc.want)
		}
	}
}

// TestStreamSourceClosed: closing the source stops the stream cleanly,
// after the runs already submitted.
func TestStreamSourceClosed(t *testing.T) {
	t.Parallel()
	e := openEngine(t)
	r := runner(t, e, negate(t, e), serve.RunnerConfig{})
	ch := make(chan any)
	src := serve.FromChan("c", ch)
	ran := make(chan serve.StreamRun, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve.RunStream(t.Context(), r, src, serve.StreamOptions{Param: "x", OnRun: func(sr serve.StreamRun) { ran <- sr }})
	}()
	ch <- 1
	if sr := <-ran; sr.Status != lineage.Succeeded {
		t.Errorf("run before Close: %+v", sr)
	}
	src.Close()
	if err := <-done; err != nil {
		t.Errorf("RunStream after Close = %v, want nil", err)
	}
}
