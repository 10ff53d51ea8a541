package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/pipeline"
)

// plural writes n and noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "validate a pipeline or a bundle without running it",
		ArgsUsage: "PIPELINE | BUNDLE | oci://HOST/REPOSITORY:TAG | sha256:DIGEST",
		Description: `Reports every problem that would stop the pipeline from running
(YAML and schema errors, missing, unpinned or mismatched modules, unknown
knots, missing and unknown inputs, cycles, type mismatches between connected
knots, expressions that do not compile, nodes that contribute to none of the
declared outputs) and warnings (edges whose types may not convert, unused
parameters), each with its file and line. For a bundle (or a pipeline the
data store keeps, by its sha256:… digest) it also prints its digest, its
signer (verified with --trust) and every capability it grants. Exit status
1 if there are errors (or, with --strict, warnings).`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "strict", Usage: "treat warnings as errors"},
			&cli.BoolFlag{Name: "unpinned", Usage: "allow modules the lock file does not pin (each is a warning)"},
			digestFlag, trustFlag, insecureRegistryFlag, registryTimeoutFlag, stateFlag, jsonFlag,
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErr("check takes one pipeline file, got %d arguments", c.NArg())
			}
			path := c.Args().First()
			isBundle := pirn.IsBundle(path)
			if _, err := registryOptions(c, path); err != nil {
				return err
			}
			if !isBundle && (c.IsSet("digest") || c.IsSet("trust")) {
				return usageErr("--digest and --trust apply to a bundle; %s is a pipeline", path)
			}
			// A pipeline the data store keeps is read from it; nothing
			// else is: checking records nothing.
			stored := strings.HasPrefix(path, "sha256:")
			eng, err := engine(c, pirn.Config{AllowUnpinned: c.Bool("unpinned")}, stored)
			if err != nil {
				return err
			}
			defer eng.Close(context.Background())
			var errs, warnings pipeline.Errors
			var about []string // what a bundle is
			if isBundle {
				opts, err := bundleOptions(c, path)
				if err != nil {
					return err
				}
				opts.AllowGrants = true // shown, not run
				p, err := eng.LoadBundle(c.Context, path, opts)
				if !errors.As(err, &errs) && err != nil {
					return inputErr(err)
				}
				if p != nil {
					about = describeBundle(p)
				}
			} else if errs, warnings, err = eng.Check(c.Context, path); err != nil {
				return inputErr(err)
			}
			w := c.App.Writer
			failed := len(errs) > 0 || (c.Bool("strict") && len(warnings) > 0)
			if c.Bool("json") {
				type problem struct {
					File    string `json:"file"`
					Line    int    `json:"line,omitempty"`
					Message string `json:"message"`
				}
				list := func(es pipeline.Errors) []problem {
					out := []problem{}
					for _, e := range es {
						out = append(out, problem{e.File, e.Line, e.Msg})
					}
					return out
				}
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				report := map[string]any{"pipeline": path, "ok": !failed, "errors": list(errs), "warnings": list(warnings)}
				if about != nil {
					report["bundle"] = about
				}
				if err := enc.Encode(report); err != nil {
					return err
				}
				if failed {
					return &exitError{code: exitFailed, err: errors.New("")}
				}
				return nil
			}
			print := func(kind string, es pipeline.Errors) {
				for _, e := range es {
					msg := strings.ReplaceAll(e.Msg, "\n", "\n    ")
					if e.Line > 0 {
						fmt.Fprintf(w, "%s:%d: %s: %s\n", e.File, e.Line, kind, msg)
					} else {
						fmt.Fprintf(w, "%s: %s: %s\n", e.File, kind, msg)
					}
				}
			}
			for _, line := range about {
				fmt.Fprintf(w, "%s: %s\n", path, line)
			}
			print("error", errs)
			print("warning", warnings)
			if len(errs) == 0 && len(warnings) == 0 {
				fmt.Fprintf(w, "%s: ok, no issues found\n", path)
			}
			if failed {
				return &exitError{code: exitFailed, err: fmt.Errorf("%s, %s", plural(len(errs), "error"), plural(len(warnings), "warning"))}
			}
			return nil
		},
	}
}
