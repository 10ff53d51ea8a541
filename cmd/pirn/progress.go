package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"
	"github.com/vbauerster/cupwriter"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/scheduler"
)

// Live progress of pirn run on a terminal: a line that mpb redraws in
// place, "[====>   ] 12/40 knots · 1 failed · 3.2s · running: a, b +3".
// The scheduler's events only update counters and the set of running
// knots under a mutex held for a map operation (the Observer must never
// block the run); mpb's own goroutine reads them and redraws at most
// every progressRefresh.

const (
	progressRefresh = 200 * time.Millisecond
	// progressTracked bounds the running knots remembered by name; more
	// in flight (a remote run keeps 256) are counted only.
	progressTracked = 1024
	// progressNames and progressName bound what the line shows of them.
	progressNames = 3
	progressName  = 24
	progressWidth = 100 // the line's width when the terminal's is unknown
)

var noProgressFlag = &cli.BoolFlag{Name: "no-progress", Aliases: []string{"quiet"}, Usage: "show no live progress on the terminal (none is shown when stdout or stderr is not a terminal, or with --json)"}

// progress shows one run's progress. Its Event is the run's
// scheduler.Observer.
type progress struct {
	start   time.Time
	total   atomic.Int64 // the nodes of the run, and the Map elements started
	done    atomic.Int64
	failed  atomic.Int64
	mu      sync.Mutex
	running map[string]time.Time // by knot id, at most progressTracked
	extra   int                  // running, beyond progressTracked
	p       *mpb.Progress
	bar     *mpb.Bar
	quit    chan struct{}
	wg      sync.WaitGroup // the goroutine that moves the bar
}

// wantProgress reports whether the command should show live progress,
// and returns the raw (unescaped) stderr to draw it on: both stdout and
// stderr are terminals, and neither --json nor --no-progress was given.
func wantProgress(c *cli.Context) (io.Writer, bool) {
	if !hasFlag(c.Command.Flags, "no-progress") || c.Bool("no-progress") || c.Bool("json") {
		return nil, false
	}
	out, ok1 := rawFile(c.App.Writer)
	errw, ok2 := rawFile(c.App.ErrWriter)
	if !ok1 || !ok2 || !cupwriter.New(out, false).IsTerminal() || !cupwriter.New(errw, false).IsTerminal() {
		return nil, false
	}
	return errw, true
}

// rawFile finds the file under pirn's writers (terminalWriter escapes
// the cursor movements mpb draws with, so progress bypasses it and
// escapes the knot ids itself).
func rawFile(w io.Writer) (*os.File, bool) {
	for {
		switch x := w.(type) {
		case *countingWriter:
			w = x.w
		case terminalWriter:
			w = x.w
		case *os.File:
			return x, true
		default:
			return nil, false
		}
	}
}

// newProgress starts drawing on w the progress of a run of nodes nodes.
// forceTTY draws on a w that is not a terminal (for tests). Stop ends it.
func newProgress(w io.Writer, forceTTY bool, nodes int) *progress {
	pr := &progress{start: time.Now(), running: map[string]time.Time{}}
	pr.total.Store(int64(nodes))
	opts := []mpb.ContainerOption{mpb.WithOutput(w), mpb.WithRefreshRate(progressRefresh)}
	if forceTTY {
		opts = append(opts, mpb.ForceTTY(), mpb.WithAutoRefresh(), mpb.WithWidth(progressWidth))
	}
	pr.p = mpb.New(opts...)
	// A total of 0 (unknown) keeps mpb from completing the bar when its
	// count passes a total that has since grown (a Map's elements); Stop
	// completes it.
	pr.bar = pr.p.New(0, mpb.BarStyle().Lbound("[").Rbound("]"), mpb.BarWidth(24), mpb.AppendDecorators(decor.Any(pr.describe)))
	pr.bar.SetTotal(int64(nodes), false)
	// The bar's counts follow the counters at the refresh rate, moved
	// by a goroutine that Stop ends (mpb's own, which call describe, end
	// in pr.p.Wait).
	pr.quit = make(chan struct{})
	pr.wg.Add(1)
	go func() {
		defer pr.wg.Done()
		tick := time.NewTicker(progressRefresh)
		defer tick.Stop()
		for {
			select {
			case <-pr.quit:
				return
			case <-tick.C:
				done, total := pr.counts()
				pr.bar.SetTotal(total, false)
				pr.bar.SetCurrent(done)
			}
		}
	}()
	return pr
}

