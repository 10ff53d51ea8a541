package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/pirn-wasm/pirn/emit"
)

// FileTailConfig configures a FileTail; the json names are a serve.yaml
// `source:` entry's of type "file".
type FileTailConfig struct {
	// Path is the file to follow. Required.
	Path string `json:"path"`
	// FromStart reads the file from its beginning; by default the tail
	// starts at its end (at the start of a partial last line), and reads
	// from the beginning only a file that appears after it started.
	FromStart bool `json:"from_start,omitempty"`
	// Poll is how often the tail looks for more lines, a rotation or a
	// truncation once it has read everything; 0 means 100ms.
	Poll emit.Duration `json:"poll,omitempty"`
	// MaxLine bounds a line in bytes (without its newline); 0 means
	// DefaultMaxLine. A longer line is skipped and logged with its file
	// and line number.
	MaxLine int `json:"max_line,omitempty"`
	// Format is "json" (the default: each line is one JSON value) or
	// "text" (each line is a string).
	Format string `json:"format,omitempty"`
	// State, if set, is a file where the tail keeps the position after
	// the last acked line (written only on acks, atomically by rename),
	// so that a restarted tail resumes there rather than at the end.
	State string `json:"state,omitempty"`
	// Logger receives skipped lines, rotations and truncations; nil
	// discards.
	Logger *slog.Logger `json:"-"`
}

// DefaultPoll is FileTailConfig.Poll's default.
const DefaultPoll = 100 * time.Millisecond

// FileTail is a Source of the lines of a file as it grows, like tail -F:
// only complete lines (a partial last line waits for its newline); it
// follows rotation (the file renamed and a new one created at its path:
// it finishes the old file, its partial last line included, then reads
// the new one from the start) and truncation (the file shorter than
// where the tail is: it restarts at offset 0). It never ends by itself.
// A line that is too long, or that is not JSON with Format "json", is
// logged with its file and line number and skipped.
//
// Each item's Origin is {"source": "file", "file", "line", "offset"}
// (the byte offset of the line's start). Next and Close may be called
// from different goroutines, Next from one at a time; Ack from any.
type FileTail struct {
	cfg    FileTailConfig
	format Format
	log    *slog.Logger
	closed chan struct{}
	once   sync.Once

	// Next's: the file being read and where.
	f       *os.File
	fi      os.FileInfo
	sp      *splitter
	started bool // the first open happened

	mu    sync.Mutex // the state file
	saved tailState
}

var _ Source = (*FileTail)(nil)

// tailState is what FileTailConfig.State holds: the file (by device and
// inode, as far as the system has them), and where the next unacked line
// starts.
type tailState struct {
	Path   string `json:"path"`
	File   string `json:"file,omitempty"` // the file's identity ("device:inode"), "" if unknown
	Offset int64  `json:"offset"`
	Line   int64  `json:"line"` // the number of the line at Offset
}

