package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn/conformance"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/internal/fileread"
)

var (
	abiFlag    = &cli.StringFlag{Name: "abi", Value: string(host.ABIPirn), Usage: "how to run the module: pirn, extism or wasi-command"}
	formatFlag = &cli.StringFlag{Name: "format", Usage: "document encoding of an extism or wasi-command module: cbor or json (default: the module's own)"}
)

func loadOptions(c *cli.Context) host.LoadOptions {
	return host.LoadOptions{ABI: host.ABI(c.String("abi")), Format: host.Format(c.String("format"))}
}

func conformanceCommand() *cli.Command {
	return &cli.Command{
		Name:      "conformance",
		Usage:     "exercise knot modules against the ABI and print a pass/fail report",
		ArgsUsage: "MODULE.wasm...",
		Description: "Checks the handshake and manifest, then for each knot: sample inputs of its declared\n" +
			"types (no trap, ok values of the declared output type), an err for a missing and for a\n" +
			"mistyped input, determinism, and memory over repeated calls on one instance.\n" +
			"Exits 1 if any check fails; warnings do not fail.",
		Flags: []cli.Flag{abiFlag, formatFlag, jsonFlag,
			&cli.IntFlag{Name: "calls", Value: 2000, Usage: "repeated calls of the memory check"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usageErr("conformance takes one or more module files")
			}
			// Guest logs would drown the report: they are shown only if
			// asked for with --log-level.
			lg := slog.New(slog.DiscardHandler)
			if c.IsSet("log-level") {
				var err error
				if lg, err = logger(c); err != nil {
					return err
				}
			}
			h, err := host.New(host.Config{Logger: lg, CacheDir: c.String("cache-dir")})
			if err != nil {
				return err
			}
			defer h.Close(context.Background())
			opts := conformance.Options{Load: loadOptions(c), Calls: c.Int("calls")}
			var reports []*conformance.Report
			failed := 0
			for _, path := range c.Args().Slice() {
				b, err := fileread.Read(path, "module", host.MaxModuleBytes)
				if err != nil {
					return inputErr(err)
				}
				r := conformance.Run(c.Context, h, path, b, opts)
				reports = append(reports, r)
				if !r.OK() {
					failed++
				}
				if !c.Bool("json") {
					printReport(c, r)
				}
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				if err := enc.Encode(reports); err != nil {
					return err
				}
			}
			if failed > 0 {
				return &exitError{code: exitFailed, err: fmt.Errorf("%d of %d modules failed conformance", failed, len(reports))}
			}
			return nil
		},
	}
}

func printReport(c *cli.Context, r *conformance.Report) {
	w := c.App.Writer
	fmt.Fprintf(w, "module %s (%s, abi %s)\n", filepath.ToSlash(r.Module), r.Digest, r.ABI)
	knot := ""
	for _, ch := range r.Checks {
		indent := "  "
		if ch.Knot != "" {
			if ch.Knot != knot {
				fmt.Fprintf(w, "  knot %s\n", ch.Knot)
				knot = ch.Knot
			}
			indent = "    "
		}
		fmt.Fprintf(w, "%s%-4s %-15s %s\n", indent, strings.ToUpper(string(ch.Status)), ch.Name, ch.Detail)
	}
	verdict := "PASS"
	if !r.OK() {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "%s: %d passed, %d warnings, %d failed, %d skipped\n\n", verdict, r.Count(conformance.Pass), r.Count(conformance.Warn), r.Count(conformance.Fail), r.Count(conformance.Skip))
}
