package host_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/model"
)

const (
	wcCommand   = "examples/wasm/wasi-command/wc/wc.wasm"
	testCommand = "testdata/wasm/go/command/command.wasm"
)

// TestCommand runs a WASI command as a knot: JSON on stdin, JSON on
// stdout, the exit status as the outcome.
func TestCommand(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	ctx := t.Context()
	m := loadWith(t, h, wcCommand, host.LoadOptions{ABI: host.ABICommand})
	if m.Format() != host.FormatJSON || strings.Join(m.Manifest().KnotNames(), ",") != host.CommandKnot {
		t.Errorf("format %q, knots %v", m.Format(), m.Manifest().KnotNames())
	}
	wc := knot(t, m, host.CommandKnot, model.Limits{})
	got := decode(t, wc.Invoke(ctx, call(arg(t, "text", "one two\nthree\n"))))
	want := map[string]any{"lines": int64(2), "words": int64(3), "chars": int64(14)}
	if !equalValue(got, want) {
		t.Errorf("wc = %v, want %v", got, want)
	}
	r := wc.Invoke(ctx, call(arg(t, "txt", "typo")))
	if r.Outcome != abi.OutcomeErr || r.Error.Type != host.ErrCommand || r.Error.Message != "wc: no text input" {
		t.Errorf("wc without text: %v %+v", r.Outcome, r.Error)
	}
	if d, _ := cas.Decode(r.Error.Detail); !equalValue(d, map[string]any{"status": int64(1)}) {
		t.Errorf("detail = %v, want {status: 1}", d)
	}
}

func TestCommandMisbehaving(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	ctx := t.Context()
	m := loadWith(t, h, testCommand, host.LoadOptions{ABI: host.ABICommand})
	mode := func(lim model.Limits, mode string, extra ...abi.Arg) abi.Response {
		return knot(t, m, host.CommandKnot, lim).Invoke(ctx, call(append(extra, arg(t, "mode", mode))...))
	}
	got := decode(t, mode(model.Limits{}, "echo", arg(t, "b", []byte{1, 2}), arg(t, "f", 1.5), arg(t, "l", []any{int64(1), "x", nil})))
	want := map[string]any{"mode": "echo", "b": "base64:AQI=", "f": 1.5, "l": []any{int64(1), "x", nil}}
	if !equalValue(got, want) {
		t.Errorf("echo = %#v, want %#v", got, want)
	}
	// Nothing from outside the sandbox: no files, no environment, the
	// module name as the only argument, a fake clock.
	got = decode(t, mode(model.Limits{}, "ambient"))
	want = map[string]any{"args": []any{testCommand}, "env": []any{}, "passwd": false, "root": int64(0), "year": int64(2022)} // wazero's fake clock starts in 2022
	if !equalValue(got, want) {
		t.Errorf("ambient = %#v, want %#v", got, want)
	}
	for _, tc := range []struct {
		mode string
		lim  model.Limits
		typ  string
		msg  string
	}{
		{"fail", model.Limits{}, host.ErrCommand, "something went wrong\nbadly"},
		{"silent", model.Limits{}, host.ErrCommand, "exited with status 4"},
		{"flood", model.Limits{MaxOutput: 1 << 20}, host.ErrLimit, "stdout exceeds the limit MaxOutput=1048576 bytes"},
		{"loop", model.Limits{Timeout: 300 * time.Millisecond}, host.ErrTimeout, "exceeded its timeout of 300ms"},
		{"garbage", model.Limits{}, host.ErrABI, "command output (json): JSON: invalid character"},
		{"panic", model.Limits{}, host.ErrCommand, "assignment to entry in nil map"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			r := mode(tc.lim, tc.mode)
			if r.Outcome != abi.OutcomeErr || r.Error.Type != tc.typ || !strings.Contains(r.Error.Message, tc.msg) {
				t.Errorf("%v %+v; want %s containing %q", r.Outcome, r.Error, tc.typ, tc.msg)
			}
		})
	}

	cbor := loadWith(t, h, testCommand, host.LoadOptions{ABI: host.ABICommand, Format: host.FormatCBOR})
	r := knot(t, cbor, host.CommandKnot, model.Limits{}).Invoke(ctx, call(arg(t, "mode", "echo")))
	if r.Outcome != abi.OutcomeErr || r.Error.Type != host.ErrCommand || !strings.Contains(r.Error.Message, "bad input") {
		t.Errorf("a JSON command fed CBOR: %v %+v", r.Outcome, r.Error)
	}
}

func TestLoadWithRefuses(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	ctx := t.Context()
	for _, tc := range []struct {
		path string
		opts host.LoadOptions
		want string
	}{
		{arith, host.LoadOptions{ABI: "wasm-bindgen"}, `unknown ABI "wasm-bindgen"`},
		{arith, host.LoadOptions{ABI: host.ABIExtism, Format: "yaml"}, `unknown format "yaml"`},
		{arith, host.LoadOptions{Format: host.FormatJSON}, "a format applies only to the extism and wasi-command ABIs"},
		{arith, host.LoadOptions{ABI: host.ABICommand}, "imports pirn.output, which the host does not provide (a WASI command may import only wasi_snapshot_preview1)"},
		{arith, host.LoadOptions{ABI: host.ABICommand}, "does not export _start"},
		{arith, host.LoadOptions{ABI: host.ABIExtism}, "imports pirn.input, which the host does not provide (an Extism plugin may import only extism:host/env and wasi_snapshot_preview1)"},
		{wcCommand, host.LoadOptions{}, "does not export pirn_invoke"},
		{wcCommand, host.LoadOptions{}, "it looks like a WASI command (it exports _start): load it with abi: wasi-command (pirn inspect --abi wasi-command)"},
		{plainPlugin, host.LoadOptions{}, "it looks like an Extism plugin (it imports extism:host/env): load it with abi: extism (pirn inspect --abi extism)"},
	} {
		_, err := h.LoadWith(ctx, tc.path, readWasm(t, tc.path), tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadWith(%s, %+v) = %v, want %q", tc.path, tc.opts, err, tc.want)
		}
	}
}

// equalValue compares decoded values.
func equalValue(a, b any) bool {
	x, err1 := cas.Encode(a)
	y, err2 := cas.Encode(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// TestCommandGrants: a WASI command gets its grants through WASI too.
func TestCommandGrants(t *testing.T) {
	h := newHost(t, host.Config{})
	m := loadWith(t, h, testCommand, host.LoadOptions{ABI: host.ABICommand})
	t.Setenv("PIRN_TEST_REGION", "eu-west")
	dir := t.TempDir()
	k, err := m.Knot(host.KnotConfig{Name: host.CommandKnot,
		Grants: model.Grants{Env: []string{"PIRN_TEST_REGION"}, Clock: true, Dirs: []model.DirGrant{{Path: dir, Mount: "/"}}}})
	if err != nil {
		t.Fatal(err)
	}
	got := decode(t, k.Invoke(t.Context(), call(arg(t, "mode", "ambient")))).(map[string]any)
	if !equalValue(got["env"], []any{"PIRN_TEST_REGION=eu-west"}) || got["year"].(int64) < 2026 || got["passwd"] != false {
		t.Errorf("ambient with grants = %v", got)
	}
	if _, err := m.Knot(host.KnotConfig{Name: host.CommandKnot, Grants: model.Grants{HTTP: []model.HTTPGrant{{Host: "x.org"}}}}); err == nil ||
		!strings.Contains(err.Error(), "an http grant needs a pirn module") {
		t.Errorf("http grant on a command: %v", err)
	}
}
