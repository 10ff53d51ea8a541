package abi

import "fmt"

// Bounds on the log lines the host keeps of one invocation (a [Log]):
// what a guest logs beyond them still goes to the host's logger, but is
// not kept.
const (
	MaxLogLines     = 100      // lines kept of one invocation
	MaxLogBytes     = 16 << 10 // bytes of text kept of one invocation
	MaxLogLineBytes = 1 << 10  // bytes of one line's text
)

// LogLine is one line a guest logged. Msg is the guest's text, valid
// UTF-8, at most MaxLogLineBytes.
type LogLine struct {
	Level LogLevel
	Msg   string
}

// String returns the level's name: debug, info, warn or error.
func (l LogLevel) String() string {
	switch l {
	case LogDebug:
		return "debug"
	case LogWarn:
		return "warn"
	case LogError:
		return "error"
	}
	return "info"
}

// Log keeps the log lines of one invocation within MaxLogLines and
// MaxLogBytes, each clipped to MaxLogLineBytes, and counts those it drops.
// The zero value is empty and ready to use.
type Log struct {
	lines   []LogLine
	size    int
	dropped int
}

// Add keeps a line if the bounds allow, else counts it as dropped.
func (g *Log) Add(level LogLevel, msg string) {
	msg = ClipText(msg, MaxLogLineBytes)
	if len(g.lines) >= MaxLogLines || g.size+len(msg) > MaxLogBytes {
		g.dropped++
		return
	}
	g.size += len(msg)
	g.lines = append(g.lines, LogLine{Level: level, Msg: msg})
}

// Take returns the lines kept, followed, if any were dropped, by a warn
// line saying how many, and empties g. It returns nil if nothing was
// logged.
func (g *Log) Take() []LogLine {
	lines := g.lines
	if g.dropped > 0 {
		lines = append(lines, LogLine{Level: LogWarn, Msg: fmt.Sprintf("[%d more log lines dropped: at most %d lines, %d bytes are kept]", g.dropped, MaxLogLines, MaxLogBytes)})
	}
	*g = Log{}
	return lines
}
