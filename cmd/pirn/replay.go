package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/lineage"
)

func replayCommand() *cli.Command {
	return &cli.Command{
		Name:      "replay",
		Usage:     "run a recorded run again, from the data store alone",
		ArgsUsage: "RUN_ID",
		Description: `Runs again the run RUN_ID as a new run: its pipeline and the modules it
used are loaded from the data store by the digest the run recorded, its
parameters are the values it recorded (-p overrides one, typed as pirn run
types it), and it asks for the same terminals. The new run carries the
label replay.of=RUN_ID and is printed as pirn run prints a run. It fails,
naming what is missing, for an unknown run, a run of a tapestry built in
Go, or a pipeline, module or parameter value no longer in the data store
(pirn gc scrubs values). Exit status as pirn run's.`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "param", Aliases: []string{"p"}, Usage: "override a parameter, `name=value` (repeatable); YAML unless the parameter is a str"},
			&cli.IntFlag{Name: "workers", Usage: "knots run at once (default: the number of CPUs)"},
			&cli.BoolFlag{Name: "allow-grants", Usage: "let the pipeline grant its knots capabilities (as pirn run of a pipeline from the data store)"},
			stateFlag, jsonFlag, noProgressFlag, noCacheFlag,
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErr("replay takes one run id, got %d arguments", c.NArg())
			}
			runID := c.Args().First()
			if err := needHistory(c); err != nil {
				return err
			}
			eng, err := engine(c, pirn.Config{Workers: c.Int("workers")}, true)
			if err != nil {
				return err
			}
			defer eng.Close(context.Background())
			rp, err := eng.Replay(c.Context, runID, pirn.ReplayOptions{AllowGrants: c.Bool("allow-grants")})
			if err != nil {
				return inputErr(runProblem(err, runID))
			}
			params, err := parseParams(rp.Pipeline, c.StringSlice("param"))
			if err != nil {
				return err
			}
			if err := rp.Override(params); err != nil {
				return usageErr("-p: %v", err)
			}
			rp.Request.NoCache = c.Bool("no-cache")
			if !c.Bool("json") {
				fmt.Fprintf(c.App.ErrWriter, "pirn: replaying run %s of pipeline %s\n", runID, rp.Original.PipelineDigest)
			}
			return runAndReport(c, eng, rp.Pipeline, rp.Request)
		},
	}
}

// needHistory refuses a state directory with no history before a
// command that reads a run opens (and so creates) one.
func needHistory(c *cli.Context) error {
	if c.String("history") != "" {
		return nil
	}
	st, err := openState(c, true)
	if err != nil {
		return err
	}
	return st.Close()
}

// runProblem words an error about a recorded run for the command line.
func runProblem(err error, runID string) error {
	switch {
	case errors.Is(err, lineage.ErrNotFound):
		return fmt.Errorf("run %q is not in the history (pirn runs lists the runs)", runID)
	case errors.Is(err, pirn.ErrNoPipeline):
		return fmt.Errorf("run %s cannot be loaded again: %w", runID, pirn.ErrNoPipeline)
	}
	return err
}
