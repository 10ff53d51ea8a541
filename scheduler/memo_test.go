package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/model"
	"github.com/pirn-wasm/pirn/scheduler"
)

// counted is a knot that counts its invocations.
type counted struct {
	n  atomic.Int64
	fn scheduler.Invoker
}

func (c *counted) Invoke(ctx context.Context, call *scheduler.Call) abi.Response {
	c.n.Add(1)
	return c.fn.Invoke(ctx, call)
}

// moduleFn is fn as the knot of a module: a digest, a name and a
// manifest entry, which memoisation needs.
func moduleFn(inv scheduler.Invoker, name string) scheduler.Fn {
	return scheduler.Fn{Invoker: inv, Module: cas.Sum([]byte("module")).String(), Name: name,
		Spec: &abi.KnotSpec{Name: name, Inputs: []abi.InputSpec{{Name: "x", Type: "int"}}, Output: "int"}}
}

// memoTapestry is x -> d = f(x) -> e = f(d), and a Map of f over xs; f is
// a counted double.
func memoTapestry(t *testing.T, f scheduler.Fn) *scheduler.Tapestry {
	tp := scheduler.NewTapestry()
	node := must[*scheduler.Node](t)
	node(tp.AddParameter(scheduler.ParamDecl{Name: "x", Type: abi.Int, Default: 3, HasDefault: true}))
	node(tp.AddParameter(scheduler.ParamDecl{Name: "xs", Type: abi.ListOf(abi.Int), Default: []any{1, 2, 3}, HasDefault: true}))
	node(tp.AddKnot(scheduler.KnotDecl{ID: "d", Fn: f, Parents: map[string]string{"x": "param:x"}}))
	node(tp.AddKnot(scheduler.KnotDecl{ID: "e", Fn: f, Parents: map[string]string{"x": "d"}}))
	node(tp.AddMap(scheduler.MapDecl{ID: "m", Over: "param:xs", Fn: f, Bind: "x"}))
	return tp
}

func runOK(t *testing.T, s *scheduler.Scheduler, tp *scheduler.Tapestry, req scheduler.Request) *scheduler.Result {
	t.Helper()
	res, err := s.Run(t.Context(), tp, req)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Succeeded() {
		t.Fatalf("run %s: %s %+v", res.ID, res.Status, res.Errors)
	}
	return res
}

// TestMemoReusesHermeticKnots runs a tapestry twice: the second run
// invokes nothing, and its records name the first run's. With
// PIRN_TEST_DISPATCH=nats the first run's knots ran on remote workers:
// the lookup is the coordinator's, before dispatch.
func TestMemoReusesHermeticKnots(t *testing.T) {
	e := newEnv(t, scheduler.Config{})
	c := &counted{fn: double}
	tp := memoTapestry(t, moduleFn(c, "double"))
	first := runOK(t, e.s, tp, scheduler.Request{})
	if got := c.n.Load(); got != 5 { // d, e and three elements
		t.Fatalf("first run: %d invocations, want 5", got)
	}
	second := runOK(t, e.s, tp, scheduler.Request{})
	if got := c.n.Load(); got != 5 {
		t.Errorf("second run: %d invocations, want none", got-5)
	}
	for i, r := range second.Records {
		want := first.Records[i]
		switch r.Kind {
		case lineage.KindParameter, lineage.KindMap:
			if r.Reused() || !r.CacheKey.IsZero() {
				t.Errorf("%s: reused from %v, key %v; want neither", r.KnotID, r.ReusedFrom, r.CacheKey)
			}
			continue
		}
		if r.ReusedFrom != (lineage.Ref{RunID: first.ID, KnotID: r.KnotID}) || r.CacheKey != want.CacheKey || r.CacheKey.IsZero() ||
			r.Output != want.Output || r.Outcome != lineage.OK {
			t.Errorf("%s: %+v, want reused from %s/%s with key %v and output %v", r.KnotID, r, first.ID, r.KnotID, want.CacheKey, want.Output)
		}
	}
	if second.Outputs["e"] != int64(12) || fmt.Sprint(second.Outputs["m"]) != "[2 4 6]" {
		t.Errorf("second run outputs = %v", second.Outputs)
	}
	if remote && first.Records[2].Dispatcher != "nats" {
		t.Errorf("first run's d ran on %q, want nats", first.Records[2].Dispatcher)
	}

	// A new element and a new x: only what they change runs.
	runOK(t, e.s, tp, scheduler.Request{Params: map[string]any{"x": 6, "xs": []any{1, 2, 3, 4}}})
	if got := c.n.Load() - 5; got != 2 { // d (x=6) and element 4; e's input is 12 again: reused
		t.Errorf("run with x=6 and a fourth element: %d invocations, want 2", got)
	}
	runOK(t, e.s, tp, scheduler.Request{NoCache: true})
	if got := c.n.Load() - 7; got != 5 {
		t.Errorf("run with NoCache: %d invocations, want 5", got)
	}
}

