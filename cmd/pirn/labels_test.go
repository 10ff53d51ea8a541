package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn/backends"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/lineagetest"
)

// TestLabelsFromTheCLI: pirn runs --label finds runs by a label, pirn runs
// show prints their labels (quoted and escaped: a label comes from
// outside) and --json gives them whole, and pirn history copy carries
// them.
func TestLabelsFromTheCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	from, to := "sqlite:"+filepath.Join(dir, "a.db"), "sqlite:"+filepath.Join(dir, "b.db")
	h, err := backends.OpenHistory(t.Context(), from)
	if err != nil {
		t.Fatal(err)
	}
	one, two := lineagetest.LabeledRun(t, "run-1", 0, "1234"), lineagetest.LabeledRun(t, "run-2", time.Minute, "1235")
	for _, r := range []*lineage.Run{one, two, lineagetest.SampleRun(t, "run-3", 2*time.Minute)} {
		if err := h.RecordRun(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if r := runPirn(t, "history", "copy", "--from", from, "--to", to); r.code != 0 || !strings.Contains(r.stdout, "copied 3 runs") {
		t.Fatalf("history copy: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	for _, hist := range []string{from, to} {
		for label, want := range map[string][]string{
			"kafka.offset=1234":  {"run-1"},
			"kafka.topic=orders": {"run-2", "run-1"},
			"kafka.topic=order":  nil,
			"empty=":             {"run-2", "run-1"},
		} {
			r := runPirn(t, "runs", "--history", hist, "--state", dir, "--json", "--label", label)
			var rows []struct {
				ID string `json:"run_id"`
			}
			if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rows) != nil {
				t.Fatalf("pirn runs --history %s --label %s: exit %d %q %q", hist, label, r.code, r.stdout, r.stderr)
			}
			var ids []string
			for _, row := range rows {
				ids = append(ids, row.ID)
			}
			if !cmp.Equal(want, ids) {
				t.Errorf("pirn runs --history %s --label %s = %v, want %v", hist, label, ids, want)
			}
		}

		r := runPirn(t, "runs", "show", "--history", hist, "--state", dir, "run-1")
		if r.code != 0 {
			t.Fatalf("runs show: exit %d %q", r.code, r.stderr)
		}
		for _, want := range []string{"labels:\n", "  kafka.offset = \"1234\"\n", "  empty = \"\"\n",
			`  note = "\x1b[31mred\x1b[0m\r\tdone\a \u202eevil"`} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("runs show --history %s lacks %q:\n%s", hist, want, r.stdout)
			}
		}
		if strings.ContainsAny(r.stdout, "\x1b\r\a\u202e") {
			t.Errorf("runs show --history %s printed a control character:\n%q", hist, r.stdout)
		}

		r = runPirn(t, "runs", "show", "--history", hist, "--state", dir, "--json", "run-1")
		var shown struct {
			Labels map[string]string `json:"labels"`
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &shown) != nil {
			t.Fatalf("runs show --json: exit %d %q %q", r.code, r.stdout, r.stderr)
		}
		if diff := cmp.Diff(one.Labels, shown.Labels); diff != "" {
			t.Errorf("runs show --json --history %s labels (-want +got):\n%s", hist, diff)
		}
		if strings.ContainsAny(r.stdout, "\x1b\r\a\u202e") {
			t.Errorf("runs show --json --history %s printed a control character:\n%q", hist, r.stdout)
		}
		r = runPirn(t, "runs", "show", "--history", hist, "--state", dir, "--json", "run-3")
		if r.code != 0 || strings.Contains(r.stdout, `"labels"`) {
			t.Errorf("runs show --json of a run without labels: exit %d\n%s", r.code, r.stdout)
		}
	}

	for _, bad := range []string{"no-equals", "=v", "bad key=v", strings.Repeat("k", 129) + "=v"} {
		r := runPirn(t, "runs", "--history", from, "--state", dir, "--label", bad)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--label") {
			t.Errorf("pirn runs --label %.20q: exit %d %q; want a usage error", bad, r.code, r.stderr)
		}
	}
}
