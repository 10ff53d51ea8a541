package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/pirn-wasm/pirn/bundle"
	"github.com/pirn-wasm/pirn/bundle/oci"
)

// startRegistry starts an in-process OCI registry and returns its
// host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// recorded is what a run recorded, without what differs between two runs
// of the same thing (ids, times).
type recorded struct {
	Status  string         `json:"status"`
	Outputs map[string]any `json:"outputs"`
	Knots   []struct {
		ID, Outcome, Module, Knot, Output string
		ConfigHash                        string            `json:"config_hash"`
		Inputs                            map[string]string `json:"inputs"`
		Parents                           map[string]string `json:"parents"`
		Grants                            []string          `json:"grants"`
		Hermetic                          bool              `json:"hermetic"`
	} `json:"knots"`
	RunID string `json:"run_id"`
}

// runRecorded runs the bundle at from into a fresh state directory and
// returns what the history recorded of the run (runs show).
func runRecorded(t *testing.T, from string, args ...string) recorded {
	t.Helper()
	state := t.TempDir()
	r := runPirn(t, append(append([]string{"run", "--state", state, "--json"}, args...), from)...)
	var ran recorded
	if err := json.Unmarshal([]byte(r.stdout), &ran); err != nil || r.code != 0 {
		t.Fatalf("run %s: exit %d, %v\n%s%s", from, r.code, err, r.stdout, r.stderr)
	}
	r = runPirn(t, "runs", "show", "--state", state, "--json", ran.RunID)
	var shown recorded
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil || r.code != 0 {
		t.Fatalf("runs show: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if diff := cmp.Diff(ran.Outputs, shown.Outputs); diff != "" {
		t.Errorf("run %s: its outputs and the recorded ones differ (-run +recorded):\n%s", from, diff)
	}
	shown.RunID = ""
	return shown
}

// TestRegistryRoundTrip pushes a bundle of an example pipeline to an
// in-process registry, pulls it back (the same bytes), and runs it from
// the registry: the outputs and the recorded lineage are those of the
// bundle file, and --digest accepts the file's digest or the registry's.
func TestRegistryRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	host := startRegistry(t)
	app := filepath.Join(dir, "app.pirn")
	if r := runPirn(t, "bundle", "../../examples/pipelines/map.yaml", "-o", app); r.code != 0 {
		t.Fatalf("bundle: %s", r.stderr)
	}
	file, _ := os.ReadFile(app)
	c, err := bundle.ReadBytes(file)
	if err != nil {
		t.Fatal(err)
	}
	inRegistry := bundle.Digest(c.Index)

	tag := "oci://" + host + "/examples/map:v1"
	r := runPirn(t, "push", app, tag)
	if want := tag + "@" + inRegistry + "\n"; r.code != 0 || r.stdout != want {
		t.Fatalf("push: exit %d, %q%s; want %q", r.code, r.stdout, r.stderr, want)
	}
	r = runPirn(t, "push", "--json", app, tag)
	var pushed map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &pushed); err != nil || pushed["digest"] != inRegistry || pushed["bundle_digest"] != bundle.Digest(file) ||
		pushed["reference"] != tag+"@"+inRegistry || pushed["bytes"] != float64(len(file)) {
		t.Errorf("push --json: %s%s (%v)", r.stdout, r.stderr, err)
	}

	pulled := filepath.Join(dir, "pulled.pirn")
	r = runPirn(t, "pull", tag, "-o", pulled)
	byDigest := "oci://" + host + "/examples/map@" + inRegistry
	if r.code != 0 || r.stdout != pulled+" "+bundle.Digest(file)+" ("+itoa(len(file))+" bytes) from "+byDigest+"\n" {
		t.Fatalf("pull: exit %d, %q%s", r.code, r.stdout, r.stderr)
	}
	if got, _ := os.ReadFile(pulled); !bytes.Equal(got, file) {
		t.Errorf("pull wrote %s, want the bundle pushed, %s", bundle.Digest(got), bundle.Digest(file))
	}

	local := runRecorded(t, app)
	if local.Status != "succeeded" || len(local.Knots) < 5 || local.Knots[1].Module != bundle.Digest(c.Modules[0].Wasm) || local.Knots[1].Output == "" {
		t.Fatalf("the local bundle's run: %+v", local)
	}
	for _, from := range [][]string{{tag}, {byDigest}, {"--digest", bundle.Digest(file), tag}, {"--digest", inRegistry, tag}} {
		remote := runRecorded(t, from[len(from)-1], from[:len(from)-1]...)
		if diff := cmp.Diff(local, remote); diff != "" {
			t.Errorf("run %v: what was recorded differs from the local bundle's run (-local +registry):\n%s", from, diff)
		}
	}

	r = runPirn(t, "run", "--memory", "--digest", bundle.Digest(nil), tag)
	if want := tag + ": the bundle is " + bundle.Digest(file) + " (" + inRegistry + " in the registry), not the " + bundle.Digest(nil) + " it was pinned to"; r.code != 2 || !strings.Contains(r.stderr, want) {
		t.Errorf("run --digest (wrong): exit %d, %s; want %q", r.code, r.stderr, want)
	}
	r = runPirn(t, "check", tag)
	for _, want := range []string{tag + ": bundle " + bundle.Digest(file) + `: pipeline "map", 1 module`, tag + ": from " + byDigest, "not signed", "ok, no issues found"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("check %s: exit %d, %s%s; want %q", tag, r.code, r.stdout, r.stderr, want)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestRegistrySigned: a signed bundle still verifies with --trust after a
// trip through a registry, grants still need --allow-grants, and what is
// wrong (a tag the registry lacks, a registry that is not there, a flag
// for a file) is a clear error.
func TestRegistrySigned(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	host := startRegistry(t)
	key, other := filepath.Join(dir, "key"), filepath.Join(dir, "other")
	for _, k := range []string{key, other} {
		if r := runPirn(t, "keygen", k); r.code != 0 {
			t.Fatalf("keygen: %s", r.stderr)
		}
	}
	signed := filepath.Join(dir, "signed.pirn")
	if r := runPirn(t, "bundle", "--sign", key, "-o", signed, quickstart); r.code != 0 {
		t.Fatalf("bundle --sign: %s", r.stderr)
	}
	capknots, _ := filepath.Abs("../../testdata/wasm/go/capknots/capknots.wasm")
	p := filepath.Join(dir, "grants.yaml")
	os.WriteFile(p, []byte("name: grants\nmodules: {cap: "+capknots+"}\nnodes:\n"+
		"  - {id: home, type: knot, module: cap, knot: getenv, config: {name: HOME}, grants: {env: [HOME]}}\n"), 0o644)
	runPirn(t, "lock", p)
	granting := filepath.Join(dir, "grants.pirn")
	if r := runPirn(t, "bundle", "-o", granting, p); r.code != 0 {
		t.Fatalf("bundle: %s", r.stderr)
	}
	ref := "oci://" + host + "/signed/quickstart:1.0"
	grantsRef := "oci://" + host + "/grants:latest"
	for _, push := range [][2]string{{signed, ref}, {granting, grantsRef}} {
		if r := runPirn(t, "push", push[0], push[1]); r.code != 0 {
			t.Fatalf("push %s: %s", push[0], r.stderr)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	for _, tc := range []struct {
		args []string
		want string // "" for a run that succeeds
	}{
		{[]string{"--trust", key + ".pub", ref}, ""},
		{[]string{"--trust", other + ".pub", ref}, "not signed by a trusted key: its signature (by key sha256:"},
		{[]string{"--trust", key + ".pub", grantsRef}, "not signed by a trusted key: it is not signed"},
		{[]string{grantsRef}, "the bundle grants its knots capabilities"},
		{[]string{"--allow-grants", grantsRef}, ""},
		{[]string{"oci://" + host + "/signed/quickstart:nope"}, "load bundle: pull oci://" + host + "/signed/quickstart:nope: not in the registry"},
		{[]string{"oci://" + closed + "/signed/quickstart:1.0"}, "pull oci://" + closed + "/signed/quickstart:1.0: cannot reach " + closed},
		{[]string{"oci://quickstart:1.0"}, "oci://quickstart:1.0: strict validation requires the registry to be explicitly defined"},
		{[]string{"--insecure-registry", signed}, "--insecure-registry and --registry-timeout apply to an oci:// reference"},
		{[]string{"--registry-timeout", "1s", quickstart}, "--insecure-registry and --registry-timeout apply to an oci:// reference"},
		{[]string{"--registry-timeout", "0s", ref}, "--registry-timeout must be positive"},
	} {
		r := runPirn(t, append([]string{"run", "--memory"}, tc.args...)...)
		if tc.want == "" && r.code != 0 || tc.want != "" && (r.code != 2 || !strings.Contains(r.stderr, tc.want)) {
			t.Errorf("run %v: exit %d, %s; want %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	r := runPirn(t, "check", "--trust", key+".pub", ref)
	if r.code != 0 || !strings.Contains(r.stdout, "signed by trusted key sha256:") {
		t.Errorf("check --trust %s: exit %d, %s%s", ref, r.code, r.stdout, r.stderr)
	}
	r = runPirn(t, "check", "--json", "oci://"+host+"/signed/quickstart:nope")
	if r.code != 2 || !strings.Contains(r.stdout, `"error":"load bundle: pull oci://`) {
		t.Errorf("check --json of a missing tag: exit %d, %s%s", r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{{"push", signed}, {"push", signed, "registry/x:1"}, {"pull", signed}, {"pull"}} {
		if r := runPirn(t, args...); r.code != 2 || !strings.Contains(r.stderr, "pirn: see 'pirn "+args[0]+" --help'") {
			t.Errorf("%v: exit %d, %s", args, r.code, r.stderr)
		}
	}
}

// TestPullNames: pull names the file after the pipeline, in the current
// directory, and refuses a name that would put it elsewhere.
func TestPullNames(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	host := startRegistry(t)
	for _, name := range []string{"fine", "../escape"} {
		var b bytes.Buffer
		if err := bundle.Write(&b, bundle.Contents{Name: name, Pipeline: []byte("name: x\nnodes: []\n")}); err != nil {
			t.Fatal(err)
		}
		if _, err := oci.Push(t.Context(), "oci://"+host+"/names:"+strings.Trim(name, "./"), b.Bytes(), oci.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	pull := func(tag string) result {
		cmd := exec.Command(pirnBin, "pull", "oci://"+host+"/names:"+tag)
		cmd.Dir = dir
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return result{out.String(), errb.String(), code}
	}
	if r := pull("fine"); r.code != 0 || !strings.HasPrefix(r.stdout, "fine.pirn sha256:") {
		t.Errorf("pull: exit %d, %s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "fine.pirn")); err != nil {
		t.Error(err)
	}
	if r := pull("escape"); r.code != 2 || !strings.Contains(r.stderr, `the bundle's name "../escape" is no file name: name the file with -o`) {
		t.Errorf("pull of a bundle named ../escape: exit %d, %s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape.pirn")); err == nil {
		t.Error("pull wrote outside the current directory")
	}
}
