package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/viz"
)

func graphCommand() *cli.Command {
	return &cli.Command{
		Name:      "graph",
		Usage:     "print a pipeline's structure, or a recorded run, as a Mermaid flowchart",
		ArgsUsage: "PIPELINE | --run RUN_ID",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "run", Usage: "draw this recorded run (nodes coloured by outcome)"},
			stateFlag, jsonFlag,
			&cli.BoolFlag{Name: "unpinned", Usage: "allow modules the lock file does not pin"},
		},
		Action: func(c *cli.Context) error {
			if id := c.String("run"); id != "" {
				if c.NArg() != 0 {
					return usageErr("graph --run takes no pipeline")
				}
				st, err := openState(c, true)
				if err != nil {
					return err
				}
				defer st.Close()
				run, err := st.History.Run(c.Context, id)
				if errors.Is(err, lineage.ErrNotFound) {
					return usageErr("no run %q in %s", id, c.String("state"))
				}
				if err != nil {
					return err
				}
				if c.Bool("json") {
					g := jsonGraph{RunID: run.ID, Pipeline: run.Pipeline, Nodes: []jsonNode{}, Edges: []jsonEdge{}, Mermaid: viz.Run(run)}
					for _, r := range run.Records {
						if r.Kind == lineage.KindElement {
							continue
						}
						g.Nodes = append(g.Nodes, jsonNode{ID: r.KnotID, Kind: string(r.Kind), Module: r.Module, Knot: r.Knot, Outcome: string(r.Outcome)})
						for _, in := range r.Inputs {
							if in.Parent != "" && !(r.Kind == lineage.KindArm && in.Name == "passthrough") {
								g.Edges = append(g.Edges, jsonEdge{From: in.Parent, To: r.KnotID, Input: in.Name})
							}
						}
					}
					return writeJSON(c, g)
				}
				fmt.Fprintln(c.App.Writer, viz.Run(run))
				return nil
			}
			if c.NArg() != 1 {
				return usageErr("graph takes one pipeline file (or --run RUN_ID)")
			}
			eng, err := engine(c, pirn.Config{AllowUnpinned: c.Bool("unpinned")}, false)
			if err != nil {
				return err
			}
			defer eng.Close(context.Background())
			p, err := eng.LoadPipeline(c.Context, c.Args().First())
			if err != nil {
				return inputErr(err)
			}
			t := p.Tapestry.Scheduler()
			if c.Bool("json") {
				g := jsonGraph{Pipeline: p.Spec.Name, Nodes: []jsonNode{}, Edges: []jsonEdge{}, Mermaid: viz.Tapestry(t)}
				for _, n := range t.Nodes() {
					module, knot := n.What()
					g.Nodes = append(g.Nodes, jsonNode{ID: n.ID(), Kind: n.Kind().String(), Module: module, Knot: knot})
					for _, e := range n.Edges() {
						g.Edges = append(g.Edges, jsonEdge{From: e[1], To: n.ID(), Input: e[0]})
					}
				}
				return writeJSON(c, g)
			}
			fmt.Fprintln(c.App.Writer, viz.Tapestry(t))
			return nil
		},
	}
}

// jsonGraph is graph --json: a pipeline's or a run's nodes and edges (a
// Map's elements are left out, as in the flowchart), and the flowchart.
type jsonGraph struct {
	RunID    string     `json:"run_id,omitempty"`
	Pipeline string     `json:"pipeline,omitempty"`
	Nodes    []jsonNode `json:"nodes"`
	Edges    []jsonEdge `json:"edges"`
	Mermaid  string     `json:"mermaid"`
}

type jsonNode struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Module  string `json:"module,omitempty"`
	Knot    string `json:"knot"`
	Outcome string `json:"outcome,omitempty"`
}

type jsonEdge struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Input string `json:"input"`
}

// writeJSON prints v as indented JSON.
func writeJSON(c *cli.Context, v any) error {
	enc := json.NewEncoder(c.App.Writer)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
