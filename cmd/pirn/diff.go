package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/rundiff"
)

func diffCommand() *cli.Command {
	return &cli.Command{
		Name:      "diff",
		Usage:     "show what changed between two recorded runs, node by node",
		ArgsUsage: "RUN_A RUN_B",
		Description: `For each node: present in only one run, or a changed outcome, output
digest or Map element counts; for outputs that decode to JSON, the paths
added, removed or changed inside (at most 100 per node, 32 levels deep).
Exit status, as diff(1): 0 when the runs do not differ, 1 when they do,
2 for trouble (an unknown run id).`,
		Flags: []cli.Flag{stateFlag, jsonFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usageErr("diff takes two run ids")
			}
			st, err := openState(c, true)
			if err != nil {
				return err
			}
			defer st.Close()
			var runs [2]*lineage.Run
			for i, id := range c.Args().Slice() {
				runs[i], err = st.History.Run(c.Context, id)
				if errors.Is(err, lineage.ErrNotFound) {
					return usageErr("no run %q in the history", id)
				}
				if err != nil {
					return err
				}
			}
			d, err := rundiff.Runs(c.Context, rundiff.Config{}, st.Store, runs[0], runs[1])
			if err != nil {
				return err
			}
			if c.Bool("json") {
				if err := writeJSON(c, d); err != nil {
					return err
				}
			} else {
				printDiff(c, d)
			}
			if d.Differ > 0 {
				return &exitError{code: exitFailed, err: errors.New("")}
			}
			return nil
		},
	}
}

// printDiff prints a diff for a terminal (the app's writer escapes what a
// terminal would obey).
func printDiff(c *cli.Context, d *rundiff.Diff) {
	w := c.App.Writer
	verb := "differ"
	if d.Differ == 1 {
		verb = "differs"
	}
	fmt.Fprintf(w, "%s (%s) → %s (%s): %s %s, %d the same\n", d.A, d.StatusA, d.B, d.StatusB, plural(d.Differ, "node"), verb, d.Same)
	side := func(o lineage.Outcome, out string, el *lineage.ElementCount) string {
		s := string(o)
		if out != "" {
			s += " " + short(stringer(out))
		}
		if el != nil {
			s += " (elements " + el.String() + ")"
		}
		return s
	}
	for _, n := range d.Nodes {
		switch n.Change {
		case rundiff.Same:
			continue
		case rundiff.OnlyA:
			fmt.Fprintf(w, "- %s  only in A: %s\n", n.ID, side(n.OutcomeA, n.OutputA, n.ElementsA))
		case rundiff.OnlyB:
			fmt.Fprintf(w, "+ %s  only in B: %s\n", n.ID, side(n.OutcomeB, n.OutputB, n.ElementsB))
		default:
			fmt.Fprintf(w, "~ %s  %s → %s\n", n.ID, side(n.OutcomeA, n.OutputA, n.ElementsA), side(n.OutcomeB, n.OutputB, n.ElementsB))
		}
		for _, p := range n.Value {
			path := p.Path
			if path == "" {
				path = "(the value)"
			}
			switch p.Op {
			case rundiff.Added:
				fmt.Fprintf(w, "    added   %s: %s\n", path, p.B)
			case rundiff.Removed:
				fmt.Fprintf(w, "    removed %s: %s\n", path, p.A)
			default:
				fmt.Fprintf(w, "    changed %s: %s → %s\n", path, p.A, p.B)
			}
		}
		if n.ValueNote != "" {
			fmt.Fprintf(w, "    (%s)\n", n.ValueNote)
		}
	}
}

type stringer string

func (s stringer) String() string { return string(s) }
