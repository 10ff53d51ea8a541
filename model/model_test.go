package model_test

import (
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn/model"
)

func TestNamesRoundTrip(t *testing.T) {
	t.Parallel()
	for _, name := range model.DeclaredKinds() {
		k, err := model.ParseKind(name)
		if err != nil || k.String() != name {
			t.Errorf("ParseKind(%q) = %v, %v", name, k, err)
		}
	}
	if _, err := model.ParseKind("arm"); err == nil {
		t.Error("ParseKind(arm) succeeded: arms are declared by their branch")
	}
	for _, p := range []model.Policy{model.SkipIfParentFailed, model.ReceiveErrors, model.RequireAllParents} {
		if got, err := model.ParsePolicy(p.String()); err != nil || got != p {
			t.Errorf("ParsePolicy(%q) = %v, %v", p, got, err)
		}
	}
	for _, o := range []model.OnSkip{model.OnSkipNull, model.OnSkipDrop, model.OnSkipSkip} {
		if got, err := model.ParseOnSkip(o.String()); err != nil || got != o {
			t.Errorf("ParseOnSkip(%q) = %v, %v", o, got, err)
		}
	}
	for _, s := range []model.State{model.StateReset, model.StateFresh, model.StateKeep} {
		if got, err := model.ParseState(s.String()); err != nil || got != s {
			t.Errorf("ParseState(%q) = %v, %v", s, got, err)
		}
	}
	for _, bad := range []func() error{
		func() error { _, err := model.ParsePolicy("skip"); return err },
		func() error { _, err := model.ParseOnSkip("keep"); return err },
		func() error { _, err := model.ParseState("drop"); return err },
		func() error { _, err := model.ParseKind("task"); return err },
	} {
		if bad() == nil {
			t.Error("a wrong name parsed")
		}
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want uint64
		err  bool
	}{
		{"1048576", 1 << 20, false}, {"64MiB", 64 << 20, false}, {"1GB", 1e9, false}, {" 2 KiB ", 2048, false},
		{"12B", 12, false}, {"-1", 0, true}, {"1.5MiB", 0, true}, {"99999999999999GiB", 0, true}, {"", 0, true},
	} {
		got, err := model.ParseSize(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v", tc.in, got, err)
		}
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	l := model.Limits{Memory: 1 << 20, MaxLog: 5}.Merge(model.Limits{Memory: 2 << 20, MaxOutput: 7, Timeout: 3})
	if l.Memory != 1<<20 || l.MaxLog != 5 || l.MaxOutput != 7 || l.Timeout != 3 {
		t.Errorf("Merge = %+v", l)
	}
	for _, tc := range []struct {
		l    model.Limits
		want string
	}{
		{model.Limits{Memory: 1, HighWater: 2}, "HighWater 2 exceeds Memory 1"},
		{model.Limits{MaxLog: -1}, "negative count limit"},
		{model.Limits{MaxDepth: 65}, "MaxDepth 65 is not within 1..64"},
	} {
		if err := tc.l.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.l, err, tc.want)
		}
	}
	if err := (model.Limits{Memory: 2, HighWater: 1, MaxDepth: 64}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestGrants(t *testing.T) {
	t.Parallel()
	g := model.Grants{Dirs: []model.DirGrant{{Path: "/srv", Mount: "/d", Write: true}}, Env: []string{"B", "A"}, Clock: true,
		HTTP: []model.HTTPGrant{{Host: "*.example.com", Methods: []string{"post", "GET", "get"}}}}
	want := "clock dir:rw:/d=/srv env:A env:B http:GET,POST:*.example.com"
	if got := strings.Join(g.Describe(), " "); got != want {
		t.Errorf("Describe = %s, want %s", got, want)
	}
	if g.Empty() || !(model.Grants{}).Empty() {
		t.Error("Empty is wrong")
	}
	if err := g.Validate(); err != nil {
		t.Error(err)
	}
	for _, tc := range []struct {
		g    model.Grants
		want string
	}{
		{model.Grants{Dirs: []model.DirGrant{{Mount: "/d"}}}, "a dir needs a path"},
		{model.Grants{Dirs: []model.DirGrant{{Path: "x"}}}, `dir "x" needs a mount`},
		{model.Grants{Dirs: []model.DirGrant{{Path: "x", Mount: "/d/../e"}}}, `mount "/d/../e" must be a clean absolute path`},
		{model.Grants{Dirs: []model.DirGrant{{Path: "x", Mount: "/d"}, {Path: "y", Mount: "/d"}}}, `mount "/d" is granted twice`},
		{model.Grants{Env: []string{"A=B"}}, `env "A=B": not a variable name`},
		{model.Grants{HTTP: []model.HTTPGrant{{Host: "http://x.org/"}}}, "want a host name"},
		{model.Grants{HTTP: []model.HTTPGrant{{Host: "x.org", Methods: []string{"FETCH"}}}}, `method "FETCH" is not an HTTP method`},
	} {
		if err := tc.g.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.g, err, tc.want)
		}
	}
}
