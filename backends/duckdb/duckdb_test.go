//go:build duckdb

package duckdb

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/lineagetest"
)

var equateTimes = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

// openTest opens a history at path, closed at the end of the test.
func openTest(t testing.TB, path string) *History {
	t.Helper()
	h, err := Open(t.Context(), Config{Path: path})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

func TestHistory(t *testing.T) {
	lineagetest.RunHistory(t, func(t *testing.T) lineage.History {
		return openTest(t, filepath.Join(t.TempDir(), "history.duckdb"))
	})
}
