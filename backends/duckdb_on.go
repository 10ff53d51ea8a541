//go:build duckdb

package backends

import (
	"context"

	"github.com/pirn-wasm/pirn/backends/duckdb"
)

// openDuckDB opens the DuckDB history at path.
func openDuckDB(ctx context.Context, path string) (History, error) {
	return duckdb.Open(ctx, duckdb.Config{Path: path})
}
