package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The browser tests drive Debian's chromium through chromedp: the page
// pirn view writes, opened from disk, and pirn ui, run as a process. They
// skip when chromium is not installed, except under CI (.ci/run installs
// it), where that is a failure.

// browser starts a headless chromium with a fresh profile and returns a
// chromedp context for one tab, bounded to two minutes.
func browser(t testing.TB) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed (apt-get install chromium); CI needs it for the browser tests")
		}
		t.Skip("chromium is not installed: apt-get install chromium to run the browser tests")
	}
	// A profile of its own. Not t.TempDir: chromium's children may still
	// write there for a moment after it stops, so removal is retried.
	dir, err := os.MkdirTemp("", "pirn-chromium")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if os.RemoveAll(dir) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-default-browser-check", true),
		chromedp.UserDataDir(dir), chromedp.WindowSize(1280, 800),
	}
	ctx, cancelTimeout := context.WithTimeout(context.Background(), 2*time.Minute)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc(); cancelTimeout() })
	// The first Run starts the browser and its tab, which live as long as
	// the context it is given: this one, not a step's (see do).
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[int](`1`)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// do runs a chromedp action and fails the test on error.
func do[T any](t testing.TB, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, 30*time.Second) // each step, so that a wrong selector fails soon
	defer cancel()
	v, err := chromedp.Run(actx, a)
	if err != nil {
		t.Fatalf("%s: %v (after %v)", what, err, time.Since(start))
	}
	if testing.Verbose() {
		t.Logf("%s: %v", what, time.Since(start))
	}
	return v
}

// waitSel waits until an element matches sel in the current document,
// evaluating a query afresh every 50ms in whatever document is loaded (a
// click that loads a page replaces the document, and its JavaScript
// context, under a query that waits).
func waitSel(t testing.TB, ctx context.Context, sel string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		var found bool
		found, err = chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q) !== null && document.readyState !== "loading"`, sel)))
		if err == nil && found {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no element %s after 30s (last error: %v)", sel, err)
}

// notPwned checks that no script injected through a run's text ran: each
// would set window.__pwned.
func notPwned(t *testing.T, ctx context.Context, where string) {
	t.Helper()
	if got := do(t, ctx, "read window.__pwned", chromedp.Evaluate[string](`String(window.__pwned)`)); got != "undefined" {
		t.Errorf("%s: window.__pwned = %s: injected script ran", where, got)
	}
}

// hostileState records, in a new state directory, two runs of a pipeline
// whose text is hostile (an expression that outputs a <script> element, an
// expression error and a parameter with markup, a failing Wasm knot, a
// gate that skips, a Map), and two runs of the quickstart (x = 5, 7); it returns the
// directory, the pipeline's path and the run ids in order.
func hostileState(t *testing.T) (state, pipeline string, ids []string) {
	t.Helper()
	state = t.TempDir()
	abs, err := filepath.Abs("../../examples/wasm/go")
	if err != nil {
		t.Fatal(err)
	}
	pipeline = filepath.Join(state, "hostile.yaml")
	yaml := fmt.Sprintf(`name: hostile
modules:
  arith: %[1]s/arith/arith.wasm
  outcomes: %[1]s/outcomes/outcomes.wasm
nodes:
  - {id: x, type: parameter, type_: int, default: 5}
  - {id: s, type: parameter, type_: str, default: "<img src=x onerror=window.__pwned=2>"}
  - {id: d, type: knot, module: arith, knot: double, parents: {x: x}}
  - {id: xss, type: aggregator, parents: {x: x}, combine: "'<script>window.__pwned=1</script>' + string(x)"}
  - {id: boom, type: aggregator, parents: {s: s}, combine: "{'a': 1}[s]"}
  - {id: fails, type: knot, module: outcomes, knot: fail, parents: {x: d}}
  - {id: big, type: gate, input: x, predicate: "x > 100"}
  - {id: after, type: knot, module: arith, knot: inc, parents: {x: big}}
  - {id: numbers, type: source, module: arith, knot: range, config: {n: 4}}
  - {id: squares, type: map, over: numbers, each: {module: arith, knot: square}}
