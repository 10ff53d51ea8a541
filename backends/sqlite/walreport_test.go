package sqlite

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/lineage"
)

// TestWALReport prints, for chains of 10 and 100 knots started and
// recorded as pirn run does, how many pages each commit writes to the
// WAL and to which b-tree they belong: the evidence behind
// docs/performance.md's "Recorded runs". It reads the frames' page numbers
// from the -wal file and names them with the dbstat table. Run with
// PIRN_WAL_REPORT=1 go test -run TestWALReport -v ./backends/sqlite.
func TestWALReport(t *testing.T) {
	if os.Getenv("PIRN_WAL_REPORT") == "" {
		t.Skip("PIRN_WAL_REPORT=1 prints the report")
	}
	for _, knots := range []int{10, 100} {
		t.Run(fmt.Sprint(knots), func(t *testing.T) { walReport(t, knots) })
	}
}

func walReport(t *testing.T, knots int) {
	path := filepath.Join(t.TempDir(), "history.db")
	h := openTest(t, path)
	r, err := chainRun("", knots)
	if err != nil {
		t.Fatal(err)
	}
	const runs = 300 // fewer than checkpointEvery/2 runs after the WAL restarts
	for range runs {
		var rnd [16]byte
		rand.Read(rnd[:])
		binary.BigEndian.PutUint64(rnd[:8], uint64(time.Now().UnixMilli())<<16|uint64(rnd[6])<<8|uint64(rnd[7]))
		r.ID = "run-" + hex.EncodeToString(rnd[:])
		for j := range r.Records {
			r.Records[j].RunID = r.ID
		}
		if err := h.StartRun(t.Context(), &lineage.Run{ID: r.ID, Pipeline: r.Pipeline, Status: lineage.Running, StartedAt: r.StartedAt}); err != nil {
			t.Fatal(err)
		}
		if err := h.RecordRun(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	wal, err := os.ReadFile(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	names := map[uint32]string{}
	rows, err := h.db.QueryContext(t.Context(), "SELECT name, pageno, pagetype FROM dbstat")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, typ string
		var page uint32
		if err := rows.Scan(&name, &page, &typ); err != nil {
			t.Fatal(err)
		}
		names[page] = name + " " + typ
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	pageSize := int(binary.BigEndian.Uint32(wal[8:12]))
	perTree := map[string]int{}
	var commits [2]struct{ n, frames int } // markers, records
	var frames, pending int
	isRecord := false
	for off := 32; off+24+pageSize <= len(wal); off += 24 + pageSize {
		name := names[binary.BigEndian.Uint32(wal[off:])]
		if name == "" {
			name = "(freed since)"
		}
		perTree[name]++
		frames++
		pending++
		isRecord = isRecord || strings.HasPrefix(name, "lineage ")
		if binary.BigEndian.Uint32(wal[off+4:]) != 0 { // a commit's last frame
			c := &commits[0]
			if isRecord {
				c = &commits[1]
			}
			c.n++
			c.frames += pending
			pending, isRecord = 0, false
		}
	}
	if commits[0].n == 0 || commits[1].n == 0 {
		t.Fatalf("the WAL holds %d marker and %d record commits", commits[0].n, commits[1].n)
	}
	perRun := float64(commits[0].n+commits[1].n) / 2
	t.Logf("%d-knot runs: %d frames of %d bytes in %d commits; per run %.1f frames (marker commit %.1f, record commit %.1f)",
		knots, frames, pageSize, commits[0].n+commits[1].n, float64(frames)/perRun,
		float64(commits[0].frames)/float64(commits[0].n), float64(commits[1].frames)/float64(commits[1].n))
	trees := make([]string, 0, len(perTree))
	for k := range perTree {
		trees = append(trees, k)
	}
	slices.SortFunc(trees, func(a, b string) int { return perTree[b] - perTree[a] })
	for _, k := range trees {
		t.Logf("  %-40s %6.2f a run", k, float64(perTree[k])/perRun)
	}
}
