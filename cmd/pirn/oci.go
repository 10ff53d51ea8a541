package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn/bundle"
	"github.com/pirn-wasm/pirn/bundle/oci"
	"github.com/pirn-wasm/pirn/internal/fileread"
)

// The flags that say how to reach a registry (push, pull, and run and
// check of an oci:// reference).
var (
	insecureRegistryFlag = &cli.BoolFlag{Name: "insecure-registry", Usage: "allow plain HTTP to the registry (without it, only a registry on localhost or 127.0.0.0/8 is spoken to without TLS)"}
	registryTimeoutFlag  = &cli.DurationFlag{Name: "registry-timeout", Value: oci.DefaultTimeout, Usage: "the longest a push or pull may take"}
)

// registryOptions reads --insecure-registry and --registry-timeout; they
// apply only to an oci:// reference.
func registryOptions(c *cli.Context, path string) (oci.Options, error) {
	if !oci.IsRef(path) && (c.IsSet(insecureRegistryFlag.Name) || c.IsSet(registryTimeoutFlag.Name)) {
		return oci.Options{}, usageErr("--insecure-registry and --registry-timeout apply to an oci:// reference; %s is a file", path)
	}
	if c.Duration(registryTimeoutFlag.Name) <= 0 {
		return oci.Options{}, usageErr("--registry-timeout must be positive, got %s", c.Duration(registryTimeoutFlag.Name))
	}
	return oci.Options{Insecure: c.Bool(insecureRegistryFlag.Name), Timeout: c.Duration(registryTimeoutFlag.Name)}, nil
}

func pushCommand() *cli.Command {
	return &cli.Command{
		Name:      "push",
		Usage:     "push a bundle to an OCI registry",
		ArgsUsage: "BUNDLE oci://HOST/REPOSITORY:TAG",
		Description: `Puts the bundle (made by pirn bundle) into the registry: its pipeline and
modules as blobs, its manifest, and its index, unchanged, under the tag, so
that a signature travels with it. Prints the reference with the registry's
digest of the bundle (oci://HOST/REPOSITORY:TAG@sha256:…), which pirn run,
pirn check and pirn pull accept as they accept the tag; --digest accepts
that digest or the bundle file's. Credentials come from the Docker
configuration (docker login) and its credential helpers.`,
		Flags: []cli.Flag{insecureRegistryFlag, registryTimeoutFlag, jsonFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 || !oci.IsRef(c.Args().Get(1)) {
				return usageErr("push takes a bundle file and an oci://HOST/REPOSITORY:TAG reference, got %q", c.Args().Slice())
			}
			path, ref := c.Args().Get(0), c.Args().Get(1)
			opts, err := registryOptions(c, ref)
			if err != nil {
				return err
			}
			b, err := fileread.Read(path, "bundle", bundle.MaxFileBytes)
			if err != nil {
				return inputErr(err)
			}
			pushed, err := oci.Push(c.Context, ref, b, opts)
			if err != nil {
				return inputErr(err)
			}
			if c.Bool("json") {
				return writeJSON(c, map[string]any{"reference": pushed.Reference, "digest": pushed.Digest, "bundle_digest": bundle.Digest(b), "bytes": len(b)})
			}
			fmt.Fprintln(c.App.Writer, pushed.Reference)
			return nil
		},
	}
}

func pullCommand() *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "pull a bundle from an OCI registry into a file",
		ArgsUsage: "oci://HOST/REPOSITORY:TAG | oci://HOST/REPOSITORY@sha256:…",
		Description: `Fetches the bundle and writes it to a file, byte for byte the file that
was pushed, after checking every part against its digest (as pirn run
checks a bundle file). pirn run and pirn check take the reference
directly, without a file.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "the bundle `file` (default: the pipeline's name + .pirn)"},
			insecureRegistryFlag, registryTimeoutFlag, jsonFlag,
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 || !oci.IsRef(c.Args().First()) {
				return usageErr("pull takes one oci://HOST/REPOSITORY:TAG reference, got %q", c.Args().Slice())
			}
			opts, err := registryOptions(c, c.Args().First())
			if err != nil {
				return err
			}
			p, err := oci.Pull(c.Context, c.Args().First(), opts)
			if err != nil {
				return inputErr(err)
			}
			out := c.String("output")
			if out == "" {
				// The name is the registry's to choose: it must not
				// name a file elsewhere.
				if !filepath.IsLocal(p.Name) || strings.ContainsAny(p.Name, `/\`) {
					return inputErr(fmt.Errorf("%s: the bundle's name %q is no file name: name the file with -o", c.Args().First(), p.Name))
				}
				out = p.Name + ".pirn"
			}
			if err := writeFile(out, p.File); err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(c, map[string]any{"bundle": out, "digest": bundle.Digest(p.File), "bytes": len(p.File), "reference": p.Reference})
			}
			fmt.Fprintf(c.App.Writer, "%s %s (%d bytes) from %s\n", out, bundle.Digest(p.File), len(p.File), p.Reference)
			return nil
		},
	}
}

// writeFile writes b to path beside it, then renames it: a reader never
// sees half a file.
func writeFile(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".bundle-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
