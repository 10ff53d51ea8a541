package emit_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/lineage"
)

// quickstart is the README's pipeline: x = 5, d = double(x), answer = add(x, d).
const quickstart = "../examples/quickstart/pipeline.yaml"

// shared is the engine and pipeline every test of the package uses
// (compiling the module once: under the race detector it takes seconds).
var shared struct {
	once sync.Once
	e    *pirn.Engine
	p    *pirn.Pipeline
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.e != nil {
		shared.e.Close(context.Background())
	}
	os.Exit(code)
}

// engine returns an engine with an in-memory store and history, and the
// quickstart pipeline loaded on it.
func engine(t testing.TB) (*pirn.Engine, *pirn.Pipeline) {
	t.Helper()
	shared.once.Do(func() {
		ctx := context.Background()
		shared.e, shared.err = pirn.Open(ctx, pirn.Config{CacheDir: "-", AllowUnpinned: true})
		if shared.err == nil {
			shared.p, shared.err = shared.e.LoadPipeline(ctx, quickstart)
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.e, shared.p
}

// run runs the pipeline with the hub as its observer and checks it
// succeeded.
func run(t testing.TB, e *pirn.Engine, p *pirn.Pipeline, hub *emit.Hub, labels map[string]string) *pirn.RunResult {
	t.Helper()
	res, err := e.Run(t.Context(), p.Tapestry, pirn.RunRequest{Pipeline: p.Spec.Name, Observer: hub, Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != lineage.Succeeded {
		t.Fatalf("run %s: %s, errors %+v", res.ID, res.Status, res.Errors)
	}
	return res
}

// eventsOf is how many events a run sends: its start and end, a start
// and finish per record and each record again once recorded.
func eventsOf(res *pirn.RunResult) int { return 2 + 3*len(res.Records) }

// recorder keeps copies of the events it receives.
type recorder struct {
	name string
	mu   sync.Mutex
	evs  []emit.Event
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) Emit(_ context.Context, ev *emit.Event) error {
	r.mu.Lock()
	r.evs = append(r.evs, *ev)
	r.mu.Unlock()
	return nil
}

func (r *recorder) Close(context.Context) error { return nil }

func (r *recorder) events() []emit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]emit.Event(nil), r.evs...)
}

// gated blocks every Emit until its gate is closed, ignoring its context
// (a hung sink), and then records the event.
type gated struct {
	recorder
	gate    chan struct{}
	entered chan struct{} // receives once per Emit call, if not full
}

func newGated(name string) *gated {
	return &gated{recorder: recorder{name: name}, gate: make(chan struct{}), entered: make(chan struct{}, 1)}
}

func (g *gated) Emit(ctx context.Context, ev *emit.Event) error {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.gate
	return g.recorder.Emit(ctx, ev)
}

// failing fails every Emit.
type failing struct{ name string }

func (f failing) Name() string                            { return f.name }
func (f failing) Emit(context.Context, *emit.Event) error { return errors.New("the sink is down") }
func (f failing) Close(context.Context) error             { return nil }

// checkOrder checks that evs are one run's events, numbered from 1 in
// order, run_started first and run_finished last, each knot's start
// before its finish.
func checkOrder(t *testing.T, who string, evs []emit.Event, runID string, want int) {
	t.Helper()
	if len(evs) != want {
		t.Fatalf("%s got %d events of run %s, want %d", who, len(evs), runID, want)
	}
	running := map[string]bool{}
	for i, ev := range evs {
		if ev.RunID != runID || ev.Seq != uint64(i+1) {
			t.Fatalf("%s: event %d is run %s seq %d, want run %s seq %d", who, i, ev.RunID, ev.Seq, runID, i+1)
		}
		switch {
		case i == 0 && ev.Kind != emit.RunStarted, i == len(evs)-1 && ev.Kind != emit.RunFinished:
			t.Errorf("%s: event %d is %s", who, i, ev.Kind)
		case ev.Kind == emit.KnotStatus && ev.State == emit.StateRunning:
			running[ev.Knot] = true
		case ev.Kind == emit.KnotStatus && !running[ev.Knot]:
			t.Errorf("%s: %s finished (%s) before it started", who, ev.Knot, ev.State)
		}
		if ev.Pipeline != evs[0].Pipeline || ev.Pipeline == "" {
			t.Errorf("%s: event %d: pipeline %q", who, i, ev.Pipeline)
		}
	}
}
