package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"

	"github.com/pirn-wasm/pirn/emit"
)

// ReaderConfig configures a Reader source.
type ReaderConfig struct {
	// Name is the source's name and its items' Origin "source"; ""
	// means "stdin".
	Name string `json:"name,omitempty"`
	// MaxLine bounds a line in bytes; 0 means DefaultMaxLine.
	MaxLine int `json:"max_line,omitempty"`
	// Format is "json" (default) or "text", as for FileTail.
	Format string `json:"format,omitempty"`
	// Logger receives skipped lines; nil discards.
	Logger *slog.Logger `json:"-"`
}

// Reader is a Source of the lines of an io.Reader (standard input: JSON
// lines by default); the reader's end (io.EOF) ends the stream, after a
// last line without a newline. A line that is too long or does not
// decode is logged with its line number and skipped. Each item's Origin
// is {"source": Name, "line": n}; items have no Ack (a pipe cannot be
// read again).
//
// Reading happens in a goroutine of the Reader's, at most one line ahead
// of Next, started by the first Next. A Read blocked on its input (a
// terminal, a pipe) cannot be interrupted: Close closes the input if it
// is an io.Closer, and the goroutine ends when its Read returns.
type Reader struct {
	cfg    ReaderConfig
	format Format
	log    *slog.Logger
	r      io.Reader
	start  sync.Once
	items  chan read
	closed chan struct{}
	once   sync.Once
}

var _ Source = (*Reader)(nil)

// NewReader returns a source of r's lines.
func NewReader(r io.Reader, cfg ReaderConfig) (*Reader, error) {
	format, err := ParseFormat(cfg.Format)
	switch {
	case err != nil:
		return nil, fmt.Errorf("reader source: %w", err)
	case cfg.MaxLine < 0:
		return nil, fmt.Errorf("reader source: max_line %d, want >= 0", cfg.MaxLine)
	}
	if cfg.Name == "" {
		cfg.Name = "stdin"
	}
	if cfg.MaxLine == 0 {
		cfg.MaxLine = DefaultMaxLine
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Reader{cfg: cfg, format: format, log: lg, r: r, items: make(chan read), closed: make(chan struct{})}, nil
}

// newStdinSource is the "stdin" type of Sources: JSON lines (or text)
// from the process's standard input.
func newStdinSource(s emit.Spec) (Source, error) {
	var cfg ReaderConfig
	if err := s.Decode(&cfg); err != nil {
		return nil, err
	}
	cfg.Logger = s.Logger
	return NewReader(os.Stdin, cfg)
}

// Name returns the configured name ("stdin" by default).
func (r *Reader) Name() string { return r.cfg.Name }

// Next returns the next line's value; io.EOF once the input ended.
func (r *Reader) Next(ctx context.Context) (Item, error) {
	r.start.Do(func() { go r.read() })
	select {
	case it, ok := <-r.items:
		if !ok {
			return Item{}, io.EOF
		}
		return it.item, it.err
	case <-ctx.Done():
		return Item{}, context.Cause(ctx)
	case <-r.closed:
		return Item{}, ErrClosed
	}
}

// Close stops the source and closes its input if that is an io.Closer.
func (r *Reader) Close() error {
	var err error
	r.once.Do(func() {
		close(r.closed)
		if c, ok := r.r.(io.Closer); ok {
			err = c.Close()
		}
	})
	return err
}

// read reads lines into items until the input ends or fails, or the
// source is closed. The channel is closed at the input's end; a read
// error is handed over as such.
func (r *Reader) read() {
	sp := newSplitter(r.cfg.MaxLine, 0, 1)
	send := func(l line) bool {
		it, ok := r.item(l)
		if !ok {
			return true
		}
		select {
		case r.items <- read{item: it}:
			return true
		case <-r.closed:
			return false
		}
	}
	for {
		for {
			l, ok := sp.next()
			if !ok {
				break
			}
			if !send(l) {
				return
			}
		}
		_, err := sp.fill(r.r)
		if err == nil {
			continue
		}
		if !errors.Is(err, io.EOF) {
			select {
			case r.items <- read{err: fmt.Errorf("%s: %w", r.cfg.Name, err)}:
			case <-r.closed:
			}
			return
		}
		for {
			l, ok := sp.next()
			if !ok {
				break
			}
			if !send(l) {
				return
			}
		}
		if l, ok := sp.rest(); ok && !send(l) {
			return
		}
		close(r.items)
		return
	}
}

// item makes the item of a line; false for a line that is skipped (and
// logged).
func (r *Reader) item(l line) (Item, bool) {
	if l.tooLong {
		r.log.Warn("reader source: line too long; skipped", "source", r.cfg.Name, "line", l.no, "bytes", l.end-l.off, "max_line", r.cfg.MaxLine)
		return Item{}, false
	}
	v, err := r.format.decode(l.text)
	if err != nil {
		r.log.Warn("reader source: line skipped", "source", r.cfg.Name, "line", l.no, "err", err)
		return Item{}, false
	}
	return Item{Value: v, Origin: map[string]string{"source": r.cfg.Name, "line": strconv.FormatInt(l.no, 10)}}, true
}

// Values returns a source of the values given, in order, then io.EOF:
// for the Go API and tests. Each item's Origin is {"source": name,
// "index": i}, from 0.
func Values(name string, values ...any) Source {
	ch := make(chan any, len(values))
	for _, v := range values {
		ch <- v
	}
	close(ch)
	return FromChan(name, ch)
}

// FromChan returns a source of the values received from ch until it is
// closed (then io.EOF). Each item's Origin is {"source": name, "index":
// i}, counting from 0. Next may be called from one goroutine at a time.
func FromChan(name string, ch <-chan any) Source {
	return &chanSource{name: name, ch: ch, closed: make(chan struct{})}
}

type chanSource struct {
	name   string
	ch     <-chan any
	n      int
	closed chan struct{}
	once   sync.Once
}

func (c *chanSource) Name() string { return c.name }

func (c *chanSource) Next(ctx context.Context) (Item, error) {
	select {
	case v, ok := <-c.ch:
		if !ok {
			return Item{}, io.EOF
		}
		it := Item{Value: v, Origin: map[string]string{"source": c.name, "index": strconv.Itoa(c.n)}}
		c.n++
		return it, nil
	case <-ctx.Done():
		return Item{}, context.Cause(ctx)
	case <-c.closed:
		return Item{}, ErrClosed
	}
}

func (c *chanSource) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}
