package serve_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/serve"
)

// tail is a FileTail under test with its log.
type tail struct {
	t    *testing.T
	src  *serve.FileTail
	path string
	mu   sync.Mutex
	log  bytes.Buffer
}

func newTail(t *testing.T, cfg serve.FileTailConfig) *tail {
	t.Helper()
	tl := &tail{t: t, path: cfg.Path}
	cfg.Poll = emit.Duration(2 * time.Millisecond)
	cfg.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: &tl.log, mu: &tl.mu}, nil))
	src, err := serve.NewFileTail(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	tl.src = src
	return tl
}

// next returns the next item's value and its line, failing the test if
// none comes within a minute.
//
// A tail places itself (at the file's end, by default) on its first
// Next: tests that append to a file the tail starts at the end of call
// none first.
func (tl *tail) next() (any, string) {
	tl.t.Helper()
	ctx, cancel := context.WithTimeout(tl.t.Context(), time.Minute)
	defer cancel()
	it, err := tl.src.Next(ctx)
	if err != nil {
		tl.t.Fatalf("Next: %v", err)
	}
	if it.Origin["file"] != tl.path || it.Origin["source"] != "file" {
		tl.t.Errorf("origin %v, want file %s", it.Origin, tl.path)
	}
	return it.Value, it.Origin["line"]
}

// none checks that the tail has nothing to give now: Next, given long
// enough to read the file several times, returns ctx's error.
func (tl *tail) none() {
	tl.t.Helper()
	ctx, cancel := context.WithTimeout(tl.t.Context(), 30*time.Millisecond)
	defer cancel()
	if it, err := tl.src.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		tl.t.Fatalf("Next = %v, %v; want nothing yet", it.Value, err)
	}
}

func (tl *tail) logged() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.log.String()
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// want checks the next values and their line numbers.
func (tl *tail) want(pairs ...any) {
	tl.t.Helper()
	for i := 0; i < len(pairs); i += 2 {
		v, line := tl.next()
		if diff := cmp.Diff(pairs[i], v); diff != "" || line != pairs[i+1] {
			tl.t.Errorf("value %v at line %s, want %v at line %v", v, line, pairs[i], pairs[i+1])
		}
	}
}

// TestFileTailFollows: the tail starts at the end of the file (at the
// start of a partial last line), picks up appends, and gives a partial
// line only once its newline arrives.
func TestFileTailFollows(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "in.jsonl")
	appendFile(t, path, "1\n2\n{\"a\":")
	tl := newTail(t, serve.FileTailConfig{Path: path})
	tl.none()
	appendFile(t, path, "3}\n4\n5")
	tl.want(map[string]any{"a": int64(3)}, "3", int64(4), "4")
	tl.none() // "5" has no newline yet
	appendFile(t, path, "6\n[7.5, \"x\"]\n")
	tl.want(int64(56), "5", []any{7.5, "x"}, "6")
}

// TestFileTailFromStart reads what the file holds first, as text.
func TestFileTailFromStart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "in.log")
	appendFile(t, path, "alpha\r\nbeta\n")
	tl := newTail(t, serve.FileTailConfig{Path: path, FromStart: true, Format: "text"})
	tl.want("alpha", "1", "beta", "2")
	tl.none()
}

// TestFileTailRotation: the file is renamed and a new one created at its
// path: the tail finishes the old one (lines appended to it after the
// rename, and its partial last line), then reads the new one from the
// start.
func TestFileTailRotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendFile(t, path, "")
	tl := newTail(t, serve.FileTailConfig{Path: path})
	tl.none() // the tail starts, at the end
	appendFile(t, path, "1\n2\n")
	tl.want(int64(1), "1", int64(2), "2")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path+".1", "3\n4") // the writer still had the old file open
	tl.want(int64(3), "3")
	appendFile(t, path, "5\n6\n")
	tl.want(int64(4), "4", int64(5), "1", int64(6), "2")
	if !strings.Contains(tl.logged(), "rotated") {
		t.Errorf("log %q, want the rotation", tl.logged())
	}
}

