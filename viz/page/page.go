// Package page renders a recorded run, or a pipeline not yet run, as one
// self-contained HTML page: no external assets, so the file opens from
// disk, and the same page is what pirn ui serves for a run.
//
// The page holds the graph as SVG, laid out in Go ([viz.Layout]: longest-
// path layers, barycentre ordering), with the run's real edges (each
// record's inputs name their parent) and a Map's elements summed up on
// the Map's node; nodes are coloured by outcome. A little inline script
// adds zoom and pan, filters by outcome, a search box and, on a click, a
// node's detail: its inputs and output decoded to JSON (truncated, with
// their digests), its error record and trace, duration, grants, whether it
// was hermetic or reused, and which other runs produced the same value.
// The detail is embedded as JSON in a <script type="application/json">
// block that html/template escapes; the script only ever sets text
// (textContent), never markup.
//
// Everything embedded is bounded by [Config]: the text of each value, the
// number of values decoded, the total bytes of decoded text, the traces,
// the other runs listed per value and the history lookups made for them,
// and the number of nodes drawn. Rendering is safe for concurrent use.
package page

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/scheduler"
	"github.com/pirn-wasm/pirn/viz"
)

// Config bounds what a page embeds. Each field's zero value is the default
// given beside it.
type Config struct {
	// MaxValueBytes bounds the JSON text of one decoded value; longer text
	// is cut (and marked truncated). 0 means 4096.
	MaxValueBytes int
	// MaxStoredBytes is the largest stored value decoded at all; a bigger
	// one is shown by its digest and size only. 0 means 1 MiB.
	MaxStoredBytes int
	// MaxValues bounds the values decoded for one page (inputs and
	// outputs); later ones are shown by digest only. 0 means 2000.
	MaxValues int
	// MaxTotalBytes bounds the decoded text embedded in one page, all
	// values together. 0 means 4 MiB.
	MaxTotalBytes int
	// MaxTraceBytes bounds an error's message and its trace. 0 means 8192.
	MaxTraceBytes int
	// MaxProducers bounds the other records listed as producing a node's
	// output. 0 means 10.
	MaxProducers int
	// MaxLookups bounds the History.ByOutput queries made for one page
	// (one per ok node, in order). 0 means 2000.
	MaxLookups int
	// MaxNodes is the most nodes a page draws; a bigger graph is an error
	// wrapping ErrTooBig. 0 means 20000.
	MaxNodes int
	// MaxDrawn bounds the nodes drawn in all the graphs of an explorer
	// page together; later graphs are listed, not drawn. 0 means 50,000.
	MaxDrawn int
	// Links turns on links to the pages of pirn ui (values, runs, lineage),
	// for a page that server serves; a file leaves them off.
	Links bool
	// Nonce is the Content-Security-Policy nonce of the page's inline
	// script and style; empty means a fresh random one.
	Nonce string
}

// ErrTooBig is wrapped by the error for a graph of more than
// Config.MaxNodes nodes.
var ErrTooBig = errors.New("page: graph too big to draw")

func (c Config) withDefaults() Config {
	c.MaxValueBytes = cmp.Or(c.MaxValueBytes, 4096)
	c.MaxStoredBytes = cmp.Or(c.MaxStoredBytes, 1<<20)
	c.MaxValues = cmp.Or(c.MaxValues, 2000)
	c.MaxTotalBytes = cmp.Or(c.MaxTotalBytes, 4<<20)
	c.MaxTraceBytes = cmp.Or(c.MaxTraceBytes, 8192)
	c.MaxProducers = cmp.Or(c.MaxProducers, 10)
	c.MaxLookups = cmp.Or(c.MaxLookups, 2000)
	c.MaxNodes = cmp.Or(c.MaxNodes, 20000)
	c.MaxDrawn = cmp.Or(c.MaxDrawn, 50000)
	if c.Nonce == "" {
		c.Nonce = NewNonce()
	}
	return c
}

// NewNonce returns a random Content-Security-Policy nonce.
func NewNonce() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// CSP is the Content-Security-Policy of a page whose inline script and
// style carry nonce: nothing else is loaded or run.
func CSP(nonce string) string {
	return "default-src 'none'; script-src 'nonce-" + nonce + "'; style-src 'nonce-" + nonce +
		"'; img-src data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
}

