// Package viz draws tapestries and runs as Mermaid flowcharts. Edges come
// from the graph itself — a tapestry's parent links, or the parent recorded
// with each lineage input — never from matching equal output hashes (the
// Python original's method, which draws wrong edges when two knots output
// equal values).
package viz

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/scheduler"
)

// ids gives each node id a unique Mermaid identifier.
type ids struct {
	byID  map[string]string
	taken map[string]bool
}

var nonWord = regexp.MustCompile(`[^A-Za-z0-9_]`)

// keywords are words of Mermaid's flowchart syntax that cannot be node
// identifiers (a node "end" closes a subgraph that was never opened).
var keywords = map[string]bool{
	"end": true, "graph": true, "flowchart": true, "subgraph": true, "style": true, "linkstyle": true,
	"classdef": true, "class": true, "click": true, "call": true, "href": true, "default": true,
	"interpolate": true, "direction": true, "acctitle": true, "accdescr": true,
	"td": true, "tb": true, "bt": true, "rl": true, "lr": true,
}

func newIDs() *ids { return &ids{byID: map[string]string{}, taken: map[string]bool{}} }

func (m *ids) get(id string) string {
	if s, ok := m.byID[id]; ok {
		return s
	}
	s := nonWord.ReplaceAllString(id, "_")
	if s == "" || (s[0] >= '0' && s[0] <= '9') || keywords[strings.ToLower(s)] {
		s = "n_" + s
	}
	base := s
	for i := 2; m.taken[s]; i++ {
		s = fmt.Sprintf("%s_%d", base, i)
	}
	m.taken[s] = true
	m.byID[id] = s
	return s
}

// label escapes text for a quoted Mermaid label.
func label(parts ...string) string {
	s := strings.Join(parts, "<br/>")
	return strings.NewReplacer("#", "#35;", `"`, "#quot;", "<br/>", "<br/>", "<", "#lt;", ">", "#gt;", "`", "#96;",
		"\r\n", " ", "\n", " ", "\r", " ").Replace(s) // a line break would end the statement
}

// shape wraps a label in the Mermaid shape of a node kind.
func shape(kind lineage.Kind, text string) string {
	q := `"` + text + `"`
	switch kind {
	case lineage.KindParameter:
		return "([" + q + "])"
	case lineage.KindSource:
		return ">" + q + "]"
	case lineage.KindSink:
		return "[(" + q + ")]"
	case lineage.KindGate:
		return "{{" + q + "}}"
	case lineage.KindBranch:
		return "{" + q + "}"
	case lineage.KindArm:
		return "(" + q + ")"
	case lineage.KindMap:
		return "[[" + q + "]]"
	case lineage.KindReduce:
		return "[/" + q + "/]"
	case lineage.KindAggregator:
		return "[\\" + q + "\\]"
	}
	return "[" + q + "]"
}

func what(kind lineage.Kind, module, name string) string {
	switch {
	case kind == lineage.KindParameter, kind == lineage.KindArm:
		return string(kind)
	case module != "":
		return string(kind) + ": " + name
	}
	return string(kind) + ": " + strings.TrimPrefix(name, lineage.PrefixExpr)
}

// Tapestry returns a Mermaid flowchart of the tapestry's structure: one
// node per parameter and knot (shaped by kind), one edge per parent link,
// labelled with the input name.
func Tapestry(t *scheduler.Tapestry) string {
	m := newIDs()
	g := TapestryGraph(t)
	var b strings.Builder
	b.WriteString("graph TD\n")
	for _, n := range g.Nodes {
		fmt.Fprintf(&b, "    %s%s\n", m.get(n.ID), shape(n.Kind, label(n.ID, "("+what(n.Kind, n.Module, n.Knot)+")")))
	}
	for _, e := range g.Edges {
		fmt.Fprintf(&b, "    %s -->|%s| %s\n", m.get(e.From), e.Input, m.get(e.To))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Classes for run outcomes, as the original's.
const classDefs = `classDef ok fill:#d1f4d4,stroke:#2d8a39,color:#1b3d1f;
    classDef err fill:#fbd5d5,stroke:#a52a2a,color:#3d1010;
    classDef skipped fill:#e7e7e7,stroke:#888,color:#333;`

// Run returns a Mermaid flowchart of a recorded run: its nodes coloured by
// outcome (ok, err, skipped), with edges from the parent each record
// names. A Map's element records are summarised on the Map's node.
func Run(run *lineage.Run) string {
	m := newIDs()
	g := RunGraph(run)
	var b strings.Builder
	b.WriteString("graph TD\n")
	var classes []string
	for _, n := range g.Nodes {
		r := n.Record
		id := m.get(n.ID)
		parts := []string{n.ID, "(" + what(n.Kind, n.Module, n.Knot) + ")"}
		switch r.Outcome {
		case lineage.Skipped:
			parts = append(parts, "skipped: "+r.SkipReason)
		case lineage.Err:
			for _, e := range run.Errors {
				if e.ID == r.ErrorID {
					parts = append(parts, "err: "+e.Type)
				}
			}
		}
		if n.Elements != nil {
			parts = append(parts, "elements: "+n.Elements.String())
		}
		fmt.Fprintf(&b, "    %s%s\n", id, shape(n.Kind, label(parts...)))
		classes = append(classes, fmt.Sprintf("    class %s %s;", id, r.Outcome))
	}
	for _, e := range g.Edges {
		fmt.Fprintf(&b, "    %s -->|%s| %s\n", m.get(e.From), e.Input, m.get(e.To))
	}
	for _, c := range classes {
		b.WriteString(c + "\n")
	}
	b.WriteString("\n    " + classDefs)
	return b.String()
}
