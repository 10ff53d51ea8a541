// Command pirn runs pipelines of WebAssembly knots.
//
//	pirn run PIPELINE [-p name=value]... [--json]   run a pipeline
//	pirn lock PIPELINE                              pin its modules' digests
//	pirn inspect MODULE.wasm                        print a module's manifest
//	pirn runs [show RUN_ID]                         read the run history
//	pirn lineage --output|--input HASH | --knot ID  query lineage across runs
//
// State (the SQLite run history and the data store) lives in .pirn/ unless
// --state says otherwise.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn"
)

// exitError carries an exit status out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// Exit statuses.
const (
	exitFailed = 1 // the run had failed knots, or was cancelled
	exitUsage  = 2 // bad arguments, pipeline or module
	// exitInterrupted is the status when pirn gives up waiting for a run
	// to stop after a signal (128 + SIGINT, as a shell reports it).
	exitInterrupted = 130
)

func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// forceAfter is how long pirn waits, after SIGINT or SIGTERM, for a
// cancelled run to finish recording before it exits anyway.
const forceAfter = 30 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		// The first signal cancels the run, which ends its knots and
		// records it as cancelled. A second signal, with the default
		// action restored, ends the process at once; so does a run
		// that has not finished within forceAfter. Either way the next
		// pirn to open the state marks the run interrupted.
		stop()
		fmt.Fprintln(os.Stderr, "pirn: stopping: the run is cancelled and recorded (signal again to exit at once)")
		time.Sleep(forceAfter)
		fmt.Fprintf(os.Stderr, "pirn: still not finished %s after the signal: exiting\n", forceAfter)
		os.Exit(exitInterrupted)
	}()
	os.Exit(run(ctx, os.Args, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, interspersed(app, args))
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(stderr, "pirn:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "pirn:", err)
	return exitUsage
}

var (
	stateFlag = &cli.StringFlag{Name: "state", Value: ".pirn", Usage: "state directory: run history and data store", EnvVars: []string{"PIRN_STATE"}}
	jsonFlag  = &cli.BoolFlag{Name: "json", Usage: "print JSON"}
)

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:            "pirn",
		Usage:           "run pipelines of WebAssembly knots with content-addressed lineage",
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		// -p values are YAML: "xs=[1,2,3]" must not be split at its commas.
		DisableSliceFlagSeparator: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "warn", Usage: "debug, info, warn or error (guest output is info, guest stderr warn)"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json"},
			&cli.StringFlag{Name: "cache-dir", Usage: "compiled-module cache (default: the user cache dir; - disables)", EnvVars: []string{"PIRN_CACHE_DIR"}},
		},
		Commands: []*cli.Command{runCommand(), checkCommand(), lockCommand(), graphCommand(), inspectCommand(), conformanceCommand(), bundleCommand(), runsCommand(), lineageCommand()},
		ExitErrHandler: func(*cli.Context, error) {
			// Errors are printed by run, which also picks the status.
		},
	}
}

func logger(c *cli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, usageErr("--log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.String("log-format") {
	case "text":
		return slog.New(slog.NewTextHandler(c.App.ErrWriter, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(c.App.ErrWriter, opts)), nil
	}
	return nil, usageErr("--log-format: want text or json, got %q", c.String("log-format"))
}

// engine opens an engine for a command.
func engine(c *cli.Context, cfg pirn.Config) (*pirn.Engine, error) {
	lg, err := logger(c)
	if err != nil {
		return nil, err
	}
	cfg.Logger = lg
	cfg.CacheDir = c.String("cache-dir")
	if c.IsSet("state") || cfg.StateDir == "" {
		cfg.StateDir = c.String("state")
	}
	e, err := pirn.Open(c.Context, cfg)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	return e, nil
}
