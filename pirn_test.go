package pirn_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/pipeline"
	"github.com/pirn-wasm/pirn/statedir"
)

func open(t *testing.T, cfg pirn.Config) *pirn.Engine {
	t.Helper()
	e, err := pirn.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

func digest(t *testing.T, v any) cas.Digest {
	t.Helper()
	d, err := cas.Hash(v)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// stateConfig opens the state directory at dir for the test's length.
func stateConfig(t *testing.T, dir string) pirn.Config {
	t.Helper()
	st, err := statedir.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return pirn.Config{Store: st.Store, History: st.History}
}

// TestQuickstartOnDisk runs the README's pipeline on the embedded default
// state (SQLite history and disk data store), then reopens the state and
// reads the run back.
func TestQuickstartOnDisk(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	e := open(t, stateConfig(t, state))
	p, err := e.LoadPipeline(t.Context(), "examples/quickstart/pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(t.Context(), p.Tapestry, pirn.RunRequest{Pipeline: p.Spec.Name})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"x": int64(5), "d": int64(10), "answer": int64(15)}
	if diff := cmp.Diff(want, res.Outputs); diff != "" {
		t.Fatalf("outputs (-want +got):\n%s", diff)
	}
	arith := p.Modules["arith"].Digest()
	if r := res.Records[1]; r.KnotID != "d" || r.Module != arith || r.Knot != "double" || len(r.Inputs) != 1 || r.Inputs[0] != (lineage.Input{Name: "x", Parent: "x", Digest: digest(t, 5)}) {
		t.Errorf("d's lineage = %+v", r)
	}
	if err := e.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	again := open(t, stateConfig(t, state))
	run, err := again.History().Run(t.Context(), res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != lineage.Succeeded || len(run.Records) != 3 || run.Records[2].Output != digest(t, 15) || run.Pipeline != "quickstart" {
		t.Errorf("history after reopening: %+v", run)
	}
	b, err := again.Store().Get(t.Context(), digest(t, 15))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := cas.Decode(b); v != int64(15) {
		t.Errorf("data store holds %v for answer", v)
	}
	recs, err := again.History().ByInput(t.Context(), digest(t, 10))
	if err != nil || len(recs) != 1 || recs[0].KnotID != "answer" {
		t.Errorf("ByInput(10) = %+v, %v", recs, err)
	}
}

// TestMisbehavingKnotsInAPipeline: traps, infinite loops, memory
// exhaustion and malformed output each err alone; the rest completes.
func TestMisbehavingKnotsInAPipeline(t *testing.T) {
	t.Parallel()
	e := open(t, pirn.Config{})
	p, err := e.LoadPipeline(t.Context(), "testdata/pipelines/contained.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(t.Context(), p.Tapestry, pirn.RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != lineage.Failed {
		t.Errorf("status %s, want failed", res.Status)
	}
	errs := map[string]string{}
	for _, er := range res.Errors {
		errs[er.KnotID] = er.Type
	}
	wantErrs := map[string]string{"trap": host.ErrTrap, "loop": host.ErrTimeout, "grow": host.ErrMemory, "badcbor": host.ErrABI, "fail": "ValueError"}
	if diff := cmp.Diff(wantErrs, errs); diff != "" {
		t.Errorf("errors by knot (-want +got):\n%s", diff)
	}
	wantOut := map[string]any{"x": int64(3), "sq": int64(9), "total": int64(112), "one": int64(1)}
	if diff := cmp.Diff(wantOut, res.Outputs); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	skips := map[string]string{}
	for _, s := range res.Skipped {
		skips[s.KnotID] = s.Reason
	}
	if diff := cmp.Diff(map[string]string{"skip": "x is odd", "after_trap": "parent_failed_or_skipped", "after_skip": "parent_failed_or_skipped"}, skips); diff != "" {
		t.Errorf("skips (-want +got):\n%s", diff)
	}
}

// copyQuickstart copies the quickstart pipeline, its lock and its module
// into a temporary directory laid out as in the repository.
func copyQuickstart(t *testing.T) (dir, pipelineFile string) {
	t.Helper()
	dir = t.TempDir()
	for _, f := range []string{"examples/quickstart/pipeline.yaml", "examples/quickstart/pipeline.lock", "examples/wasm/go/arith/arith.wasm"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, filepath.Join(dir, "examples/quickstart/pipeline.yaml")
}

func TestPinning(t *testing.T) {
	t.Parallel()
	e := open(t, pirn.Config{})
	dir, file := copyQuickstart(t)
	lockFile := pipeline.LockPath(file)

	// A module whose bytes differ from the pin is refused, naming both digests.
	wasm := filepath.Join(dir, "examples/wasm/go/arith/arith.wasm")
	b, _ := os.ReadFile(wasm)
	tampered := append(append([]byte{}, b...), 0, 7, 5, 'e', 'x', 't', 'r', 'a', '!') // a trailing custom section
	if err := os.WriteFile(wasm, tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := e.LoadPipeline(t.Context(), file)
	if err == nil || !strings.Contains(err.Error(), "does not match its pin") ||
		!strings.Contains(err.Error(), cas.Sum(tampered).String()) || !strings.Contains(err.Error(), cas.Sum(b).String()) {
		t.Errorf("tampered module: error = %v, want both digests", err)
	}

	// pirn lock re-pins, after which the (still valid) module loads.
	if _, err := e.Lock(t.Context(), file); err != nil {
		t.Fatal(err)
	}
	if _, err := e.LoadPipeline(t.Context(), file); err != nil {
		t.Errorf("after re-locking: %v", err)
	}

	// No lock file: refused unless unpinned modules are allowed.
	os.Remove(lockFile)
	if _, err := e.LoadPipeline(t.Context(), file); err == nil || !strings.Contains(err.Error(), "no lock file "+lockFile+": run `pirn lock") {
		t.Errorf("no lock file: error = %v", err)
	}
	loose := open(t, pirn.Config{AllowUnpinned: true})
	p, err := loose.LoadPipeline(t.Context(), file)
	if err != nil || len(p.Unpinned) != 1 || p.Unpinned[0] != "arith" {
		t.Errorf("AllowUnpinned: %v, %v", p, err)
	}
}

func TestPipelineErrorsNameFileAndLine(t *testing.T) {
	t.Parallel()
	e := open(t, pirn.Config{AllowUnpinned: true})
	dir, _ := copyQuickstart(t)
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"unknown knot", `
modules: {arith: ../wasm/go/arith/arith.wasm}
nodes:
  - {id: x, type: parameter, type_: int}
  - {id: d, type: knot, module: arith, knot: dbl, parents: {x: x}}
`, []string{`p.yaml:5: knot "d": module "arith" has no knot "dbl" (it has: double, add, inc, square, sum, range, positive, sign, total)`}},
		{"missing and unknown inputs", `
modules: {arith: ../wasm/go/arith/arith.wasm}
nodes:
  - {id: x, type: parameter, type_: int}
  - {id: s, type: knot, module: arith, knot: add, parents: {a: x, c: x}}
`, []string{`p.yaml:5: knot "s": missing input "b" (int)`, `unknown input "c" (knot add takes: a, b)`}},
		{"missing module file", `
modules: {gone: nowhere.wasm}
nodes:
  - {id: x, type: parameter, type_: int}
`, []string{`p.yaml:2: module "gone": open`}},
		{"not a module", `
modules: {junk: p.yaml}
nodes:
  - {id: x, type: parameter, type_: int}
`, []string{`p.yaml:2: module junk (sha256:`, "not a WebAssembly module"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, "examples/quickstart/p.yaml")
			if err := os.WriteFile(file, []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := e.LoadPipeline(t.Context(), file)
			var errs pipeline.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error = %v, want pipeline.Errors", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestGoTapestry(t *testing.T) {
	t.Parallel()
	e := open(t, pirn.Config{})
	arith, err := e.LoadModule(t.Context(), "examples/wasm/go/arith/arith.wasm")
	if err != nil {
		t.Fatal(err)
	}
	tp := pirn.NewTapestry()
	x, _ := tp.Parameter(pirn.Param{Name: "x", Type: "int"})
	sq, _ := tp.Knot("sq", arith.Knot("square"), pirn.In{"x": x})
	tp.Knot("total", arith.Knot("sum"), pirn.In{"a": sq, "b": x, "c": 100})
	res, err := e.Run(t.Context(), tp, pirn.RunRequest{Params: map[string]any{"x": 4}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outputs["total"] != int64(120) || res.Outputs["param:x"] != int64(4) {
		t.Errorf("outputs = %v", res.Outputs)
	}
	bad := pirn.NewTapestry()
	x2, _ := bad.Parameter(pirn.Param{Name: "x", Type: "int"})
	if _, err := bad.Knot("d", arith.Knot("double"), pirn.In{"y": x2}); err == nil || !strings.Contains(err.Error(), `missing input "x"`) {
		t.Errorf("wrong input name: %v", err)
	}
	if _, err := e.Run(t.Context(), bad, pirn.RunRequest{}); err == nil {
		t.Error("running a tapestry with a build error succeeded")
	}
}

// TestModulesKeptByDigest: every module a pipeline loads is in the data
// store under the digest lineage names it by, so a run can be re-executed
// from the store alone.
func TestModulesKeptByDigest(t *testing.T) {
	t.Parallel()
	e := open(t, pirn.Config{})
	p, err := e.LoadPipeline(t.Context(), "examples/quickstart/pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(t.Context(), p.Tapestry, pirn.RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("examples/wasm/go/arith/arith.wasm")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Records {
		if r.Module == "" {
			continue
		}
		d, err := cas.ParseDigest(r.Module)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.Store().Get(t.Context(), d)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s's module %s in the store: %d bytes, %v", r.KnotID, r.Module, len(got), err)
		}
	}
	// A module loaded on its own is kept too.
	m, err := e.LoadModule(t.Context(), "testdata/wasm/wat/ident.wasm")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := cas.ParseDigest(m.Digest())
	if ok, err := e.Store().Has(t.Context(), d); err != nil || !ok {
		t.Errorf("ident.wasm in the store: %v, %v", ok, err)
	}
}
