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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/backends"
	"github.com/pirn-wasm/pirn/dispatch"
	"github.com/pirn-wasm/pirn/internal/suggest"
)

// exitError carries an exit status out of a command.
type exitError struct {
	code int
	err  error
	// hint, for a mistake in the command line, points at the help of
	// the command that was run.
	hint bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Exit statuses.
const (
	exitFailed = 1 // the run had failed knots, or was cancelled
	exitUsage  = 2 // bad arguments, pipeline or module
	// exitInterrupted is the status when pirn gives up waiting for a run
	// to stop after a signal (128 + SIGINT, as a shell reports it).
	exitInterrupted = 130
)

// usageErr is a mistake in the command line: exit status 2, and a hint
// to the command's help.
func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...), hint: true}
}

// inputErr is a bad pipeline, module or other input named on the command
// line: exit status 2.
func inputErr(err error) error { return &exitError{code: exitUsage, err: err} }

// forceAfter is how long pirn waits, after SIGINT or SIGTERM, for a
// cancelled run to finish recording before it exits anyway.
const forceAfter = 30 * time.Second

// graceAfterSignal is how long main waits after the first signal before
// it exits anyway: forceAfter, or more for pirn serve, whose runs may
// take its drain time to finish before they are cancelled.
var graceAfterSignal atomic.Int64

func init() { graceAfterSignal.Store(int64(forceAfter)) }

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
		fmt.Fprintln(os.Stderr, "pirn: stopping: runs in flight are cancelled (pirn run) or drained (serve, stream, worker) and recorded; signal again to exit at once")
		grace := time.Duration(graceAfterSignal.Load())
		time.Sleep(grace)
		fmt.Fprintf(os.Stderr, "pirn: still not finished %s after the signal: exiting\n", grace)
		os.Exit(exitInterrupted)
	}()
	stopProfile := cpuProfile(os.Getenv("PIRN_CPUPROFILE"))
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stopProfile()
	os.Exit(code)
}

// cpuProfile writes a CPU profile of the process to path, where "%p"
// stands for the process id (for a coordinator and its workers), until
// the returned function is called: PIRN_CPUPROFILE, for
// docs/performance.md. An empty path profiles nothing.
func cpuProfile(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(strings.ReplaceAll(path, "%p", strconv.Itoa(os.Getpid())))
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pirn: PIRN_CPUPROFILE: %v\n", err)
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// run is main without the process: it returns the exit status. Errors go
// to stderr as one line (and a hint to the help, for a mistake in the
// command line); with --json they are a JSON document instead, on stdout
// if the command printed nothing there, so that stdout always holds one
// JSON document.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	out := &countingWriter{w: terminalWriter{stdout}}
	stderr = terminalWriter{stderr}
	app := newApp(out, stderr)
	args = interspersed(app, args)
	cmd, err := commandOf(app, args)
	if err == nil {
		err = app.RunContext(ctx, args)
	}
	if err == nil {
		return 0
	}
	code, hint := exitUsage, false
	var ee *exitError
	if errors.As(err, &ee) {
		code, hint = ee.code, ee.hint
	}
	msg := err.Error()
	if msg == "" { // the command reported its own failure
		return code
	}
	help := "pirn --help"
	if cmd != "" {
		help = "pirn " + cmd + " --help"
	}
	if wantsJSON(args) {
		doc := map[string]any{"error": msg, "exit_code": code}
		if hint {
			doc["help"] = help
		}
		w := io.Writer(out)
		if out.n > 0 { // the command's own document is already there
			w = stderr
		}
		json.NewEncoder(w).Encode(doc)
		return code
	}
	fmt.Fprintln(stderr, "pirn:", msg)
	if hint {
		fmt.Fprintf(stderr, "pirn: see '%s'\n", help)
	}
	return code
}

// countingWriter counts what was written through it.
type countingWriter struct {
	w io.Writer
	n int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += n
	return n, err
}