// TestMemoSaltAndConstants: the operator's salt and a knot's constants
// are in the key.
func TestMemoSaltAndConstants(t *testing.T) {
	e := newEnv(t, scheduler.Config{})
	c := &counted{fn: add}
	f := moduleFn(c, "add")
	f.Spec.Inputs = []abi.InputSpec{{Name: "a", Type: "int"}, {Name: "b", Type: "int"}}
	build := func(b int) *scheduler.Tapestry {
		tp := scheduler.NewTapestry()
		must[*scheduler.Node](t)(tp.AddParameter(scheduler.ParamDecl{Name: "x", Type: abi.Int, Default: 3, HasDefault: true}))
		must[*scheduler.Node](t)(tp.AddKnot(scheduler.KnotDecl{ID: "k", Fn: f, Parents: map[string]string{"a": "param:x"}, Config: map[string]any{"b": b}}))
		return tp
	}
	runOK(t, e.s, build(1), scheduler.Request{})
	runOK(t, e.s, build(1), scheduler.Request{})
	runOK(t, e.s, build(2), scheduler.Request{})
	if got := c.n.Load(); got != 2 {
		t.Errorf("b=1, b=1, b=2: %d invocations, want 2", got)
	}
	salted, err := scheduler.New(scheduler.Config{CacheSalt: "v2"}, e.store, e.hist)
	if err != nil {
		t.Fatal(err)
	}
	runOK(t, salted, build(1), scheduler.Request{})
	runOK(t, salted, build(1), scheduler.Request{})
	if got := c.n.Load(); got != 3 {
		t.Errorf("another salt: %d invocations, want 3 (one more, then reused)", got)
	}
}

// plainHistory hides a history's lineage.Memo.
type plainHistory struct{ lineage.History }

// brokenMemo is a history whose lookups fail.
type brokenMemo struct{ *lineage.Memory }

func (brokenMemo) Reusable(context.Context, cas.Digest) (lineage.Record, bool, error) {
	return lineage.Record{}, false, errors.New("the index is down")
}

// TestMemoFailsClosed: whatever part of the key cannot be computed, or
// whatever makes reuse unsafe, the knot runs, every time.
func TestMemoFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func(scheduler.Fn) scheduler.Fn
		hist func(*lineage.Memory) lineage.History
	}{
		{"module not a digest", func(f scheduler.Fn) scheduler.Fn { f.Module = "arith.wasm"; return f }, nil},
		{"no module", func(f scheduler.Fn) scheduler.Fn { f.Module = ""; return f }, nil},
		{"no types", func(f scheduler.Fn) scheduler.Fn { f.Spec = nil; return f }, nil},
		{"granted", func(f scheduler.Fn) scheduler.Fn { f.Grants = []string{"clock"}; return f }, nil},
		{"stateful", func(f scheduler.Fn) scheduler.Fn { f.Grants = []string{"state"}; return f }, nil},
		{"cache off", func(f scheduler.Fn) scheduler.Fn { f.Cache = model.CacheOff; return f }, nil},
		{"history without an index", nil, func(m *lineage.Memory) lineage.History { return plainHistory{m} }},
		{"lookup fails", nil, func(m *lineage.Memory) lineage.History { return brokenMemo{m} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &counted{fn: double}
			f := moduleFn(c, "double")
			if tc.fn != nil {
				f = tc.fn(f)
			}
			m := lineage.NewMemory()
			var h lineage.History = m
			if tc.hist != nil {
				h = tc.hist(m)
			}
			s, err := scheduler.New(scheduler.Config{}, cas.NewMemory(), h)
			if err != nil {
				t.Fatal(err)
			}
			tp := memoTapestry(t, f)
			runOK(t, s, tp, scheduler.Request{})
			second := runOK(t, s, tp, scheduler.Request{})
			if got := c.n.Load(); got != 10 {
				t.Errorf("two runs: %d invocations, want 10", got)
			}
			for _, r := range second.Records {
				if r.Reused() {
					t.Errorf("%s reused from %v", r.KnotID, r.ReusedFrom)
				}
			}
		})
	}
}

// TestMemoOptIn: a granted knot whose Fn opts in (model.CacheOn) is
// reused, and its key covers its grants.
func TestMemoOptIn(t *testing.T) {
	e := newEnv(t, scheduler.Config{})
	c := &counted{fn: double}
	f := moduleFn(c, "double")
	f.Grants, f.Cache = []string{"state"}, model.CacheOn
	runOK(t, e.s, memoTapestry(t, f), scheduler.Request{})
	runOK(t, e.s, memoTapestry(t, f), scheduler.Request{})
	if got := c.n.Load(); got != 5 {
		t.Errorf("opted in: %d invocations in two runs, want 5", got)
	}
	f.Grants = []string{"clock", "state"}
	runOK(t, e.s, memoTapestry(t, f), scheduler.Request{})
	if got := c.n.Load(); got != 10 {
		t.Errorf("other grants: %d invocations, want 5 more", got-5)
	}
}

