package loom

import (
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/pipeline"
)

// TestLoadModules loads a table whose modules compile concurrently: source
// is still called in the table's order, each problem is reported at its
// module's line in that order, and an entry with the bytes of an earlier
// one gets the same module, named as the earlier entry.
func TestLoadModules(t *testing.T) {
	ident, err := os.ReadFile("../../testdata/wasm/wat/ident.wasm")
	if err != nil {
		t.Fatal(err)
	}
	negate, err := os.ReadFile("../../examples/wasm/wat/negate.wasm")
	if err != nil {
		t.Fatal(err)
	}
	h, err := host.New(host.Config{CacheDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(t.Context()) })
	bytesOf := map[string][]byte{
		"ident":  ident,
		"broken": []byte("\x00asm\x01\x00\x00\x00\x7f"),
		"absent": nil,
		"negate": negate,
		"again":  ident,
		"half":   negate, // loaded although its source errs
	}
	spec := &pipeline.Spec{File: "p.yaml"}
	for i, name := range []string{"ident", "broken", "absent", "negate", "again", "half"} {
		spec.Modules = append(spec.Modules, pipeline.Module{Name: name, Line: 11 + i})
	}
	var called []string
	mods, errs := LoadModules(t.Context(), h, spec, nil, func(m pipeline.Module) ([]byte, error) {
		called = append(called, m.Name)
		switch m.Name {
		case "absent":
			return nil, errors.New("no such file")
		case "half":
			return bytesOf[m.Name], errors.New("not pinned")
		}
		return bytesOf[m.Name], nil
	})
	if want := []string{"ident", "broken", "absent", "negate", "again", "half"}; !slices.Equal(called, want) {
		t.Errorf("source called for %v, want %v", called, want)
	}
	var lines []int
	for _, e := range errs {
		lines = append(lines, e.Line)
	}
	if want := []int{12, 13, 16}; !slices.Equal(lines, want) {
		t.Errorf("errors at lines %v, want %v: %v", lines, want, errs)
	}
	for _, name := range []string{"ident", "negate", "again", "half"} {
		if mods[name] == nil {
			t.Errorf("module %s not loaded", name)
		}
	}
	if len(mods) != 4 {
		t.Errorf("loaded %d modules, want 4", len(mods))
	}
	if mods["again"] != mods["ident"] || mods["again"].Name() != "ident" {
		t.Errorf("again: %p named %q, want ident's module %p", mods["again"], mods["again"].Name(), mods["ident"])
	}
	if mods["half"] != mods["negate"] || mods["half"].Name() != "negate" {
		t.Errorf("half: named %q, want negate's module", mods["half"].Name())
	}
}
