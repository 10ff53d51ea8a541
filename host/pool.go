package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/model"
)

// Types of the err responses the host itself produces.
const (
	ErrTrap        = "Trap"             // the guest trapped: unreachable, bad memory access, stack overflow, ...
	ErrTimeout     = "Timeout"          // the invocation passed Limits.Timeout
	ErrCancelled   = "Cancelled"        // the caller's context ended
	ErrMemory      = "MemoryLimit"      // the guest hit Limits.Memory
	ErrLimit       = "LimitExceeded"    // MaxOutput or MaxLog
	ErrABI         = "ABIViolation"     // the guest broke the ABI (bad pointer, malformed response, ...)
	ErrExit        = "GuestExit"        // the guest called proc_exit (a Go runtime fatal error, for one)
	ErrInstantiate = "InstantiateError" // a fresh instance could not start
	ErrType        = "TypeError"        // an input or output does not fit the manifest's type
)

func fail(typ, msg, trace string) abi.Response {
	return abi.Response{Outcome: abi.OutcomeErr, Error: &abi.Error{Type: typ, Message: msg, Trace: trace}}
}

// pool holds the instances of one module under one set of limits.
type pool struct {
	m        *Module
	c        *class
	compiled wazero.CompiledModule
	plugin   *extism.CompiledPlugin // for an Extism plugin
	lim      model.Limits
	grants   model.Grants
	state    model.State     // resolved: StateReset, StateFresh or StateKeep
	fsc      wazero.FSConfig // the granted directories, or nil
	roots    []*os.Root      // behind fsc, closed with the pool
	idle     chan *instance
	slots    chan struct{} // one token per live instance

	mu      sync.Mutex
	closed  bool
	created atomic.Int64 // instances ever started, for tests and metrics
}

func newPool(m *Module, c *class, cm wazero.CompiledModule, lim model.Limits) *pool {
	return &pool{m: m, c: c, compiled: cm, lim: lim,
		idle: make(chan *instance, lim.MaxInstances), slots: make(chan struct{}, lim.MaxInstances)}
}

