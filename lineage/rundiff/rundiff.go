// Package rundiff compares two recorded runs node by node: which nodes
// are in only one, which changed outcome or output digest, how a Map's
// element counts changed and, for outputs that decode from the data store,
// a structural diff of the two values (JSON paths added, removed or
// changed), bounded in depth and in number of changes.
//
// Nodes are matched by knot id; a Map's element records are compared
// through their Map's counts, not one by one. Diffing is safe for
// concurrent use; it only reads the store.
package rundiff

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

// Config bounds a diff. Each field's zero value is the default beside it.
type Config struct {
	MaxDepth       int // nesting compared inside a value; deeper differences are reported at this depth. 0 means 32
	MaxChanges     int // path changes reported per node; 0 means 100
	MaxStoredBytes int // the largest stored value decoded; 0 means 1 MiB
	MaxItems       int // elements of a decoded value; 0 means 100000
	MaxTextBytes   int // JSON text of each side of a change; 0 means 200
	MaxValueDiffs  int // nodes whose values are diffed structurally; 0 means 1000
}

func (c Config) withDefaults() Config {
	c.MaxDepth = cmp.Or(c.MaxDepth, 32)
	c.MaxChanges = cmp.Or(c.MaxChanges, 100)
	c.MaxStoredBytes = cmp.Or(c.MaxStoredBytes, 1<<20)
	c.MaxItems = cmp.Or(c.MaxItems, 100000)
	c.MaxTextBytes = cmp.Or(c.MaxTextBytes, 200)
	c.MaxValueDiffs = cmp.Or(c.MaxValueDiffs, 1000)
	return c
}

// Change says how a node differs between two runs.
type Change string

// Changes.
const (
	Same    Change = "same"    // same outcome and output digest (and element counts)
	Changed Change = "changed" // in both runs, differently
	OnlyA   Change = "only_a"  // only in run A
	OnlyB   Change = "only_b"  // only in run B
)

// Op is what happened at one path of a value.
type Op string

// Ops.
const (
	Added   Op = "added"
	Removed Op = "removed"
	Altered Op = "changed"
)

// PathChange is one difference inside a value. Path is a JSON-pointer-like
// path ("" for the value itself, "/items/3/name"); A and B are the JSON
// texts of both sides (empty for the side where the path is absent), each
// cut to Config.MaxTextBytes.
type PathChange struct {
	Path string `json:"path"`
	Op   Op     `json:"op"`
	A    string `json:"a,omitempty"`
	B    string `json:"b,omitempty"`
}

// Node is one node's comparison.
type Node struct {
	ID        string                `json:"id"`
	Kind      lineage.Kind          `json:"kind"`
	Change    Change                `json:"change"`
	OutcomeA  lineage.Outcome       `json:"outcome_a,omitempty"`
	OutcomeB  lineage.Outcome       `json:"outcome_b,omitempty"`
	OutputA   string                `json:"output_a,omitempty"` // digests, when ok
	OutputB   string                `json:"output_b,omitempty"`
	ElementsA *lineage.ElementCount `json:"elements_a,omitempty"`
	ElementsB *lineage.ElementCount `json:"elements_b,omitempty"`
	// Value lists the structural differences of the two outputs, when
	// both are ok, differ and decode; ValueNote says why there is none
	// (a value not in the store, too large, over the budget) or that the
	// list was cut at Config.MaxChanges.
	Value     []PathChange `json:"value,omitempty"`
	ValueNote string       `json:"value_note,omitempty"`
}

// Diff is the comparison of run A with run B.
type Diff struct {
	A, B     string `json:"-"`
	StatusA  lineage.Status
	StatusB  lineage.Status
	Nodes    []Node // the nodes of A in order, then those only in B
	Same     int    // nodes with Change Same
	Differ   int    // nodes with any other Change
	Pipeline [2]string
}

// MarshalJSON names the runs.
func (d *Diff) MarshalJSON() ([]byte, error) {
	nodes := d.Nodes
	if nodes == nil {
		nodes = []Node{}
	}
	return json.Marshal(struct {
		A        string         `json:"run_a"`
		B        string         `json:"run_b"`
		StatusA  lineage.Status `json:"status_a"`
		StatusB  lineage.Status `json:"status_b"`
		Pipeline [2]string      `json:"pipelines"`
		Same     int            `json:"same"`
		Differ   int            `json:"differ"`
		Nodes    []Node         `json:"nodes"`
	}{d.A, d.B, d.StatusA, d.StatusB, d.Pipeline, d.Same, d.Differ, nodes})
}

