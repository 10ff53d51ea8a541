package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn/backends"
	"github.com/pirn-wasm/pirn/lineage"
)

func historyCommand() *cli.Command {
	return &cli.Command{
		Name:  "history",
		Usage: "manage run histories",
		Subcommands: []*cli.Command{{
			Name:      "copy",
			Usage:     "copy every finished run from one history to another, verified and resumable",
			UsageText: "pirn history copy --from URL --to URL [--replace] [--dry-run]",
			Description: `Copies runs oldest first and reads each back to check it. A run the
destination already holds, equal, is skipped, so an interrupted copy
resumes where it stopped; one it holds with other contents is an error
unless --replace. Runs still in progress are left out and listed.
URLs: sqlite:PATH, duckdb:PATH, postgres://…, memory: (see pirn --help).`,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "from", Required: true, Usage: "the history to copy from (`URL`)"},
				&cli.StringFlag{Name: "to", Required: true, Usage: "the history to copy to (`URL`)"},
				&cli.BoolFlag{Name: "replace", Usage: "overwrite runs the destination holds with other contents"},
				&cli.BoolFlag{Name: "dry-run", Usage: "say what would be copied; write nothing"},
				jsonFlag,
			},
			Action: func(c *cli.Context) error {
				if c.NArg() != 0 {
					return usageErr("history copy takes no arguments, got %q", c.Args().First())
				}
				from, err := backends.OpenHistory(c.Context, c.String("from"))
				if err != nil {
					return inputErr(err)
				}
				defer from.Close()
				to, err := backends.OpenHistory(c.Context, c.String("to"))
				if err != nil {
					return inputErr(err)
				}
				defer to.Close()
				st, err := lineage.Copy(c.Context, from, to, c.Bool("replace"), c.Bool("dry-run"))
				if c.Bool("json") && err == nil {
					return json.NewEncoder(c.App.Writer).Encode(map[string]any{"copied": st.Copied, "skipped": st.Skipped,
						"running": append([]string{}, st.Running...), "dry_run": c.Bool("dry-run")})
				}
				verb := "copied"
				if c.Bool("dry-run") {
					verb = "would copy"
				}
				fmt.Fprintf(c.App.Writer, "%s %s, skipped %s already there", verb, plural(st.Copied, "run"), plural(st.Skipped, "run"))
				if len(st.Running) > 0 {
					fmt.Fprintf(c.App.Writer, "; left out %s in progress: %s", plural(len(st.Running), "run"), strings.Join(st.Running, ", "))
				}
				fmt.Fprintln(c.App.Writer)
				return err
			},
		}},
	}
}
