package scheduler_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/scheduler"
)

// logger answers each call with its inputs' sum and a log line naming
// them, as a Wasm knot's response carries the lines it logged.
func logger(many int) scheduler.Fn {
	return scheduler.Fn{Name: "host:logger", Invoker: invoker(func(_ context.Context, c *scheduler.Call) abi.Response {
		var s int64
		var names []string
		for _, a := range c.Inputs {
			v, _ := cas.Decode(a.Value)
			if n, ok := v.(int64); ok {
				s += n
			}
			names = append(names, fmt.Sprintf("%s=%v", a.Name, v))
		}
		r := abi.OK(abi.AppendInt(nil, s))
		for range many {
			r.Logs = append(r.Logs, abi.LogLine{Level: abi.LogInfo, Msg: strings.Join(names, " ")})
		}
		return r
	})}
}

// TestLogsOfKinds: a Map's elements keep each their own lines, a
// pairwise Reduce keeps its steps' lines in one record (bounded as one
// invocation's), and the Map node itself, which runs nothing, has none.
func TestLogsOfKinds(t *testing.T) {
	tp := scheduler.NewTapestry()
	paramX(t, tp, abi.Any)
	must[*scheduler.Node](t)(tp.AddMap(scheduler.MapDecl{ID: "m", Over: "x", Fn: logger(1), Bind: "item"}))
	must[*scheduler.Node](t)(tp.AddReduce(scheduler.ReduceDecl{ID: "total", Of: "x", Fn: logger(40), Pairwise: true, Initial: 0}))
	e := newEnv(t, scheduler.Config{Workers: 2})
	res, err := e.s.Run(t.Context(), tp, scheduler.Request{Params: map[string]any{"x": []any{1, 2, 3}}})
	if err != nil || !res.Succeeded() {
		t.Fatalf("run: %v, %+v", err, res.Errors)
	}
	lines := func(d cas.Digest) []any {
		t.Helper()
		if d.IsZero() {
			return nil
		}
		b, err := e.store.Get(t.Context(), d)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := cas.Decode(b)
		l, _ := v.([]any)
		return l
	}
	recs := map[string]lineage.Record{}
	for _, r := range res.Records {
		recs[r.KnotID] = r
	}
	for i := range 3 {
		got := lines(recs[lineage.ElementID("m", i)].Logs)
		want := fmt.Sprintf("item=%d", i+1)
		if len(got) != 1 || got[0].(map[string]any)["msg"] != want {
			t.Errorf("element %d logs %v, want one line %q", i, got, want)
		}
	}
	if got := lines(recs["m"].Logs); got != nil {
		t.Errorf("the Map node logs %v, want none", got)
	}
	// 3 steps of 40 lines: 100 kept and a count of the other 20.
	got := lines(recs["total"].Logs)
	if len(got) != abi.MaxLogLines+1 || got[0].(map[string]any)["msg"] != "acc=0 item=1" ||
		got[40].(map[string]any)["msg"] != "acc=1 item=2" || !strings.HasPrefix(got[abi.MaxLogLines].(map[string]any)["msg"].(string), "[20 more log lines dropped") {
		t.Errorf("reduce logs: %d lines, want %d ending with a count of 20 dropped", len(got), abi.MaxLogLines+1)
	}
}