// commandOf names the command args run ("runs show"; "" for none, or for
// the help), and refuses a name that is no command: urfave/cli would print
// "No help topic" and exit 0.
func commandOf(app *cli.App, args []string) (string, error) {
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return "", nil
		case strings.HasPrefix(a, "-"):
			if takesValue(app.Flags, a) {
				i++
			}
			continue
		}
		if a == "help" || a == "h" {
			return "", nil
		}
		cmd := find(app.Commands, a)
		if cmd == nil {
			var names []string
			for _, c := range app.Commands {
				names = append(names, c.Name)
			}
			return "", usageErr("unknown command %q (commands: %s)%s", a, strings.Join(names, ", "), suggest.DidYouMean(a, names))
		}
		if i+1 < len(args) {
			if sub := find(cmd.Subcommands, args[i+1]); sub != nil {
				return cmd.Name + " " + sub.Name, nil
			}
		}
		return cmd.Name, nil
	}
	return "", nil
}

// wantsJSON reports whether --json is among args.
func wantsJSON(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--json" || a == "-json" || a == "--json=true" || a == "-json=true" {
			return true
		}
	}
	return false
}

var (
	stateFlag = &cli.StringFlag{Name: "state", Value: ".pirn", Usage: "state directory: run history and data store", EnvVars: []string{"PIRN_STATE"}}
	jsonFlag  = &cli.BoolFlag{Name: "json", Usage: "print JSON"}
)

func newApp(stdout, stderr io.Writer) *cli.App {
	registerTypes()
	app := &cli.App{
		Name:      "pirn",
		Usage:     "run pipelines of WebAssembly knots with content-addressed lineage",
		Version:   version(),
		Writer:    stdout,
		ErrWriter: stderr,
		// -p values are YAML: "xs=[1,2,3]" must not be split at its commas.
		DisableSliceFlagSeparator: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "warn", Usage: "debug, info, warn or error (guest output is info, guest stderr warn)"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json"},
			redactFlag,
			cacheSaltFlag,
			&cli.StringFlag{Name: "cache-dir", Usage: "compiled-module cache (default: the user cache dir; - disables)", EnvVars: []string{"PIRN_CACHE_DIR"}},
			&cli.StringFlag{Name: "history", Usage: "run history URL: sqlite:PATH, duckdb:PATH (a pirn built with -tags duckdb), postgres://…?schema=… or memory: (default: sqlite: in the --state directory)", EnvVars: []string{"PIRN_HISTORY"}},
			&cli.StringFlag{Name: "store", Usage: "data store URL: file:DIR, valkey://host:port/db, s3://bucket/prefix?region=…&endpoint=…, postgres://… or memory: (default: file: in the --state directory)", EnvVars: []string{"PIRN_STORE"}},
		},
		Commands: []*cli.Command{runCommand(), checkCommand(), lockCommand(), graphCommand(), inspectCommand(), conformanceCommand(), bundleCommand(), pushCommand(), pullCommand(), keygenCommand(), runsCommand(), lineageCommand(), historyCommand(), gcCommand(), serveCommand(), streamCommand(), workerCommand(), workersCommand(), resumeCommand(), replayCommand(), verifyCommand(), viewCommand(), exploreCommand(), uiCommand(), diffCommand(), cacheCommand()},
		ExitErrHandler: func(*cli.Context, error) {
			// Errors are printed by run, which also picks the status.
		},
		// A bad flag is one line and a hint, not the whole help on
		// stdout.
		OnUsageError: onUsageError,
	}
	var setUsage func(cmds []*cli.Command)
	setUsage = func(cmds []*cli.Command) {
		for _, c := range cmds {
			c.OnUsageError = onUsageError
			setUsage(c.Subcommands)
		}
	}
	setUsage(app.Commands)
	return app
}

func onUsageError(_ *cli.Context, err error, _ bool) error { return usageErr("%v", err) }