// Run writes the page of a recorded run. Values are read from store (a
// value that is missing or unreadable is shown by digest with the
// reason); hist, if not nil, answers which other runs produced each
// output. An error is returned only for a graph over Config.MaxNodes, a
// ctx that ended, or a failed write.
func Run(ctx context.Context, w io.Writer, cfg Config, run *lineage.Run, store cas.Store, hist lineage.History) error {
	cfg = cfg.withDefaults()
	g := viz.RunGraph(run)
	if len(g.Nodes) > cfg.MaxNodes {
		return fmt.Errorf("%w: %d nodes, at most %d", ErrTooBig, len(g.Nodes), cfg.MaxNodes)
	}
	b := &builder{ctx: ctx, cfg: cfg, store: store, hist: hist, run: run}
	p := b.page(g)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("page of run %s: %w", run.ID, err) // the values read may be notes of the cancellation
	}
	p.Title = "run " + visible(run.ID)
	p.Summary = summary{Kind: "run", RunID: visible(run.ID), Status: string(run.Status), Pipeline: visible(run.Pipeline),
		Host: visible(run.Host), Started: stamp(run.StartedAt)}
	if !run.PipelineDigest.IsZero() {
		p.Summary.PipelineDigest = run.PipelineDigest.String()
	}
	if !run.FinishedAt.IsZero() && !run.FinishedAt.Before(run.StartedAt) {
		p.Summary.Duration = duration(run.FinishedAt.Sub(run.StartedAt))
	}
	for _, k := range sortedKeys(run.Labels) {
		p.Summary.Labels = append(p.Summary.Labels, visible(k)+"="+visible(run.Labels[k]))
	}
	return render(w, p)
}

// Tapestry writes the page of a pipeline not yet run: its graph, every
// node pending. name is the pipeline's name (may be empty).
func Tapestry(w io.Writer, cfg Config, t *scheduler.Tapestry, name string) error {
	cfg = cfg.withDefaults()
	g := viz.TapestryGraph(t)
	if len(g.Nodes) > cfg.MaxNodes {
		return fmt.Errorf("%w: %d nodes, at most %d", ErrTooBig, len(g.Nodes), cfg.MaxNodes)
	}
	b := &builder{cfg: cfg}
	p := b.page(g)
	p.Title = "pipeline " + visible(name)
	p.Summary = summary{Kind: "pipeline", Status: "not run", Pipeline: visible(name)}
	return render(w, p)
}

// Geometry of the drawing, in SVG user units.
const (
	nodeW, nodeH = 190, 46
	gapX, gapY   = 28, 56
	margin       = 20
	labelRunes   = 26
)

// data is the page as the template sees it.
type data struct {
	Title   string
	Nonce   string
	Links   bool
	Summary summary
	Counts  map[string]int
	Nodes   []svgNode
	Edges   []svgEdge
	W, H    int
	Detail  detail // embedded as JSON
	Notes   []string
}

type summary struct {
	Kind, RunID, Status, Pipeline, PipelineDigest, Host, Started, Duration string
	Labels                                                                 []string
}

type svgNode struct {
	I       int
	ID      string // the full id (an attribute)
	Label   string // cut to labelRunes
	Sub     string // kind and what runs, cut
	Outcome string
	X, Y    int
}

type svgEdge struct {
	D        string
	From, To string // the outcomes of both ends, for the filters
	Input    string
}

// detail is the JSON the script reads.
type detail struct {
	Links bool         `json:"links"`
	RunID string       `json:"run,omitempty"`
	Nodes []nodeDetail `json:"nodes"`
	Box   [4]int       `json:"box"` // the drawing's viewBox
	Pos   [][2]int     `json:"pos"` // each node's centre
}

type nodeDetail struct {
	ID         string       `json:"id"`
	Kind       string       `json:"kind"`
	Knot       string       `json:"knot,omitempty"`
	Module     string       `json:"module,omitempty"`
	Outcome    string       `json:"outcome"`
	Started    string       `json:"started,omitempty"`
	Duration   string       `json:"duration,omitempty"`
	Grants     []string     `json:"grants,omitempty"`
	Hermetic   *bool        `json:"hermetic,omitempty"`
	ConfigHash string       `json:"config,omitempty"`
	CacheKey   string       `json:"cache_key,omitempty"`
	ReusedFrom *ref         `json:"reused_from,omitempty"`
	Elements   string       `json:"elements,omitempty"`
	Inputs     []value      `json:"inputs,omitempty"`
	Output     *value       `json:"output,omitempty"`
	Skip       string       `json:"skip,omitempty"`
	Error      *errorDetail `json:"error,omitempty"`
	Logs       *logsDetail  `json:"logs,omitempty"`
	Producers  []ref        `json:"producers,omitempty"`
	ProdNote   string       `json:"producers_note,omitempty"`
}