`, abs)
	if err := os.WriteFile(pipeline, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"run", "--unpinned", "--state", state, "--run-id", "run-hostile-1", pipeline},
		{"run", "--unpinned", "--state", state, "--run-id", "run-hostile-2", pipeline},
		{"run", "--state", state, "--run-id", "run-quick", "-p", "x=5", quickstart},
		{"run", "--state", state, "--run-id", "run-quick-7", "-p", "x=7", quickstart},
	} {
		r := runPirn(t, args...)
		if r.code > 1 {
			t.Fatalf("pirn %v exited %d:\n%s", args, r.code, r.stderr)
		}
	}
	return state, pipeline, []string{"run-hostile-1", "run-hostile-2", "run-quick", "run-quick-7"}
}

// screenshot saves the page to docs/img/NAME.png when
// PIRN_UPDATE_SCREENSHOTS=1 (the pictures docs/ui.md shows).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("PIRN_UPDATE_SCREENSHOTS") != "1" {
		return
	}
	png := do(t, ctx, "screenshot", chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join("../../docs/img", name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBrowserRunFile(t *testing.T) {
	t.Parallel()
	state, pipeline, ids := hostileState(t)
	file := filepath.Join(state, "run.html")
	if r := runPirn(t, "view", "--state", state, ids[1], "-o", file); r.code != 0 {
		t.Fatalf("pirn view exited %d: %s", r.code, r.stderr)
	}
	ctx := browser(t)
	do(t, ctx, "open the file", chromedp.Navigate("file://"+file))
	waitSel(t, ctx, `body[data-ready="1"]`)
	notPwned(t, ctx, "run file")
	if got := do(t, ctx, "count nodes", chromedp.Evaluate[int](`document.querySelectorAll("g.n").length`)); got != 10 {
		t.Errorf("the page draws %d nodes, want 10 (the Map's elements collapsed)", got)
	}

	// A click shows the node's detail: the value as text, not markup.
	do(t, ctx, "click xss", chromedp.Click(`g.n[data-id="xss"] rect`))
	waitSel(t, ctx, `#detail pre.value`)
	if got := do(t, ctx, "detail title", chromedp.Text(`#detail h2`)); got != "xss" {
		t.Errorf("detail title = %q, want xss", got)
	}
	if got := do(t, ctx, "xss value", chromedp.Text(`#detail .output pre.value`)); !strings.Contains(got, `"<script>window.__pwned=1</script>5"`) {
		t.Errorf("xss output shows as %q, want the script's text literally", got)
	}
	do(t, ctx, "click boom", chromedp.Click(`g.n[data-id="boom"] rect`))
	waitSel(t, ctx, `#detail pre.err-message`)
	if got := do(t, ctx, "boom error", chromedp.Text(`#detail pre.err-message`)); !strings.Contains(got, "no such key: <img src=x onerror=window.__pwned=2>") {
		t.Errorf("boom's error shows as %q, want the markup literally", got)
	}
	do(t, ctx, "click fails", chromedp.Click(`g.n[data-id="fails"] rect`))
	waitSel(t, ctx, `#detail .err-type`)
	if got := do(t, ctx, "fails type", chromedp.Text(`#detail .err-type`)); got != "ValueError" {
		t.Errorf("fails' error type = %q, want ValueError", got)
	}
	if got := do(t, ctx, "fails logs", chromedp.Text(`#detail .logs .log`)); got != "warn about to fail on x=10" {
		t.Errorf("fails' logs show as %q, want its warning", got)
	}
	do(t, ctx, "click d", chromedp.Click(`g.n[data-id="d"] rect`))
	waitSel(t, ctx, `#detail .producers`)
	if got := do(t, ctx, "producers", chromedp.Text(`#detail .producers`)); !strings.Contains(got, ids[0]) {
		t.Errorf("d's other producers = %q, want the other run %s", got, ids[0])
	}
	notPwned(t, ctx, "run file after clicks")
	screenshot(t, ctx, "run-view")

	// Filters hide nodes by outcome.
	visible := func(id string) bool {
		return do(t, ctx, "visibility of "+id, chromedp.Evaluate[bool](fmt.Sprintf(
			`getComputedStyle(document.querySelector('g.n[data-id=%q]')).display !== "none"`, id)))
	}
	if !visible("d") || !visible("boom") || !visible("after") {
		t.Fatal("nodes hidden before any filter")
	}
	do(t, ctx, "uncheck ok", chromedp.Click(`#f-ok`))
	if visible("d") || !visible("boom") || !visible("after") {
		t.Errorf("with ok unchecked: d visible %v (want false), boom %v, after %v (want true)", visible("d"), visible("boom"), visible("after"))
	}
	do(t, ctx, "uncheck skipped", chromedp.Click(`#f-skipped`))
	if visible("after") || !visible("boom") {
		t.Errorf("with skipped unchecked: after visible %v, boom %v", visible("after"), visible("boom"))
	}
	do(t, ctx, "recheck ok", chromedp.Click(`#f-ok`))
	if !visible("d") {
		t.Error("d still hidden after ok is checked again")
	}

	// The search box finds nodes by id.
	do(t, ctx, "search", chromedp.SendKeys(`#search`, "squ"))
	if got := do(t, ctx, "matches", chromedp.Text(`#found`)); got != "1 match" {
		t.Errorf("search squ: %q, want 1 match", got)
	}

	// The page of the pipeline, not yet run: every node pending.
	pfile := filepath.Join(state, "pipeline.html")
	if r := runPirn(t, "view", "--unpinned", pipeline, "-o", pfile); r.code != 0 {
		t.Fatalf("pirn view PIPELINE exited %d: %s", r.code, r.stderr)
	}
	do(t, ctx, "open the pipeline page", chromedp.Navigate("file://"+pfile))
	waitSel(t, ctx, `body[data-ready="1"]`)
	if got := do(t, ctx, "pending", chromedp.Evaluate[int](`document.querySelectorAll("g.n.pending").length`)); got != 10 {
		t.Errorf("pipeline page: %d pending nodes, want 10", got)
	}
	do(t, ctx, "click a pending node", chromedp.Click(`g.n[data-id="xss"] rect`))
	// The click's handler has run when Click returns: the text is read
	// at once.
	if got := do(t, ctx, "pending detail", chromedp.Evaluate[string](`document.querySelector("#detail dd").textContent`)); got != "pending" {
		t.Errorf("pending node's outcome shows as %q", got)
	}
	notPwned(t, ctx, "pipeline file")
}

