package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/serve"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:      "serve",
		Usage:     "run pipelines from triggers (cron, webhooks…) as a service",
		ArgsUsage: "SERVE.yaml",
		Description: `Loads the pipelines serve.yaml names, starts its triggers, answers
/healthz and /readyz (and the webhooks) on its listen address, and runs
each request with the pipeline's bounded concurrency, recording every run
in the state directory (serve.yaml's state:, history: and store:, unless
the flags say otherwise). On SIGTERM or SIGINT it stops accepting, lets
the runs in flight finish for up to serve.yaml's drain, records the rest
as cancelled and exits 0. docs/serving.md is the reference of serve.yaml.
With --check it only checks serve.yaml and the pipelines it names.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "check", Usage: "check serve.yaml and load its pipelines, then exit"},
			stateFlag,
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErr("serve takes one serve.yaml, got %d arguments", c.NArg())
			}
			cfg, err := serve.Load(c.Args().First())
			if err != nil {
				return inputErr(err)
			}
			lg, err := logger(c)
			if err != nil {
				return err
			}
			if c.Bool("check") {
				eng, err := engine(c, pirn.Config{}, false)
				if err != nil {
					return err
				}
				defer eng.Close(context.Background())
				if _, err := serve.New(c.Context, eng.Engine, cfg, serve.Options{Logger: lg}); err != nil {
					return inputErr(err)
				}
				fmt.Fprintf(c.App.Writer, "%s: ok (%s, %s)\n", cfg.File, plural(len(cfg.Pipelines), "pipeline"), plural(len(cfg.Triggers), "trigger"))
				return nil
			}
			for flag, v := range map[string]string{"state": cfg.State, "history": cfg.History, "store": cfg.Store} {
				if v == "" || c.IsSet(flag) {
					continue
				}
				if flag == "state" && !filepath.IsAbs(v) {
					v = filepath.Join(cfg.Dir, v)
				}
				if err := c.Set(flag, v); err != nil {
					return usageErr("%s: %s: %v", cfg.File, flag, err)
				}
			}
			red, _ := redactor(c) // made by logger
			if err := red.AddSecrets(serveSecrets(cfg)...); err != nil {
				return inputErr(err)
			}
			eng, err := engine(c, pirn.Config{}, true)
			if err != nil {
				return err
			}
			defer eng.Close(context.Background())
			srv, err := serve.New(c.Context, eng.Engine, cfg, serve.Options{Logger: lg, Redact: red.String})
			if err != nil {
				return inputErr(err)
			}
			// The runs may take the drain time after a signal, and
			// then be recorded as cancelled.
			graceAfterSignal.Store(int64(cfg.Drain + forceAfter))
			done := make(chan error, 1)
			go func() { done <- srv.Run(c.Context) }()
			select {
			case <-srv.Ready():
				fmt.Fprintf(c.App.ErrWriter, "pirn: serving on %s (%s, %s; drain %s)\n", srv.Addr(),
					plural(len(cfg.Pipelines), "pipeline"), plural(len(cfg.Triggers), "trigger"), cfg.Drain)
			case err := <-done:
				return inputErr(err)
			}
			err = <-done
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "pirn: stopped at %s\n", time.Now().UTC().Format(time.RFC3339))
			return nil
		},
	}
}

// serveSecrets returns what a serve.yaml points at that must never be
// printed: the passwords of its history and store URLs and of every URL
// field of its entries, and the values of the environment variables its
// entries name in *_env fields (webhook secrets and tokens, emitters'
// keys, brokers' passwords).
func serveSecrets(cfg *serve.Config) []string {
	secrets := []string{urlPassword(cfg.History), urlPassword(cfg.Store)}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, val := range x {
				if name, ok := val.(string); ok && strings.HasSuffix(k, "_env") {
					secrets = append(secrets, os.Getenv(name))
				}
				walk(val)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case string:
			secrets = append(secrets, urlPassword(x))
		}
	}
	for _, list := range [][]serve.Entry{cfg.Triggers, cfg.Streams, cfg.Emitters} {
		for _, e := range list {
			walk(e.Fields)
		}
	}
	return secrets
}
