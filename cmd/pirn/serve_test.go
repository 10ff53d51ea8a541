package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestServeDrain: SIGTERM to pirn serve while a run is in flight: the
// process exits 0 and the run is recorded, finished on its own if it ends
// within the drain time and cancelled otherwise.
func TestServeDrain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, pipeline, drain, want string
	}{
		// The knot loops until its timeout of a minute: cancelled at
		// the drain deadline of a second.
		{"cancelled at the deadline", "slow.yaml", "1s", "cancelled"},
		// The knot's timeout of a second ends the run (failed) well
		// within the drain time.
		{"finished within drain", "slow1s.yaml", "30s", "failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			pipeline, _ := filepath.Abs(filepath.Join("../../serve/testdata", tc.pipeline))
			cfg := filepath.Join(dir, "serve.yaml")
			os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\ndrain: "+tc.drain+"\nstate: st\npipelines:\n  - {name: slow, path: "+pipeline+"}\n"+
				"triggers:\n  - {type: webhook, pipeline: slow, path: /h, auth: {bearer_token_env: PIRN_TEST_TOKEN}}\n"), 0o644)
			cmd := exec.Command(pirnBin, "serve", cfg)
			cmd.Env = append(os.Environ(), "PIRN_TEST_TOKEN=tok")
			stderr, _ := cmd.StderrPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			lines := bufio.NewScanner(stderr)
			addr := ""
			for addr == "" && lines.Scan() {
				if rest, ok := strings.CutPrefix(lines.Text(), "pirn: serving on "); ok {
					addr, _, _ = strings.Cut(rest, " ")
				}
			}
			if addr == "" {
				t.Fatalf("pirn serve never said where it serves")
			}
			req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/h", strings.NewReader("{}"))
			req.Header.Set("Authorization", "Bearer tok")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]string
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != 202 {
				t.Fatalf("POST = %d %v", resp.StatusCode, body)
			}
			cmd.Process.Signal(syscall.SIGTERM)
			var rest strings.Builder
			for lines.Scan() {
				rest.WriteString(lines.Text() + "\n")
			}
			err = cmd.Wait()
			if err != nil {
				t.Fatalf("pirn serve after SIGTERM: %v, want exit 0\n%s", err, rest.String())
			}
			r := runPirn(t, "runs", "show", "--state", filepath.Join(dir, "st"), "--json", body["run_id"])
			var run struct{ Status string }
			if err := json.Unmarshal([]byte(r.stdout), &run); err != nil || run.Status != tc.want {
				t.Errorf("run %s recorded %q (%v), want %s\n%s%s", body["run_id"], run.Status, err, tc.want, r.stdout, r.stderr)
			}
		})
	}
}

func TestServeCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	qs, _ := filepath.Abs(quickstart)
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("pipelines:\n  - {name: quick, path: "+qs+"}\ntriggers:\n  - {type: cron, pipeline: quick, schedule: \"*/5 * * * *\"}\n"), 0o644)
	if r := runPirn(t, "serve", "--check", good); r.code != 0 || !strings.Contains(r.stdout, "ok (1 pipeline, 1 trigger)") {
		t.Errorf("serve --check good.yaml = %d %q %q, want 0 and ok", r.code, r.stdout, r.stderr)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("pipelines:\n  - {name: quick, path: "+qs+"}\ntriggers:\n  - {type: webhook, pipeline: quick, path: /h}\n"), 0o644)
	if r := runPirn(t, "serve", "--check", bad); r.code != exitUsage || !strings.Contains(r.stderr, "bad.yaml:4: trigger webhook") || !strings.Contains(r.stderr, "authentication is required") {
		t.Errorf("serve --check bad.yaml = %d %q, want 2 naming line 4 and the missing auth", r.code, r.stderr)
	}
}