// get returns an idle instance, a new one if the pool has room, or waits.
func (p *pool) get(ctx context.Context) (*instance, error) {
	select {
	case inst := <-p.idle:
		return inst, nil
	default:
	}
	select {
	case inst := <-p.idle:
		return inst, nil
	case p.slots <- struct{}{}:
		inst, err := p.newInstance(ctx)
		if err != nil {
			<-p.slots
			return nil, err
		}
		return inst, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// release returns inst to the pool, or discards it if !keep or it is due
// for recycling. A recycled instance is replaced in the background.
func (p *pool) release(inst *instance, keep bool) {
	recycle := inst.calls >= p.lim.MaxInvocations || uint64(inst.mem.Size()) > p.lim.HighWater || p.state == model.StateFresh
	if keep && !recycle && inst.snap != nil {
		recycle = !inst.reset()
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if keep && !recycle && !closed {
		p.idle <- inst
		return
	}
	inst.close()
	<-p.slots
	if !closed {
		p.refill()
	}
}

// refill starts an instance in the background if the pool has room, so
// that the next invocation finds one warm.
// warm starts one instance now, unless the pool has made one already,
// so that the first invocation finds it ready rather than sharing the
// machine with its start.
func (p *pool) warm(ctx context.Context) error {
	if p.created.Load() > 0 {
		return nil
	}
	select {
	case p.slots <- struct{}{}:
	default:
		return nil
	}
	inst, err := p.newInstance(ctx)
	if err != nil {
		<-p.slots
		return err
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		inst.close()
		<-p.slots
		return errClosed
	}
	p.idle <- inst
	return nil
}

func (p *pool) refill() {
	h := p.m.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.wg.Go(func() {
		select {
		case p.slots <- struct{}{}:
		default:
			return
		}
		inst, err := p.newInstance(context.Background())
		if err != nil {
			<-p.slots
			h.cfg.Logger.Warn("pre-instantiating failed", AttrModule, p.m.name, "err", err)
			return
		}
		p.mu.Lock()
		closed := p.closed
		p.mu.Unlock()
		if closed {
			inst.close()
			<-p.slots
			return
		}
		p.idle <- inst
	})
}

func (p *pool) close(ctx context.Context) {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	defer func() {
		if p.plugin != nil {
			p.plugin.Close(ctx)
		}
		for _, r := range p.roots {
			r.Close()
		}
	}()
	for {
		select {
		case inst := <-p.idle:
			inst.close()
			<-p.slots
		default:
			return
		}
	}
}

// instance is one live module instance and the state of its current
// invocation. It is used by one goroutine at a time.
type instance struct {
	p      *pool
	lim    model.Limits
	mod    api.Module
	plugin *extism.Plugin // instead of mod, for an Extism plugin
	invoke api.Function
	mem    api.Memory
	lin    *resetMemory // mem's bytes, if the host mapped them (see newInstance)
	stack  []uint64
	calls  int

	// The current invocation.
	runID, knotID string
	req, resp     []byte
	inputTaken    bool
	outputSet     bool
	violation     *violation
	logged        int     // bytes of log and stdout/stderr this invocation
	records       int     // log records this invocation
	kept          abi.Log // the log lines kept of this invocation
	httpResp      []byte  // the pending pirn.http response
	stderrTail    []byte
	stdout        *stream
	stderr        *stream

	cctx  *callCtx    // reusable invocation context
	timer *time.Timer // its timeout timer

	// What a reset restores (StateReset), and the fake clock and random
	// source of an instance granted neither.
	snap  *snapshot
	clock fakeClock
	rand  *fakeRandom
	// wake closes when the current call (an invocation, or the start
	// function) must end: a granted sleep waits for it.
	wake <-chan struct{}
}

const stderrTailMax = 4 << 10

func (p *pool) newInstance(ctx context.Context) (*instance, error) {
	inst := &instance{p: p, lim: p.lim, stack: make([]uint64, 1), rand: newFakeRandom()}
	inst.stdout = &stream{inst: inst, name: "stdout", level: slog.LevelInfo}
	inst.stderr = &stream{inst: inst, name: "stderr", level: slog.LevelWarn}
	if p.plugin != nil {
		return p.newPluginInstance(ctx, inst)
	}
	cfg := p.configure(wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions("_initialize").
		WithStdout(inst.stdout).
		WithStderr(inst.stderr), inst)
	inst.begin("", "")
	cctx, cancel := inst.callContext(ctx)
	// Where memory can be mapped (reserveMaps), every instance's linear
	// memory is, whatever its state: outside the Go heap, it takes only
	// the pages the guest touches, growing it copies nothing, and it does
	// not raise the GC's heap target (a Go guest's memory is several MiB;
	// docs/performance.md, "Peak memory of a 5000-knot run").
	var mem *resetMemory
	if p.state == model.StateReset || reserveMaps {
		cctx = experimental.WithMemoryAllocator(cctx, allocator{&mem})
	}
	mod, err := p.c.rt.InstantiateModule(cctx, p.compiled, cfg)
	cancel()
	inst.stdout.flush()
	inst.stderr.flush()
	if err != nil {
		r := inst.classify(ctx, err)
		return nil, fmt.Errorf("instantiate: %s: %s", r.Error.Type, r.Error.Message)
	}
	p.created.Add(1)
	inst.mod = mod
	inst.invoke = mod.ExportedFunction(abi.ExportInvoke)
	inst.mem = mod.Memory()
	inst.lin = mem
	if p.state == model.StateReset {
		// The state once initialised is what every invocation starts
		// from.
		inst.snap = &snapshot{mem: mem}
		if mem == nil {
			err = errors.New("the memory was not allocated by the host")
		} else {
			err = inst.snap.take(mod, p.m.shape.Globals)
		}
		if err != nil {
			mod.Close(context.Background())
			return nil, fmt.Errorf("instantiate: snapshot for resetting: %w", err)
		}
		inst.reset()
	}
	return inst, nil
}

// reset restores the instance to its snapshot, and its fake clock and
// random source to their start; false if it cannot be restored.
func (inst *instance) reset() bool {
	inst.clock.readings = 0
	if inst.rand != nil {
		inst.rand.reset()
	}
	return inst.snap.restore()
}

func (inst *instance) close() {
	inst.disarm()
	if inst.plugin != nil {
		inst.plugin.Close(context.Background())
		return
	}
	inst.mod.Close(context.Background())
}

// begin resets the per-invocation state.
func (inst *instance) begin(runID, knotID string) {
	inst.runID, inst.knotID = runID, knotID
	inst.inputTaken, inst.outputSet = false, false
	inst.violation = nil
	inst.logged, inst.records = 0, 0
	inst.kept = abi.Log{}
	inst.httpResp = nil
	inst.stderrTail = inst.stderrTail[:0]
	inst.resp = inst.resp[:0]
}

// callContext bounds ctx by the timeout and attaches the instance for the
// host functions.
func (inst *instance) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	cancel := context.CancelFunc(func() {})
	if inst.lim.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, inst.lim.Timeout)
	}
	inst.wake = ctx.Done()
	return context.WithValue(ctx, callKey{}, inst), cancel
}