// Runs compares run a with run b, reading outputs from store (nil
// compares digests only). It fails only when ctx ends.
func Runs(ctx context.Context, cfg Config, store cas.Store, a, b *lineage.Run) (*Diff, error) {
	cfg = cfg.withDefaults()
	d := &Diff{A: a.ID, B: b.ID, StatusA: a.Status, StatusB: b.Status, Pipeline: [2]string{a.Pipeline, b.Pipeline}}
	recsB := map[string]*lineage.Record{}
	for i := range b.Records {
		if b.Records[i].Kind != lineage.KindElement {
			recsB[b.Records[i].KnotID] = &b.Records[i]
		}
	}
	elemsA, elemsB := lineage.CountElements(a.Records), lineage.CountElements(b.Records)
	seen := map[string]bool{}
	diffs := 0
	for i := range a.Records {
		ra := &a.Records[i]
		if ra.Kind == lineage.KindElement {
			continue
		}
		seen[ra.KnotID] = true
		n := Node{ID: ra.KnotID, Kind: ra.Kind, OutcomeA: ra.Outcome, OutputA: output(ra), ElementsA: count(elemsA, ra)}
		rb := recsB[ra.KnotID]
		if rb == nil {
			n.Change = OnlyA
			d.add(n)
			continue
		}
		n.OutcomeB, n.OutputB, n.ElementsB = rb.Outcome, output(rb), count(elemsB, rb)
		n.Change = Same
		if n.OutcomeA != n.OutcomeB || n.OutputA != n.OutputB || !reflect.DeepEqual(n.ElementsA, n.ElementsB) {
			n.Change = Changed
		}
		if n.Change == Changed && ra.Outcome == lineage.OK && rb.Outcome == lineage.OK && ra.Output != rb.Output && store != nil {
			if diffs >= cfg.MaxValueDiffs {
				n.ValueNote = fmt.Sprintf("values not compared: at most %d nodes' values are", cfg.MaxValueDiffs)
			} else {
				diffs++
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				n.Value, n.ValueNote = values(ctx, cfg, store, ra.Output, rb.Output)
			}
		}
		d.add(n)
	}
	for i := range b.Records {
		rb := &b.Records[i]
		if rb.Kind == lineage.KindElement || seen[rb.KnotID] {
			continue
		}
		d.add(Node{ID: rb.KnotID, Kind: rb.Kind, Change: OnlyB, OutcomeB: rb.Outcome, OutputB: output(rb), ElementsB: count(elemsB, rb)})
	}
	return d, nil
}

func (d *Diff) add(n Node) {
	if n.Change == Same {
		d.Same++
	} else {
		d.Differ++
	}
	d.Nodes = append(d.Nodes, n)
}

func output(r *lineage.Record) string {
	if r.Outcome != lineage.OK {
		return ""
	}
	return r.Output.String()
}

func count(m map[string]lineage.ElementCount, r *lineage.Record) *lineage.ElementCount {
	if c, ok := m[r.KnotID]; ok && r.Kind == lineage.KindMap {
		return &c
	}
	return nil
}

// values decodes both outputs and compares them.
func values(ctx context.Context, cfg Config, store cas.Store, a, b cas.Digest) ([]PathChange, string) {
	va, err := load(ctx, cfg, store, a)
	if err != nil {
		return nil, "value A: " + err.Error()
	}
	vb, err := load(ctx, cfg, store, b)
	if err != nil {
		return nil, "value B: " + err.Error()
	}
	w := &walker{cfg: cfg}
	w.walk("", va, vb, 0)
	if w.cut {
		return w.out, fmt.Sprintf("more than %d changes: the first %d are listed", cfg.MaxChanges, cfg.MaxChanges)
	}
	return w.out, ""
}

var errTooBig = errors.New("too large to compare")

func load(ctx context.Context, cfg Config, store cas.Store, d cas.Digest) (any, error) {
	raw, err := store.Get(ctx, d)
	switch {
	case errors.Is(err, cas.ErrNotFound):
		return nil, errors.New("not in the data store")
	case err != nil:
		return nil, errors.New("unreadable")
	case len(raw) > cfg.MaxStoredBytes:
		return nil, fmt.Errorf("%w (%d bytes)", errTooBig, len(raw))
	}
	v, err := cas.DecodeBounded(raw, cfg.MaxItems)
	if err != nil {
		return nil, errors.New("cannot decode")
	}
	return cas.JSONValue(v), nil
}

type walker struct {
	cfg Config
	out []PathChange
	cut bool
}

func (w *walker) emit(path string, op Op, a, b any, hasA, hasB bool) {
	if len(w.out) >= w.cfg.MaxChanges {
		w.cut = true
		return
	}
	c := PathChange{Path: path, Op: op}
	if hasA {
		c.A = w.text(a)
	}
	if hasB {
		c.B = w.text(b)
	}
	w.out = append(w.out, c)
}

func (w *walker) text(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "?"
	}
	s := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(s) <= w.cfg.MaxTextBytes {
		return string(s)
	}
	n := w.cfg.MaxTextBytes
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return string(s[:n]) + "…"
}

func (w *walker) walk(path string, a, b any, depth int) {
	if w.cut {
		return
	}
	if depth >= w.cfg.MaxDepth {
		if !reflect.DeepEqual(a, b) {
			w.emit(path, Altered, a, b, true, true)
		}
		return
	}
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			break
		}
		keys := make([]string, 0, len(x)+len(y))
		for k := range x {
			keys = append(keys, k)
		}
		for k := range y {
			if _, ok := x[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			va, inA := x[k]
			vb, inB := y[k]
			p := path + "/" + escape(k)
			switch {
			case !inB:
				w.emit(p, Removed, va, nil, true, false)
			case !inA:
				w.emit(p, Added, nil, vb, false, true)
			default:
				w.walk(p, va, vb, depth+1)
			}
		}
		return
	case []any:
		y, ok := b.([]any)
		if !ok {
			break
		}
		for i := range max(len(x), len(y)) {
			p := path + "/" + strconv.Itoa(i)
			switch {
			case i >= len(y):
				w.emit(p, Removed, x[i], nil, true, false)
			case i >= len(x):
				w.emit(p, Added, nil, y[i], false, true)
			default:
				w.walk(p, x[i], y[i], depth+1)
			}
		}
		return
	}
	if !reflect.DeepEqual(a, b) {
		w.emit(path, Altered, a, b, true, true)
	}
}

// escape spells a map key in a path as JSON Pointer (RFC 6901) does.
func escape(k string) string {
	var b []byte
	for i := 0; i < len(k); i++ {
		switch k[i] {
		case '~':
			b = append(b, "~0"...)
		case '/':
			b = append(b, "~1"...)
		default:
			b = append(b, k[i])
		}
	}
	return string(b)
}
