package host

import "strings"

// trapPrefix begins the message of the error wazero returns when a guest
// traps: it wraps its internal wasmruntime.Error as "wasm error: <trap>\n
// wasm stack trace:…" (internal/wasmdebug).
const trapPrefix = "wasm error: "

// isTrap reports whether err is a trap of the guest (unreachable, an
// out-of-bounds memory access, a stack overflow, …), and returns the first
// line of its message, without trapPrefix when the line starts with it.
// err must not be nil.
//
// wazero exports no type for traps (its wasmruntime.Error is internal),
// and the Extism SDK rewraps some errors with %v, which drops the chain
// errors.As would follow; so a trap is known by its text. This is the one
// place in pirn that classifies an error by its message: classify the
// others with errors.Is or errors.As (an exit, for one, is a
// *sys.ExitError).
func isTrap(err error) (msg string, ok bool) {
	s := err.Error()
	msg, _, _ = strings.Cut(s, "\n")
	return strings.TrimPrefix(msg, trapPrefix), strings.Contains(s, trapPrefix)
}
