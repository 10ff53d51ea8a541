package emit

import (
	"cmp"
	"context"
	"log/slog"
	"maps"
	"slices"
)

// Attribute keys of the log emitter's records.
const (
	keyRun      = "run"
	keySeq      = "seq"
	keyPipeline = "pipeline"
	keyKnot     = "knot"
	keyState    = "state"
	keyKind     = "kind"
	keyModule   = "module"
	keyOutput   = "output"
	keyInputs   = "inputs"
	keyDuration = "duration"
	keySkip     = "skip_reason"
	keyError    = "error"
	keyLabels   = "labels"
)

// LogConfig configures a Log emitter.
type LogConfig struct {
	Logger *slog.Logger // nil discards
}

// Log is the "log" emitter: one structured slog record per event, at the
// level a user expects (a knot running at DEBUG, ok and skipped at INFO,
// err at WARN, a failed run at ERROR, lineage records at DEBUG). Text
// from knots and requests (error messages, labels) is only ever an
// attribute value, which the handler escapes.
type Log struct {
	log *slog.Logger
}

var _ Emitter = (*Log)(nil)

// NewLog returns a Log emitter.
func NewLog(cfg LogConfig) *Log {
	return &Log{log: cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))}
}

// logFromSpec builds a log emitter from a serve.yaml entry (type log).
func logFromSpec(s Spec) (Emitter, error) {
	var cfg struct{}
	if err := s.Decode(&cfg); err != nil {
		return nil, err
	}
	return NewLog(LogConfig{Logger: s.Logger}), nil
}

// Name returns "log".
func (l *Log) Name() string { return "log" }

// Close does nothing: slog handlers write as they go.
func (l *Log) Close(context.Context) error { return nil }

// Emit logs ev.
func (l *Log) Emit(ctx context.Context, ev *Event) error {
	level, msg := logLevel(ev)
	if !l.log.Enabled(ctx, level) {
		return nil
	}
	attrs := []slog.Attr{slog.String(keyRun, ev.RunID), slog.Uint64(keySeq, ev.Seq)}
	if ev.Pipeline != "" {
		attrs = append(attrs, slog.String(keyPipeline, ev.Pipeline))
	}
	if ev.Knot != "" {
		attrs = append(attrs, slog.String(keyKnot, ev.Knot))
	}
	attrs = append(attrs, slog.String(keyState, ev.State))
	if r := ev.Record; r != nil {
		attrs = append(attrs, slog.String(keyKind, r.Kind))
		if r.Module != "" {
			attrs = append(attrs, slog.String(keyModule, r.Module))
		}
		if r.Output != "" {
			attrs = append(attrs, slog.String(keyOutput, r.Output))
		}
		if len(r.Inputs) > 0 {
			in := make([]any, len(r.Inputs))
			for i, x := range r.Inputs {
				in[i] = slog.String(x.Name, x.Digest)
			}
			attrs = append(attrs, slog.Group(keyInputs, in...))
		}
		if r.SkipReason != "" {
			attrs = append(attrs, slog.String(keySkip, r.SkipReason))
		}
		if !r.Finished.IsZero() {
			attrs = append(attrs, slog.Duration(keyDuration, r.Finished.Sub(r.Started)))
		}
	}
	if r := ev.Run; r != nil && ev.Kind == RunFinished {
		attrs = append(attrs, slog.Duration(keyDuration, r.Finished.Sub(r.Started)),
			slog.Int("knots", r.Knots), slog.Int("failed", r.Failed), slog.Int("skipped", r.Skipped))
		if r.Error != "" {
			attrs = append(attrs, slog.String(keyError, r.Error))
		}
	}
	if e := ev.Error; e != nil {
		attrs = append(attrs, slog.Group(keyError, slog.String("type", e.Type), slog.String("message", e.Message)))
	}
	if len(ev.Labels) > 0 {
		ls := make([]any, 0, len(ev.Labels))
		for _, k := range slices.Sorted(maps.Keys(ev.Labels)) {
			ls = append(ls, slog.String(k, ev.Labels[k]))
		}
		attrs = append(attrs, slog.Group(keyLabels, ls...))
	}
	l.log.LogAttrs(ctx, level, msg, attrs...)
	return nil
}

// logLevel returns an event's level and constant message.
func logLevel(ev *Event) (slog.Level, string) {
	switch ev.Kind {
	case RunStarted:
		return slog.LevelInfo, "run started"
	case KnotStatus:
		switch ev.State {
		case StateRunning:
			return slog.LevelDebug, "knot running"
		case "err":
			return slog.LevelWarn, "knot failed"
		case "skipped":
			return slog.LevelInfo, "knot skipped"
		}
		return slog.LevelInfo, "knot finished"
	case LineageRecord:
		return slog.LevelDebug, "lineage record"
	case RunFinished:
		switch ev.State {
		case "succeeded":
			return slog.LevelInfo, "run finished"
		case "cancelled":
			return slog.LevelWarn, "run cancelled"
		}
		return slog.LevelError, "run failed"
	}
	return slog.LevelInfo, "event"
}
