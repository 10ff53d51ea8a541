package lineage_test

import (
	"testing"

	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/lineagetest"
)

func TestMemory(t *testing.T) {
	lineagetest.RunHistory(t, func(t *testing.T) lineage.History { return lineage.NewMemory() })
}
