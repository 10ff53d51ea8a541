package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/dispatch"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/lineage"
)

// natsFlags say how to reach NATS; run, resume, worker and workers take
// them.
func natsFlags(urlFlag string, required bool) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: urlFlag, Usage: "the NATS server with JetStream: `nats://host:port` (tls://… for TLS; user:password@ is allowed and never printed)", EnvVars: []string{"PIRN_NATS"}, Required: required},
		&cli.StringFlag{Name: "nats-creds", Usage: "a NATS credentials `file` (user JWT and nkey seed)", EnvVars: []string{"PIRN_NATS_CREDS"}},
		&cli.StringFlag{Name: "nats-nkey", Usage: "a `file` holding a NATS user nkey seed", EnvVars: []string{"PIRN_NATS_NKEY"}},
		&cli.StringFlag{Name: "nats-user", Usage: "NATS user name", EnvVars: []string{"PIRN_NATS_USER"}},
		&cli.StringFlag{Name: "nats-password", Usage: "NATS password (better from $PIRN_NATS_PASSWORD)", EnvVars: []string{"PIRN_NATS_PASSWORD"}},
		&cli.StringFlag{Name: "nats-token", Usage: "NATS token (better from $PIRN_NATS_TOKEN)", EnvVars: []string{"PIRN_NATS_TOKEN"}},
		&cli.StringFlag{Name: "nats-ca", Usage: "PEM `file` of the authorities that sign the server's certificate (turns TLS on)"},
		&cli.StringFlag{Name: "nats-cert", Usage: "client certificate PEM `file`, for servers that require one"},
		&cli.StringFlag{Name: "nats-key", Usage: "client key PEM `file`"},
		&cli.StringFlag{Name: "nats-prefix", Value: dispatch.DefaultPrefix, Usage: "prefix of pirn's subjects, streams and buckets (coordinators and workers must agree)"},
		&cli.StringFlag{Name: "pool", Value: dispatch.DefaultPool, Usage: "the worker `pool` that runs the jobs"},
	}
}

// brokerConfig reads the NATS flags.
func brokerConfig(c *cli.Context, urlFlag string) (dispatch.Config, error) {
	lg, err := logger(c)
	if err != nil {
		return dispatch.Config{}, err
	}
	cfg := dispatch.Config{URL: c.String(urlFlag), Creds: c.String("nats-creds"), NKey: c.String("nats-nkey"),
		User: c.String("nats-user"), Password: c.String("nats-password"), Token: c.String("nats-token"),
		CA: c.String("nats-ca"), Cert: c.String("nats-cert"), Key: c.String("nats-key"), Prefix: c.String("nats-prefix"), Logger: lg}
	if c.IsSet("ack-wait") {
		cfg.AckWait = c.Duration("ack-wait")
	}
	if c.IsSet("max-deliver") {
		cfg.MaxDeliver = c.Int("max-deliver")
	}
	if !dispatch.ValidName(c.String("pool")) {
		return cfg, usageErr("--pool %q is invalid (1 to 64 of A-Z a-z 0-9 _ -)", c.String("pool"))
	}
	return cfg, nil
}

// connect connects to the broker the flags name.
func connect(c *cli.Context, urlFlag string) (*dispatch.Broker, error) {
	cfg, err := brokerConfig(c, urlFlag)
	if err != nil {
		return nil, err
	}
	b, err := dispatch.Connect(c.Context, cfg)
	if err != nil {
		return nil, inputErr(err)
	}
	return b, nil
}

// coordinator connects to the broker of --dispatch and returns a
// coordinator for runs whose values are in store.
func coordinator(c *cli.Context, store cas.Store) (*dispatch.Broker, *dispatch.Coordinator, error) {
	b, err := connect(c, "dispatch")
	if err != nil {
		return nil, nil, err
	}
	lg, _ := logger(c)
	coord, err := dispatch.NewCoordinator(b, store, dispatch.CoordinatorConfig{Pool: c.String("pool"), WorkerWait: c.Duration("worker-wait"), Logger: lg})
	if err != nil {
		b.Close()
		return nil, nil, inputErr(err)
	}
	return b, coord, nil
}

var workerWaitFlag = &cli.DurationFlag{Name: "worker-wait", Value: time.Minute, Usage: "with --dispatch: how long jobs wait while no worker of the pool is alive before they fail"}

