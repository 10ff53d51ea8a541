// Package explore scans a folder for pirn's pipelines and run histories,
// for `pirn explore`: the explorer of the Python original (pirn-explore),
// without its execution of the files it finds. Pipelines are parsed, not
// loaded: no module is read or compiled, so a folder of strangers' files
// costs at most the bounded parse of each. A history is opened only if its
// file is a SQLite database already at this pirn's schema, so that
// exploring never migrates, or creates tables in, somebody's database.
//
// Everything a folder controls is bounded by [Config]: the directory
// entries visited and their depth, the pipeline files listed, the bytes
// parsed, the histories opened, the runs listed per history and the runs
// read whole for their graphs. Symbolic links are not followed.
package explore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/pirn-wasm/pirn/backends/sqlite"
	"github.com/pirn-wasm/pirn/internal/fileread"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/model"
	"github.com/pirn-wasm/pirn/pipeline"
	"github.com/pirn-wasm/pirn/viz"
	"github.com/pirn-wasm/pirn/viz/page"
)

// Config configures Scan. Each limit's zero value is the default given
// beside it.
type Config struct {
	// Dir is the folder scanned, recursively. Required.
	Dir string
	// MaxEntries bounds the directory entries visited. 0 means 20,000.
	MaxEntries int
	// MaxDepth bounds how deep below Dir the scan goes. 0 means 16.
	MaxDepth int
	// MaxPipelines bounds the pipeline files listed. 0 means 500.
	MaxPipelines int
	// MaxBytes bounds the bytes of all pipeline files read. 0 means
	// 64 MiB (a file itself is at most pipeline.MaxFileBytes).
	MaxBytes int64
	// MaxHistories bounds the history files opened. 0 means 20.
	MaxHistories int
	// MaxRuns bounds the runs listed per history, newest first. 0 means
	// 200.
	MaxRuns int
	// MaxRunGraphs bounds the runs per history read whole for their
	// graphs, newest first. 0 means 20.
	MaxRunGraphs int
	// MaxRunRecords is the most records a run may have to be read for
	// its graph. 0 means 5,000.
	MaxRunRecords int
	// MaxRecords bounds the records of all the runs read for their
	// graphs together. 0 means 50,000.
	MaxRecords int
	// MaxNotes bounds the notes on files not read; the rest are counted.
	// 0 means 50.
	MaxNotes int
}

func (c Config) withDefaults() Config {
	c.MaxEntries = cmp.Or(c.MaxEntries, 20000)
	c.MaxDepth = cmp.Or(c.MaxDepth, 16)
	c.MaxPipelines = cmp.Or(c.MaxPipelines, 500)
	c.MaxBytes = cmp.Or(c.MaxBytes, 64<<20)
	c.MaxHistories = cmp.Or(c.MaxHistories, 20)
	c.MaxRuns = cmp.Or(c.MaxRuns, 200)
	c.MaxRunGraphs = cmp.Or(c.MaxRunGraphs, 20)
	c.MaxRunRecords = cmp.Or(c.MaxRunRecords, 5000)
	c.MaxRecords = cmp.Or(c.MaxRecords, 50000)
	c.MaxNotes = cmp.Or(c.MaxNotes, 50)
	return c
}

// skipDirs are folders never entered (besides hidden ones other than
// .pirn, a state directory).
var skipDirs = map[string]bool{"node_modules": true, "__pycache__": true, "target": true, "vendor": true}

// nodesKey finds a top-level nodes: key, which makes a YAML file that
// does not parse worth listing as a broken pipeline; other YAML files (CI
// configurations, lock files) that do not parse are not pipelines.
var nodesKey = regexp.MustCompile(`(?m)^nodes[ \t]*:`)

