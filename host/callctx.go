package host

import (
	"context"
	"sync/atomic"
	"time"
)

// callCtx is an instance's reusable invocation context. It is done when
// the invocation's timer fires or the caller's context ends, and it carries
// the instance to the host functions. Reusing one per instance saves the
// allocations of context.WithTimeout and context.WithValue on every
// invocation (about a quarter of the host's per-call garbage).
//
// Its done channel is never replaced: once it closes, the instance gets a
// fresh callCtx (see instance.arm), because wazero's watchdog goroutine of
// an earlier call may still read it.
type callCtx struct {
	inst   *instance
	parent context.Context // written only by the goroutine that owns the instance
	done   chan struct{}
	closed atomic.Bool
	state  atomic.Int32 // why done closed: 0 open, stateTimeout, stateCancelled

	watched   context.Context // the parent whose cancellation is wired to done
	stopWatch func() bool
}

const (
	stateTimeout int32 = iota + 1
	stateCancelled
)

func newCallCtx(inst *instance) *callCtx {
	return &callCtx{inst: inst, parent: context.Background(), done: make(chan struct{})}
}

func (c *callCtx) Deadline() (time.Time, bool) { return c.parent.Deadline() }
func (c *callCtx) Done() <-chan struct{}       { return c.done }

func (c *callCtx) Err() error {
	switch c.state.Load() {
	case stateTimeout:
		return context.DeadlineExceeded
	case stateCancelled:
		return context.Canceled
	}
	return nil
}

func (c *callCtx) Value(key any) any {
	if key == (callKey{}) {
		return c.inst
	}
	return c.parent.Value(key)
}

// fire closes done once, recording why.
func (c *callCtx) fire(state int32) {
	if c.closed.CompareAndSwap(false, true) {
		c.state.Store(state)
		close(c.done)
	}
}

// arm prepares the instance's context for one invocation under parent and
// starts its timer. It returns the context and a function that stops the
// timer and reports whether the context stayed open throughout.
func (inst *instance) arm(parent context.Context) (context.Context, func() bool) {
	c := inst.cctx
	spent := c == nil || c.closed.Load()
	if c != nil && c.stopWatch != nil && parent != c.watched {
		// Stop watching the previous parent. If its cancellation has
		// already started firing c, c is spent even though it may not be
		// closed yet: take a fresh one, or this call would see the old
		// parent's cancellation as a timeout.
		if !c.stopWatch() {
			spent = true
		}
		c.stopWatch, c.watched = nil, nil
	}
	if spent {
		if c != nil && c.stopWatch != nil {
			c.stopWatch()
		}
		c = newCallCtx(inst)
		inst.cctx = c
		if inst.timer != nil {
			inst.timer.Stop()
			inst.timer = nil
		}
	}
	c.parent = parent
	inst.wake = c.done
	if parent.Done() != nil && parent != c.watched {
		c.watched = parent
		c.stopWatch = context.AfterFunc(parent, func() { c.fire(stateCancelled) })
	}
	if inst.lim.Timeout <= 0 {
		return c, func() bool { return !c.closed.Load() }
	}
	if inst.timer == nil {
		inst.timer = time.AfterFunc(inst.lim.Timeout, func() { c.fire(stateTimeout) })
	} else {
		inst.timer.Reset(inst.lim.Timeout)
	}
	return c, func() bool {
		inst.timer.Stop()
		return !c.closed.Load()
	}
}

// disarm releases the instance's timer and parent watch when it is closed.
func (inst *instance) disarm() {
	if inst.timer != nil {
		inst.timer.Stop()
	}
	if c := inst.cctx; c != nil && c.stopWatch != nil {
		c.stopWatch()
	}
}

// detached is a view of an invocation's context for work that may hold on
// to it after the invocation returns, such as net/http's connection
// goroutines: it sees the invocation's cancellation (done is never
// replaced) but none of callCtx's reused fields, and carries no values.
type detached struct {
	c        *callCtx
	deadline time.Time
	ok       bool
}

// detach returns the current invocation's context as a detached view.
// It must be called by the goroutine running the invocation.
func (c *callCtx) detach() context.Context {
	d, ok := c.parent.Deadline()
	return detached{c: c, deadline: d, ok: ok}
}

func (d detached) Deadline() (time.Time, bool) { return d.deadline, d.ok }
func (d detached) Done() <-chan struct{}       { return d.c.done }
func (d detached) Err() error                  { return d.c.Err() }
func (d detached) Value(any) any               { return nil }
