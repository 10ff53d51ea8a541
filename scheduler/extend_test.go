package scheduler_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/model"
	"github.com/pirn-wasm/pirn/scheduler"
)

// gated returns a knot that reports each call on started and returns its
// input x once gate is closed.
func gated(started chan<- string, gate <-chan struct{}) fn {
	return func(ctx context.Context, in map[string]any) (any, error) {
		started <- "go"
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return in["x"], nil
	}
}

// extensibleRun starts an extensible run of a tapestry x → slow and
// returns the tapestry, a function that lets slow finish, and the run's
// outcome; slow is running when it returns.
func extensibleRun(t *testing.T, req scheduler.Request) (*scheduler.Tapestry, func(), <-chan *scheduler.Result) {
	t.Helper()
	e := newEnv(t, scheduler.Config{Workers: 4})
	tp := scheduler.NewTapestry()
	node := must[*scheduler.Node](t)
	node(tp.AddParameter(scheduler.ParamDecl{Name: "x", Type: abi.Int}))
	started, gate := make(chan string, 1), make(chan struct{})
	node(tp.AddKnot(scheduler.KnotDecl{ID: "slow", Fn: f(gated(started, gate)), Parents: map[string]string{"x": "param:x"}}))
	req.Params = map[string]any{"x": 4}
	done := make(chan *scheduler.Result, 1)
	go func() {
		res, err := e.s.Run(context.Background(), tp, req)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	<-started
	var once sync.Once
	return tp, func() { once.Do(func() { close(gate) }) }, done
}

// TestExtendMidRun adds nodes while an extensible run goes: a knot whose
// parent is still running joins and runs, and is recorded as a terminal;
// one whose parent has finished is refused with an error naming it and
// is not added; a branch joins with its arms; a parameter joins with its
// default (and runs at once, like a source: no child can join after it)
// and is refused without one; a source (no parents) joins.
func TestExtendMidRun(t *testing.T) {
	tp, finish, done := extensibleRun(t, scheduler.Request{Extensible: true})
	node := must[*scheduler.Node](t)
	node(tp.AddKnot(scheduler.KnotDecl{ID: "after", Fn: f(double), Parents: map[string]string{"x": "slow"}}))
	_, err := tp.AddKnot(scheduler.KnotDecl{ID: "late", Fn: f(double), Parents: map[string]string{"x": "param:x"}})
	if err == nil || !strings.Contains(err.Error(), `parent "param:x" has already finished`) {
		t.Errorf("a knot whose parent finished: %v", err)
	}
	if _, ok := tp.Node("late"); ok {
		t.Error("the refused knot was added to the tapestry")
	}
	node(tp.AddBranch(scheduler.BranchDecl{ID: "br", Input: "after", Arms: []string{"even", "odd"},
		Fn: f(func(_ context.Context, in map[string]any) (any, error) {
			if in["input"].(int64)%2 == 0 {
				return "even", nil
			}
			return "odd", nil
		})}))
	node(tp.AddKnot(scheduler.KnotDecl{ID: "evened", Fn: f(double), Parents: map[string]string{"x": "br.even"}}))
	_, err = tp.AddParameter(scheduler.ParamDecl{Name: "y", Type: abi.Int})
	if err == nil || !strings.Contains(err.Error(), "started without a value") {
		t.Errorf("a parameter without a default: %v", err)
	}
	node(tp.AddParameter(scheduler.ParamDecl{Name: "z", Type: abi.Int, Default: 3, HasDefault: true}))
	node(tp.AddKnot(scheduler.KnotDecl{ID: "src", Kind: model.KindSource, Fn: f(func(context.Context, map[string]any) (any, error) { return "hi", nil })}))
	finish()
	res := <-done
	want := map[string]any{"slow": int64(4), "after": int64(8), "br": "even", "br.even": int64(8), "evened": int64(16), "param:z": int64(3), "src": "hi"}
	for id, v := range want {
		if res.Outputs[id] != v {
			t.Errorf("%s = %v, want %v (outputs %v)", id, res.Outputs[id], v, res.Outputs)
		}
	}
	if res.Outputs["br.odd"] != nil {
		t.Errorf("br.odd ran: %v", res.Outputs["br.odd"])
	}
	for _, id := range []string{"evened", "param:z", "src"} {
		if !contains(res.Terminals, id) {
			t.Errorf("terminals %v lack %s", res.Terminals, id)
		}
	}
	if len(res.Records) != 9 { // x, slow, after, br, br.even, br.odd, evened, z, src
		for _, r := range res.Records {
			t.Logf("%s %s", r.KnotID, r.Outcome)
		}
		t.Errorf("%d records, want 9", len(res.Records))
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// TestExtendNotJoined: a run not asked to be extensible, or asked for
// given terminals, takes in nothing; the node stays in the tapestry for
// the next run.
func TestExtendNotJoined(t *testing.T) {
	for _, req := range []scheduler.Request{{}, {Extensible: true, Terminals: []string{"slow"}}} {
		tp, finish, done := extensibleRun(t, req)
		must[*scheduler.Node](t)(tp.AddKnot(scheduler.KnotDecl{ID: "after", Fn: f(double), Parents: map[string]string{"x": "slow"}}))
		// Its parent finished: refused by an extensible run, not by these.
		must[*scheduler.Node](t)(tp.AddKnot(scheduler.KnotDecl{ID: "late", Fn: f(double), Parents: map[string]string{"x": "param:x"}}))
		finish()
		res := <-done
		if _, ran := res.Outputs["after"]; ran || len(res.Records) != 2 {
			t.Errorf("%+v: outputs %v, %d records", req, res.Outputs, len(res.Records))
		}
		if _, ok := tp.Node("after"); !ok {
			t.Errorf("%+v: the node is not in the tapestry", req)
		}
	}
}

// TestExtendConcurrently adds knots from several goroutines while
// extensible runs go (for the race detector): every knot is either
// refused with an error or added, and each run records exactly the
// knots that joined it.
func TestExtendConcurrently(t *testing.T) {
	e := newEnv(t, scheduler.Config{Workers: 4})
	tp := scheduler.NewTapestry()
	must[*scheduler.Node](t)(tp.AddParameter(scheduler.ParamDecl{Name: "x", Type: abi.Int}))
	must[*scheduler.Node](t)(tp.AddKnot(scheduler.KnotDecl{ID: "k0", Fn: f(double), Parents: map[string]string{"x": "param:x"}}))
	var wg sync.WaitGroup
	results := make(chan *scheduler.Result, 8)
	for r := range 8 {
		wg.Go(func() {
			res, err := e.s.Run(t.Context(), tp, scheduler.Request{Params: map[string]any{"x": r}, Extensible: true})
			if err != nil {
				t.Error(err)
				return
			}
			results <- res
		})
	}
	for g := range 4 {
		wg.Go(func() {
			for i := range 25 {
				parent := "k0"
				if i > 0 {
					parent = fmt.Sprintf("g%d-%d", g, i-1)
				}
				if _, ok := tp.Node(parent); !ok {
					parent = "k0"
				}
				_, _ = tp.AddKnot(scheduler.KnotDecl{ID: fmt.Sprintf("g%d-%d", g, i), Fn: f(double), Parents: map[string]string{"x": parent}})
			}
		})
	}
	wg.Wait()
	close(results)
	for res := range results {
		for _, r := range res.Records {
			if r.Outcome != lineage.OK {
				t.Errorf("run %s: %s %s (%v)", res.ID, r.KnotID, r.Outcome, res.Errors)
			}
		}
	}
}
