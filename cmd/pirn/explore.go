package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn/viz/explore"
	"github.com/pirn-wasm/pirn/viz/page"
)

func exploreCommand() *cli.Command {
	return &cli.Command{
		Name:      "explore",
		Usage:     "write one HTML page of every pipeline and run history found under a folder",
		ArgsUsage: "[DIR]",
		Description: `Scans DIR (default: the current folder) recursively for pipeline files
(*.yaml, *.yml) and run histories (history.db in a state directory such as
.pirn, and other *.db files at pirn's schema), and writes one self-contained
page: each pipeline with its graph, or why it does not load, and each
history's newest runs with their graphs. Nothing found is executed: pipelines
are parsed but their modules are neither read nor compiled, and a database
is opened only if it is a history at this pirn's schema (one of an older
schema is listed, not migrated). Folders whose
names start with "." (but .pirn), node_modules, vendor, target and __pycache__
are skipped; symbolic links are not followed. The scan is bounded (see the
flags); what a bound left out is said on the page.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "o", Aliases: []string{"output"}, Usage: "write the page to `FILE` (- for stdout; default DIR/pirn-explorer.html)"},
			&cli.IntFlag{Name: "max-entries", Value: 20000, Usage: "visit at most `N` directory entries"},
			&cli.IntFlag{Name: "max-runs", Value: 200, Usage: "list at most `N` runs per history, newest first"},
			&cli.IntFlag{Name: "max-run-graphs", Value: 20, Usage: "draw the graphs of at most `N` runs per history"},
			&cli.BoolFlag{Name: "no-open", Usage: "accepted as the original's pirn-explore takes it: pirn never opens a browser"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return usageErr("explore takes at most one folder")
			}
			dir := "."
			if c.NArg() == 1 {
				dir = c.Args().First()
			}
			for _, f := range []string{"max-entries", "max-runs", "max-run-graphs"} {
				if c.Int(f) <= 0 {
					return usageErr("--%s must be positive", f)
				}
			}
			ex, err := explore.Scan(c.Context, explore.Config{Dir: dir, MaxEntries: c.Int("max-entries"),
				MaxRuns: c.Int("max-runs"), MaxRunGraphs: c.Int("max-run-graphs")})
			if err != nil {
				return inputErr(err)
			}
			out := c.String("o")
			if out == "" {
				out = filepath.Join(dir, "pirn-explorer.html")
			}
			err = writeOutput(c, out, func(w io.Writer) error { return page.Explorer(w, page.Config{MaxNodes: 2000}, ex) })
			if err != nil {
				return err
			}
			if out != "-" {
				fmt.Fprintf(c.App.ErrWriter, "%d pipelines, %d histories: wrote %s\n", len(ex.Pipelines), len(ex.Histories), out)
			}
			return nil
		},
	}
}
