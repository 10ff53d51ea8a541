package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// BenchmarkView5000 records a 5000-knot chain (the Go PDK's inc), then
// measures pirn view on it (the whole process: open the SQLite history,
// read the run, decode values, look up other producers, write the file)
// and the time Chromium takes to open the file until its script has run
// (the ready marker). docs/performance.md, "Run view".
func BenchmarkView5000(b *testing.B) {
	state := b.TempDir()
	abs, err := filepath.Abs("../../examples/wasm/go/arith/arith.wasm")
	if err != nil {
		b.Fatal(err)
	}
	var y strings.Builder
	fmt.Fprintf(&y, "name: chain5000\nmodules:\n  arith: %s\nnodes:\n  - {id: x, type: parameter, type_: int, default: 1}\n", abs)
	prev := "x"
	for i := range 5000 {
		fmt.Fprintf(&y, "  - {id: k%d, type: knot, module: arith, knot: inc, parents: {x: %s}}\n", i, prev)
		prev = fmt.Sprintf("k%d", i)
	}
	pipeline := filepath.Join(state, "chain5000.yaml")
	if err := os.WriteFile(pipeline, []byte(y.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	if r, err := execPirn("run", "--unpinned", "--state", state, "--run-id", "chain", pipeline); err != nil || r.code != 0 {
		b.Fatalf("pirn run: %v %+v", err, r)
	}
	file := filepath.Join(state, "run.html")
	b.Run("pirn-view", func(b *testing.B) {
		for b.Loop() {
			if r, err := execPirn("view", "--state", state, "chain", "-o", file); err != nil || r.code != 0 {
				b.Fatalf("pirn view: %v %+v", err, r)
			}
		}
		fi, err := os.Stat(file)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(fi.Size())/(1<<20), "MiB/file")
	})
	b.Run("chromium-open", func(b *testing.B) {
		ctx := browser(b)
		for b.Loop() {
			do(b, ctx, "open", chromedp.Navigate("about:blank"))
			do(b, ctx, "open", chromedp.Navigate("file://"+file))
			waitSel(b, ctx, `body[data-ready="1"]`)
		}
	})
}