// TestMemoNotErrOrSkip: an err or a skip is never reused, and a value no
// longer in the data store is computed again.
func TestMemoNotErrOrSkip(t *testing.T) {
	e := newEnv(t, scheduler.Config{})
	var fail atomic.Bool
	fail.Store(true)
	c := &counted{fn: fn(func(_ context.Context, in map[string]any) (any, error) {
		if fail.Load() {
			return nil, errors.New("flaky")
		}
		return in["x"].(int64) + 1, nil // not x: the run puts x in the store
	})}
	tp := scheduler.NewTapestry()
	must[*scheduler.Node](t)(tp.AddParameter(scheduler.ParamDecl{Name: "x", Type: abi.Int, Default: 3, HasDefault: true}))
	must[*scheduler.Node](t)(tp.AddKnot(scheduler.KnotDecl{ID: "k", Fn: moduleFn(c, "id"), Parents: map[string]string{"x": "param:x"}}))
	for range 2 {
		res, err := e.s.Run(t.Context(), tp, scheduler.Request{})
		if err != nil {
			t.Fatal(err)
		}
		if r := res.Records[1]; r.Outcome != lineage.Err || !r.CacheKey.IsZero() {
			t.Errorf("failed knot: outcome %s, key %v; want err and no key", r.Outcome, r.CacheKey)
		}
	}
	fail.Store(false)
	ok := runOK(t, e.s, tp, scheduler.Request{})
	if got := c.n.Load(); got != 3 {
		t.Errorf("err, err, ok: %d invocations, want 3", got)
	}
	if err := e.store.Delete(t.Context(), ok.Records[1].Output); err != nil {
		t.Fatal(err)
	}
	again := runOK(t, e.s, tp, scheduler.Request{})
	if got := c.n.Load(); got != 4 || again.Records[1].Reused() {
		t.Errorf("value gone from the store: %d invocations (want 4), reused from %v", got, again.Records[1].ReusedFrom)
	}
	if has, _ := e.store.Has(t.Context(), ok.Records[1].Output); !has {
		t.Errorf("the value computed again is not in the store")
	}
	if r := runOK(t, e.s, tp, scheduler.Request{}).Records[1]; r.ReusedFrom != (lineage.Ref{RunID: again.ID, KnotID: "k"}) {
		t.Errorf("next run: k reused from %v, want %s/k", r.ReusedFrom, again.ID)
	}
}

// TestMemoReceiveErrors: a receive_errors knot's key covers what it was
// passed, so an ok parent and a failed one never share a key.
func TestMemoReceiveErrors(t *testing.T) {
	e := newEnv(t, scheduler.Config{})
	var fail atomic.Bool
	parent := fn(func(_ context.Context, in map[string]any) (any, error) {
		if fail.Load() {
			return nil, errors.New("down")
		}
		return map[string]any{"err": "not really"}, nil
	})
	c := &counted{fn: fn(func(_ context.Context, in map[string]any) (any, error) { return fmt.Sprint(in["x"]), nil })}
	f := moduleFn(c, "show")
	f.Spec.Inputs[0].Type = "any"
	f.Spec.Output = "str"
	tp := scheduler.NewTapestry()
	must[*scheduler.Node](t)(tp.AddKnot(scheduler.KnotDecl{ID: "p", Kind: model.KindSource, Fn: scheduler.Fn{Invoker: parent, Name: "host:p"}}))
	must[*scheduler.Node](t)(tp.AddKnot(scheduler.KnotDecl{ID: "k", Fn: f, Parents: map[string]string{"x": "p"}, Policy: model.ReceiveErrors}))
	var outs []any
	for _, failing := range []bool{false, true, false, true} {
		fail.Store(failing)
		res, err := e.s.Run(t.Context(), tp, scheduler.Request{})
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, res.Outputs["k"])
	}
	if got := c.n.Load(); got != 2 {
		t.Errorf("ok, err, ok, err parents: %d invocations, want 2", got)
	}
	if outs[0] != outs[2] || outs[1] != outs[3] || outs[0] == outs[1] {
		t.Errorf("outputs %q: want the ok parent's and the failed parent's to differ", outs)
	}
}

// TestMemoConcurrentRuns hammers one history's index with runs of the
// same tapestry at once: every run ends with the same outputs, each knot
// ran at least once and, the first runs done, never again.
func TestMemoConcurrentRuns(t *testing.T) {
	e := newEnv(t, scheduler.Config{})
	c := &counted{fn: double}
	tp := memoTapestry(t, moduleFn(c, "double"))
	want := runOK(t, e.s, tp, scheduler.Request{}).Outputs
	errs := make(chan error, 16)
	for range cap(errs) {
		go func() {
			res, err := e.s.Run(t.Context(), tp, scheduler.Request{})
			switch {
			case err != nil:
				errs <- err
			case fmt.Sprint(res.Outputs) != fmt.Sprint(want):
				errs <- fmt.Errorf("run %s: outputs %v, want %v", res.ID, res.Outputs, want)
			default:
				errs <- nil
			}
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := c.n.Load(); got != 5 {
		t.Errorf("%d invocations over 17 runs, want the first run's 5", got)
	}
	if s, err := e.hist.CacheStats(t.Context()); err != nil || s.Reused != 16*5 || s.Entries != 5 {
		t.Errorf("CacheStats = %+v, %v; want 5 entries, 80 reused", s, err)
	}
}