// TestFileTailTruncation: a file shorter than the tail's position is
// read again from its start.
func TestFileTailTruncation(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "app.log")
	appendFile(t, path, "")
	tl := newTail(t, serve.FileTailConfig{Path: path})
	tl.none()
	appendFile(t, path, "10\n20\n30\n")
	tl.want(int64(10), "1", int64(20), "2", int64(30), "3")
	if err := os.WriteFile(path, []byte("9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tl.want(int64(9), "1")
	if !strings.Contains(tl.logged(), "truncated") {
		t.Errorf("log %q, want the truncation", tl.logged())
	}
}

// TestFileTailHostileLines: a line longer than MaxLine (never held
// whole) and a line that is not JSON are skipped and logged with their
// line numbers; the lines after them come through.
func TestFileTailHostileLines(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "in.jsonl")
	long := strings.Repeat("x", 5<<20) // 5 MiB, across many reads
	appendFile(t, path, "1\n\""+long+"\"\nnot json\n4\n")
	tl := newTail(t, serve.FileTailConfig{Path: path, FromStart: true, MaxLine: 1000})
	tl.want(int64(1), "1", int64(4), "4")
	log := tl.logged()
	if !strings.Contains(log, "line too long") || !strings.Contains(log, "line=2") || !strings.Contains(log, "max_line=1000") {
		t.Errorf("log %q, want line 2 too long", log)
	}
	if !strings.Contains(log, "line=3") || !strings.Contains(log, "invalid character") {
		t.Errorf("log %q, want line 3 not JSON", log)
	}
}

// TestFileTailState: with State, an acked line's end is saved, and a
// new tail resumes after the last acked line, not at the file's end.
func TestFileTailState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path, state := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "offset.json")
	appendFile(t, path, "")
	tl := newTail(t, serve.FileTailConfig{Path: path, State: state})
	tl.none()
	appendFile(t, path, "1\n2\n3\n")
	var items []serve.Item
	for range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		it, err := tl.src.Next(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, it)
	}
	if _, err := os.Stat(state); err == nil {
		t.Fatal("state written before any ack")
	}
	for _, it := range items[:2] {
		if err := it.Ack(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	tl.src.Close()
	appendFile(t, path, "4\n")
	again := newTail(t, serve.FileTailConfig{Path: path, State: state})
	again.want(int64(3), "3", int64(4), "4")

	// A state for another file is refused by name.
	other := newTail(t, serve.FileTailConfig{Path: path + ".other", State: state})
	appendFile(t, path+".other", "1\n")
	if _, err := other.src.Next(t.Context()); err == nil || !strings.Contains(err.Error(), "not for") {
		t.Errorf("Next with another file's state: %v, want an error naming both", err)
	}
}

// TestFileTailWaitsForTheFile: a file that does not exist yet is read
// from its start once it appears; Close ends a waiting Next.
func TestFileTailWaitsForTheFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "later.jsonl")
	tl := newTail(t, serve.FileTailConfig{Path: path})
	tl.none()
	appendFile(t, path, "\"here\"\n")
	tl.want("here", "1")
	done := make(chan error, 1)
	go func() {
		_, err := tl.src.Next(context.Background())
		done <- err
	}()
	tl.src.Close()
	if err := <-done; !errors.Is(err, serve.ErrClosed) {
		t.Errorf("Next after Close = %v, want ErrClosed", err)
	}
}

// TestReaderSource: JSON lines until EOF (the last without a newline),
// bad lines skipped and logged.
func TestReaderSource(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var log bytes.Buffer
	r, err := serve.NewReader(strings.NewReader("1\n{bad\n"+strings.Repeat("7", 200)+"\n\"x\"\n[true]"), serve.ReaderConfig{
		MaxLine: 100, Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &log, mu: &mu}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []any
	var lines []string
	for {
		it, err := r.Next(t.Context())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, it.Value)
		lines = append(lines, it.Origin["source"]+":"+it.Origin["line"])
	}
	if diff := cmp.Diff([]any{int64(1), "x", []any{true}}, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"stdin:1", "stdin:4", "stdin:5"}, lines); diff != "" {
		t.Errorf("origins (-want +got):\n%s", diff)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(log.String(), "line=2") || !strings.Contains(log.String(), "line too long") {
		t.Errorf("log %q, want lines 2 and 3", log.String())
	}
}

// TestSourcesRegistered: the file and stdin types decode their fields
// strictly and resolve a relative path against the config's directory.
func TestSourcesRegistered(t *testing.T) {
	t.Parallel()
	src, err := serve.Sources.New(emit.Spec{Type: "file", Fields: map[string]any{"path": "in.log", "format": "text"}, Dir: "/srv"})
	if err != nil || src.Name() != "file:/srv/in.log" {
		t.Errorf("file source: %v, %v; want file:/srv/in.log", src, err)
	}
	if _, err := serve.Sources.New(emit.Spec{Type: "file", Fields: map[string]any{"path": "x", "bogus": 1}}); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown field: %v, want an error naming it", err)
	}
	if _, err := serve.Sources.New(emit.Spec{Type: "file", Fields: map[string]any{"path": "x", "format": "xml"}}); err == nil || !strings.Contains(err.Error(), "xml") {
		t.Errorf("bad format: %v, want an error naming it", err)
	}
	if _, err := serve.Sources.New(emit.Spec{Type: "stdin"}); err != nil {
		t.Errorf("stdin source: %v", err)
	}
}
