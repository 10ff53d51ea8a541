package dispatch

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pirn-wasm/pirn/abi"
)

// TestResultLogsBounded: a result's log lines, from another process, are
// held to a host's bounds: at most abi.MaxLogLines and the count line,
// each clipped to abi.MaxLogLineBytes of valid UTF-8, at a known level.
func TestResultLogsBounded(t *testing.T) {
	r := &Result{}
	for i := range 500 {
		r.Logs = append(r.Logs, LogLine{Level: int32(i%7) - 2, Msg: strings.Repeat("\xff<script>", 1000)})
	}
	got := r.logLines()
	if len(got) != abi.MaxLogLines+1 {
		t.Fatalf("%d lines, want %d", len(got), abi.MaxLogLines+1)
	}
	for i, l := range got {
		if len(l.Msg) > abi.MaxLogLineBytes || !utf8.ValidString(l.Msg) || l.Level < abi.LogDebug || l.Level > abi.LogError {
			t.Fatalf("line %d: level %d, %d bytes, valid UTF-8 %v", i, l.Level, len(l.Msg), utf8.ValidString(l.Msg))
		}
	}
	if got := (&Result{}).logLines(); got != nil {
		t.Errorf("no lines: %v", got)
	}
}
