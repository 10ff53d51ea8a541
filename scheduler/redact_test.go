package scheduler_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/redact"
	"github.com/pirn-wasm/pirn/scheduler"
)

// TestRedaction: a knot granted an environment variable puts its value
// in its error's message, trace and detail; the error record, the event
// an observer gets and the history hold none of it, and the error's id
// is the hash of the masked text.
func TestRedaction(t *testing.T) {
	const secret = "tok-5b1e9c0d"
	t.Setenv("PIRN_TEST_SECRET", secret)
	r, err := redact.New(redact.Config{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, scheduler.Config{Redactor: r})
	leak := scheduler.Fn{Name: "host:leak", Grants: []string{"env:PIRN_TEST_SECRET"}, Invoker: invoker(func(context.Context, *scheduler.Call) abi.Response {
		detail, _ := cas.Encode(map[string]any{"token": secret, "nested": []any{"with " + secret}})
		return abi.Response{Outcome: abi.OutcomeErr, Error: &abi.Error{Type: "AuthError", Message: "login with " + secret + " refused",
			Trace: "at connect(" + secret + ")", Detail: detail}, Logs: []abi.LogLine{{Level: abi.LogWarn, Msg: "trying " + secret}}}
	})}
	tp := scheduler.NewTapestry()
	must[*scheduler.Node](t)(tp.AddKnot(scheduler.KnotDecl{ID: "leak", Kind: 0, Fn: leak, Optional: true}))
	obs := &events{}
	res, err := e.s.Run(t.Context(), tp, scheduler.Request{Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 1 {
		t.Fatalf("%d errors", len(res.Errors))
	}
	er := res.Errors[0]
	d, _ := cas.Decode(er.Detail)
	for what, text := range map[string]string{"message": er.Message, "trace": er.Trace, "detail": toString(d)} {
		if strings.Contains(text, secret) || !strings.Contains(text, redact.Mask) {
			t.Errorf("%s: %q", what, text)
		}
	}
	for _, ev := range obs.evs {
		if ev.Error != nil && (strings.Contains(ev.Error.Message, secret) || strings.Contains(ev.Error.Trace, secret)) {
			t.Errorf("event %v: %+v", ev.Kind, ev.Error)
		}
	}
	got, err := e.hist.Run(t.Context(), res.ID)
	if err != nil || strings.Contains(got.Errors[0].Message, secret) {
		t.Errorf("history: %+v, %v", got.Errors, err)
	}
	b, err := e.store.Get(t.Context(), res.Records[0].Logs)
	if err != nil {
		t.Fatalf("logs: %v", err)
	}
	if logs, _ := cas.Decode(b); strings.Contains(toString(logs), secret) || !strings.Contains(toString(logs), "trying "+redact.Mask) {
		t.Errorf("logs: %v", logs)
	}
}

type invoker func(context.Context, *scheduler.Call) abi.Response

func (f invoker) Invoke(ctx context.Context, c *scheduler.Call) abi.Response { return f(ctx, c) }

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []any:
		var parts []string
		for _, e := range x {
			parts = append(parts, toString(e))
		}
		return strings.Join(parts, " ")
	case map[string]any:
		var parts []string
		for k, e := range x {
			parts = append(parts, k, toString(e))
		}
		return strings.Join(parts, " ")
	}
	return ""
}
