package serve

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const quickstart = "../examples/quickstart/pipeline.yaml"

func TestParse(t *testing.T) {
	t.Setenv("HOOK_SECRET", "s3cret")
	src := `listen: 127.0.0.1:9999
drain: 10s
state: .pirn
pipelines:
  - name: quick
    path: ` + quickstart + `
    concurrency: 2
    queue: 0
triggers:
  - {type: cron, pipeline: quick, schedule: "*/5 * * * *", timezone: Europe/Berlin, params: {x: 5}}
  - {type: cron, pipeline: quick, every: 10s}
  - {type: webhook, pipeline: quick, path: /hooks/quick, auth: {hmac_secret_env: HOOK_SECRET}}
`
	cfg, err := Parse("testdata/serve.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.Listen != "127.0.0.1:9999" || cfg.Drain != 10*time.Second || cfg.State != ".pirn" {
		t.Errorf("Parse = listen %q drain %s state %q, want 127.0.0.1:9999 10s .pirn", cfg.Listen, cfg.Drain, cfg.State)
	}
	if len(cfg.Pipelines) != 1 || cfg.Pipelines[0].Concurrency != 2 || cfg.Pipelines[0].Queue != -1 {
		t.Errorf("Parse pipelines = %+v, want one, concurrency 2, no queue (-1)", cfg.Pipelines)
	}
	if len(cfg.Triggers) != 3 || cfg.Triggers[2].Line != 12 || cfg.Triggers[2].Pipeline != "quick" {
		t.Errorf("Parse triggers = %+v, want three, the webhook on line 12", cfg.Triggers)
	}
	if _, ok := cfg.Triggers[0].Fields["type"]; ok {
		t.Errorf("an entry's Fields keep its type: %v", cfg.Triggers[0].Fields)
	}
}

func TestParseErrors(t *testing.T) {
	t.Setenv("HOOK_SECRET", "s3cret")
	head := "pipelines:\n  - {name: quick, path: p.yaml}\ntriggers:\n"
	for _, tc := range []struct {
		name, src string
		line      int
		want      string
	}{
		{"unknown key", "listen: x\nlisten_addr: y\n" + head + "  - {type: cron, pipeline: quick, every: 1s}\n", 2, "unknown key \"listen_addr\""},
		{"unknown pipeline key", "pipelines:\n  - name: quick\n    paht: p.yaml\ntriggers: []\n", 3, "unknown key \"paht\""},
		{"bad drain", "drain: soon\n" + head + "  - {type: cron, pipeline: quick, every: 1s}\n", 1, "want a duration such as 30s"},
		{"negative drain", "drain: -1s\n" + head + "  - {type: cron, pipeline: quick, every: 1s}\n", 1, "want >= 0"},
		{"bad cron", head + "  - {type: cron, pipeline: quick, schedule: \"61 * * * *\"}\n", 4, "schedule \"61 * * * *\""},
		{"cron six fields", head + "  - {type: cron, pipeline: quick, schedule: \"0 */5 * * * *\"}\n", 4, "five fields"},
		{"bad zone", head + "  - {type: cron, pipeline: quick, schedule: \"@hourly\", timezone: Mars/Olympus}\n", 4, "Mars/Olympus"},
		{"bad every", head + "  - {type: cron, pipeline: quick, every: 1ms}\n", 4, "at least 100ms"},
		{"every not a duration", head + "  - {type: cron, pipeline: quick, every: often}\n", 4, "often"},
		{"cron unknown field", head + "  - {type: cron, pipeline: quick, every: 1s, overlapp: true}\n", 4, "overlapp"},
		{"missing auth", head + "  - {type: webhook, pipeline: quick, path: /h}\n", 4, "authentication is required"},
		{"bad auth", head + "  - {type: webhook, pipeline: quick, path: /h, auth: maybe}\n", 4, "want none"},
		{"unset secret", head + "  - {type: webhook, pipeline: quick, path: /h, auth: {bearer_token_env: PIRN_TEST_UNSET_VAR}}\n", 4, "PIRN_TEST_UNSET_VAR is not set"},
		{"bad mapping", head + "  - {type: webhook, pipeline: quick, path: /h, auth: none, mapping: {params: {x: \"event.\"}}}\n", 4, "parameter \"x\""},
		{"unknown pipeline", head + "  - {type: cron, pipeline: quik, every: 1s}\n", 4, "unknown pipeline \"quik\" (pipelines: quick)"},
		{"no pipeline", head + "  - {type: cron, every: 1s}\n", 4, "no pipeline"},
		{"unknown type", head + "  - {type: carrier-pigeon, pipeline: quick}\n", 4, "unknown type \"carrier-pigeon\""},
		{"no type", head + "  - {pipeline: quick}\n", 4, "without a type"},
		{"two webhooks on a path", head + "  - {type: webhook, pipeline: quick, path: /h, auth: none}\n  - {type: webhook, pipeline: quick, path: /h, auth: none}\n", 5, "taken by the webhook of line 4"},
		{"webhook on healthz", head + "  - {type: webhook, pipeline: quick, path: /healthz, auth: none}\n", 4, "server's own"},
		{"pipeline twice", "pipelines:\n  - {name: quick, path: p.yaml}\n  - {name: quick, path: q.yaml}\ntriggers:\n  - {type: cron, pipeline: quick, every: 1s}\n", 3, "named twice"},
		{"path and bundle", "pipelines:\n  - {name: quick, path: p.yaml, bundle: b.bundle}\ntriggers:\n  - {type: cron, pipeline: quick, every: 1s}\n", 2, "want one of path"},
		{"no triggers", "pipelines:\n  - {name: quick, path: p.yaml}\n", 1, "nothing would start a run"},
		{"not a mapping", "- a\n- b\n", 1, "want a mapping"},
		{"yaml syntax", "pipelines: [\n", 1, "did not find"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("serve.yaml", []byte(tc.src))
			var errs ConfigErrors
			if !errors.As(err, &errs) {
				t.Fatalf("Parse(%q) = %v, want ConfigErrors", tc.src, err)
			}
			for _, e := range errs {
				if e.Line == tc.line && strings.Contains(e.Msg, tc.want) && strings.HasPrefix(e.Error(), "serve.yaml:") {
					return
				}
			}
			t.Errorf("Parse(%q) = %v, want an error on line %d containing %q", tc.src, err, tc.line, tc.want)
		})
	}
}
