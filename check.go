package pirn

import (
	"context"

	"github.com/pirn-wasm/pirn/internal/loom"
	"github.com/pirn-wasm/pirn/pipeline"
)

// Check validates the pipeline at path without running it, reporting all it
// finds: YAML and schema errors, missing, unpinned or mismatched modules,
// unknown knots, missing and unknown inputs, cycles, type mismatches between
// connected knots, expressions that do not compile, and nodes that feed no
// declared output. Errors would stop the pipeline from running; warnings
// (an edge that may not convert, an unused parameter) would not. Every
// issue names the file and line.
func (e *Engine) Check(ctx context.Context, path string) (errs, warnings pipeline.Errors, err error) {
	return loom.Check(ctx, e.host, path, loom.LoadOptions{AllowUnpinned: e.cfg.AllowUnpinned, Logger: e.cfg.Logger})
}