// Scan walks cfg.Dir and returns what it found, pipelines and histories
// each sorted by path. Files it cannot read are listed with the reason;
// an error is returned only for a Dir that is not a readable directory or
// a ctx that ended.
func Scan(ctx context.Context, cfg Config) (*page.Exploration, error) {
	cfg = cfg.withDefaults()
	if cfg.Dir == "" {
		return nil, errors.New("explore: Config.Dir is empty")
	}
	fi, err := os.Stat(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("explore: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("explore: %s is not a directory", cfg.Dir)
	}
	s := &scan{ctx: ctx, cfg: cfg, ex: &page.Exploration{Dir: cfg.Dir}}
	// The folder named may itself be a symbolic link (the only one
	// followed): walk what it points to, and name paths from it.
	if s.root, err = filepath.EvalSymlinks(cfg.Dir); err != nil {
		return nil, fmt.Errorf("explore: %w", err)
	}
	err = filepath.WalkDir(s.root, s.visit)
	if errors.Is(err, errStop) {
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("explore: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("explore: %w", err)
	}
	if s.unread > s.cfg.MaxNotes {
		s.ex.Notes = append(s.ex.Notes, fmt.Sprintf("%d more files or folders were not read.", s.unread-s.cfg.MaxNotes))
	}
	slices.SortFunc(s.histories, func(a, b string) int { return strings.Compare(a, b) })
	for _, p := range s.histories {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("explore: %w", err)
		}
		s.ex.Histories = append(s.ex.Histories, s.history(ctx, p))
	}
	slices.SortFunc(s.ex.Pipelines, func(a, b page.PipelineEntry) int { return strings.Compare(a.Path, b.Path) })
	return s.ex, nil
}

var errStop = errors.New("stop")

type scan struct {
	ctx       context.Context
	cfg       Config
	ex        *page.Exploration
	root      string // Dir, its symbolic links resolved
	entries   int
	unread    int // entries that could not be read
	records   int // records read for graphs
	bytes     int64
	histories []string // paths of history files to open
	full      map[string]bool
}

// note adds a note once per kind.
func (s *scan) note(kind, msg string) {
	if s.full == nil {
		s.full = map[string]bool{}
	}
	if !s.full[kind] {
		s.full[kind] = true
		s.ex.Notes = append(s.ex.Notes, msg)
	}
}

func (s *scan) rel(path string) string {
	if r, err := filepath.Rel(s.root, path); err == nil {
		return r
	}
	return path
}

func (s *scan) visit(path string, d fs.DirEntry, err error) error {
	if err != nil {
		if path == s.root {
			return err
		}
		if s.unread++; s.unread <= s.cfg.MaxNotes {
			s.ex.Notes = append(s.ex.Notes, fmt.Sprintf("%s: not read: %v", s.rel(path), err))
		}
		if d != nil && d.IsDir() {
			return fs.SkipDir
		}
		return nil
	}
	if err := s.ctx.Err(); err != nil {
		return err
	}
	if s.entries++; s.entries > s.cfg.MaxEntries {
		s.note("entries", fmt.Sprintf("The scan stopped after %d directory entries (the limit): files after them are not listed.", s.cfg.MaxEntries))
		return errStop
	}
	name := d.Name()
	if d.IsDir() {
		if path == s.root {
			return nil
		}
		if strings.HasPrefix(name, ".") && name != ".pirn" || skipDirs[name] {
			return fs.SkipDir
		}
		if depth := strings.Count(s.rel(path), string(filepath.Separator)) + 1; depth > s.cfg.MaxDepth {
			s.note("depth", fmt.Sprintf("Folders more than %d levels deep are not scanned.", s.cfg.MaxDepth))
			return fs.SkipDir
		}
		return nil
	}
	if !d.Type().IsRegular() { // symbolic links, devices, pipes
		return nil
	}
	switch ext := filepath.Ext(name); {
	case ext == ".yaml" || ext == ".yml":
		s.pipeline(path)
	case name == "history.db" || ext == ".db":
		if len(s.histories) >= s.cfg.MaxHistories {
			s.note("histories", fmt.Sprintf("Only the first %d history files found are read.", s.cfg.MaxHistories))
			return nil
		}
		if ok, why := isHistory(s.ctx, path); ok {
			s.histories = append(s.histories, path)
		} else if why != "" && name == "history.db" {
			s.ex.Histories = append(s.ex.Histories, page.HistoryEntry{Path: s.rel(path), Err: why})
		}
	}
	return nil
}

func (s *scan) bytesNote() string {
	n, unit := s.cfg.MaxBytes>>10, "KiB"
	if n >= 1024 {
		n, unit = n>>10, "MiB"
	}
	return fmt.Sprintf("Pipeline files past the first %d %s read are not parsed.", n, unit)
}

// pipeline parses the YAML file at path and lists it if it is a pipeline
// (or looks like a broken one).
func (s *scan) pipeline(path string) {
	if len(s.ex.Pipelines) >= s.cfg.MaxPipelines {
		s.note("pipelines", fmt.Sprintf("Only the first %d pipeline files found are listed.", s.cfg.MaxPipelines))
		return
	}
	rel := s.rel(path)
	limit := min(pipeline.MaxFileBytes, s.cfg.MaxBytes-s.bytes)
	if limit <= 0 {
		s.note("bytes", s.bytesNote())
		return
	}
	b, err := fileread.Read(path, "pipeline", limit)
	var big *fileread.TooLargeError
	if errors.As(err, &big) && limit < pipeline.MaxFileBytes {
		s.note("bytes", s.bytesNote())
		return
	}
	if err != nil {
		s.ex.Pipelines = append(s.ex.Pipelines, page.PipelineEntry{Path: rel, Err: err.Error()})
		return
	}
	s.bytes += int64(len(b))
	spec, err := pipeline.Parse(rel, b)
	if err != nil {
		if nodesKey.Match(b) {
			s.ex.Pipelines = append(s.ex.Pipelines, page.PipelineEntry{Path: rel, Err: err.Error()})
		}
		return
	}
	e := page.PipelineEntry{Path: rel, Name: spec.Name, Description: spec.Description, Outputs: spec.Outputs, Graph: Graph(spec)}
	for _, m := range spec.Modules {
		e.Modules = append(e.Modules, [2]string{m.Name, m.Path})
	}
	s.ex.Pipelines = append(s.ex.Pipelines, e)
}

// Graph returns the graph of a parsed pipeline: a node per node of the
// file and per arm of its branches (as "<branch>.<arm>"), an edge per
// reference. Knots show their module's name as the file writes it.
func Graph(spec *pipeline.Spec) viz.Graph {
	var g viz.Graph
	for i := range spec.Nodes {
		n := &spec.Nodes[i]
		gn := viz.GraphNode{ID: n.ID, Kind: lineage.Kind(n.Kind.String()), Module: n.Module, Knot: n.Knot}
		switch {
		case n.Kind == model.KindParameter:
			gn.Knot = lineage.KnotParameter
		case n.Fn != nil && n.Fn.Expr != "":
			gn.Module, gn.Knot = "", lineage.PrefixExpr+n.Fn.Expr
		case n.Fn != nil:
			gn.Module, gn.Knot = n.Fn.Module, n.Fn.Knot
		}
		g.Nodes = append(g.Nodes, gn)
		for _, r := range n.Refs() {
			g.Edges = append(g.Edges, viz.Edge{From: r.ID, To: n.ID, Input: r.Input})
		}
		for _, a := range n.Arms {
			id := n.ID + "." + a
			g.Nodes = append(g.Nodes, viz.GraphNode{ID: id, Kind: lineage.KindArm, Knot: lineage.PrefixArm + a})
			g.Edges = append(g.Edges, viz.Edge{From: n.ID, To: id, Input: "chosen"})
		}
	}
	return g
}

// sqliteHeader starts every SQLite database file.
var sqliteHeader = []byte("SQLite format 3\x00")

// isHistory reports whether the file at path is a SQLite database at this
// pirn's history schema, without opening it as a history: its header's
// user_version (bytes 60-63) or, if that is not the current schema and a
// write-ahead log beside it may hold a newer one, the version a read-only
// connection reads. why says what the file is otherwise ("" for a file
// that is not SQLite at all).
func isHistory(ctx context.Context, path string) (ok bool, why string) {
	f, err := os.Open(path)
	if err != nil {
		return false, err.Error()
	}
	var h [100]byte
	_, err = io.ReadFull(f, h[:])
	f.Close()
	if err != nil || !bytes.HasPrefix(h[:], sqliteHeader) {
		return false, ""
	}
	v := int(binary.BigEndian.Uint32(h[60:64]))
	if fi, err := os.Stat(path + "-wal"); v != sqlite.SchemaVersion() && err == nil && fi.Size() > 0 {
		if v, err = sqlite.FileSchemaVersion(ctx, path); err != nil {
			return false, err.Error()
		}
	}
	switch cur := sqlite.SchemaVersion(); {
	case v == cur:
		return true, ""
	case v > cur:
		return false, fmt.Sprintf("written by a newer pirn (history schema %d; this pirn reads %d)", v, cur)
	case v == 0:
		return false, "not a pirn history (a SQLite database without pirn's schema)"
	default:
		return false, fmt.Sprintf("written by an older pirn (history schema %d, now %d): any pirn command on its state directory, such as pirn history --state DIR, brings it up to date; explore does not change files", v, cur)
	}
}

// history lists the newest runs of the history at path and reads the
// newest few whole for their graphs.
func (s *scan) history(ctx context.Context, path string) page.HistoryEntry {
	e := page.HistoryEntry{Path: s.rel(path)}
	h, err := sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		e.Err = err.Error()
		return e
	}
	defer h.Close()
	runs, err := h.Runs(ctx, lineage.Query{Limit: s.cfg.MaxRuns + 1})
	if err != nil {
		e.Err = err.Error()
		return e
	}
	if len(runs) > s.cfg.MaxRuns {
		runs, e.More = runs[:s.cfg.MaxRuns], true
	}
	for i, sum := range runs {
		re := page.RunEntry{Summary: sum}
		n := sum.Knots + sum.Elements
		if i < s.cfg.MaxRunGraphs && n <= s.cfg.MaxRunRecords {
			if s.records+n > s.cfg.MaxRecords {
				s.note("records", fmt.Sprintf("Runs are drawn until %d of their records are read: later runs are listed only.", s.cfg.MaxRecords))
			} else if r, err := h.Run(ctx, sum.ID); err == nil {
				re.Run = r
				s.records += len(r.Records)
			}
		}
		e.Runs = append(e.Runs, re)
	}
	return e
}