// startUI runs pirn ui on a free port and returns its base URL.
func startUI(t *testing.T, state string, extra ...string) string {
	t.Helper()
	cmd := exec.Command(pirnBin, append([]string{"ui", "--state", state, "--addr", "127.0.0.1:0"}, extra...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("pirn ui printed no address: %v", err)
	}
	u, ok := strings.CutPrefix(line, "pirn ui: serving ")
	if !ok {
		t.Fatalf("pirn ui printed %q", line)
	}
	return strings.Fields(u)[0]
}

func TestBrowserUI(t *testing.T) {
	t.Parallel()
	state, _, ids := hostileState(t)
	base := startUI(t, state)
	ctx := browser(t)

	do(t, ctx, "open the UI", chromedp.Navigate(base))
	waitSel(t, ctx, `#runs a.run`)
	if got := do(t, ctx, "runs", chromedp.Evaluate[int](`document.querySelectorAll("#runs a.run").length`)); got != 4 {
		t.Errorf("runs list shows %d runs, want 4", got)
	}
	screenshot(t, ctx, "ui-runs")
	do(t, ctx, "filter failed", chromedp.SetValue(`#status`, "failed"))
	do(t, ctx, "submit", chromedp.Submit(`#q`))
	waitSel(t, ctx, `#status option[value="failed"][selected]`)
	if got := do(t, ctx, "failed runs", chromedp.Evaluate[int](`document.querySelectorAll("#runs a.run").length`)); got != 2 {
		t.Errorf("status=failed shows %d runs, want 2", got)
	}

	// The run page, then a node's output, then the runs that produced it.
	do(t, ctx, "open a run", chromedp.Click(fmt.Sprintf(`#runs a.run[href="/run/%s"]`, ids[1])))
	waitSel(t, ctx, `body[data-ready="1"]`)
	notPwned(t, ctx, "ui run page")
	do(t, ctx, "click d", chromedp.Click(`g.n[data-id="d"] rect`))
	waitSel(t, ctx, `#detail pre.value`)
	screenshot(t, ctx, "ui-run")
	do(t, ctx, "follow the output's link", chromedp.Click(`#detail .output a[href^="/value/"]`))
	waitSel(t, ctx, `#produced-by`)
	if got := do(t, ctx, "value", chromedp.Text(`#value`)); got != "10" {
		t.Errorf("value page shows %q, want 10", got)
	}
	do(t, ctx, "follow produced-by", chromedp.Click(`#produced-by`))
	waitSel(t, ctx, `#records`)
	got := do(t, ctx, "records", chromedp.Text(`#records`))
	for _, id := range ids[:2] {
		if !strings.Contains(got, id) {
			t.Errorf("the runs that produced d's value lack %s:\n%s", id, got)
		}
	}
	screenshot(t, ctx, "ui-lineage")

	// The xss value on its own page: shown, not run.
	do(t, ctx, "knot lineage", chromedp.Navigate(base+"lineage?knot=xss"))
	do(t, ctx, "xss records", chromedp.Click(`#records a[href^="/value/"]`))
	waitSel(t, ctx, `#value`)
	if got := do(t, ctx, "xss value", chromedp.Text(`#value`)); got != `"<script>window.__pwned=1</script>5"` {
		t.Errorf("xss value page shows %q", got)
	}
	notPwned(t, ctx, "ui value page")

	// The diff of two runs: through its form, then by URL.
	do(t, ctx, "diff form", chromedp.Click(`nav a[href="/diff"]`))
	waitSel(t, ctx, `#a`)
	do(t, ctx, "run A", chromedp.SetValue(`#a`, ids[2]))
	do(t, ctx, "run B", chromedp.SetValue(`#b`, ids[3]))
	do(t, ctx, "compare", chromedp.Submit(`#a`))
	waitSel(t, ctx, `#diff-summary`)
	if got := do(t, ctx, "summary", chromedp.Text(`#diff-summary`)); !strings.Contains(got, "3 nodes differ, 0 the same") {
		t.Errorf("diff summary = %q", got)
	}
	if got := do(t, ctx, "diff rows", chromedp.Text(`#diff`)); !strings.Contains(got, "(the value): 15 → 21") {
		t.Errorf("diff table lacks answer's change from 15 to 21:\n%s", got)
	}
	screenshot(t, ctx, "ui-diff")
	do(t, ctx, "diff", chromedp.Navigate(fmt.Sprintf("%sdiff?a=%s&b=%s", base, ids[0], ids[2])))
	waitSel(t, ctx, `#diff-summary`)
	if got := do(t, ctx, "diff rows", chromedp.Text(`#diff`)); !strings.Contains(got, "only_a") || !strings.Contains(got, "answer") {
		t.Errorf("diff table lacks a node only in A and the quickstart's answer:\n%s", got)
	}
	notPwned(t, ctx, "ui diff page")
}

func TestBrowserUIToken(t *testing.T) {
	t.Parallel()
	state, _, _ := hostileState(t)
	base := startUI(t, state, "--token", "tok-123")
	if !strings.Contains(base, "?token=tok-123") {
		t.Fatalf("pirn ui printed %q, want the token in the URL", base)
	}
	ctx := browser(t)
	plain, _, _ := strings.Cut(base, "?")
	do(t, ctx, "open without the token", chromedp.Navigate(plain))
	if got := do(t, ctx, "error", chromedp.Text(`#error`)); !strings.Contains(got, "token is required") {
		t.Errorf("without the token: %q", got)
	}
	do(t, ctx, "open with the token", chromedp.Navigate(base))
	waitSel(t, ctx, `#runs a.run`)
	if loc := do(t, ctx, "location", chromedp.Location()); strings.Contains(loc, "token") {
		t.Errorf("the token stays in the location: %s", loc)
	}
	do(t, ctx, "follow a link (the cookie)", chromedp.Navigate(plain+"lineage?knot=d"))
	waitSel(t, ctx, `#records`)
}

// TestViewAndDiffCLI checks the commands' output and errors without a
// browser.
func TestViewAndDiffCLI(t *testing.T) {
	t.Parallel()
	state, pipeline, ids := hostileState(t)
	r := runPirn(t, "view", "--state", state, ids[0], "-o", "-")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "<!DOCTYPE html>") || strings.Contains(r.stdout, "<script>window") {
		t.Errorf("pirn view -o - = %d, %.100q", r.code, r.stdout)
	}
	if r := runPirn(t, "view", "--state", state, "no-such-run", "-o", "-"); r.code != 2 || !strings.Contains(r.stderr, `no run "no-such-run"`) {
		t.Errorf("pirn view of an unknown run = %d, %q", r.code, r.stderr)
	}
	if r := runPirn(t, "diff", "--state", state, ids[0], ids[0]); r.code != 0 || !strings.Contains(r.stdout, "0 nodes differ") {
		t.Errorf("pirn diff A A = %d, %q", r.code, r.stdout)
	}
	r = runPirn(t, "diff", "--state", state, ids[0], ids[2])
	if r.code != 1 || !strings.Contains(r.stdout, "- xss  only in A") || !strings.Contains(r.stdout, "+ answer  only in B") {
		t.Errorf("pirn diff A B = %d:\n%s", r.code, r.stdout)
	}
	r = runPirn(t, "diff", "--state", state, "--json", ids[0], ids[2])
	var d struct {
		A      string `json:"run_a"`
		Differ int    `json:"differ"`
		Nodes  []struct{ ID, Change string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || r.code != 1 || d.A != ids[0] || d.Differ == 0 {
		t.Errorf("pirn diff --json = %d, %v: %s", r.code, err, r.stdout)
	}
	// A value with control characters reaches the terminal escaped.
	if r := runPirn(t, "run", "--unpinned", "--state", state, "--run-id", "run-ctl", "-p", "s=\x1b[31mred\u202e", pipeline); r.code != 1 {
		t.Fatalf("pirn run -p s=… exited %d: %s", r.code, r.stderr)
	}
	r = runPirn(t, "diff", "--state", state, ids[0], "run-ctl")
	if r.code != 1 || strings.ContainsAny(r.stdout, "\x1b\u202e") || !strings.Contains(r.stdout, `\u001b[31mred\u202e`) {
		t.Errorf("pirn diff with a control character = %d:\n%s", r.code, r.stdout)
	}
	if r := runPirn(t, "diff", "--state", state, ids[0], "nope"); r.code != 2 || !strings.Contains(r.stderr, `no run "nope"`) {
		t.Errorf("pirn diff with an unknown run = %d, %q", r.code, r.stderr)
	}
	if r := runPirn(t, "ui", "--state", state, "--addr", "0.0.0.0:0"); r.code != 2 || !strings.Contains(r.stderr, "token is required") {
		t.Errorf("pirn ui on 0.0.0.0 without a token = %d, %q", r.code, r.stderr)
	}
}

// TestBrowserExplore: pirn explore of a state directory holding a hostile
// pipeline and its runs writes a page that draws every pipeline and run
// graph, runs no injected script, and lists what does not load.
func TestBrowserExplore(t *testing.T) {
	t.Parallel()
	state, _, ids := hostileState(t)
	if err := os.WriteFile(filepath.Join(state, "broken.yaml"), []byte("name: broken\nnodes:\n  - {id: \"<i>x</i>\", type: knot}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runPirn(t, "explore", state)
	file := filepath.Join(state, "pirn-explorer.html")
	if r.code != 0 || !strings.Contains(r.stderr, "2 pipelines, 1 histories: wrote "+file) {
		t.Fatalf("pirn explore = %d: %s", r.code, r.stderr)
	}
	ctx := browser(t)
	do(t, ctx, "open the file", chromedp.Navigate("file://"+file))
	waitSel(t, ctx, `details.history`)
	notPwned(t, ctx, "explorer")
	if got := do(t, ctx, "count runs", chromedp.Evaluate[int](`document.querySelectorAll("tr.run").length`)); got != len(ids) {
		t.Errorf("the page lists %d runs, want %d", got, len(ids))
	}
	// The hostile pipeline's graph: its expression's <script> is text.
	do(t, ctx, "open hostile.yaml", chromedp.Click(`details.pipeline:not([data-error]) summary`))
	if got := do(t, ctx, "xss node", chromedp.Evaluate[string](`document.querySelector('g.n[data-id="xss"] text.k').textContent`)); !strings.Contains(got, "<script>") {
		t.Errorf("xss node's label = %q, want the expression's text", got)
	}
	if got := do(t, ctx, "broken", chromedp.Text(`details.pipeline[data-error] summary`)); !strings.Contains(got, "broken.yaml") {
		t.Errorf("the broken pipeline is listed as %q", got)
	}
	if got := do(t, ctx, "count graphs", chromedp.Evaluate[int](`document.querySelectorAll("svg.g").length`)); got != 1+len(ids) {
		t.Errorf("the page draws %d graphs, want %d (a pipeline and each run)", got, 1+len(ids))
	}
	notPwned(t, ctx, "explorer after clicks")
	screenshot(t, ctx, "explorer")

	// Bad arguments.
	if r := runPirn(t, "explore", file); r.code != 2 || !strings.Contains(r.stderr, "is not a directory") {
		t.Errorf("pirn explore FILE = %d, %q", r.code, r.stderr)
	}
	if r := runPirn(t, "explore", state, state); r.code != 2 || !strings.Contains(r.stderr, "at most one folder") {
		t.Errorf("pirn explore A B = %d, %q", r.code, r.stderr)
	}
	if r := runPirn(t, "explore", "--max-runs", "0", state); r.code != 2 || !strings.Contains(r.stderr, "--max-runs must be positive") {
		t.Errorf("pirn explore --max-runs 0 = %d, %q", r.code, r.stderr)
	}
	r = runPirn(t, "explore", "--max-runs", "1", "-o", "-", state)
	if r.code != 0 || strings.Count(r.stdout, `<tr class="run">`) != 1 || !strings.Contains(r.stdout, "more are recorded") {
		t.Errorf("pirn explore --max-runs 1 -o - = %d, %d runs listed", r.code, strings.Count(r.stdout, `<tr class="run">`))
	}
}
