package abi

import (
	"fmt"
	"unicode/utf8"

	"github.com/pirn-wasm/pirn/internal/pcbor"
)

// Bounds on the text of a non-ok outcome. A guest chooses all of it (an
// error's message, a trap's trace, which names functions from the module's
// own name section), and it is stored in every run's history and printed:
// [Response.Clip] holds each part to its bound, so that an error record
// costs at most about 100 KiB whatever the module.
const (
	MaxErrorType    = 256      // bytes of Error.Type
	MaxErrorMessage = 16 << 10 // bytes of Error.Message
	MaxErrorTrace   = 64 << 10 // bytes of Error.Trace
	MaxSkipReason   = 1 << 10  // bytes of Skip.Reason
	MaxDetail       = 16 << 10 // bytes of an Error's or a Skip's Detail
)

// Clip holds r's error or skip text and details to the bounds above, in
// place. A text over its bound keeps its beginning (cut at a character
// boundary) and says how much was cut; a detail over its bound is replaced
// by {"clipped_bytes": n}. It reports whether anything was clipped.
func (r *Response) Clip() bool {
	clipped := false
	text := func(s *string, limit int) {
		if len(*s) > limit {
			*s = ClipText(*s, limit)
			clipped = true
		}
	}
	detail := func(d *[]byte) {
		if len(*d) > MaxDetail {
			b := pcbor.AppendHead(nil, pcbor.Map, 1)
			b = pcbor.AppendText(b, "clipped_bytes")
			*d = AppendInt(b, int64(len(*d)))
			clipped = true
		}
	}
	if e := r.Error; e != nil {
		text(&e.Type, MaxErrorType)
		text(&e.Message, MaxErrorMessage)
		text(&e.Trace, MaxErrorTrace)
		detail((*[]byte)(&e.Detail))
	}
	if s := r.Skip; s != nil {
		text(&s.Reason, MaxSkipReason)
		detail((*[]byte)(&s.Detail))
	}
	return clipped
}

// ClipText returns s if it has at most limit bytes, and otherwise its
// beginning, cut at a character boundary, and a note of what was cut, in
// at most limit bytes all told.
func ClipText(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	note := fmt.Sprintf("… [%d bytes clipped]", len(s))
	cut := max(limit-len(note), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + note
}
