//go:build duckdb

package duckdb

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/lineagetest"
)

// helperEnv makes the test binary a helper process (see TestMain): "<path>"
// opens the history at path, starts the run "run-killed", prints "started"
// and waits to be killed.
const helperEnv = "PIRN_DUCKDB_TEST_HELPER"

func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		h, err := Open(context.Background(), Config{Path: path})
		if err == nil {
			err = h.StartRun(context.Background(), &lineage.Run{ID: "run-killed", Pipeline: "p", Status: lineage.Running, StartedAt: time.Now()})
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("started")
		time.Sleep(time.Minute) // killed before
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func status(t *testing.T, h *History, id string) lineage.Status {
	t.Helper()
	r, err := h.Run(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r.Status
}

// TestInterruptedRuns: Histories of one process share a file; a run one
// of them started is Running for the others, which cannot start it, and
// becomes Interrupted when its History closes without recording it.
func TestInterruptedRuns(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "history.duckdb")
	h1, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"run-a", "run-b"} {
		if err := h1.StartRun(ctx, &lineage.Run{ID: id, Pipeline: "p", Status: lineage.Running, StartedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h1.StartRun(ctx, &lineage.Run{ID: "run-a", Status: lineage.Running}); err == nil || !strings.Contains(err.Error(), "this history is running it") {
		t.Errorf("starting run-a again: %v, want an error", err)
	}
	if err := h1.StartRun(ctx, &lineage.Run{ID: "run-c", Status: lineage.Succeeded}); err == nil {
		t.Error("StartRun of a run that is not running: no error")
	}
	h2 := openTest(t, path) // its Open leaves h1's runs alone
	if s := status(t, h2, "run-a"); s != lineage.Running {
		t.Errorf("run-a while in progress, seen by another History: %s", s)
	}
	if err := h2.StartRun(ctx, &lineage.Run{ID: "run-a", Status: lineage.Running}); err == nil || !strings.Contains(err.Error(), "another history in this process is running it") {
		t.Errorf("starting run-a in another History: %v, want an error", err)
	}
	done := lineagetest.SampleRun(t, "run-b", 0)
	if err := h1.RecordRun(ctx, done); err != nil {
		t.Fatal(err)
	}
	if err := h1.Close(); err != nil {
		t.Fatal(err)
	}
	if s := status(t, h2, "run-a"); s != lineage.Interrupted {
		t.Errorf("run-a after its History closed: %s, want interrupted", s)
	}
	if s := status(t, h2, "run-b"); s != done.Status {
		t.Errorf("run-b: %s, want %s", s, done.Status)
	}
	// An interrupted run may be started again.
	if err := h2.StartRun(ctx, &lineage.Run{ID: "run-a", Status: lineage.Running}); err != nil {
		t.Errorf("starting run-a again after it was interrupted: %v", err)
	}
}

// TestKilledProcess: while a process records to a file, another cannot
// open it, and is told which file and which process; once the first is
// killed mid-run, the next Open marks its run Interrupted.
func TestKilledProcess(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "history.duckdb")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("started"))
	if _, err := out.Read(buf); err != nil || string(buf) != "started" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %q, %v; stderr: %s", buf, err, stderr.String())
	}
	_, err = Open(t.Context(), Config{Path: path})
	want := fmt.Sprintf("PID %d", cmd.Process.Pid)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), want) {
		t.Errorf("Open while another process has the file: %v, want an error naming %s and %s", err, path, want)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	h := openTest(t, path)
	if s := status(t, h, "run-killed"); s != lineage.Interrupted {
		t.Errorf("run-killed after its process was killed: %s, want interrupted", s)
	}
	sums, err := h.Runs(t.Context(), lineage.Query{})
	if err != nil || len(sums) != 1 || sums[0].Status != lineage.Interrupted {
		t.Errorf("Runs = %+v, %v; want run-killed, interrupted", sums, err)
	}
}

// TestHistoriesShareAFile: Histories of one process on one file write at
// once without conflicts (DuckDB fails the second of two transactions
// that write the same rows; the writers take turns).
func TestHistoriesShareAFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "history.duckdb")
	hs := []*History{openTest(t, path), openTest(t, path), openTest(t, path)}
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 30 {
		wg.Go(func() {
			// Runs 0-9 are recorded three times each, by different
			// Histories: the same rows, replaced.
			errs <- hs[i%3].RecordRun(t.Context(), lineagetest.SampleRun(t, fmt.Sprint("run-", i%10), time.Duration(i)*time.Second))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	sums, err := hs[2].Runs(t.Context(), lineage.Query{})
	if err != nil || len(sums) != 10 {
		t.Errorf("Runs = %d runs, %v; want 10", len(sums), err)
	}
	recs, err := hs[1].ByKnot(t.Context(), "answer")
	if err != nil || len(recs) != 10 {
		t.Errorf("ByKnot(answer) = %d records, %v; want 10", len(recs), err)
	}
}

// TestRunningWithoutOwner: a run recorded Running by RecordRun (not
// StartRun) has no owner, so the next Open marks it Interrupted; runs
// that ended are left as they were.
func TestRunningWithoutOwner(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "history.duckdb")
	h, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.RecordRun(ctx, &lineage.Run{ID: "run-e", Status: lineage.Running}); err != nil {
		t.Fatal(err)
	}
	done := lineagetest.SampleRun(t, "run-f", 0)
	if err := h.RecordRun(ctx, done); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	h = openTest(t, path)
	if s := status(t, h, "run-e"); s != lineage.Interrupted {
		t.Errorf("run-e after reopening: %s, want interrupted", s)
	}
	if s := status(t, h, "run-f"); s != done.Status {
		t.Errorf("run-f after reopening: %s, want %s", s, done.Status)
	}
}
