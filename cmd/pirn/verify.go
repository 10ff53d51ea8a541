package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn"
)

// exitUnverifiable is pirn verify's status when nothing mismatched but
// some records could not be checked, or none was: never a pass.
const exitUnverifiable = 3

// verifyRows bounds the records pirn verify lists as text (--json lists
// them all).
const verifyRows = 500

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "re-execute a run's hermetic knots and check their outputs against the lineage",
		ArgsUsage: "RUN_ID",
		Description: `Re-executes the recorded executions of module knots in the run RUN_ID
from their recorded inputs (values from the data store, by digest), with
the module and configuration of the run's pipeline loaded again from the
data store by digest, each under the knot's own limits, and checks that
each produces the output digest its record names.

Each record is verified, a MISMATCH (non-determinism, a history or data
store tampered with, or a runtime that changed), or unverifiable: a knot
with grants (not hermetic), an input scrubbed from the data store or
missing, a module or pipeline not in the store, a configuration that no
longer hashes as recorded, an outcome other than ok, or a run of a
tapestry built in Go. --sample N checks N records picked at random
(--seed picks the same ones again).

Exit status: 0 if every record checked was verified, 1 if any mismatched,
3 if none mismatched but some were unverifiable or none was checked
(never a pass), 2 for a bad argument, an unknown run or one whose records
were never written (running, interrupted).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "knot", Usage: "check only this knot's records (a Map's: its elements') by `id`"},
			&cli.IntFlag{Name: "sample", Usage: "check only `N` records, picked at random (seeded)"},
			&cli.Uint64Flag{Name: "seed", Usage: "the sample's seed (default: a random one, printed)"},
			stateFlag, jsonFlag,
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErr("verify takes one run id, got %d arguments", c.NArg())
			}
			if c.Int("sample") < 0 {
				return usageErr("--sample %d: want a positive number", c.Int("sample"))
			}
			runID := c.Args().First()
			if err := needHistory(c); err != nil {
				return err
			}
			eng, err := engine(c, pirn.Config{}, true)
			if err != nil {
				return err
			}
			defer eng.Close(context.Background())
			opts := pirn.VerifyOptions{Knot: c.String("knot"), Sample: c.Int("sample"), Seed: c.Uint64("seed")}
			if opts.Sample > 0 && !c.IsSet("seed") {
				opts.Seed = rand.Uint64()
			}
			rep, err := eng.Verify(c.Context, runID, opts)
			if errors.Is(err, pirn.ErrUnknownKnot) {
				return usageErr("--knot %q: run %s has no record of it", opts.Knot, runID)
			}
			if err != nil {
				return inputErr(runProblem(err, runID))
			}
			if err := printVerify(c.App.Writer, rep, opts.Sample > 0, c.Bool("json")); err != nil {
				return err
			}
			switch {
			case rep.Mismatches > 0:
				return &exitError{code: exitFailed, err: errors.New("")}
			case !rep.OK(): // unverifiable records, or nothing checked
				return &exitError{code: exitUnverifiable, err: errors.New("")}
			}
			return nil
		},
	}
}

type jsonVerify struct {
	RunID          string             `json:"run_id"`
	PipelineDigest string             `json:"pipeline_digest,omitempty"`
	Seed           *string            `json:"seed,omitempty"` // text: a uint64 does not fit a JSON number
	OK             bool               `json:"ok"`
	Verified       int                `json:"verified"`
	Mismatches     int                `json:"mismatches"`
	Unverifiable   int                `json:"unverifiable"`
	NotSampled     int                `json:"not_sampled"`
	Records        []jsonVerifyRecord `json:"records"`
}

type jsonVerifyRecord struct {
	Knot       string  `json:"knot"`
	Status     string  `json:"status"`
	Reason     string  `json:"reason,omitempty"`
	Recorded   string  `json:"recorded,omitempty"`
	Got        string  `json:"got,omitempty"`
	DurationMS float64 `json:"duration_ms,omitempty"`
}

// printVerify prints what Verify found.
func printVerify(w io.Writer, rep *pirn.VerifyReport, sampled, asJSON bool) error {
	if asJSON {
		out := jsonVerify{RunID: rep.RunID, PipelineDigest: rep.PipelineDigest.String(), OK: rep.OK(), Verified: rep.Verified,
			Mismatches: rep.Mismatches, Unverifiable: rep.Unverifiable, NotSampled: rep.NotSampled, Records: []jsonVerifyRecord{}}
		if sampled {
			s := strconv.FormatUint(rep.Seed, 10)
			out.Seed = &s
		}
		for _, r := range rep.Results {
			out.Records = append(out.Records, jsonVerifyRecord{Knot: r.KnotID, Status: string(r.Status), Reason: r.Reason,
				Recorded: r.Recorded.String(), Got: r.Got.String(), DurationMS: float64(r.Duration.Microseconds()) / 1000})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	verdict := "VERIFIED"
	switch {
	case rep.Mismatches > 0:
		verdict = "MISMATCH"
	case rep.Unverifiable > 0:
		verdict = "NOT VERIFIED"
	case rep.Verified == 0:
		verdict = "NOTHING CHECKED"
	}
	fmt.Fprintf(w, "verify run %s: %s (%d verified, %d mismatched, %d unverifiable", rep.RunID, verdict, rep.Verified, rep.Mismatches, rep.Unverifiable)
	if sampled {
		fmt.Fprintf(w, ", %d not sampled; seed %d, --seed %d picks the same", rep.NotSampled, rep.Seed, rep.Seed)
	}
	fmt.Fprintln(w, ")")
	if !rep.PipelineDigest.IsZero() {
		fmt.Fprintf(w, "pipeline %s\n", rep.PipelineDigest)
	}
	// Every record when they are few; else the ones that did not verify.
	all := len(rep.Results)-rep.NotSampled <= verifyRows
	var rows [][]string
	left := 0
	for _, r := range rep.Results {
		if r.Status == pirn.NotSampled || (!all && r.Status == pirn.Verified) {
			continue
		}
		if len(rows) == verifyRows {
			left++
			continue
		}
		status := string(r.Status)
		if r.Status == pirn.Mismatch {
			status = "MISMATCH"
		}
		detail := r.Reason
		if r.Status == pirn.Verified {
			detail = short(r.Recorded)
		}
		rows = append(rows, []string{r.KnotID, status, duration(r.Duration), clip(detail, 200)})
	}
	if len(rows) > 0 {
		fmt.Fprintf(w, "\n%s", table([]string{"knot", "status", "duration", "output / reason"}, rows))
	}
	if left > 0 {
		fmt.Fprintf(w, "… and %d more (--json lists every record)\n", left)
	}
	return nil
}
