package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/viz/page"
)

func viewCommand() *cli.Command {
	return &cli.Command{
		Name:      "view",
		Usage:     "write a recorded run, or a pipeline not yet run, as one self-contained HTML page",
		ArgsUsage: "RUN_ID | PIPELINE",
		Description: `The page opens from disk (no external assets): the graph laid out in
layers with its real edges, nodes coloured by outcome, filters, a search box,
and on a click a node's inputs and output (decoded, truncated to 4 KiB each,
at most 2000 values and 4 MiB of them per page), its error and trace, grants,
duration and which other runs produced the same value. An argument that is
an existing file is a pipeline (every node pending); otherwise a run id.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "o", Aliases: []string{"output"}, Usage: "write the page to `FILE` (- for stdout)", Required: true},
			stateFlag,
			&cli.BoolFlag{Name: "unpinned", Usage: "allow modules the lock file does not pin (a pipeline)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErr("view takes one run id or pipeline file")
			}
			arg := c.Args().First()
			write := func(render func(w io.Writer) error) error { return writeOutput(c, c.String("o"), render) }
			if fi, err := os.Stat(arg); err == nil && fi.Mode().IsRegular() {
				eng, err := engine(c, pirn.Config{AllowUnpinned: c.Bool("unpinned")}, false)
				if err != nil {
					return err
				}
				defer eng.Close(context.Background())
				p, err := eng.LoadPipeline(c.Context, arg)
				if err != nil {
					return inputErr(err)
				}
				return write(func(w io.Writer) error { return page.Tapestry(w, page.Config{}, p.Tapestry.Scheduler(), p.Spec.Name) })
			}
			st, err := openState(c, true)
			if err != nil {
				return err
			}
			defer st.Close()
			run, err := st.History.Run(c.Context, arg)
			if errors.Is(err, lineage.ErrNotFound) {
				return usageErr("no run %q in the history (and no file of that name)", arg)
			}
			if err != nil {
				return err
			}
			return write(func(w io.Writer) error { return page.Run(c.Context, w, page.Config{}, run, st.Store, st.History) })
		},
	}
}

// writeOutput writes what render renders to path, or to stdout for "-": a
// file is written beside its final name and renamed, so that a failure
// leaves no half-written page.
func writeOutput(c *cli.Context, path string, render func(io.Writer) error) error {
	if path == "-" {
		return render(c.App.Writer)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".pirn-view-*")
	if err != nil {
		return inputErr(fmt.Errorf("-o: %w", err))
	}
	defer os.Remove(f.Name())
	if err := render(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
