package host

import (
	"context"
	"runtime"

	"github.com/tetratelabs/wazero/experimental"
)

// maxCompileWorkers bounds the goroutines compiling one module: each
// holds a compiler of its own, about 15-20 MiB at its peak for a Go
// module's largest functions.
const maxCompileWorkers = 4

// compileContext bounds compiling a module by Config.CompileTimeout and
// spreads the module's functions over several goroutines (wazero's
// compilation workers): GOMAXPROCS shared among the compiles under way,
// at least 2 and at most maxCompileWorkers each. A Go module has 2,700
// functions, about 1.7 s of CPU to compile. At least 2, because only
// wazero's compilation workers look at the context, between one function
// and the next: compiling on one goroutine would run to the end, however
// long after the timeout. The returned function must be called when the
// compile is over.
func (h *Host) compileContext(ctx context.Context) (context.Context, func()) {
	n := int(h.compiling.Add(1))
	workers := max(2, min(maxCompileWorkers, runtime.GOMAXPROCS(0)/n))
	cctx, cancel := context.WithTimeoutCause(ctx, h.cfg.CompileTimeout, errCompileTimeout)
	return experimental.WithCompilationWorkers(cctx, workers), func() {
		cancel()
		h.compiling.Add(-1)
	}
}
