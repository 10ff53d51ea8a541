package main

import (
	"context"
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
			stateFlag,
			&cli.BoolFlag{Name: "unpinned", Usage: "allow modules the lock file does not pin"},
		},
		Action: func(c *cli.Context) error {
			if id := c.String("run"); id != "" {
				if c.NArg() != 0 {
					return usageErr("graph --run takes no pipeline")
				}
				eng, err := historyEngine(c)
				if err != nil {
					return err
				}
				defer eng.Close(context.Background())
				run, err := eng.History().Run(c.Context, id)
				if errors.Is(err, lineage.ErrNotFound) {
					return usageErr("no run %q in %s", id, c.String("state"))
				}
				if err != nil {
					return err
				}
				fmt.Fprintln(c.App.Writer, viz.Run(run))
				return nil
			}
			if c.NArg() != 1 {
				return usageErr("graph takes one pipeline file (or --run RUN_ID)")
			}
			eng, err := engine(c, pirn.Config{InMemory: true, AllowUnpinned: c.Bool("unpinned")})
			if err != nil {
				return err
			}
			defer eng.Close(context.Background())
			p, err := eng.LoadPipeline(c.Context, c.Args().First())
			if err != nil {
				return inputErr(err)
			}
			fmt.Fprintln(c.App.Writer, viz.Tapestry(p.Tapestry.Scheduler()))
			return nil
		},
	}
}
