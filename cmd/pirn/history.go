package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

func runsCommand() *cli.Command {
	return &cli.Command{
		Name:  "runs",
		Usage: "list recorded runs, or show one",
		Flags: []cli.Flag{
			stateFlag, jsonFlag,
			&cli.IntFlag{Name: "limit", Value: 20, Usage: "list at most this many runs"},
			&cli.StringFlag{Name: "pipeline", Usage: "list only runs of this pipeline"},
			&cli.StringFlag{Name: "label", Usage: "list only runs that carry this label (`KEY=VALUE`, the value exact), such as kafka.offset=1234"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usageErr("unknown argument %q (did you mean `pirn runs show %s`?)", c.Args().First(), c.Args().First())
			}
			var label lineage.Label
			if c.IsSet("label") {
				var err error
				if label, err = lineage.ParseLabel(c.String("label")); err != nil {
					return usageErr("--label: %v", err)
				}
			}
			st, err := openState(c, true)
			if err != nil {
				return err
			}
			defer st.Close()
			runs, err := st.History.Runs(c.Context, lineage.Query{Limit: c.Int("limit"), Pipeline: c.String("pipeline"), Label: label})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				type row struct {
					ID         string   `json:"run_id"`
					Pipeline   string   `json:"pipeline"`
					Status     string   `json:"status"`
					StartedAt  string   `json:"started_at"`
					DurationMS *float64 `json:"duration_ms"` // null for a run never finished
					Nodes      int      `json:"nodes"`
					Failed     int      `json:"failed"`
					Skipped    int      `json:"skipped"`
					Elements   int      `json:"map_elements"`
				}
				rows := []row{}
				for _, r := range runs {
					var ms *float64
					if !r.FinishedAt.IsZero() && !r.FinishedAt.Before(r.StartedAt) {
						d := float64(r.FinishedAt.Sub(r.StartedAt).Microseconds()) / 1000
						ms = &d
					}
					rows = append(rows, row{r.ID, r.Pipeline, string(r.Status), r.StartedAt.Format("2006-01-02T15:04:05.000Z07:00"),
						ms, r.Knots, r.Failed, r.Skipped, r.Elements})
				}
				return json.NewEncoder(c.App.Writer).Encode(rows)
			}
			rows := make([][]string, 0, len(runs))
			for _, r := range runs {
				rows = append(rows, []string{r.ID, r.Pipeline, string(r.Status), r.StartedAt.Local().Format("2006-01-02 15:04:05"),
					runDuration(r.StartedAt, r.FinishedAt), fmt.Sprintf("%d/%d/%d", r.Knots-r.Failed-r.Skipped, r.Failed, r.Skipped)})
			}
			fmt.Fprint(c.App.Writer, table([]string{"run", "pipeline", "status", "started", "duration", "ok/err/skip"}, rows))
			return nil
		},
		Subcommands: []*cli.Command{{
			Name:      "show",
			Usage:     "show one run: labels, outputs, knots and errors",
			ArgsUsage: "RUN_ID",
			Flags:     []cli.Flag{stateFlag, jsonFlag},
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return usageErr("runs show takes one run id")
				}
				st, err := openState(c, true)
				if err != nil {
					return err
				}
				defer st.Close()
				run, err := st.History.Run(c.Context, c.Args().First())
				if errors.Is(err, lineage.ErrNotFound) {
					return usageErr("no run %q in %s", c.Args().First(), c.String("state"))
				}
				if err != nil {
					return err
				}
				values, unreadable := loadValues(c.Context, st.Store, st.History, run)
				return report(c.App.Writer, run, values, unreadable, c.Bool("json"))
			},
		}},
	}
}

func lineageCommand() *cli.Command {
	return &cli.Command{
		Name:  "lineage",
		Usage: "query lineage records across runs",
		Description: `Exactly one of:
  --output HASH   records that produced this value
  --input HASH    records that consumed this value
  --knot ID       every record of this knot id`,
		Flags: []cli.Flag{
			stateFlag, jsonFlag,
			&cli.StringFlag{Name: "output", Usage: "a value's `sha256:…` digest"},
			&cli.StringFlag{Name: "input", Usage: "a value's `sha256:…` digest"},
			&cli.StringFlag{Name: "knot", Usage: "a knot `id`"},
		},
		Action: func(c *cli.Context) error {
			set := 0
			for _, f := range []string{"output", "input", "knot"} {
				if c.String(f) != "" {
					set++
				}
			}
			if set != 1 {
				return usageErr("lineage needs exactly one of --output, --input or --knot")
			}
			st, err := openState(c, true)
			if err != nil {
				return err
			}
			defer st.Close()
			h := st.History
			var recs []lineage.Record
			switch {
			case c.String("knot") != "":
				recs, err = h.ByKnot(c.Context, c.String("knot"))
			default:
				flag := "output"
				if c.String("input") != "" {
					flag = "input"
				}
				d, perr := cas.ParseDigest(c.String(flag))
				if perr != nil {
					return usageErr("--%s: %v", flag, perr)
				}
				if flag == "output" {
					recs, err = h.ByOutput(c.Context, d)
				} else {
					recs, err = h.ByInput(c.Context, d)
				}
			}
			if err != nil {
				return err
			}
			if c.Bool("json") {
				out := []map[string]any{}
				for i := range recs {
					k := knotJSON(&recs[i])
					out = append(out, map[string]any{"run_id": recs[i].RunID, "started_at": recs[i].StartedAt, "record": k})
				}
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			rows := make([][]string, 0, len(recs))
			for _, r := range recs {
				what := r.Knot
				if r.Module != "" {
					what = r.Knot + "@" + r.Module[:min(len(r.Module), 19)] + "…"
				}
				out := r.Output.String()
				if r.Outcome != lineage.OK {
					out = string(r.Outcome)
				}
				if r.Reused() {
					out += " (reused from " + r.ReusedFrom.String() + ")"
				}
				rows = append(rows, []string{r.RunID, r.KnotID, what, out})
			}
			fmt.Fprint(c.App.Writer, table([]string{"run", "knot", "ran", "output"}, rows))
			return nil
		},
	}
}
