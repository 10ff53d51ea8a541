package page

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"path/filepath"

	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/viz"
)

// Exploration is what pirn explore found under a folder: its pipelines and
// the runs of its histories, for [Explorer].
type Exploration struct {
	Dir       string
	Pipelines []PipelineEntry
	Histories []HistoryEntry
	// Notes say what the scan left out (limits reached, files it could
	// not read).
	Notes []string
}

// PipelineEntry is one pipeline file: its graph, or why it did not parse.
type PipelineEntry struct {
	Path        string // relative to the folder
	Name        string
	Description string
	Modules     [][2]string // name and path, as written
	Outputs     []string
	Graph       viz.Graph // empty if Err is set
	Err         string    // the parse error
}

// HistoryEntry is one history file and its newest runs.
type HistoryEntry struct {
	Path string // relative to the folder
	Err  string // why it was not read
	Runs []RunEntry
	More bool // the history holds more runs than listed
}

// RunEntry is one run of a history: its summary, and its records when the
// page draws its graph (nil otherwise).
type RunEntry struct {
	Summary lineage.Summary
	Run     *lineage.Run
}

//go:embed explore.html
var exploreHTML string

var exploreTmpl = template.Must(template.Must(tmpl.Clone()).New("explore").Parse(exploreHTML))

type explorePage struct {
	Title     string
	Nonce     string
	Pipelines []explorePipeline
	Histories []exploreHistory
	Notes     []string
}

type explorePipeline struct {
	Path, Name, Description, Err string
	Modules                      []string
	Outputs                      []string
	Nodes                        int
	Drawing                      *drawing
}

type exploreHistory struct {
	Path, Err string
	State     string // the state directory the history is in
	More      bool
	Runs      []exploreRun
}

type exploreRun struct {
	ID, Pipeline, Status, Started, Duration string
	Knots, Failed, Skipped, Elements        int
	Drawing                                 *drawing
}

// drawing is one graph as static SVG: nodes with their detail in a
// tooltip, no script.
type drawing struct {
	W, H  int
	Nodes []svgNode
	Edges []svgEdge
	Tips  []string // per node: its kind, knot and outcome
	Note  string   // why it is not drawn
}

// Explorer writes one self-contained page of e: each pipeline with its
// graph, each history with its newest runs and their graphs. It has no
// script at all: sections open and close as HTML <details>, and a node's
// detail is its tooltip. Every text is escaped; graphs over
// Config.MaxNodes nodes are listed, not drawn.
func Explorer(w io.Writer, cfg Config, e *Exploration) error {
	cfg = cfg.withDefaults()
	p := explorePage{Title: "explorer of " + visible(e.Dir), Nonce: cfg.Nonce}
	drawn := 0
	draw := func(g viz.Graph) *drawing {
		if drawn+len(g.Nodes) > cfg.MaxDrawn {
			return &drawing{Note: fmt.Sprintf("not drawn: this page draws at most %d nodes in all", cfg.MaxDrawn)}
		}
		d := drawGraph(cfg, g)
		drawn += len(d.Nodes)
		return d
	}
	for _, n := range e.Notes {
		p.Notes = append(p.Notes, visibleText(n))
	}
	for _, pe := range e.Pipelines {
		ep := explorePipeline{Path: visible(pe.Path), Name: visible(pe.Name), Description: cut(visibleText(pe.Description), 2000),
			Err: cut(visibleText(pe.Err), cfg.MaxTraceBytes), Nodes: len(pe.Graph.Nodes)}
		for _, m := range pe.Modules {
			ep.Modules = append(ep.Modules, visible(m[0])+": "+visible(m[1]))
		}
		for _, o := range pe.Outputs {
			ep.Outputs = append(ep.Outputs, visible(o))
		}
		if pe.Err == "" {
			ep.Drawing = draw(pe.Graph)
		}
		p.Pipelines = append(p.Pipelines, ep)
	}
	for _, he := range e.Histories {
		eh := exploreHistory{Path: visible(he.Path), State: visible(filepath.Join(e.Dir, filepath.Dir(he.Path))), Err: cut(visibleText(he.Err), cfg.MaxTraceBytes), More: he.More}
		for _, r := range he.Runs {
			s := r.Summary
			er := exploreRun{ID: visible(s.ID), Pipeline: visible(s.Pipeline), Status: visible(string(s.Status)),
				Started: stamp(s.StartedAt), Knots: s.Knots, Failed: s.Failed, Skipped: s.Skipped, Elements: s.Elements}
			if !s.FinishedAt.IsZero() && !s.FinishedAt.Before(s.StartedAt) {
				er.Duration = duration(s.FinishedAt.Sub(s.StartedAt))
			}
			if r.Run != nil {
				er.Drawing = draw(viz.RunGraph(r.Run))
			}
			eh.Runs = append(eh.Runs, er)
		}
		p.Histories = append(p.Histories, eh)
	}
	if err := exploreTmpl.ExecuteTemplate(w, "explore", p); err != nil {
		return fmt.Errorf("write explorer page: %w", err)
	}
	return nil
}

// drawGraph lays g out as the run page does.
func drawGraph(cfg Config, g viz.Graph) *drawing {
	if len(g.Nodes) > cfg.MaxNodes {
		return &drawing{Note: fmt.Sprintf("not drawn: %d nodes, this page draws at most %d", len(g.Nodes), cfg.MaxNodes)}
	}
	b := &builder{cfg: cfg}
	d := b.page(g)
	tips := make([]string, len(g.Nodes))
	for i, n := range g.Nodes {
		tip := visible(n.ID) + "\n" + string(n.Kind)
		if w := what(n); w != "" {
			tip += ": " + visible(w)
		}
		if n.Record != nil {
			tip += "\n" + string(n.Record.Outcome)
			if n.Record.Outcome == lineage.Skipped && n.Record.SkipReason != "" {
				tip += " (" + visible(n.Record.SkipReason) + ")"
			}
			if !n.Record.Output.IsZero() {
				tip += "\n" + n.Record.Output.String()
			}
		}
		if n.Elements != nil {
			tip += "\nelements: " + n.Elements.String()
		}
		tips[i] = tip
	}
	return &drawing{W: d.W, H: d.H, Nodes: d.Nodes, Edges: d.Edges, Tips: tips}
}
