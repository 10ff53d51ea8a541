package pirn_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/scheduler"
)

// TestExtendRunningTapestry extends a tapestry of Wasm knots while an
// extensible run of it waits on a host function: a knot on the waiting
// node joins and runs; one on a finished parameter is refused with
// scheduler.ErrTooLate, which leaves the tapestry usable (Err stays nil).
func TestExtendRunningTapestry(t *testing.T) {
	t.Parallel()
	e := open(t, pirn.Config{})
	m := loadModules(t, e)
	tp := pirn.NewTapestry()
	node := must[*pirn.Node](t)
	x := node(tp.Parameter(pirn.Param{Name: "x", Type: "int"}))
	started, gate := make(chan struct{}), make(chan struct{})
	var once sync.Once
	wait := pirn.Func("wait", func(ctx context.Context, in struct {
		X int64 `pirn:"x"`
	}) (int64, error) {
		once.Do(func() { close(started) })
		<-gate
		return in.X, nil
	})
	slow := node(tp.Knot("slow", wait, pirn.In{"x": x}))
	done := make(chan *pirn.RunResult, 1)
	go func() {
		res, err := e.Run(context.Background(), tp, pirn.RunRequest{Params: map[string]any{"x": 21}, Extensible: true})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	<-started
	node(tp.Knot("doubled", m.arith.Knot("double"), pirn.In{"x": slow}))
	if _, err := tp.Knot("late", m.arith.Knot("double"), pirn.In{"x": x}); !errors.Is(err, scheduler.ErrTooLate) {
		t.Errorf("a knot on the finished parameter: %v, want ErrTooLate", err)
	}
	close(gate)
	res := <-done
	if res.Outputs["doubled"] != int64(42) {
		t.Errorf("outputs %v, want doubled = 42", res.Outputs)
	}
	if err := tp.Err(); err != nil {
		t.Errorf("Err() = %v after a refusal", err)
	}
	again := runT(t, e, tp, map[string]any{"x": 2}) // the next run has every node but the refused one
	if again.Outputs["doubled"] != int64(4) || again.Outputs["late"] != nil {
		t.Errorf("the next run: %v", again.Outputs)
	}
}
