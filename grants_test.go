package pirn_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn"
)

// TestPipelineGrants grants a knot a directory (relative to the pipeline
// file) and an environment variable from YAML, and checks that lineage
// records the grants, that the other knots are hermetic (the pipeline
// resets instances), and that grants change the configuration hash.
func TestPipelineGrants(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "data", "greeting.txt"), []byte("hi"), 0o644)
	capknots, _ := filepath.Abs("testdata/wasm/go/capknots/capknots.wasm")
	t.Setenv("PIRN_TEST_REGION", "eu-west")
	write := func(grants string) string {
		p := filepath.Join(dir, "p.yaml")
		yaml := "name: grants\ninstance: reset\nmodules: {cap: " + capknots + "}\nnodes:\n" +
			"  - {id: path, type: parameter, type_: str, default: /data/greeting.txt}\n" +
			"  - {id: read, type: knot, module: cap, knot: readfile, parents: {path: path}" + grants + "}\n" +
			"  - {id: region, type: knot, module: cap, knot: getenv, config: {name: PIRN_TEST_REGION}, grants: {env: [PIRN_TEST_REGION]}}\n" +
			"  - {id: plain, type: knot, module: cap, knot: getenv, config: {name: PIRN_TEST_REGION}}\n"
		if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	e := open(t, pirn.Config{AllowUnpinned: true})
	p, err := e.LoadPipeline(t.Context(), write(", grants: {dirs: [{path: data, mount: /data}]}"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(t.Context(), p.Tapestry, pirn.RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outputs["read"] != "hi" || res.Outputs["region"] != "eu-west" || res.Outputs["plain"] != nil {
		t.Errorf("outputs = %v", res.Outputs)
	}
	grants := map[string][]string{}
	var readHash string
	for _, r := range res.Records {
		grants[r.KnotID] = r.Grants
		if r.KnotID == "read" {
			readHash = r.ConfigHash.String()
		}
		if r.Hermetic() != (len(r.Grants) == 0) {
			t.Errorf("%s: Hermetic() = %v with grants %v", r.KnotID, r.Hermetic(), r.Grants)
		}
	}
	abs, _ := filepath.EvalSymlinks(filepath.Join(dir, "data"))
	if got := grants["read"]; len(got) != 1 || !strings.HasPrefix(got[0], "dir:ro:/data=") || !strings.HasSuffix(got[0], "data") {
		t.Errorf("read's grants = %v, want dir:ro:/data=%s", got, abs)
	}
	if got := grants["region"]; !slices.Equal(got, []string{"env:PIRN_TEST_REGION"}) {
		t.Errorf("region's grants = %v", got)
	}
	if grants["plain"] != nil || grants["path"] != nil {
		t.Errorf("hermetic nodes have grants: %v", grants)
	}

	// Without the grant the same knot cannot read the file, and its
	// configuration hash differs.
	p, err = e.LoadPipeline(t.Context(), write(""))
	if err != nil {
		t.Fatal(err)
	}
	res, err = e.Run(t.Context(), p.Tapestry, pirn.RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Records {
		if r.KnotID == "read" && (r.Outcome != "err" || r.ConfigHash.String() == readHash) {
			t.Errorf("read without a grant: %s, config hash %s (granted: %s)", r.Outcome, r.ConfigHash, readHash)
		}
	}

	// Grant errors name the node and the line.
	for _, tc := range []struct{ grants, want string }{
		{", grants: {dirs: [{path: nope, mount: /data}]}", "p.yaml:6: knot \"read\": knot readfile: grants: dir"},
		{", grants: {dirs: [{path: data, mount: data}]}", `mount "data" must be a clean absolute path`},
		{", grants: {http: [\"https://x.org/\"]}", `http host "https://x.org/": want a host name`},
		{", grants: {clok: true}", `unknown key "clok"`},
	} {
		_, err := e.LoadPipeline(t.Context(), write(tc.grants))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("grants%s: %v, want %q", tc.grants, err, tc.want)
		}
	}
}
