package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/internal/fileread"
	"github.com/pirn-wasm/pirn/pipeline"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "check a knot module and print its manifest",
		ArgsUsage: "MODULE.wasm",
		Flags:     []cli.Flag{jsonFlag, abiFlag, formatFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErr("inspect takes one module file, got %d arguments", c.NArg())
			}
			path := c.Args().First()
			b, err := fileread.Read(path, "module", host.MaxModuleBytes)
			if err != nil {
				return inputErr(err)
			}
			eng, err := engine(c, pirn.Config{}, false)
			if err != nil {
				return err
			}
			defer eng.Close(context.Background())
			m, err := eng.LoadModuleBytesWith(c.Context, filepath.Base(path), b, loadOptions(c))
			if err != nil {
				return inputErr(err)
			}
			man := m.Manifest()
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"module": path, "digest": cas.Sum(b).String(), "size": len(b), "abi": m.ABI(), "format": m.Format(), "manifest": man})
			}
			w := c.App.Writer
			fmt.Fprintf(w, "module %s\n  digest %s\n  size   %d bytes\n  abi    %s (manifest version %d)\n", path, cas.Sum(b), len(b), m.ABI(), man.ABI)
			if f := m.Format(); f != "" {
				fmt.Fprintf(w, "  format %s\n", f)
			}
			if man.Name != "" {
				fmt.Fprintf(w, "  name   %s\n", man.Name)
			}
			for _, k := range man.Knots {
				var ins []string
				for _, in := range k.Inputs {
					opt := ""
					if in.Optional {
						opt = "?"
					}
					ins = append(ins, fmt.Sprintf("%s%s: %s", in.Name, opt, in.Type))
				}
				if k.Rest != "" {
					ins = append(ins, "**: "+k.Rest)
				}
				fmt.Fprintf(w, "\nknot %s(%s) -> %s\n", k.Name, strings.Join(ins, ", "), k.Output)
				if k.Doc != "" {
					fmt.Fprintf(w, "  %s\n", k.Doc)
				}
				for _, in := range k.Inputs {
					if in.Doc != "" {
						fmt.Fprintf(w, "  %s: %s\n", in.Name, in.Doc)
					}
				}
			}
			return nil
		},
	}
}

func lockCommand() *cli.Command {
	return &cli.Command{
		Name:      "lock",
		Usage:     "pin the digests of a pipeline's modules in its lock file",
		ArgsUsage: "PIPELINE",
		Description: `Checks every module the pipeline declares and writes PIPELINE's lock
file (the same name ending in .lock) with each module's sha256. pirn run
refuses a module whose bytes no longer match.`,
		Flags: []cli.Flag{jsonFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErr("lock takes one pipeline file, got %d arguments", c.NArg())
			}
			eng, err := engine(c, pirn.Config{}, false)
			if err != nil {
				return err
			}
			defer eng.Close(context.Background())
			lock, err := eng.Lock(c.Context, c.Args().First())
			if err != nil {
				return inputErr(err)
			}
			if c.Bool("json") {
				type entry struct {
					Module string `json:"module"`
					Digest string `json:"digest"`
					Path   string `json:"path"`
				}
				entries := []entry{}
				for _, e := range lock.Entries {
					entries = append(entries, entry{e.Module, e.Digest.String(), e.Path})
				}
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"lock_file": pipeline.LockPath(c.Args().First()), "modules": entries})
			}
			for _, e := range lock.Entries {
				fmt.Fprintf(c.App.Writer, "%s %s %s\n", e.Module, e.Digest, e.Path)
			}
			return nil
		},
	}
}
