package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/bundle"
)

func bundleCommand() *cli.Command {
	return &cli.Command{
		Name:      "bundle",
		Usage:     "pack a pipeline and its modules into one file",
		ArgsUsage: "PIPELINE",
		Description: `Writes the pipeline and every module it uses, each pinned by its lock file,
into one file laid out as an OCI image layout (a tar archive), which standard
OCI tools can push to a registry. pirn run BUNDLE runs it; a bundle whose
pipeline names a module it lacks, or whose bytes do not match their digests,
is refused before anything runs.`,
		Flags: []cli.Flag{&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "the bundle `file` (default: the pipeline's name + .pirn)"}, jsonFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErr("bundle takes one pipeline file, got %d arguments", c.NArg())
			}
			eng, err := engine(c, pirn.Config{InMemory: true})
			if err != nil {
				return err
			}
			defer eng.Close(context.Background())
			var buf bytes.Buffer
			if err := eng.Bundle(c.Context, c.Args().First(), &buf); err != nil {
				return inputErr(err)
			}
			out := c.String("output")
			if out == "" {
				cont, err := bundle.ReadBytes(buf.Bytes())
				if err != nil {
					return err
				}
				out = cont.Name + ".pirn"
			}
			// Write beside, then rename: a reader never sees half a bundle.
			tmp, err := os.CreateTemp(filepath.Dir(out), ".bundle-*")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name())
			if _, err := tmp.Write(buf.Bytes()); err != nil {
				tmp.Close()
				return err
			}
			if err := tmp.Close(); err != nil {
				return err
			}
			if err := os.Rename(tmp.Name(), out); err != nil {
				return err
			}
			if c.Bool("json") {
				return json.NewEncoder(c.App.Writer).Encode(map[string]any{"bundle": out, "digest": bundle.Digest(buf.Bytes()), "bytes": buf.Len()})
			}
			fmt.Fprintf(c.App.Writer, "%s %s (%d bytes)\n", out, bundle.Digest(buf.Bytes()), buf.Len())
			return nil
		},
	}
}