// NewFileTail checks cfg and returns a tail; it opens nothing before
// the first Next.
func NewFileTail(cfg FileTailConfig) (*FileTail, error) {
	format, err := ParseFormat(cfg.Format)
	switch {
	case err != nil:
		return nil, fmt.Errorf("file source: %w", err)
	case cfg.Path == "":
		return nil, errors.New("file source: no path")
	case cfg.Poll < 0:
		return nil, fmt.Errorf("file source: poll %v, want >= 0", time.Duration(cfg.Poll))
	case cfg.MaxLine < 0:
		return nil, fmt.Errorf("file source: max_line %d, want >= 0", cfg.MaxLine)
	}
	if cfg.Poll == 0 {
		cfg.Poll = emit.Duration(DefaultPoll)
	}
	if cfg.MaxLine == 0 {
		cfg.MaxLine = DefaultMaxLine
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &FileTail{cfg: cfg, format: format, log: lg, closed: make(chan struct{})}, nil
}

// newFileSource is the "file" type of Sources.
func newFileSource(s emit.Spec) (Source, error) {
	var cfg FileTailConfig
	if err := s.Decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.Path != "" && !filepath.IsAbs(cfg.Path) && s.Dir != "" {
		cfg.Path = filepath.Join(s.Dir, cfg.Path)
	}
	if cfg.State != "" && !filepath.IsAbs(cfg.State) && s.Dir != "" {
		cfg.State = filepath.Join(s.Dir, cfg.State)
	}
	cfg.Logger = s.Logger
	return NewFileTail(cfg)
}

// Name returns "file:" and the path.
func (t *FileTail) Name() string { return "file:" + t.cfg.Path }

// ErrClosed is returned by a source's Next after Close.
var ErrClosed = errors.New("serve: source closed")

// Close stops the tail: a Next waiting for lines returns ErrClosed.
func (t *FileTail) Close() error {
	t.once.Do(func() { close(t.closed) })
	// The file is closed by Next, which may be reading it now.
	return nil
}

// Next returns the next complete line, waiting for one until ctx ends
// or the tail is closed.
func (t *FileTail) Next(ctx context.Context) (Item, error) {
	for {
		select {
		case <-t.closed:
			t.closeFile()
			return Item{}, ErrClosed
		default:
		}
		if t.f == nil {
			if err := t.open(); err != nil {
				return Item{}, err
			}
			if t.f == nil {
				if err := t.wait(ctx); err != nil {
					return Item{}, err
				}
				continue
			}
		}
		if l, ok := t.sp.next(); ok {
			if it, ok := t.item(l); ok {
				return it, nil
			}
			continue
		}
		n, err := t.sp.fill(t.f)
		if n > 0 {
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return Item{}, fmt.Errorf("read %s: %w", t.cfg.Path, err)
		}
		rotated, rewound, err := t.atEOF()
		switch {
		case err != nil:
			return Item{}, err
		case rotated:
			// The old file is finished: its partial last line is a
			// line too, then the new file is read from its start.
			l, ok := t.sp.rest()
			var it Item
			if ok {
				it, ok = t.item(l)
			}
			t.closeFile()
			if ok {
				return it, nil
			}
			continue
		case rewound:
			continue
		}
		if err := t.wait(ctx); err != nil {
			return Item{}, err
		}
	}
}

// wait waits one poll interval.
func (t *FileTail) wait(ctx context.Context) error {
	tm := time.NewTimer(time.Duration(t.cfg.Poll))
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.closed:
		t.closeFile()
		return ErrClosed
	}
}

// open opens the file at the path, if there is one, and places the tail:
// at the saved state if it names this file, at the start if FromStart or
// if the file appeared after the tail started, else at its end.
func (t *FileTail) open() error {
	f, err := os.Open(t.cfg.Path)
	if errors.Is(err, fs.ErrNotExist) {
		if !t.started {
			t.log.Info("file source: waiting for the file to appear", "file", t.cfg.Path)
		}
		t.started = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("file source: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("file source: %w", err)
	}
	var off, no int64 = 0, 1
	first := !t.started
	t.started = true
	if st, ok, err := t.loadState(); err != nil {
		f.Close()
		return err
	} else if ok && first {
		if id := fileID(fi); st.File != "" && id != st.File || st.Offset > fi.Size() {
			t.log.Warn("file source: the file changed since the saved position; reading it from the start",
				"file", t.cfg.Path, "state", t.cfg.State)
		} else {
			off, no = st.Offset, st.Line
		}
	} else if first && !t.cfg.FromStart {
		if off, no, err = endOf(f, fi.Size()); err != nil {
			f.Close()
			return fmt.Errorf("file source: %s: %w", t.cfg.Path, err)
		}
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("file source: %s: %w", t.cfg.Path, err)
	}
	t.f, t.fi = f, fi
	if t.sp == nil {
		t.sp = newSplitter(t.cfg.MaxLine, off, no)
	} else {
		t.sp.reset(off, no)
	}
	return nil
}

// endOf returns the offset of the start of the file's last partial line
// (its size if it ends with a newline) and that line's number.
func endOf(f *os.File, size int64) (off, line int64, err error) {
	buf := make([]byte, readChunk)
	var pos int64
	line = 1
	for pos < size {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-pos)], pos)
		for i, b := range buf[:n] {
			if b == '\n' {
				line++
				off = pos + int64(i) + 1
			}
		}
		pos += int64(n)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, 0, err
		}
		if n == 0 {
			break
		}
	}
	return off, line, nil
}

