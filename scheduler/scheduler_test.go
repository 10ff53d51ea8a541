package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/dispatch"
	"github.com/pirn-wasm/pirn/dispatch/dispatchtest"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/model"
	"github.com/pirn-wasm/pirn/scheduler"
)

// fn is a host-native knot for testing the scheduler alone.
type fn func(ctx context.Context, in map[string]any) (any, error)

func (f fn) Invoke(ctx context.Context, c *scheduler.Call) abi.Response {
	in := map[string]any{}
	for _, args := range [][]abi.Arg{c.Inputs, c.Config} {
		for _, a := range args {
			v, err := cas.Decode(a.Value)
			if err != nil {
				return abi.Fail("DecodeError", err.Error())
			}
			in[a.Name] = v
		}
	}
	out, err := f(ctx, in)
	var skip skipErr
	switch {
	case errors.As(err, &skip):
		return abi.Skipped(string(skip))
	case err != nil:
		return abi.Fail("TestError", err.Error())
	}
	b, err := cas.Encode(out)
	if err != nil {
		return abi.Fail("EncodeError", err.Error())
	}
	return abi.OK(b)
}

type skipErr string

func (s skipErr) Error() string { return string(s) }

var (
	double = fn(func(_ context.Context, in map[string]any) (any, error) { return 2 * in["x"].(int64), nil })
	add    = fn(func(_ context.Context, in map[string]any) (any, error) { return in["a"].(int64) + in["b"].(int64), nil })
	boom   = fn(func(_ context.Context, in map[string]any) (any, error) { return nil, fmt.Errorf("boom on %v", in["x"]) })
)

type env struct {
	s     *scheduler.Scheduler
	store *cas.Memory
	hist  *lineage.Memory
}

// remote reports whether the suite runs over NATS: PIRN_TEST_DISPATCH=nats
// sends every function to in-process workers through an embedded NATS
// server, so that the scheduler's tests check that a remote run behaves as
// a local one.
var remote = os.Getenv("PIRN_TEST_DISPATCH") == "nats"