func workerCommand() *cli.Command {
	return &cli.Command{
		Name:  "worker",
		Usage: "run knots for pirn run --dispatch: pull jobs from NATS, run them, publish the results",
		Description: `Runs until SIGINT or SIGTERM, taking jobs of its pool from the NATS
JetStream work queue, only as many as it has free slots. Each job names its
module and inputs by digest: the worker reads them from the data store
(--store, which the coordinator must share), checks them against their
digests, runs the knot with the limits and grants the pipeline gave it, puts
the output in the store and publishes the result, then acks the job. While a
knot runs the worker tells the broker it is alive every third of --ack-wait;
a worker that dies loses nothing: its job goes to another worker after the
ack wait. A worker runs no knot that has grants unless --allow-grants.

On SIGINT or SIGTERM it stops taking jobs, lets those in flight finish for
up to --drain, and hands the rest back.`,
		Flags: append(natsFlags("nats", true),
			&cli.IntFlag{Name: "slots", Usage: "jobs run at once (default: the number of CPUs)"},
			&cli.BoolFlag{Name: "allow-grants", Usage: "run knots that have grants (files, environment, clock, randomness, HTTP); none by default"},
			&cli.DurationFlag{Name: "ack-wait", Value: dispatch.DefaultAckWait, Usage: "how long a job may go without a heartbeat before another worker gets it (sets the pool's consumer)"},
			&cli.IntFlag{Name: "max-deliver", Value: dispatch.DefaultMaxDeliver, Usage: "deliveries of a job before it ends as an err (sets the pool's consumer)"},
			&cli.DurationFlag{Name: "drain", Value: 20 * time.Second, Usage: "on a signal, how long jobs in flight may finish"},
			&cli.StringFlag{Name: "id", Usage: "the worker's name in pirn workers (default: host-pid-random)"},
			stateFlag,
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usageErr("worker takes no arguments")
			}
			lg, err := logger(c)
			if err != nil {
				return err
			}
			st, err := openState(c, false)
			if err != nil {
				return err
			}
			defer st.Close()
			b, err := connect(c, "nats")
			if err != nil {
				return err
			}
			defer b.Close()
			h, err := host.New(host.Config{CacheDir: c.String("cache-dir"), Logger: lg})
			if err != nil {
				return inputErr(err)
			}
			defer h.Close(context.Background())
			w, err := dispatch.NewWorker(b, st.Store, dispatch.NewModules(h, st.Store), dispatch.WorkerConfig{Pool: c.String("pool"),
				Slots: c.Int("slots"), AllowGrants: c.Bool("allow-grants"), ID: c.String("id"), Drain: c.Duration("drain"), Logger: lg})
			if err != nil {
				return usageErr("%v", err)
			}
			fmt.Fprintf(c.App.ErrWriter, "pirn: worker %s of pool %s: taking jobs from %s\n", w.ID(), c.String("pool"), dispatch.Redact(c.String("nats")))
			if err := w.Run(c.Context); err != nil {
				return inputErr(err)
			}
			fmt.Fprintf(c.App.ErrWriter, "pirn: worker %s stopped\n", w.ID())
			return nil
		},
	}
}

func workersCommand() *cli.Command {
	return &cli.Command{
		Name:  "workers",
		Usage: "list live workers and each pool's queue",
		Flags: append(natsFlags("nats", true), jsonFlag),
		Action: func(c *cli.Context) error {
			b, err := connect(c, "nats")
			if err != nil {
				return err
			}
			defer b.Close()
			ws, err := b.Workers(c.Context)
			if err != nil {
				return inputErr(err)
			}
			pools, err := b.Pools(c.Context)
			if err != nil {
				return inputErr(err)
			}
			return printWorkers(c.App.Writer, ws, pools, c.Bool("json"))
		},
	}
}

