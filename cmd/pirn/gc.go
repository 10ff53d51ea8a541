package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn/lineage"
)

func gcCommand() *cli.Command {
	return &cli.Command{
		Name:      "gc",
		Usage:     "scrub values that no kept run needs from the data store; the lineage stays",
		UsageText: "pirn gc [--keep-runs N] [--older-than AGE] [--dry-run]",
		Description: `A run keeps its values if it is among the --keep-runs newest or started
less than --older-than ago; values only other runs reference are removed
from the data store. Lineage records stay, and pirn runs show says when a
value was scrubbed. pirn gc refuses while a run is in progress.`,
		Flags: []cli.Flag{
			stateFlag, jsonFlag,
			&cli.IntFlag{Name: "keep-runs", Value: 10, Usage: "the newest `N` runs keep their values whatever their age"},
			&cli.StringFlag{Name: "older-than", Value: "30d", Usage: "runs started within `AGE` keep their values (a Go duration, or days: 30d)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "say what would be removed; remove nothing"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usageErr("gc takes no arguments, got %q", c.Args().First())
			}
			age, err := parseAge(c.String("older-than"))
			if err != nil {
				return usageErr("--older-than: %v", err)
			}
			if c.Int("keep-runs") < 0 {
				return usageErr("--keep-runs: want 0 or more, got %d", c.Int("keep-runs"))
			}
			st, err := openState(c, true)
			if err != nil {
				return err
			}
			defer st.Close()
			res, err := lineage.Scrub(c.Context, st.History, st.Store, lineage.ScrubOptions{KeepRuns: c.Int("keep-runs"),
				OlderThan: age, Now: time.Now().UTC(), DryRun: c.Bool("dry-run")})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				removed := []string{}
				for _, d := range res.Removed {
					removed = append(removed, d.String())
				}
				return json.NewEncoder(c.App.Writer).Encode(map[string]any{"runs": res.Runs, "expired_runs": res.Expired,
					"removed": removed, "retained": res.Retained, "dry_run": c.Bool("dry-run")})
			}
			verb := "removed"
			if c.Bool("dry-run") {
				verb = "would remove"
			}
			fmt.Fprintf(c.App.Writer, "%s %s of %s whose values are no longer kept (of %s); %s still needed by kept runs\n",
				verb, plural(len(res.Removed), "value"), plural(res.Expired, "run"), plural(res.Runs, "run"), plural(res.Retained, "value"))
			return nil
		},
	}
}

// parseAge parses a Go duration or a number of days ("30d").
func parseAge(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("want a duration such as 72h or 30d, got %q", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want a duration such as 72h or 30d, got %q", s)
	}
	return d, nil
}