func newEnv(t *testing.T, cfg scheduler.Config) env {
	t.Helper()
	e := env{store: cas.NewMemory(), hist: lineage.NewMemory()}
	if remote && cfg.Remote == nil {
		url, prefix := dispatchtest.Shared(t)
		fns := &dispatchtest.Funcs{}
		cfg.Remote = dispatchtest.Setup(t, url, dispatch.Config{Prefix: prefix, AckWait: 2 * time.Second}, e.store, fns, fns.Ship, 2, 8)
	}
	s, err := scheduler.New(cfg, e.store, e.hist)
	if err != nil {
		t.Fatal(err)
	}
	e.s = s
	return e
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func quickstart(t *testing.T) *scheduler.Tapestry {
	tp := scheduler.NewTapestry()
	node := must[*scheduler.Node](t)
	node(tp.AddParameter(scheduler.ParamDecl{Name: "x", Type: abi.Int}))
	node(tp.AddKnot(scheduler.KnotDecl{ID: "d", Fn: scheduler.Fn{Invoker: double, Name: "host:double"}, Parents: map[string]string{"x": "param:x"}}))
	node(tp.AddKnot(scheduler.KnotDecl{ID: "answer", Fn: scheduler.Fn{Invoker: add, Name: "host:add"}, Parents: map[string]string{"a": "param:x", "b": "d"}}))
	return tp
}

func digest(t *testing.T, v any) cas.Digest {
	t.Helper()
	d, err := cas.Hash(v)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestQuickstart(t *testing.T) {
	e := newEnv(t, scheduler.Config{})
	res, err := e.s.Run(t.Context(), quickstart(t), scheduler.Request{Params: map[string]any{"x": 5}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"param:x": int64(5), "d": int64(10), "answer": int64(15)}
	if diff := cmp.Diff(want, res.Outputs); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	if !res.Succeeded() || len(res.Records) != 3 || !strings.HasPrefix(res.ID, "run-") || len(res.ID) != 36 {
		t.Fatalf("status %s, %d records, id %q", res.Status, len(res.Records), res.ID)
	}
	answer := res.Records[2]
	wantDispatcher := "local"
	if remote {
		wantDispatcher = "nats"
	}
	if answer.KnotID != "answer" || answer.Knot != "host:add" || answer.Output != digest(t, 15) ||
		!slices.Equal(answer.Inputs, []lineage.Input{{Name: "a", Parent: "param:x", Digest: digest(t, 5)}, {Name: "b", Parent: "d", Digest: digest(t, 10)}}) || answer.Dispatcher != wantDispatcher {
		t.Errorf("answer record = %+v", answer)
	}
	if res.Records[0].Knot != lineage.KnotParameter || len(res.Records[0].Inputs) != 0 {
		t.Errorf("parameter record = %+v", res.Records[0])
	}
	for _, v := range []int{5, 10, 15} {
		if ok, _ := e.store.Has(t.Context(), digest(t, v)); !ok {
			t.Errorf("data store lacks %d", v)
		}
	}
	got, err := e.hist.Run(t.Context(), res.ID)
	if err != nil || len(got.Records) != 3 {
		t.Fatalf("history: %v, %v", got, err)
	}
	// Content addressing joins across runs.
	again, err := e.s.Run(t.Context(), quickstart(t), scheduler.Request{Params: map[string]any{"x": "5"}})
	if err != nil {
		t.Fatal(err)
	}
	if again.Records[2].ConfigHash != answer.ConfigHash || again.Records[2].Output != answer.Output {
		t.Errorf("second run's hashes differ")
	}
	recs, _ := e.hist.ByOutput(t.Context(), digest(t, 15))
	if len(recs) != 2 {
		t.Errorf("ByOutput(15) = %d records, want 2", len(recs))
	}
}

func TestParameterErrors(t *testing.T) {
	e := newEnv(t, scheduler.Config{})
	for _, tc := range []struct {
		params map[string]any
		want   string
	}{
		{nil, `parameter "x" has no value supplied and no default`},
		{map[string]any{"x": 7.5}, `parameter "x": want int, got float 7.5`},
		{map[string]any{"x": "five"}, `parameter "x": want int, got str "five"`},
		{map[string]any{"x": 1, "y": 2}, `unknown parameter(s) y (the pipeline has: x)`},
	} {
		res, err := e.s.Run(t.Context(), quickstart(t), scheduler.Request{Params: tc.params})
		if err == nil || !strings.Contains(err.Error(), tc.want) || res != nil {
			t.Errorf("Run(%v) = %v, %v; want nil and an error containing %q", tc.params, res, err, tc.want)
		}
	}
	if runs, _ := e.hist.Runs(t.Context(), lineage.Query{}); len(runs) != 0 {
		t.Errorf("setup errors recorded %d runs, want 0", len(runs))
	}
	// A default makes the value optional.
	tp := scheduler.NewTapestry()
	must[*scheduler.Node](t)(tp.AddParameter(scheduler.ParamDecl{ID: "x", Name: "x", Type: abi.Int, Default: "3", HasDefault: true}))
	res, err := e.s.Run(t.Context(), tp, scheduler.Request{})
	if err != nil || res.Outputs["x"] != int64(3) {
		t.Errorf("default: %v, %v", res.Outputs, err)
	}
	if _, err := tp.AddParameter(scheduler.ParamDecl{ID: "y", Name: "y", Type: abi.Int, Default: 2.5, HasDefault: true}); err == nil {
		t.Error("a default that does not fit its type was accepted")
	}
}

func TestSubsetRun(t *testing.T) {
	e := newEnv(t, scheduler.Config{})
	res, err := e.s.Run(t.Context(), quickstart(t), scheduler.Request{Params: map[string]any{"x": 1}, Terminals: []string{"d"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"param:x": int64(1), "d": int64(2)}, res.Outputs); diff != "" {
		t.Errorf("subset outputs (-want +got):\n%s", diff)
	}
	if _, err := e.s.Run(t.Context(), quickstart(t), scheduler.Request{Terminals: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), `unknown terminal "nope"`) {
		t.Errorf("unknown terminal: %v", err)
	}
	// Parameters outside the shed need no value.
	tp := quickstart(t)
	must[*scheduler.Node](t)(tp.AddParameter(scheduler.ParamDecl{Name: "unused", Type: abi.Int}))
	if _, err := e.s.Run(t.Context(), tp, scheduler.Request{Params: map[string]any{"x": 1}, Terminals: []string{"answer"}}); err != nil {
		t.Errorf("subset run needing no value for an unrelated parameter: %v", err)
	}
}

func failing(t *testing.T, optional bool, policy model.Policy) *scheduler.Tapestry {
	tp := scheduler.NewTapestry()
	node := must[*scheduler.Node](t)
	node(tp.AddParameter(scheduler.ParamDecl{Name: "x", Type: abi.Int}))
	node(tp.AddKnot(scheduler.KnotDecl{ID: "bad", Fn: scheduler.Fn{Invoker: boom, Name: "host:boom"}, Parents: map[string]string{"x": "param:x"}, Optional: optional}))
	node(tp.AddKnot(scheduler.KnotDecl{ID: "after", Fn: scheduler.Fn{Invoker: double}, Parents: map[string]string{"x": "bad"}, Policy: policy}))
	node(tp.AddKnot(scheduler.KnotDecl{ID: "later", Fn: scheduler.Fn{Invoker: double}, Parents: map[string]string{"x": "after"}}))
	node(tp.AddKnot(scheduler.KnotDecl{ID: "fine", Fn: scheduler.Fn{Invoker: double}, Parents: map[string]string{"x": "param:x"}}))
	return tp
}

func TestFailurePropagates(t *testing.T) {
	e := newEnv(t, scheduler.Config{})
	res, err := e.s.Run(t.Context(), failing(t, false, model.SkipIfParentFailed), scheduler.Request{Params: map[string]any{"x": 2}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != lineage.Failed || res.Outputs["fine"] != int64(4) {
		t.Errorf("status %s, outputs %v", res.Status, res.Outputs)
	}
	if len(res.Errors) != 1 || res.Errors[0].Type != "TestError" || res.Errors[0].Message != "boom on 2" || res.Errors[0].KnotID != "bad" {
		t.Fatalf("errors = %+v", res.Errors)
	}
	wantSkips := []scheduler.Skip{
		{KnotID: "after", Reason: scheduler.ReasonParentFailed, Detail: map[string]any{"any_err": true, "any_skipped": false}},
		{KnotID: "later", Reason: scheduler.ReasonParentFailed, Detail: map[string]any{"any_err": false, "any_skipped": true}},
	}
	if diff := cmp.Diff(wantSkips, res.Skipped); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	again, _ := e.s.Run(t.Context(), failing(t, false, model.SkipIfParentFailed), scheduler.Request{Params: map[string]any{"x": 2}})
	if again.Errors[0].ID != res.Errors[0].ID {
		t.Errorf("error id not stable: %s then %s", res.Errors[0].ID, again.Errors[0].ID)
	}
	if !slices.Equal(again.Records[2].Inputs, res.Records[2].Inputs) || !slices.Equal(again.Records[3].Inputs, res.Records[3].Inputs) {
		t.Errorf("input hashes of err/skip parents are not reproducible")
	}
	other, _ := e.s.Run(t.Context(), failing(t, false, model.SkipIfParentFailed), scheduler.Request{Params: map[string]any{"x": 3}})
	if other.Errors[0].ID == res.Errors[0].ID {
		t.Errorf("different failures share id %s", res.Errors[0].ID)
	}
}

func TestOptionalErrBehavesLikeSkip(t *testing.T) {
	e := newEnv(t, scheduler.Config{})
	res, err := e.s.Run(t.Context(), failing(t, true, model.SkipIfParentFailed), scheduler.Request{Params: map[string]any{"x": 2}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != lineage.Succeeded || len(res.Errors) != 1 {
		t.Errorf("status %s with %d errors; want succeeded, the optional failure still recorded", res.Status, len(res.Errors))
	}
	if d := res.Skipped[0].Detail.(map[string]any); d["any_err"] != false || d["any_skipped"] != true {
		t.Errorf("child of an optional err saw %v, want a skipped parent", d)
	}
}

func TestRequireAllParents(t *testing.T) {
	e := newEnv(t, scheduler.Config{})
	res, _ := e.s.Run(t.Context(), failing(t, false, model.RequireAllParents), scheduler.Request{Params: map[string]any{"x": 2}})
	if len(res.Errors) != 2 || res.Errors[1].KnotID != "after" || res.Errors[1].Type != scheduler.ErrParents ||
		res.Errors[1].Message != `knot "after": require_all_parents not satisfied: bad (err)` {
		t.Errorf("errors = %+v", res.Errors)
	}
}

func TestReceiveErrors(t *testing.T) {
	e := newEnv(t, scheduler.Config{})
	tp := failing(t, false, model.SkipIfParentFailed)
	var got atomic.Value
	must[*scheduler.Node](t)(tp.AddKnot(scheduler.KnotDecl{ID: "inspect", Policy: model.ReceiveErrors,
		Parents: map[string]string{"bad": "bad", "fine": "fine", "later": "later"},
		Fn: scheduler.Fn{Invoker: fn(func(_ context.Context, in map[string]any) (any, error) {
			got.Store(in)
			return "handled", nil
		})}}))
	res, err := e.s.Run(t.Context(), tp, scheduler.Request{Params: map[string]any{"x": 2}})
	if err != nil || res.Outputs["inspect"] != "handled" {
		t.Fatalf("inspect: %v %v", res.Outputs, err)
	}
	in := got.Load().(map[string]any)
	errDoc := in["bad"].(map[string]any)["err"].(map[string]any)
	if errDoc["type"] != "TestError" || errDoc["message"] != "boom on 2" || errDoc["id"] != res.Errors[0].ID.String() {
		t.Errorf("err input = %v", in["bad"])
	}
	if diff := cmp.Diff(map[string]any{"ok": int64(4)}, in["fine"]); diff != "" {
		t.Errorf("ok input (-want +got):\n%s", diff)
	}
	if in["later"].(map[string]any)["skip"].(map[string]any)["reason"] != scheduler.ReasonParentFailed {
		t.Errorf("skip input = %v", in["later"])
	}
	rec := res.Records[len(res.Records)-1]
	if fine, _ := rec.Input("fine"); fine != digest(t, 4) {
		t.Errorf("an ok parent of a receive_errors knot is recorded by its value's digest; got %s", fine)
	}
}

// TestReadyQueueNotWaves checks that a knot starts when its own parents are
// done, without waiting for unrelated slower knots.
func TestReadyQueueNotWaves(t *testing.T) {
	e := newEnv(t, scheduler.Config{Workers: 4})
	childRan := make(chan struct{})
	tp := scheduler.NewTapestry()
	node := must[*scheduler.Node](t)
	node(tp.AddParameter(scheduler.ParamDecl{Name: "x", Type: abi.Int}))
	node(tp.AddKnot(scheduler.KnotDecl{ID: "slow", Parents: map[string]string{"x": "param:x"},
		Fn: scheduler.Fn{Invoker: fn(func(ctx context.Context, in map[string]any) (any, error) {
			select {
			case <-childRan:
				return 1, nil
			case <-time.After(10 * time.Second):
				return nil, errors.New("the fast branch's child never ran while slow was running: waves with barriers")
			}
		})}}))
	node(tp.AddKnot(scheduler.KnotDecl{ID: "fast", Fn: scheduler.Fn{Invoker: double}, Parents: map[string]string{"x": "param:x"}}))
	node(tp.AddKnot(scheduler.KnotDecl{ID: "child", Parents: map[string]string{"x": "fast"},
		Fn: scheduler.Fn{Invoker: fn(func(context.Context, map[string]any) (any, error) { close(childRan); return 2, nil })}}))
	res, err := e.s.Run(t.Context(), tp, scheduler.Request{Params: map[string]any{"x": 1}})
	if err != nil || !res.Succeeded() {
		t.Fatalf("%v %+v", err, res.Errors)
	}
}

func TestWorkersBound(t *testing.T) {
	e := newEnv(t, scheduler.Config{Workers: 3})
	var running, peak atomic.Int32
	k := fn(func(context.Context, map[string]any) (any, error) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		running.Add(-1)
		return 1, nil
	})
	tp := scheduler.NewTapestry()
	must[*scheduler.Node](t)(tp.AddParameter(scheduler.ParamDecl{Name: "x", Type: abi.Int}))
	for i := range 40 {
		must[*scheduler.Node](t)(tp.AddKnot(scheduler.KnotDecl{ID: fmt.Sprint("k", i), Fn: scheduler.Fn{Invoker: k}, Parents: map[string]string{"x": "param:x"}}))
	}
	if _, err := e.s.Run(t.Context(), tp, scheduler.Request{Params: map[string]any{"x": 1}}); err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p > 3 || p < 2 {
		t.Errorf("peak concurrency %d, want 2..3 with Workers=3", p)
	}
}

func TestCancellation(t *testing.T) {
	e := newEnv(t, scheduler.Config{Workers: 2})
	ctx, cancel := context.WithCancel(t.Context())
	tp := scheduler.NewTapestry()
	node := must[*scheduler.Node](t)
	node(tp.AddParameter(scheduler.ParamDecl{Name: "x", Type: abi.Int}))
	node(tp.AddKnot(scheduler.KnotDecl{ID: "block", Parents: map[string]string{"x": "param:x"},
		Fn: scheduler.Fn{Invoker: fn(func(ctx context.Context, in map[string]any) (any, error) {
			cancel()
			<-ctx.Done()
			return nil, ctx.Err()
		})}}))
	node(tp.AddKnot(scheduler.KnotDecl{ID: "next", Fn: scheduler.Fn{Invoker: double}, Parents: map[string]string{"x": "block"}, Policy: model.ReceiveErrors}))
	res, err := e.s.Run(ctx, tp, scheduler.Request{Params: map[string]any{"x": 1}})
	if !errors.Is(err, context.Canceled) || res == nil || res.Status != lineage.Cancelled {
		t.Fatalf("Run = %v, %v; want a cancelled result and context.Canceled", res, err)
	}
	if len(res.Skipped) != 1 || res.Skipped[0].Reason != scheduler.ReasonCancelled {
		t.Errorf("skipped = %+v, want next skipped as run_cancelled", res.Skipped)
	}
	if got, err := e.hist.Run(t.Context(), res.ID); err != nil || got.Status != lineage.Cancelled {
		t.Errorf("a cancelled run must still be recorded: %v %v", got, err)
	}
}

type failStore struct{ cas.Store }

func (failStore) Put(context.Context, cas.Digest, []byte) error { return errors.New("disk full") }

func TestStoreFailureIsAnErr(t *testing.T) {
	s, err := scheduler.New(scheduler.Config{}, failStore{cas.NewMemory()}, lineage.NewMemory())
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Run(t.Context(), quickstart(t), scheduler.Request{Params: map[string]any{"x": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != lineage.Failed || res.Errors[0].Type != scheduler.ErrStore || !strings.Contains(res.Errors[0].Message, "disk full") {
		t.Errorf("status %s errors %+v", res.Status, res.Errors)
	}
}

func TestTapestryValidation(t *testing.T) {
	tp := quickstart(t)
	for _, tc := range []struct {
		spec scheduler.KnotDecl
		want string
	}{
		{scheduler.KnotDecl{ID: "bad id", Fn: scheduler.Fn{Invoker: double}}, `knot id "bad id" contains invalid characters`},
		{scheduler.KnotDecl{ID: strings.Repeat("a", 257), Fn: scheduler.Fn{Invoker: double}}, "too long"},
		{scheduler.KnotDecl{ID: "d", Fn: scheduler.Fn{Invoker: double}}, `knot id "d" is already used`},
		{scheduler.KnotDecl{ID: "k"}, "no knot or expression to run"},
		{scheduler.KnotDecl{ID: "k", Fn: scheduler.Fn{Invoker: double}, Parents: map[string]string{"x": "zz"}}, `unknown parent "zz"`},
		{scheduler.KnotDecl{ID: "k", Fn: scheduler.Fn{Invoker: double}, Parents: map[string]string{"x": "d"}, Config: map[string]any{"x": 1}}, "both a parent and a constant"},
		{scheduler.KnotDecl{ID: "k", Fn: scheduler.Fn{Invoker: double}, Parents: map[string]string{"1x": "d"}}, "not an identifier"},
		{scheduler.KnotDecl{ID: "k", Fn: scheduler.Fn{Invoker: double}, Config: map[string]any{"c": make(chan int)}}, `config "c"`},
	} {
		if _, err := tp.AddKnot(tc.spec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("AddKnot(%q) error = %v, want one containing %q", tc.spec.ID, err, tc.want)
		}
	}
	if _, err := tp.AddParameter(scheduler.ParamDecl{Name: "x", ID: "x2", Type: abi.Int}); err == nil {
		t.Error("a second parameter named x was accepted")
	}
	if _, err := model.ParsePolicy("nope"); err == nil {
		t.Error("ParsePolicy(nope) succeeded")
	}
}

func TestConcurrentRunsOfOneTapestry(t *testing.T) {
	e := newEnv(t, scheduler.Config{})
	tp := quickstart(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			res, err := e.s.Run(t.Context(), tp, scheduler.Request{Params: map[string]any{"x": i}})
			if err != nil || res.Outputs["answer"] != int64(3*i) {
				t.Errorf("run %d: %v %v", i, res.Outputs, err)
			}
		})
	}
	wg.Wait()
}

func TestStoreWritersFailure(t *testing.T) {
	s, err := scheduler.New(scheduler.Config{StoreWriters: 2}, failStore{cas.NewMemory()}, lineage.NewMemory())
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Run(t.Context(), quickstart(t), scheduler.Request{Params: map[string]any{"x": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != lineage.Failed || len(res.Errors) != 3 || res.Errors[0].Type != scheduler.ErrStore {
		t.Errorf("status %s errors %+v; want failed with a StoreError per value", res.Status, res.Errors)
	}
	if res.Outputs["answer"] != int64(3) {
		t.Errorf("values are still computed and returned: %v", res.Outputs)
	}
}

func TestStoreWriters(t *testing.T) {
	e := newEnv(t, scheduler.Config{StoreWriters: 3})
	res, err := e.s.Run(t.Context(), quickstart(t), scheduler.Request{Params: map[string]any{"x": 5}})
	if err != nil || !res.Succeeded() {
		t.Fatal(err, res.Errors)
	}
	for _, v := range []int{5, 10, 15} {
		if ok, _ := e.store.Has(t.Context(), digest(t, v)); !ok {
			t.Errorf("data store lacks %d after the run returned", v)
		}
	}
}

func TestNewRunIDSortsByTime(t *testing.T) {
	a := scheduler.NewRunID()
	time.Sleep(2 * time.Millisecond)
	b := scheduler.NewRunID()
	if len(a) != 36 || !strings.HasPrefix(a, "run-") || a >= b {
		t.Errorf("NewRunID() = %q then %q; want run-<32 hex>, increasing", a, b)
	}
	if c := scheduler.NewRunID(); c == b {
		t.Errorf("two ids in the same millisecond are equal: %q", c)
	}
}

func TestPanickingKnotFailsAlone(t *testing.T) {
	e := newEnv(t, scheduler.Config{})
	tp := quickstart(t)
	must[*scheduler.Node](t)(tp.AddKnot(scheduler.KnotDecl{ID: "bug", Parents: map[string]string{"x": "param:x"},
		Fn: scheduler.Fn{Invoker: fn(func(context.Context, map[string]any) (any, error) { panic("index out of range") })}}))
	res, err := e.s.Run(t.Context(), tp, scheduler.Request{Params: map[string]any{"x": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 1 || res.Errors[0].Type != scheduler.ErrPanic || !strings.Contains(res.Errors[0].Trace, "scheduler_test.go") || res.Outputs["answer"] != int64(3) {
		t.Errorf("errors %+v, outputs %v", res.Errors, res.Outputs)
	}
}

// TestOutcomeTextBounded: whatever kind of knot errs or skips with
// enormous text, the run records it within abi's bounds.
func TestOutcomeTextBounded(t *testing.T) {
	huge := strings.Repeat("é", 1<<20) // two bytes a character: cuts land mid-character
	tp := scheduler.NewTapestry()
	must[*scheduler.Node](t)(tp.AddKnot(scheduler.KnotDecl{ID: "e", Kind: model.KindSource, Fn: f(fn(func(context.Context, map[string]any) (any, error) {
		return nil, errors.New(huge)
	}))}))
	must[*scheduler.Node](t)(tp.AddKnot(scheduler.KnotDecl{ID: "s", Kind: model.KindSource, Fn: f(fn(func(context.Context, map[string]any) (any, error) {
		return nil, skipErr(huge)
	}))}))
	e := newEnv(t, scheduler.Config{})
	res, err := e.s.Run(t.Context(), tp, scheduler.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 1 || len(res.Errors[0].Message) > abi.MaxErrorMessage || !utf8.ValidString(res.Errors[0].Message) ||
		!strings.HasSuffix(res.Errors[0].Message, "bytes clipped]") {
		t.Errorf("error message of %d bytes", len(res.Errors[0].Message))
	}
	if r := record(t, res, "s"); len(r.SkipReason) > abi.MaxSkipReason || !utf8.ValidString(r.SkipReason) {
		t.Errorf("skip reason of %d bytes", len(r.SkipReason))
	}
}