type ref struct {
	Run  string `json:"run"`
	Knot string `json:"knot"`
}

type value struct {
	Name      string `json:"name,omitempty"`
	Parent    string `json:"parent,omitempty"`
	Digest    string `json:"digest"`
	JSON      string `json:"json,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	Note      string `json:"note,omitempty"` // why no JSON is shown
}

type errorDetail struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Message string `json:"message"`
	Trace   string `json:"trace,omitempty"`
}

// builder gathers a page; it holds the budgets being spent.
type builder struct {
	ctx     context.Context
	cfg     Config
	store   cas.Store
	hist    lineage.History
	run     *lineage.Run
	values  int // decoded so far
	bytes   int // decoded text embedded so far
	lookups int
	cut     bool // a budget ran out
	decoded map[cas.Digest]value
	// byOutput holds the History.ByOutput answers of this page.
	byOutput map[cas.Digest]*produced
}

func (b *builder) page(g viz.Graph) *data {
	pos, layers, width := viz.Layout(g)
	p := &data{Nonce: b.cfg.Nonce, Links: b.cfg.Links, Counts: map[string]int{}}
	p.W = 2*margin + max(width, 1)*(nodeW+gapX) - gapX
	p.H = 2*margin + max(layers, 1)*(nodeH+gapY) - gapY
	p.Detail = detail{Links: b.cfg.Links, Box: [4]int{0, 0, p.W, p.H}, Nodes: make([]nodeDetail, 0, len(g.Nodes)), Pos: make([][2]int, 0, len(g.Nodes))}
	if b.run != nil {
		p.Detail.RunID = b.run.ID
	}
	// Centre each layer under the widest.
	perLayer := make([]int, layers)
	for _, q := range pos {
		perLayer[q.Layer]++
	}
	index := make(map[string]int, len(g.Nodes))
	errs := map[cas.Digest]*lineage.ErrorRecord{}
	if b.run != nil {
		for i := range b.run.Errors {
			errs[b.run.Errors[i].ID] = &b.run.Errors[i]
		}
	}
	for i, n := range g.Nodes {
		index[n.ID] = i
		q := pos[i]
		x := margin + q.Rank*(nodeW+gapX) + (width-perLayer[q.Layer])*(nodeW+gapX)/2
		y := margin + q.Layer*(nodeH+gapY)
		outcome := "pending"
		if n.Record != nil {
			outcome = string(n.Record.Outcome)
		}
		p.Counts[outcome]++
		sub := string(n.Kind)
		if w := what(n); w != "" {
			sub += ": " + w
		}
		if n.Elements != nil {
			sub = fmt.Sprintf("map ×%d (%d err)", n.Elements.OK+n.Elements.Err+n.Elements.Skipped, n.Elements.Err)
		}
		p.Nodes = append(p.Nodes, svgNode{I: i, ID: visible(n.ID), Label: cut(visible(n.ID), labelRunes), Sub: cut(visible(sub), labelRunes+4),
			Outcome: outcome, X: x, Y: y})
		p.Detail.Pos = append(p.Detail.Pos, [2]int{x + nodeW/2, y + nodeH/2})
		p.Detail.Nodes = append(p.Detail.Nodes, b.node(n, outcome, errs))
	}
	for _, e := range g.Edges {
		f, ok1 := index[e.From]
		t, ok2 := index[e.To]
		if !ok1 || !ok2 {
			continue
		}
		a, z := p.Nodes[f], p.Nodes[t]
		x1, y1, x2, y2 := a.X+nodeW/2, a.Y+nodeH, z.X+nodeW/2, z.Y
		mid := (y1 + y2) / 2
		p.Edges = append(p.Edges, svgEdge{D: fmt.Sprintf("M%d %dC%d %d %d %d %d %d", x1, y1, x1, mid, x2, mid, x2, y2),
			From: a.Outcome, To: z.Outcome, Input: visible(e.Input)})
	}
	if b.cut {
		p.Notes = append(p.Notes, fmt.Sprintf("Some values or lineage are not embedded: this page holds at most %d decoded values, %d KiB of their text and %d lookups of other runs (pirn ui shows them all).",
			b.cfg.MaxValues, b.cfg.MaxTotalBytes>>10, b.cfg.MaxLookups))
	}
	return p
}

func what(n viz.GraphNode) string {
	switch {
	case n.Kind == lineage.KindParameter || n.Kind == lineage.KindArm:
		return ""
	case n.Module != "":
		return n.Knot
	}
	return strings.TrimPrefix(strings.TrimPrefix(n.Knot, lineage.PrefixExpr), lineage.PrefixBuiltin)
}

func (b *builder) node(n viz.GraphNode, outcome string, errs map[cas.Digest]*lineage.ErrorRecord) nodeDetail {
	d := nodeDetail{ID: visible(n.ID), Kind: string(n.Kind), Knot: visible(n.Knot), Module: n.Module, Outcome: outcome}
	r := n.Record
	if r == nil {
		return d
	}
	h := r.Hermetic()
	d.Hermetic = &h
	d.Grants = make([]string, len(r.Grants))
	for i, g := range r.Grants {
		d.Grants[i] = visible(g)
	}
	d.Started = stamp(r.StartedAt)
	if !r.FinishedAt.IsZero() && !r.FinishedAt.Before(r.StartedAt) {
		d.Duration = duration(r.Duration())
	}
	if !r.ConfigHash.IsZero() {
		d.ConfigHash = r.ConfigHash.String()
	}
	if !r.CacheKey.IsZero() {
		d.CacheKey = r.CacheKey.String()
	}
	if r.Reused() {
		d.ReusedFrom = &ref{Run: visible(r.ReusedFrom.RunID), Knot: visible(r.ReusedFrom.KnotID)}
	}
	if n.Elements != nil {
		d.Elements = n.Elements.String()
	}
	for _, in := range r.Inputs {
		v := b.value(in.Digest)
		v.Name, v.Parent = visible(in.Name), visible(in.Parent)
		d.Inputs = append(d.Inputs, v)
	}
	switch r.Outcome {
	case lineage.OK:
		v := b.value(r.Output)
		d.Output = &v
		d.Producers, d.ProdNote = b.producers(r)
	case lineage.Skipped:
		d.Skip = visible(r.SkipReason)
	case lineage.Err:
		d.Error = &errorDetail{ID: r.ErrorID.String()}
		if e := errs[r.ErrorID]; e != nil {
			d.Error.Type = visible(e.Type)
			d.Error.Message = cut(visibleText(e.Message), b.cfg.MaxTraceBytes)
			d.Error.Trace = cut(visibleText(e.Trace), b.cfg.MaxTraceBytes)
		}
	}
	if !r.Logs.IsZero() {
		d.Logs = b.logs(r.Logs)
	}
	return d
}

// value decodes d for the page, within the budgets.
func (b *builder) value(d cas.Digest) value {
	v := value{Digest: d.String()}
	if b.store == nil {
		return v
	}
	if got, ok := b.decoded[d]; ok {
		return got
	}
	if b.values >= b.cfg.MaxValues || b.bytes >= b.cfg.MaxTotalBytes {
		b.cut = true
		v.Note = "not embedded: this page's budget of values is spent"
		return v
	}
	b.values++
	v.JSON, v.Truncated, v.Note = Decode(b.ctx, b.store, d, b.cfg.MaxStoredBytes, b.cfg.MaxValueBytes)
	b.bytes += len(v.JSON)
	if b.decoded == nil {
		b.decoded = map[cas.Digest]value{}
	}
	b.decoded[d] = v
	return v
}

// Decode reads the value d from store and returns it as indented JSON
// text of at most maxText bytes (truncated reports a cut), or a note
// saying why it cannot be shown: absent, larger than maxStored bytes,
// corrupt, or outside the data model. The text is valid UTF-8 with any
// control characters JSON-escaped.
func Decode(ctx context.Context, store cas.Store, d cas.Digest, maxStored, maxText int) (text string, truncated bool, note string) {
	raw, err := store.Get(ctx, d)
	switch {
	case errors.Is(err, cas.ErrNotFound):
		return "", false, "not in the data store"
	case errors.Is(err, cas.ErrCorrupt):
		return "", false, "corrupt in the data store"
	case err != nil:
		return "", false, "unreadable: " + cut(visible(err.Error()), 200)
	case len(raw) > maxStored:
		return "", false, fmt.Sprintf("%d bytes: too large to decode here", len(raw))
	}
	v, err := cas.DecodeBounded(raw, scheduler.MaxOutputItems)
	if err != nil {
		return "", false, "cannot decode: " + cut(visible(err.Error()), 200)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // shown as text; the page escapes it
	enc.SetIndent("", "  ")
	if err := enc.Encode(cas.JSONValue(v)); err != nil {
		return "", false, "cannot show as JSON: " + cut(visible(err.Error()), 200)
	}
	// encoding/json escapes control characters inside strings, not
	// format characters such as bidi overrides: those become escapes too
	// (still valid JSON, meaning the same).
	s := visibleText(strings.TrimSuffix(buf.String(), "\n"))
	if len(s) > maxText {
		return cutBytes(s, maxText), true, ""
	}
	return s, false, ""
}

// producers lists the other records that output r's value: at most
// MaxProducers, and how many more there are. The answer of
// History.ByOutput is kept per digest, since many nodes may output one
// value.
func (b *builder) producers(r *lineage.Record) ([]ref, string) {
	if b.hist == nil {
		return nil, ""
	}
	p, ok := b.byOutput[r.Output]
	if !ok {
		if b.lookups >= b.cfg.MaxLookups {
			b.cut = true
			return nil, "not looked up: this page's budget of lookups is spent"
		}
		b.lookups++
		recs, err := b.hist.ByOutput(b.ctx, r.Output)
		if err != nil {
			return nil, "lookup failed: " + cut(visible(err.Error()), 200)
		}
		p = &produced{all: make(map[lineage.Ref]bool, len(recs))}
		for i := range recs {
			k := lineage.Ref{RunID: recs[i].RunID, KnotID: recs[i].KnotID}
			p.all[k] = true
			if len(p.first) <= b.cfg.MaxProducers {
				p.first = append(p.first, k)
			}
		}
		if b.byOutput == nil {
			b.byOutput = map[cas.Digest]*produced{}
		}
		b.byOutput[r.Output] = p
	}
	self := lineage.Ref{RunID: r.RunID, KnotID: r.KnotID}
	others := len(p.all)
	if p.all[self] {
		others--
	}
	var out []ref
	for _, k := range p.first {
		if k != self && len(out) < b.cfg.MaxProducers {
			out = append(out, ref{Run: visible(k.RunID), Knot: visible(k.KnotID)})
		}
	}
	switch {
	case others == 0:
		return nil, "no other record produced this value"
	case others > len(out):
		return out, fmt.Sprintf("%d more not listed", others-len(out))
	}
	return out, ""
}

// produced is what History.ByOutput answered for one digest: every
// record, and the first MaxProducers+1 in order.
type produced struct {
	all   map[lineage.Ref]bool
	first []lineage.Ref
}

// Visible returns s with what could hide or disguise text made visible:
// control characters (newlines too), Unicode format characters (bidi
// overrides, zero-width) and invalid UTF-8 become escapes such as \u001b.
// HTML escaping is html/template's; this is about text that would render
// as nothing, or misleadingly.
func Visible(s string) string { return escapeText(s, false) }

func visible(s string) string { return Visible(s) }

// visibleText is visible, keeping newlines and tabs (messages, traces).
func visibleText(s string) string { return escapeText(s, true) }

func escapeText(s string, keepLines bool) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case keepLines && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case r < 0x20 || (r >= 0x7f && r < 0xa0) || (r > 0x7f && unicode.Is(unicode.Cf, r)):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// cut shortens s to at most n runes, marking a cut with "…".
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// cutBytes shortens s to at most n bytes on a rune boundary, marking the
// cut with "…".
func cutBytes(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05.000Z")
}

func duration(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%.3gµs", float64(d.Nanoseconds())/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.3gms", float64(d.Nanoseconds())/1e6)
	}
	return fmt.Sprintf("%.3gs", d.Seconds())
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
