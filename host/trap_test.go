package host

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"
)

// unreachableWasm is a module exporting "f", whose body is unreachable:
// (module (func (export "f") unreachable)).
var unreachableWasm = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // types: () -> ()
	0x03, 0x02, 0x01, 0x00, // functions: one of type 0
	0x07, 0x05, 0x01, 0x01, 'f', 0x00, 0x00, // exports: "f" = func 0
	0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b, // code: no locals, unreachable, end
}

// callBoomWasm is a module exporting "f", which calls the host's env.boom:
// (module (import "env" "boom" (func)) (func (export "f") call 0)).
var callBoomWasm = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // types: () -> ()
	0x02, 0x0c, 0x01, 0x03, 'e', 'n', 'v', 0x04, 'b', 'o', 'o', 'm', 0x00, 0x00, // imports: env.boom, type 0
	0x03, 0x02, 0x01, 0x00, // functions: one of type 0
	0x07, 0x05, 0x01, 0x01, 'f', 0x00, 0x01, // exports: "f" = func 1
	0x0a, 0x06, 0x01, 0x04, 0x00, 0x10, 0x00, 0x0b, // code: no locals, call 0, end
}

// TestIsTrap classifies errors wazero itself returns: a trap (also as the
// Extism SDK rewraps it, with %v), a panicking host function and an exit.
func TestIsTrap(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().
		WithCloseOnContextDone(true).WithMemoryLimitPages(1))
	t.Cleanup(func() { r.Close(ctx) })

	guest, err := r.Instantiate(ctx, unreachableWasm)
	if err != nil {
		t.Fatal(err)
	}
	_, trap := guest.ExportedFunction("f").Call(ctx)
	if trap == nil {
		t.Fatal("f did not trap")
	}
	if _, err := r.NewHostModuleBuilder("env").NewFunctionBuilder().
		WithFunc(func() { panic(errors.New("boom")) }).Export("boom").Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	caller, err := r.Instantiate(ctx, callBoomWasm)
	if err != nil {
		t.Fatal(err)
	}
	_, panicked := caller.ExportedFunction("f").Call(ctx)
	if panicked == nil {
		t.Fatal("boom did not fail")
	}

	for _, tc := range []struct {
		name    string
		err     error
		wantMsg string
		wantOK  bool
	}{
		{"trap", trap, "unreachable", true},
		{"trap wrapped", fmt.Errorf("call f: %w", trap), "call f: wasm error: unreachable", true},
		{"trap rewrapped as text", fmt.Errorf("failed to initialize runtime: %v", trap), "failed to initialize runtime: wasm error: unreachable", true},
		{"host function panic", panicked, "boom (recovered by wazero)", false},
		{"exit", sys.NewExitError(3), "module closed with exit_code(3)", false},
		{"other", errors.New("wasm: error\nsecond line"), "wasm: error", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, ok := isTrap(tc.err)
			if msg != tc.wantMsg || ok != tc.wantOK {
				t.Errorf("isTrap(%q) = %q, %v, want %q, %v", tc.err, msg, ok, tc.wantMsg, tc.wantOK)
			}
		})
	}
}