func printWorkers(w io.Writer, ws []dispatch.WorkerInfo, pools []dispatch.PoolStats, asJSON bool) error {
	if asJSON {
		if ws == nil {
			ws = []dispatch.WorkerInfo{}
		}
		if pools == nil {
			pools = []dispatch.PoolStats{}
		}
		return json.NewEncoder(w).Encode(map[string]any{"workers": ws, "pools": pools})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tPOOL\tSLOTS\tBUSY\tDONE\tFAILED\tREDELIVERED\tGRANTS\tUP")
	for _, x := range ws {
		grants := "no"
		if x.AllowGrants {
			grants = "yes"
		}
		up := time.Since(time.Unix(0, x.Started)).Round(time.Second)
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", x.ID, x.Pool, x.Slots, x.Busy, x.Done, x.Failed, x.Redelivered, grants, up)
	}
	if len(ws) == 0 {
		fmt.Fprintln(tw, "(no live worker)")
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tQUEUED\tIN FLIGHT\tREDELIVERED\tACK WAIT\tMAX DELIVER")
	for _, p := range pools {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%v\t%d\n", p.Pool, p.Queued, p.InFlight, p.Redelivered, p.AckWait, p.MaxDeliver)
	}
	if len(pools) == 0 {
		fmt.Fprintln(tw, "(no pool has had a worker)")
	}
	return tw.Flush()
}

func resumeCommand() *cli.Command {
	return &cli.Command{
		Name:      "resume",
		Usage:     "finish a dispatched run whose pirn run was killed",
		ArgsUsage: "RUN_ID",
		Description: `Finishes a run that pirn run --dispatch started and did not end (its
process was killed, or lost its machine): it loads the run's pipeline from
the data store by digest and its parameters from the broker, and runs it
again under the same id. A knot whose result the workers already published
is not run again; the run is recorded as one, replacing its interrupted
record.`,
		Flags: append(natsFlags("dispatch", true), workerWaitFlag,
			&cli.BoolFlag{Name: "allow-grants", Usage: "let the pipeline grant its knots capabilities (as pirn run of a pipeline from the data store)"},
			stateFlag, jsonFlag),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErr("resume takes one run id, got %d arguments", c.NArg())
			}
			runID := c.Args().First()
			eng, err := engine(c, pirn.Config{}, true)
			if err != nil {
				return err
			}
			defer eng.Close(context.Background())
			rec, err := eng.broker.Run(c.Context, runID)
			if errors.Is(err, dispatch.ErrUnknownRun) {
				return inputErr(fmt.Errorf("run %s was not dispatched through this broker (or its record expired): nothing to resume", runID))
			}
			if err != nil {
				return inputErr(err)
			}
			if rec.State == dispatch.RunFinished {
				return inputErr(fmt.Errorf("run %s finished: nothing to resume (pirn runs show %s)", runID, runID))
			}
			if run, err := eng.History().Run(c.Context, runID); err == nil && run.Status != lineage.Running && run.Status != lineage.Interrupted {
				return inputErr(fmt.Errorf("run %s is recorded %s: nothing to resume", runID, run.Status))
			}
			p, err := eng.LoadBundle(c.Context, rec.Digest, pirn.LoadBundleOptions{AllowGrants: c.Bool("allow-grants")})
			if err != nil {
				return inputErr(fmt.Errorf("run %s: its pipeline %s: %w", runID, rec.Digest, err))
			}
			params := map[string]any{}
			if len(rec.Params) > 0 {
				if err := cas.Unmarshal(rec.Params, &params); err != nil {
					return inputErr(fmt.Errorf("run %s: its parameters: %w", runID, err))
				}
			}
			req := pirn.RunRequest{RunID: runID, Pipeline: rec.Pipeline, Params: params, Terminals: rec.Terminals, Replace: true}
			fmt.Fprintf(c.App.ErrWriter, "pirn: resuming run %s of pipeline %s\n", runID, rec.Digest)
			return runAndReport(c, eng, p, req)
		},
	}
}

// keepRun keeps a dispatched run's request on the broker, for pirn resume.
func keepRun(c *cli.Context, s *session, p *pirn.Pipeline, req pirn.RunRequest) error {
	params, err := cas.Encode(req.Params)
	if err != nil {
		return inputErr(fmt.Errorf("parameters: %w", err))
	}
	if err := s.coord.SaveRun(c.Context, dispatch.RunRecord{Run: req.RunID, Pipeline: req.Pipeline, Digest: p.Digest().String(),
		Params: params, Terminals: req.Terminals}); err != nil {
		return inputErr(err)
	}
	return nil
}
