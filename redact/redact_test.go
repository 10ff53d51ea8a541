package redact

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	r, err := New(Config{Secrets: []string{"hunter22", "hunter2222", "abc"}, Patterns: []string{`card=(\d{4})`}})
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"plain text stays":                          "plain text stays",
		"the key is hunter22!":                      "the key is [REDACTED]!",
		"longer hunter2222 masked whole":            "longer [REDACTED] masked whole",
		"abc is too short to be a secret":           "abc is too short to be a secret",
		"postgres://app:s3cr3t@db:5432/x failed":    "postgres://app:[REDACTED]@db:5432/x failed",
		"login with password=letmein now":           "login with password=[REDACTED] now",
		`{"api_key": "k-123"}`:                      `{"api_key": "[REDACTED]"}`,
		"Token: abc.def and more":                   "Token: [REDACTED] and more",
		"Authorization: Bearer eyJhbGciOi.x.y done": "Authorization: Bearer [REDACTED] done",
		"card=1234 charged":                         "card=[REDACTED] charged",
		"twice hunter22 and hunter22":               "twice [REDACTED] and [REDACTED]",
	} {
		if got := r.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
	var nilR *Redactor
	if nilR.String("hunter22") != "hunter22" || nilR.Func() != nil {
		t.Error("a nil Redactor masked something")
	}
}

// TestBounds: bad patterns, patterns matching nothing-at-all, oversized
// secrets and too many secrets are errors naming the problem; a hostile
// pattern runs in linear time (RE2), so a long input is masked at once.
func TestBounds(t *testing.T) {
	for _, cfg := range []Config{
		{Patterns: []string{"("}},
		{Patterns: []string{"x*"}},
		{Patterns: []string{strings.Repeat("a", MaxPattern+1)}},
		{Patterns: make([]string, MaxPatterns+1)},
		{Secrets: []string{strings.Repeat("s", MaxSecret+1)}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%.60v) accepted", cfg)
		}
	}
	r, err := New(Config{Patterns: []string{`(a+)+b`}})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.String(strings.Repeat("a", 1<<16) + "c"); len(got) != 1<<16+1 {
		t.Errorf("masked %d bytes", len(got))
	}
	many := make([]string, MaxSecrets+1)
	for i := range many {
		many[i] = strings.Repeat("x", 8) + string(rune('a'+i%26)) + strings.Repeat("y", i/26)
	}
	if err := r.AddSecrets(many...); !errors.Is(err, ErrTooMany) {
		t.Errorf("AddSecrets(%d) = %v", len(many), err)
	}
}

func TestHandler(t *testing.T) {
	r, err := New(Config{Secrets: []string{"hunter22"}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	lg := slog.New(r.Handler(slog.NewJSONHandler(&buf, nil))).With("dsn", "x://u:hunter22@h")
	lg.Info("connecting with hunter22", "err", errors.New("denied for hunter22"), slog.Group("g", "k", "v=hunter22"), "raw", []byte("hunter22"))
	if out := buf.String(); strings.Contains(out, "hunter22") || strings.Count(out, Mask) < 5 {
		t.Errorf("log: %s", out)
	}
}
