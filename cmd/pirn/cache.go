package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

// Memoisation on the command line: pirn run --no-cache, the global
// --cache-salt, and pirn cache stats|clear over the history's index of
// reusable results (lineage.Memo).

var (
	noCacheFlag   = &cli.BoolFlag{Name: "no-cache", Usage: "run every knot: reuse no earlier result (the run's results can still be reused later)"}
	cacheSaltFlag = &cli.StringFlag{Name: "cache-salt", Usage: "operator's salt in every cache key: results recorded under another salt are not reused", EnvVars: []string{"PIRN_CACHE_SALT"}}
)

func cacheCommand() *cli.Command {
	return &cli.Command{
		Name:  "cache",
		Usage: "show or clear the index of reusable results (memoisation)",
		Description: `A hermetic knot (a module's knot with no grants, its instance reset or
fresh) is not run again when the history holds an ok result of an
earlier run with the same cache key: pirn run reuses that result and
records where it came from. pirn cache stats counts what the history
indexes; pirn cache clear forgets keys (all, or those of one knot or
module), so that their knots run again; the records stay.`,
		Subcommands: []*cli.Command{{
			Name:  "stats",
			Usage: "count the reusable results and the records that reused one",
			Flags: []cli.Flag{stateFlag, jsonFlag},
			Action: func(c *cli.Context) error {
				if c.NArg() != 0 {
					return usageErr("cache stats takes no arguments, got %q", c.Args().First())
				}
				st, memo, err := openMemo(c)
				if err != nil {
					return err
				}
				defer st.Close()
				s, err := memo.CacheStats(c.Context)
				if err != nil {
					return err
				}
				return printCacheStats(c.App.Writer, s, c.Bool("json"))
			},
		}, {
			Name:  "clear",
			Usage: "forget reusable results: all, or those of a knot or a module",
			Flags: []cli.Flag{
				stateFlag, jsonFlag,
				&cli.StringFlag{Name: "knot", Usage: "only results of the knot with this `name` in its module (as pirn lineage shows it)"},
				&cli.StringFlag{Name: "module", Usage: "only results of the module with this `sha256:…` digest"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() != 0 {
					return usageErr("cache clear takes no arguments, got %q (use --knot or --module)", c.Args().First())
				}
				f := lineage.CacheFilter{Knot: c.String("knot")}
				if m := c.String("module"); m != "" {
					d, err := cas.ParseDigest(m)
					if err != nil {
						return usageErr("--module: %v", err)
					}
					f.Module = d.String()
				}
				st, memo, err := openMemo(c)
				if err != nil {
					return err
				}
				defer st.Close()
				n, err := memo.ClearCache(c.Context, f)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return json.NewEncoder(c.App.Writer).Encode(map[string]int{"forgotten": n})
				}
				fmt.Fprintf(c.App.Writer, "forgot %s (the records stay)\n", plural(n, "reusable result"))
				return nil
			},
		}},
	}
}

// openMemo opens the state's history, which must index results by cache
// key.
func openMemo(c *cli.Context) (*state, lineage.Memo, error) {
	st, err := openState(c, true)
	if err != nil {
		return nil, nil, err
	}
	memo, ok := st.History.(lineage.Memo)
	if !ok {
		st.Close()
		return nil, nil, inputErr(fmt.Errorf("the history (%T) keeps no index of reusable results", st.History))
	}
	return st, memo, nil
}

func printCacheStats(w io.Writer, s lineage.CacheStats, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(map[string]int{"entries": s.Entries, "executed": s.Executed, "reused": s.Reused})
	}
	hit := "-"
	if total := s.Executed + s.Reused; total > 0 {
		hit = fmt.Sprintf("%.1f%%", 100*float64(s.Reused)/float64(total))
	}
	fmt.Fprint(w, table([]string{"reusable results", "executed with a key", "reused", "reused / keyed"},
		[][]string{{fmt.Sprint(s.Entries), fmt.Sprint(s.Executed), fmt.Sprint(s.Reused), hit}}))
	return nil
}

// jsonRecordRef names a record in JSON output.
type jsonRecordRef struct {
	RunID  string `json:"run_id"`
	KnotID string `json:"knot_id"`
}

// outcomeText is a record's outcome for a table: "ok (reused from
// RUN/KNOT)" for a reused result.
func outcomeText(r *lineage.Record) string {
	if r.Reused() {
		return string(r.Outcome) + " (reused from " + r.ReusedFrom.String() + ")"
	}
	return string(r.Outcome)
}

// countReused counts the reused element records of each Map.
func countReused(records []lineage.Record) map[string]int {
	n := map[string]int{}
	for i := range records {
		if r := &records[i]; r.Kind == lineage.KindElement && r.Reused() {
			n[r.Map]++
		}
	}
	return n
}

// printReused says how many of a run's results were reused, if any.
func printReused(w io.Writer, records []lineage.Record) {
	n := 0
	for i := range records {
		if records[i].Reused() {
			n++
		}
	}
	if n > 0 {
		fmt.Fprintf(w, "%s reused from earlier runs (pirn run --no-cache runs every knot)\n", plural(n, "result"))
	}
}
