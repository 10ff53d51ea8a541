package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// DefaultMaxLine bounds a line of a file or reader source, in bytes
// without its newline: a longer line is skipped and logged.
const DefaultMaxLine = 1 << 20

// readChunk is how much a line source reads at a time.
const readChunk = 64 << 10

// Format says how a line source decodes its lines.
type Format uint8

const (
	// FormatJSON decodes each line as one JSON value (the default).
	FormatJSON Format = iota
	// FormatText passes each line as a string, without its newline (and
	// a carriage return before it).
	FormatText
)

func (f Format) String() string {
	if f == FormatText {
		return "text"
	}
	return "json"
}

// ParseFormat parses "json" (or "") and "text".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "", "json":
		return FormatJSON, nil
	case "text":
		return FormatText, nil
	}
	return 0, fmt.Errorf("format %q: want json or text", s)
}

// decode turns a line into a value.
func (f Format) decode(line []byte) (any, error) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	if f == FormatText {
		return string(line), nil
	}
	return decodeJSON(line)
}

// decodeJSON decodes one JSON value into the data model: integers that
// fit in int64 are int64, other numbers float64.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("JSON: empty line")
		}
		return nil, fmt.Errorf("JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("JSON: more than one value on the line")
	}
	return numbers(v), nil
}

// numbers replaces the json.Numbers in v.
func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return i
			}
		}
		f, _ := strconv.ParseFloat(s, 64) // the decoder checked the syntax; out of range is ±Inf
		return f
	case []any:
		for i := range x {
			x[i] = numbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = numbers(x[k])
		}
	}
	return v
}

// line is one line a splitter found.
type line struct {
	text    []byte // without its newline; aliases the splitter's buffer until the next fill
	no      int64  // 1-based line number
	off     int64  // byte offset of its start
	end     int64  // byte offset after its newline
	tooLong bool   // longer than the bound: text is empty
}

// splitter cuts what it reads into lines of at most max bytes, holding
// a partial last line until its newline arrives. A longer line is
// discarded as it is read (the buffer never holds more than max plus a
// chunk) and reported with tooLong.
type splitter struct {
	max  int
	buf  []byte
	pos  int   // start of the unconsumed bytes in buf
	off  int64 // offset of buf[pos]
	line int64 // number of the next line
	// skipping: inside an over-long line, which started at skipOff.
	skipping bool
	skipOff  int64
}

func newSplitter(max int, off, line int64) *splitter {
	return &splitter{max: max, off: off, line: line}
}

// next returns the next complete line held, or false.
func (s *splitter) next() (line, bool) {
	data := s.buf[s.pos:]
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		if s.skipping || len(data) > s.max {
			if !s.skipping {
				s.skipping, s.skipOff = true, s.off
			}
			s.consume(len(data))
		}
		return line{}, false
	}
	l := line{no: s.line, off: s.off, end: s.off + int64(i) + 1}
	switch {
	case s.skipping:
		l.off, l.tooLong = s.skipOff, true
		s.skipping = false
	case i > s.max:
		l.tooLong = true
	default:
		l.text = data[:i]
	}
	s.consume(i + 1)
	s.line++
	return l, true
}

// rest returns the partial line held (at the end of its input) as a
// line of its own and empties the splitter; false if there is none.
func (s *splitter) rest() (line, bool) {
	data := s.buf[s.pos:]
	if len(data) == 0 && !s.skipping {
		return line{}, false
	}
	l := line{no: s.line, off: s.off, end: s.off + int64(len(data)), text: data}
	if s.skipping {
		l.off, l.tooLong, l.text = s.skipOff, true, nil
		s.skipping = false
	}
	s.consume(len(data))
	s.line++
	return l, true
}

func (s *splitter) consume(n int) {
	s.pos += n
	s.off += int64(n)
}

// fill reads once from r into the buffer; it returns what Read returned.
func (s *splitter) fill(r io.Reader) (int, error) {
	if s.pos > 0 { // move the partial line to the front
		n := copy(s.buf, s.buf[s.pos:])
		s.buf, s.pos = s.buf[:n], 0
	}
	s.buf = slices.Grow(s.buf, readChunk)
	n, err := r.Read(s.buf[len(s.buf):cap(s.buf)])
	s.buf = s.buf[:len(s.buf)+n]
	return n, err
}

// reset empties the splitter and sets its position.
func (s *splitter) reset(off, line int64) {
	s.buf, s.pos, s.off, s.line, s.skipping = s.buf[:0], 0, off, line, false
}
