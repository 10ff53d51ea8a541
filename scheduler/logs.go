package scheduler

import (
	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
)

// LogsValue is the value that stands for an execution's log lines in the
// data store (lineage.Record.Logs): the canonical CBOR list of
// {"level": name, "msg": text} maps.
func LogsValue(lines []abi.LogLine) (cas.Value, error) {
	l := make([]any, len(lines))
	for i, line := range lines {
		l[i] = map[string]any{"level": line.Level.String(), "msg": line.Msg}
	}
	return cas.NewValue(l)
}

// storeLogs puts the lines, redacted, in the data store and returns
// their digest.
func (e *engine) storeLogs(lines []abi.LogLine) (cas.Digest, error) {
	if r := e.s.cfg.Redactor; r != nil {
		masked := make([]abi.LogLine, len(lines))
		for i, l := range lines {
			masked[i] = abi.LogLine{Level: l.Level, Msg: r.String(l.Msg)}
		}
		lines = masked
	}
	v, err := LogsValue(lines)
	if err != nil {
		return cas.Digest{}, err
	}
	if err := e.s.store.Put(e.bg, v.Digest, v.Bytes); err != nil {
		return cas.Digest{}, err
	}
	return v.Digest, nil
}
