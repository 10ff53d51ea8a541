package page

import (
	"errors"
	"fmt"

	"github.com/pirn-wasm/pirn/cas"
)

// logsDetail is what a node's detail shows of the lines its execution
// logged (lineage.Record.Logs).
type logsDetail struct {
	Digest string    `json:"digest"`
	Lines  []logLine `json:"lines,omitempty"`
	Note   string    `json:"note,omitempty"`
}

type logLine struct {
	Level string `json:"level"`
	Msg   string `json:"msg"`
}

// logs reads the log lines d names, within the page's budgets: they count
// as one value against MaxValues and their text against MaxTotalBytes,
// and at most MaxTraceBytes of text are shown for one node. The text is
// the guest's: control and format characters are made visible, and the
// page shows it as text.
func (b *builder) logs(d cas.Digest) *logsDetail {
	l := &logsDetail{Digest: d.String()}
	if b.store == nil {
		return l
	}
	if b.values >= b.cfg.MaxValues || b.bytes >= b.cfg.MaxTotalBytes {
		b.cut = true
		l.Note = "not embedded: this page's budget of values is spent"
		return l
	}
	b.values++
	raw, err := b.store.Get(b.ctx, d)
	switch {
	case errors.Is(err, cas.ErrNotFound):
		l.Note = "not in the data store"
		return l
	case err != nil:
		l.Note = "unreadable: " + cut(visible(err.Error()), 200)
		return l
	case len(raw) > b.cfg.MaxStoredBytes:
		l.Note = fmt.Sprintf("%d bytes: too large to decode here", len(raw))
		return l
	}
	// A record's logs are at most 101 maps of two entries (abi.Log).
	v, err := cas.DecodeBounded(raw, 1<<10)
	list, ok := v.([]any)
	if err != nil || !ok {
		l.Note = "not a list of log lines"
		return l
	}
	size := 0
	for i, e := range list {
		m, _ := e.(map[string]any)
		level, _ := m["level"].(string)
		msg, ok := m["msg"].(string)
		if !ok {
			l.Note = fmt.Sprintf("line %d is not a log line", i)
			break
		}
		line := logLine{Level: visible(cut(level, 16)), Msg: visibleText(msg)}
		if size += len(line.Level) + len(line.Msg); size > b.cfg.MaxTraceBytes {
			l.Note = fmt.Sprintf("%d more lines not shown (at most %d bytes of a node's logs are)", len(list)-i, b.cfg.MaxTraceBytes)
			break
		}
		l.Lines = append(l.Lines, line)
	}
	b.bytes += size
	return l
}