// enter calls a () -> i32 export with a fresh invocation state.
func (inst *instance) enter(ctx context.Context, export string) (uint64, error) {
	inst.begin("", "")
	cctx, stop := inst.arm(ctx)
	var res []uint64
	err := errNotStarted
	if ctx.Err() == nil {
		res, err = inst.mod.ExportedFunction(export).Call(cctx)
	}
	if !stop() && err == nil {
		err = errors.New("interrupted")
	}
	inst.stdout.flush()
	inst.stderr.flush()
	if err != nil {
		r := inst.classify(ctx, err)
		return 0, fmt.Errorf("%s: %s: %s", export, r.Error.Type, r.Error.Message)
	}
	return res[0], nil
}

// call performs one invocation and reports whether the instance may be
// reused.
func (inst *instance) call(ctx context.Context, knot string, c *Call) (abi.Response, bool) {
	inst.begin(c.RunID, c.KnotID)
	inst.calls++
	inst.req = abi.AppendRequest(inst.req[:0], &abi.Request{Knot: knot, Inputs: c.Inputs, Config: c.Config})
	cctx, stop := inst.arm(ctx)
	inst.stack[0] = uint64(len(inst.req))
	err := errNotStarted
	if ctx.Err() == nil { // a metered guest notices only at its first tick
		err = inst.invoke.CallWithStack(cctx, inst.stack)
	}
	open := stop()
	inst.stdout.flush()
	inst.stderr.flush()
	if len(inst.req) > 1<<20 {
		inst.req = nil // do not pin a large request buffer
	}
	if err != nil {
		return inst.classify(ctx, err), false
	}
	// The timer or the caller's cancellation fired just as the call returned:
	// the result stands, but the instance's context is spent.
	keep := open
	if v := inst.violation; v != nil {
		return fail(v.typ, v.msg, inst.trace("")), false
	}
	if rc := int32(inst.stack[0]); rc != 0 {
		return fail(ErrABI, fmt.Sprintf("%s returned %d", abi.ExportInvoke, rc), inst.trace("")), false
	}
	if !inst.outputSet {
		return fail(ErrABI, fmt.Sprintf("%s returned without calling %s.%s", abi.ExportInvoke, abi.ImportModule, abi.ImportOutput), inst.trace("")), false
	}
	r, err := abi.DecodeResponse(inst.resp)
	if err != nil {
		return fail(ErrABI, err.Error(), ""), false
	}
	if cap(inst.resp) > 1<<20 {
		inst.resp = nil
	}
	switch r.Outcome {
	case abi.OutcomeOK:
		v, err := cas.Canonicalize(r.Value)
		if err != nil {
			return fail(ErrABI, "output value: "+err.Error(), ""), false
		}
		r.Value = v
	case abi.OutcomeErr:
		if r.Error.Detail != nil {
			d, err := cas.Canonicalize(r.Error.Detail)
			if err != nil {
				return fail(ErrABI, "error detail: "+err.Error(), ""), false
			}
			r.Error.Detail = d
		}
	case abi.OutcomeSkip:
		if r.Skip.Detail != nil {
			d, err := cas.Canonicalize(r.Skip.Detail)
			if err != nil {
				return fail(ErrABI, "skip detail: "+err.Error(), ""), false
			}
			r.Skip.Detail = d
		}
	}
	return r, keep
}

// errNotStarted is a call not made because its context had ended.
var errNotStarted error = sys.NewExitError(sys.ExitCodeContextCanceled)

