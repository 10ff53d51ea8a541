package sqlite_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/pirn-wasm/pirn/backends/sqlite"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "pirn-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	h, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, ".pirn", "history.db")})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()

	five, err := cas.Hash(5)
	if err != nil {
		log.Fatal(err)
	}
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	run := &lineage.Run{ID: "run-1", Pipeline: "quickstart", Status: lineage.Succeeded, Terminals: []string{"x"},
		StartedAt: at, FinishedAt: at.Add(time.Second),
		Records: []lineage.Record{{RunID: "run-1", KnotID: "x", Knot: lineage.KnotParameter,
			Output: five, Outcome: lineage.OK, StartedAt: at, FinishedAt: at}}}
	if err := h.RecordRun(ctx, run); err != nil {
		log.Fatal(err)
	}

	runs, err := h.Runs(ctx, lineage.Query{Pipeline: "quickstart"})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range runs {
		fmt.Println(s.ID, s.Status, s.Knots, s.FinishedAt.Sub(s.StartedAt))
	}
	recs, err := h.ByOutput(ctx, five)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range recs {
		fmt.Println(r.RunID, r.KnotID, r.Outcome)
	}
	// Output:
	// run-1 succeeded 1 1s
	// run-1 x ok
}