// version describes this build: the module's version (or its VCS revision)
// and the ABI and Go versions.
func version() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && v == "(devel)" {
				v = s.Value[:min(12, len(s.Value))]
			}
		}
	}
	return fmt.Sprintf("%s (knot ABI v%d, %s %s/%s)", v, abi.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func logger(c *cli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, usageErr("--log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch c.String("log-format") {
	case "text":
		h = slog.NewTextHandler(c.App.ErrWriter, opts)
	case "json":
		h = slog.NewJSONHandler(c.App.ErrWriter, opts)
	default:
		return nil, usageErr("--log-format: want text or json, got %q", c.String("log-format"))
	}
	r, err := redactor(c)
	if err != nil {
		return nil, err
	}
	return slog.New(r.Handler(h)), nil
}

// state is the run history and data store a command records to or reads.
type state struct {
	History backends.History
	Store   backends.Store
}

// Close closes the history and the store.
func (st *state) Close() error { return errors.Join(st.History.Close(), st.Store.Close()) }

// openState opens the history and store that --history and --store name,
// or by default the SQLite history and the disk store of the --state
// directory. A command that only reads (mustExist) refuses a state
// directory with no history rather than creating one.
func openState(c *cli.Context, mustExist bool) (*state, error) {
	dir := c.String("state")
	hist, store := c.String("history"), c.String("store")
	if hist == "" {
		path := filepath.Join(dir, "history.db")
		if mustExist {
			if _, err := os.Stat(path); err != nil {
				if _, derr := os.Stat(dir); derr != nil {
					return nil, inputErr(fmt.Errorf("no run history: the state directory %s does not exist (pirn run records runs there; --state DIR or $PIRN_STATE names another, --history URL another history)", dir))
				}
				return nil, inputErr(fmt.Errorf("no run history in %s (it has no history.db; pirn run records runs there)", dir))
			}
		}
		hist = "sqlite:" + path
	}
	if store == "" {
		store = "file:" + filepath.Join(dir, "data")
	}
	h, err := backends.OpenHistory(c.Context, hist)
	if err != nil {
		return nil, inputErr(err)
	}
	s, err := backends.OpenStore(c.Context, store)
	if err != nil {
		h.Close()
		return nil, inputErr(err)
	}
	return &state{History: h, Store: s}, nil
}

// session is a command's engine and the state it records to (none for a
// command that keeps everything in memory).
type session struct {
	*pirn.Engine
	state *state
	// With --dispatch: the broker, and the coordinator that is the
	// engine's Remote.
	broker *dispatch.Broker
	coord  *dispatch.Coordinator
}

// Close closes the engine, then the state.
func (s *session) Close(ctx context.Context) error {
	err := s.Engine.Close(ctx)
	if s.broker != nil {
		s.broker.Close()
	}
	if s.state != nil {
		err = errors.Join(err, s.state.Close())
	}
	return err
}

// engine opens an engine for a command: in memory, or recording to the
// command's state (openState) if persist.
func engine(c *cli.Context, cfg pirn.Config, persist bool) (*session, error) {
	lg, err := logger(c)
	if err != nil {
		return nil, err
	}
	cfg.Logger = lg
	cfg.Redactor, _ = redactor(c) // made by logger
	cfg.CacheDir = c.String("cache-dir")
	cfg.CacheSalt = c.String("cache-salt")
	s := &session{}
	if persist {
		if s.state, err = openState(c, false); err != nil {
			return nil, err
		}
		cfg.Store, cfg.History = s.state.Store, s.state.History
	}
	if hasFlag(c.Command.Flags, "dispatch") && c.String("dispatch") != "" {
		if !persist {
			s.state.Close()
			return nil, usageErr("--dispatch needs a data store the workers share: drop --memory")
		}
		if s.broker, s.coord, err = coordinator(c, s.state.Store); err != nil {
			s.state.Close()
			return nil, err
		}
		cfg.Remote = s.coord
		if c.Command.Name == "resume" {
			cfg.Remote = s.coord.Resuming()
		}
	}
	if s.Engine, err = pirn.Open(c.Context, cfg); err != nil {
		if s.broker != nil {
			s.broker.Close()
		}
		if s.state != nil {
			s.state.Close()
		}
		return nil, inputErr(err)
	}
	return s, nil
}