// classify turns an error from a guest call into an err response.
func (inst *instance) classify(ctx context.Context, err error) abi.Response {
	msg, stack, _ := strings.Cut(err.Error(), "\n")
	if v := inst.violation; v != nil {
		return fail(v.typ, v.msg, inst.trace(stack))
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch code := exit.ExitCode(); code {
		case sys.ExitCodeDeadlineExceeded, sys.ExitCodeContextCanceled:
			if ctx.Err() != nil {
				return fail(ErrCancelled, "invocation cancelled: "+context.Cause(ctx).Error(), inst.trace(""))
			}
			timeout := fmt.Sprintf("exceeded its timeout of %s", inst.lim.Timeout)
			if inst.nearMemoryLimit() {
				r := inst.memoryFailure()
				r.Error.Message += "; the invocation then " + timeout
				return r
			}
			return fail(ErrTimeout, "invocation "+timeout, inst.trace(""))
		default:
			if inst.nearMemoryLimit() {
				return inst.memoryFailure()
			}
			return fail(ErrExit, fmt.Sprintf("guest exited with status %d", code), inst.trace(""))
		}
	}
	if inst.nearMemoryLimit() {
		return inst.memoryFailure()
	}
	if m, ok := isTrap(err); ok {
		msg = m
	}
	return fail(ErrTrap, msg, inst.trace(stack))
}

// nearMemoryLimit reports whether the guest's memory is close enough to
// the limit, or its stderr says so, that a failure is best explained by it.
func (inst *instance) nearMemoryLimit() bool {
	if strings.Contains(string(inst.stderrTail), "out of memory") {
		return true
	}
	return inst.mem != nil && uint64(inst.mem.Size()) >= inst.lim.Memory-inst.lim.Memory/8
}

func (inst *instance) memoryFailure() abi.Response {
	if inst.plugin != nil {
		// inst.mem is the Extism kernel's memory, not the plugin's.
		return fail(ErrMemory, fmt.Sprintf("memory limit reached: the plugin hit the limit Memory=%d", inst.lim.Memory), inst.trace(""))
	}
	var size uint32
	if inst.mem != nil {
		size = inst.mem.Size()
	}
	return fail(ErrMemory, fmt.Sprintf("memory limit reached: linear memory is %d bytes of the limit Memory=%d", size, inst.lim.Memory), inst.trace(""))
}

// trace joins a wasm stack trace with the tail of the guest's stderr.
func (inst *instance) trace(stack string) string {
	var b strings.Builder
	if stack != "" {
		b.WriteString(strings.TrimSpace(stack))
	}
	if len(inst.stderrTail) > 0 {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString("stderr:\n")
		b.Write(inst.stderrTail)
	}
	return b.String()
}

// charge accounts n bytes of guest output against MaxLog, and, if record,
// one log record against MaxLogRecords. It reports the limit passed, if
// any, as a violation (kept as the invocation's first).
func (inst *instance) charge(n int, record bool) *violation {
	inst.logged += n
	if record {
		inst.records++
	}
	var v *violation
	switch {
	case inst.logged > inst.lim.MaxLog:
		v = &violation{typ: ErrLimit, msg: fmt.Sprintf("log output exceeds the limit MaxLog=%d bytes", inst.lim.MaxLog)}
	case inst.records > inst.lim.MaxLogRecords:
		v = &violation{typ: ErrLimit, msg: fmt.Sprintf("log output exceeds the limit MaxLogRecords=%d records", inst.lim.MaxLogRecords)}
	default:
		return nil
	}
	if inst.violation == nil {
		inst.violation = v
	}
	return inst.violation
}

// noteStderr keeps the last lines of stderr for error traces.
func (inst *instance) noteStderr(stream string, line []byte) {
	if stream != "stderr" {
		return
	}
	inst.stderrTail = append(inst.stderrTail, line...)
	inst.stderrTail = append(inst.stderrTail, '\n')
	if over := len(inst.stderrTail) - stderrTailMax; over > 0 {
		inst.stderrTail = append(inst.stderrTail[:0], inst.stderrTail[over:]...)
	}
}

// keep records a line the guest logged (through the log import, the
// Extism logger, stdout or stderr) for the invocation's response.
func (inst *instance) keep(level slog.Level, msg string) {
	l := abi.LogInfo
	switch {
	case level >= slog.LevelError:
		l = abi.LogError
	case level >= slog.LevelWarn:
		l = abi.LogWarn
	case level < slog.LevelInfo:
		l = abi.LogDebug
	}
	inst.kept.Add(l, strings.ToValidUTF8(msg, "\uFFFD"))
}

func (inst *instance) log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	lg := inst.p.m.h.cfg.Logger
	if !lg.Enabled(ctx, level) {
		return
	}
	base := []slog.Attr{slog.String(AttrRun, inst.runID), slog.String(AttrKnot, inst.knotID), slog.String(AttrModule, inst.p.m.name)}
	lg.LogAttrs(ctx, level, msg, append(base, attrs...)...)
}
