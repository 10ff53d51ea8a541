package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/bundle"
	"github.com/pirn-wasm/pirn/internal/fileread"
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
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "the bundle `file` (default: the pipeline's name + .pirn)"},
			&cli.StringFlag{Name: "sign", Usage: "sign the bundle with this ed25519 private `key` (made by pirn keygen)"},
			jsonFlag,
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErr("bundle takes one pipeline file, got %d arguments", c.NArg())
			}
			eng, err := engine(c, pirn.Config{}, false)
			if err != nil {
				return err
			}
			defer eng.Close(context.Background())
			var opts pirn.BundleOptions
			if k := c.String("sign"); k != "" {
				b, err := fileread.Read(k, "key", 1<<16)
				if err != nil {
					return inputErr(err)
				}
				if opts.SignWith, err = bundle.ParsePrivateKey(b); err != nil {
					return inputErr(fmt.Errorf("--sign %s: %w", k, err))
				}
			}
			var buf bytes.Buffer
			if err := eng.Bundle(c.Context, c.Args().First(), &buf, opts); err != nil {
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
			if err := writeFile(out, buf.Bytes()); err != nil {
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

func keygenCommand() *cli.Command {
	return &cli.Command{
		Name:      "keygen",
		Usage:     "make an ed25519 key pair for signing bundles",
		ArgsUsage: "NAME",
		Description: `Writes NAME (the private key, readable by its owner only) and NAME.pub (the
public key), both PEM. pirn bundle --sign NAME signs a bundle; pirn run
--trust NAME.pub runs only bundles that key signed.`,
		Flags: []cli.Flag{jsonFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErr("keygen takes the name of the key files to write, got %d arguments", c.NArg())
			}
			name := c.Args().First()
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			pb, err := bundle.MarshalPrivateKey(priv)
			if err != nil {
				return err
			}
			kb, err := bundle.MarshalPublicKey(pub)
			if err != nil {
				return err
			}
			// O_EXCL: never overwrite a key.
			for _, f := range []struct {
				path string
				b    []byte
				mode os.FileMode
			}{{name, pb, 0o600}, {name + ".pub", kb, 0o644}} {
				out, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
				if err != nil {
					return inputErr(err)
				}
				if _, err := out.Write(f.b); err != nil {
					out.Close()
					return err
				}
				if err := out.Close(); err != nil {
					return err
				}
			}
			if c.Bool("json") {
				return writeJSON(c, map[string]any{"private_key": name, "public_key": name + ".pub", "key_id": bundle.KeyID(pub)})
			}
			fmt.Fprintf(c.App.Writer, "%s (private) and %s.pub (public), key %s\n", name, name, bundle.KeyID(pub))
			return nil
		},
	}
}

// The flags that say which bundles an operator accepts (run, check).
var (
	digestFlag = &cli.StringFlag{Name: "digest", Usage: "accept the bundle only if it is this `sha256:…`"}
	trustFlag  = &cli.StringSliceFlag{Name: "trust", Usage: "accept the bundle only if this ed25519 public `key` (PEM, from pirn keygen) signed it (repeatable: any of them)"}
)

// bundleOptions reads --digest, --trust, and for a bundle in a registry
// --insecure-registry and --registry-timeout.
func bundleOptions(c *cli.Context, path string) (pirn.LoadBundleOptions, error) {
	opts := pirn.LoadBundleOptions{Digest: c.String("digest")}
	var err error
	if opts.Registry, err = registryOptions(c, path); err != nil {
		return opts, err
	}
	for _, k := range c.StringSlice("trust") {
		b, err := fileread.Read(k, "key", 1<<16)
		if err != nil {
			return opts, inputErr(err)
		}
		key, err := bundle.ParsePublicKey(b)
		if err != nil {
			return opts, inputErr(fmt.Errorf("--trust %s: %w", k, err))
		}
		opts.Trust = append(opts.Trust, key)
	}
	return opts, nil
}

// describeBundle says, a line each, what a bundle is, who signed it and
// what it grants.
func describeBundle(p *pirn.Pipeline) []string {
	b := p.Bundle
	lines := []string{fmt.Sprintf("bundle %s: pipeline %q, %s", b.Digest, p.Spec.Name, plural(b.Modules, "module"))}
	if b.Reference != "" {
		lines = append(lines, "from "+b.Reference)
	}
	switch {
	case !b.Signed:
		lines = append(lines, "not signed")
	case b.Verified:
		lines = append(lines, "signed by trusted key "+bundle.KeyID(b.Signer))
	default:
		lines = append(lines, "signed by key "+bundle.KeyID(b.Signer)+", not verified: pass --trust KEY to require a key you trust")
	}
	grants := p.Grants()
	if len(grants) == 0 {
		return append(lines, "grants its knots nothing")
	}
	for _, g := range grants {
		lines = append(lines, "grants "+g)
	}
	return lines
}
