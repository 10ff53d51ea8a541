//go:build !duckdb

package backends

import (
	"context"
	"fmt"
)

// openDuckDB is the stand-in of a build without the tag duckdb, whose
// DuckDB history (backends/duckdb, a cgo package) is left out.
func openDuckDB(context.Context, string) (History, error) {
	return nil, fmt.Errorf("%w: this pirn was built without DuckDB (a cgo dependency, behind the build tag duckdb); build it with go build -tags duckdb ./cmd/pirn", ErrNotBuilt)
}