// Event updates the counters; it never blocks on drawing.
func (pr *progress) Event(ev scheduler.Event) {
	switch ev.Kind {
	case scheduler.KnotStarted:
		if ev.Record.Kind == lineage.KindElement {
			pr.total.Add(1)
		}
		pr.mu.Lock()
		if len(pr.running) < progressTracked {
			pr.running[ev.Record.KnotID] = ev.Time
		} else {
			pr.extra++
		}
		pr.mu.Unlock()
	case scheduler.KnotFinished:
		pr.mu.Lock()
		if _, ok := pr.running[ev.Record.KnotID]; ok {
			delete(pr.running, ev.Record.KnotID)
		} else if pr.extra > 0 {
			pr.extra--
		}
		pr.mu.Unlock()
		pr.done.Add(1)
		if ev.Record.Outcome == lineage.Err {
			pr.failed.Add(1)
		}
	}
}

// describe renders the text after the bar: called by mpb on each
// redraw.
func (pr *progress) describe(decor.Statistics) string {
	done, total := pr.counts()
	pr.mu.Lock()
	ids := make([]string, 0, len(pr.running))
	for id := range pr.running {
		ids = append(ids, id)
	}
	more := pr.extra
	pr.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%d/%d knots", done, total)
	if f := pr.failed.Load(); f > 0 {
		fmt.Fprintf(&b, " · %d failed", f)
	}
	el := time.Since(pr.start)
	if el < time.Second {
		el = el.Round(10 * time.Millisecond)
	} else {
		el = el.Round(100 * time.Millisecond)
	}
	fmt.Fprintf(&b, " · %s", el)
	if len(ids) > 0 {
		slices.Sort(ids)
		b.WriteString(" · running: ")
		for i, id := range ids[:min(len(ids), progressNames)] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(clip(escapeText(id), progressName))
		}
		if n := len(ids) + more - progressNames; n > 0 {
			fmt.Fprintf(&b, " +%d", n)
		}
	}
	return b.String()
}

// counts returns the knots done and the total, which is never less than
// those done and running.
func (pr *progress) counts() (done, total int64) {
	done = pr.done.Load()
	pr.mu.Lock()
	running := int64(len(pr.running) + pr.extra)
	pr.mu.Unlock()
	return done, max(pr.total.Load(), done+running)
}

// Stop draws the final counts and ends the display; the line stays above
// what the command prints next.
func (pr *progress) Stop() {
	close(pr.quit)
	pr.wg.Wait()
	done, total := pr.counts()
	pr.bar.SetTotal(total, false)
	pr.bar.SetCurrent(done)
	switch {
	case done >= total:
		pr.bar.SetTotal(total, true) // complete: a last redraw
	case done == 0:
		pr.bar.Abort(true) // a run that never started (a bad parameter): no line
	default:
		pr.bar.Abort(false) // cancelled: the line stays as it was
	}
	pr.p.Wait()
}

// escapeText escapes s as terminalWriter does.
func escapeText(s string) string {
	var b strings.Builder
	terminalWriter{&b}.Write([]byte(s))
	return b.String()
}

// clip shortens s to at most n runes, marking the cut with "…".
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// shedSize counts the nodes a run of t with these terminals runs (every
// node when there are none).
func shedSize(t *scheduler.Tapestry, terminals []string) int {
	if len(terminals) == 0 {
		return len(t.Nodes())
	}
	seen := map[string]bool{}
	var visit func(id string)
	visit = func(id string) {
		if seen[id] {
			return
		}
		seen[id] = true
		if n, ok := t.Node(id); ok {
			for _, p := range n.Parents() {
				visit(p)
			}
		}
	}
	for _, id := range terminals {
		visit(id)
	}
	return len(seen)
}

// observers sends a run's events to each of its observers.
type observers []scheduler.Observer

func (o observers) Event(ev scheduler.Event) {
	for _, x := range o {
		x.Event(ev)
	}
}
