package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/statedir"
)

// TestRunsShowLogs: a run's knots that logged name their lines in runs
// show --json ("logs": "sha256:…"), a value in the state's data store;
// the others have none.
func TestRunsShowLogs(t *testing.T) {
	t.Parallel()
	state := filepath.Join(t.TempDir(), "state")
	if r := runPirn(t, "run", "--state", state, "--run-id", "run-logs", "../../testdata/pipelines/contained.yaml"); r.code != 1 {
		t.Fatalf("pirn run exited %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := runPirn(t, "runs", "show", "--state", state, "--json", "run-logs")
	var shown struct {
		Knots []struct {
			ID   string `json:"id"`
			Logs string `json:"logs"`
		} `json:"knots"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil {
		t.Fatalf("runs show --json = %s (%v)", r.stdout, err)
	}
	logs := map[string]string{}
	for _, k := range shown.Knots {
		logs[k.ID] = k.Logs
	}
	if logs["sq"] != "" || logs["x"] != "" {
		t.Errorf("sq and x log nothing, but show logs %q, %q", logs["sq"], logs["x"])
	}
	d, err := cas.ParseDigest(logs["fail"])
	if err != nil {
		t.Fatalf("fail's logs %q: %v\n%s", logs["fail"], err, r.stdout)
	}
	dir, err := statedir.Open(t.Context(), state)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	b, err := dir.Store.Get(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	v, err := cas.Decode(b)
	want := []any{map[string]any{"level": "warn", "msg": "about to fail on x=3"}}
	if err != nil || !jsonEqual(v, want) {
		t.Errorf("fail's logs = %v (%v), want %v", v, err, want)
	}
}

func jsonEqual(a, b any) bool {
	ja, erra := json.Marshal(a)
	jb, errb := json.Marshal(b)
	return erra == nil && errb == nil && string(ja) == string(jb)
}