// atEOF looks at the path once the open file is read to its end: a
// rotated file (another file at the path) is finished, partial line
// included, and the new one opened; a truncated one is read again from
// the start. It reports whether the file was rotated (the caller
// finishes it) or truncated (and rewound).
func (t *FileTail) atEOF() (rotated, rewound bool, err error) {
	fi, err := os.Stat(t.cfg.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, false, nil // renamed, the new one not there yet: the old may still grow
	case err != nil:
		return false, false, fmt.Errorf("file source: %w", err)
	case !os.SameFile(fi, t.fi):
		t.log.Info("file source: the file was rotated; reading the new one", "file", t.cfg.Path)
		return true, false, nil
	}
	cur, err := t.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return false, false, fmt.Errorf("file source: %s: %w", t.cfg.Path, err)
	}
	if fi.Size() < cur {
		t.log.Warn("file source: the file was truncated; reading it from the start", "file", t.cfg.Path, "size", fi.Size(), "offset", cur)
		if _, err := t.f.Seek(0, io.SeekStart); err != nil {
			return false, false, fmt.Errorf("file source: %s: %w", t.cfg.Path, err)
		}
		t.sp.reset(0, 1)
		return false, true, nil
	}
	return false, false, nil
}

// item makes the item of a line; false for a line that is skipped (and
// logged).
func (t *FileTail) item(l line) (Item, bool) {
	origin := map[string]string{"source": "file", "file": t.cfg.Path,
		"line": strconv.FormatInt(l.no, 10), "offset": strconv.FormatInt(l.off, 10)}
	if l.tooLong {
		t.log.Warn("file source: line too long; skipped", "file", t.cfg.Path, "line", l.no, "offset", l.off,
			"bytes", l.end-l.off, "max_line", t.cfg.MaxLine)
		return Item{}, false
	}
	v, err := t.format.decode(l.text)
	if err != nil {
		t.log.Warn("file source: line skipped", "file", t.cfg.Path, "line", l.no, "offset", l.off, "err", err)
		return Item{}, false
	}
	it := Item{Value: v, Origin: origin}
	if t.cfg.State != "" {
		st := tailState{Path: t.cfg.Path, File: fileID(t.fi), Offset: l.end, Line: l.no + 1}
		it.Ack = func(context.Context) error { return t.save(st) }
	}
	return it, true
}

func (t *FileTail) closeFile() {
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
}

// loadState reads the saved position, if State is set and saved one.
func (t *FileTail) loadState() (tailState, bool, error) {
	if t.cfg.State == "" {
		return tailState{}, false, nil
	}
	b, err := os.ReadFile(t.cfg.State)
	if errors.Is(err, fs.ErrNotExist) {
		return tailState{}, false, nil
	}
	if err != nil {
		return tailState{}, false, fmt.Errorf("file source: state: %w", err)
	}
	var st tailState
	if err := json.Unmarshal(b, &st); err != nil {
		return tailState{}, false, fmt.Errorf("file source: state %s: %w", t.cfg.State, err)
	}
	if st.Path != t.cfg.Path || st.Offset < 0 || st.Line < 1 {
		return tailState{}, false, fmt.Errorf("file source: state %s is for %q at offset %d line %d, not for %q",
			t.cfg.State, st.Path, st.Offset, st.Line, t.cfg.Path)
	}
	t.mu.Lock()
	t.saved = st
	t.mu.Unlock()
	return st, true, nil
}

// save writes the position after an acked line: to a temporary file
// renamed over the state file, so a crash leaves the old or the new
// position, never a torn one. Acks come in source order, so positions
// only move forward within a file.
func (t *FileTail) save(st tailState) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st == t.saved {
		return nil
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := t.cfg.State + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("file source: state: %w", err)
	}
	if err := os.Rename(tmp, t.cfg.State); err != nil {
		return fmt.Errorf("file source: state: %w", err)
	}
	t.saved = st
	return nil
}
