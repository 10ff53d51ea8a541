package main

import (
	"fmt"
	"io"
	"unicode"
	"unicode/utf8"
)

// terminalWriter escapes, in everything pirn prints as text, what a
// module, a pipeline or a recorded value could use to take over a
// terminal: control characters other than newline and tab (ANSI escape
// sequences start with one), DEL, C1 controls, Unicode's bidirectional
// and other invisible format characters (which can make text read other
// than it is), and invalid UTF-8. A character becomes its JSON escape
// (\u001b, \u202e), which also keeps --json output valid and equal in
// meaning; an invalid byte becomes \xff. pirn itself prints no control
// characters, so nothing it means to print is lost.
//
// Each Write is escaped on its own; pirn writes whole strings, so a
// character is never split between writes.
type terminalWriter struct{ w io.Writer }

func (t terminalWriter) Write(p []byte) (int, error) {
	clean := true
	for i := 0; i < len(p); {
		r, n := utf8.DecodeRune(p[i:])
		if needsEscape(r, n) {
			clean = false
			break
		}
		i += n
	}
	if clean {
		return t.w.Write(p)
	}
	out := make([]byte, 0, len(p)+16)
	for i := 0; i < len(p); {
		r, n := utf8.DecodeRune(p[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			out = fmt.Appendf(out, `\x%02x`, p[i])
		case needsEscape(r, n):
			// The JSON spelling: inside a JSON string (--json) it
			// decodes to the same character.
			out = fmt.Appendf(out, `\u%04x`, r)
		default:
			out = append(out, p[i:i+n]...)
		}
		i += n
	}
	if _, err := t.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// needsEscape reports whether the rune r, n bytes long, must not reach a
// terminal as it is.
func needsEscape(r rune, n int) bool {
	switch {
	case r == '\n' || r == '\t':
		return false
	case r == utf8.RuneError && n <= 1:
		return true
	case r < 0x20 || (r >= 0x7f && r < 0xa0):
		return true
	}
	return r > 0x7f && unicode.Is(unicode.Cf, r) // bidi controls, zero-width characters, ...
}
