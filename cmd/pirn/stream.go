package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/serve"
)

func streamCommand() *cli.Command {
	return &cli.Command{
		Name:      "stream",
		Usage:     "run a pipeline once per value of a stream (a tailed file, JSON lines on stdin)",
		ArgsUsage: "PIPELINE",
		Description: `Reads values from a source and runs the pipeline once for each (or once
for each window of values, with --window-count and --window-time), with
the value as the parameter --param. It prints one line per run, in the
order of the values: the run id, its status and where its value came from.

Sources: --from stdin reads JSON lines (or text lines, --format text)
until standard input ends; --from file:PATH follows a file as tail -F
does (from its end, or --from-start; through rotation and truncation)
until pirn is stopped. --offset-file keeps the position after the last
recorded line, so that a restarted stream resumes there.

At most --max-in-flight values are read ahead of the runs that finished;
--concurrency runs go at once. Ctrl-C stops reading, waits up to --drain
for the runs in flight and exits. Exit status: 0 if every run succeeded,
1 if a run failed, was rejected (a value the parameter does not accept)
or was not recorded, 2 for a bad pipeline or argument.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Required: true, Usage: "the source: `stdin` or file:PATH"},
			&cli.StringFlag{Name: "param", Usage: "the parameter each value is passed as (default: the pipeline's only parameter)"},
			&cli.StringSliceFlag{Name: "p", Usage: "a static parameter, `name=value` (repeatable), as for pirn run"},
			&cli.IntFlag{Name: "window-count", Usage: "pass values in windows of up to `N` (the parameter receives a list)"},
			&cli.DurationFlag{Name: "window-time", Usage: "close a window this long after its first value"},
			&cli.IntFlag{Name: "concurrency", Value: 4, Usage: "runs at once"},
			&cli.IntFlag{Name: "max-in-flight", Usage: "values read and not yet recorded, at most (default: concurrency + 64)"},
			&cli.BoolFlag{Name: "from-start", Usage: "file: read the file from its start, not its end"},
			&cli.DurationFlag{Name: "poll", Value: serve.DefaultPoll, Usage: "file: how often to look for more lines"},
			&cli.StringFlag{Name: "offset-file", Usage: "file: keep the position after the last recorded line in this `file`, and resume there"},
			&cli.StringFlag{Name: "format", Value: "json", Usage: "json (each line is a JSON value) or text (each line is a string)"},
			&cli.IntFlag{Name: "max-line", Value: serve.DefaultMaxLine, Usage: "longest line in `bytes`; a longer one is skipped and logged"},
			&cli.DurationFlag{Name: "drain", Value: 20 * time.Second, Usage: "after Ctrl-C, how long to wait for the runs in flight"},
			&cli.IntFlag{Name: "workers", Usage: "knots run at once in each run (default: the number of CPUs)"},
			&cli.BoolFlag{Name: "unpinned", Usage: "allow modules the lock file does not pin (prints a warning)"},
			stateFlag, jsonFlag,
		},
		Action: streamAction,
	}
}

func streamAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageErr("stream takes one pipeline file, got %d arguments", c.NArg())
	}
	switch {
	case c.Int("concurrency") < 1:
		return usageErr("--concurrency %d: want at least 1", c.Int("concurrency"))
	case c.Int("window-count") < 0:
		return usageErr("--window-count %d: want at least 0", c.Int("window-count"))
	case c.Duration("window-time") < 0:
		return usageErr("--window-time %v: want a positive duration", c.Duration("window-time"))
	case c.Int("max-in-flight") < 0 || c.IsSet("max-in-flight") && c.Int("max-in-flight") < c.Int("window-count"):
		return usageErr("--max-in-flight %d: want at least 1 and at least --window-count", c.Int("max-in-flight"))
	case c.Duration("drain") <= 0:
		return usageErr("--drain %v: want a positive duration", c.Duration("drain"))
	}
	lg, err := logger(c)
	if err != nil {
		return err
	}
	src, err := streamSource(c)
	if err != nil {
		return err
	}
	defer src.Close()
	eng, err := engine(c, pirn.Config{Workers: c.Int("workers"), AllowUnpinned: c.Bool("unpinned")}, true)
	if err != nil {
		return err
	}
	defer eng.Close(context.Background())
	p, err := eng.LoadPipeline(c.Context, c.Args().First())
	if err != nil {
		return inputErr(err)
	}
	for _, m := range p.Unpinned {
		fmt.Fprintf(c.App.ErrWriter, "pirn: warning: module %q is not pinned by a lock file; its bytes are not verified\n", m)
	}
	param, err := streamParam(c, p)
	if err != nil {
		return err
	}
	static, err := parseParams(p, c.StringSlice("p"))
	if err != nil {
		return err
	}
	if _, ok := static[param]; ok {
		return usageErr("-p %s: that is the parameter the stream's values are passed as", param)
	}
	runner := serve.NewRunner(eng.Engine, p, serve.RunnerConfig{Name: p.Spec.Name, Concurrency: c.Int("concurrency"), Logger: lg})
	maxInFlight := c.Int("max-in-flight")
	if maxInFlight == 0 {
		maxInFlight = max(c.Int("concurrency")+serve.DefaultMaxInFlight, c.Int("window-count"))
	}
	var bad int
	opts := serve.StreamOptions{
		Pipeline: p.Spec.Name, Param: param, Params: static,
		Window:       serve.Window{Count: c.Int("window-count"), Every: emit.Duration(c.Duration("window-time"))},
		MaxInFlight:  maxInFlight,
		DrainTimeout: emit.Duration(c.Duration("drain")),
		Logger:       lg,
		OnRun: func(r serve.StreamRun) {
			if r.Status != lineage.Succeeded {
				bad++
			}
			printStreamRun(c.App.Writer, r, c.Bool("json"))
		},
	}
	err = serve.RunStream(c.Context, runner, src, opts)
	// Whatever RunStream left in flight (at the drain deadline) is
	// cancelled now, and recorded so.
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(c.Context), 5*time.Second)
	defer cancel()
	if cerr := runner.Close(closeCtx); cerr != nil {
		err = errors.Join(err, cerr)
	}
	switch {
	case err != nil:
		return &exitError{code: exitFailed, err: err}
	case bad > 0:
		return &exitError{code: exitFailed, err: errors.New("")}
	}
	return nil
}

// streamSource opens the source --from names.
func streamSource(c *cli.Context) (serve.Source, error) {
	from := c.String("from")
	fileOnly := []string{"from-start", "offset-file", "poll"}
	switch {
	case from == "stdin" || from == "-":
		for _, f := range fileOnly {
			if c.IsSet(f) {
				return nil, usageErr("--%s applies to --from file:PATH, not stdin", f)
			}
		}
		src, err := serve.NewReader(c.App.Reader, serve.ReaderConfig{Name: "stdin", MaxLine: c.Int("max-line"), Format: c.String("format"), Logger: mustLogger(c)})
		if err != nil {
			return nil, usageErr("%v", err)
		}
		return src, nil
	case strings.HasPrefix(from, "file:"):
		src, err := serve.NewFileTail(serve.FileTailConfig{Path: strings.TrimPrefix(from, "file:"), FromStart: c.Bool("from-start"),
			Poll: emit.Duration(c.Duration("poll")), MaxLine: c.Int("max-line"), Format: c.String("format"),
			State: c.String("offset-file"), Logger: mustLogger(c)})
		if err != nil {
			return nil, usageErr("%v", err)
		}
		return src, nil
	}
	return nil, usageErr("--from %q: want stdin or file:PATH", from)
}

// mustLogger is logger for a command that already checked the flags.
func mustLogger(c *cli.Context) *slog.Logger {
	lg, _ := logger(c)
	return lg
}

// streamParam is --param, checked, or the pipeline's only parameter.
func streamParam(c *cli.Context, p *pirn.Pipeline) (string, error) {
	var names []string
	for _, n := range p.Spec.Nodes {
		if n.ParamName != "" {
			names = append(names, n.ParamName)
		}
	}
	slices.Sort(names)
	if name := c.String("param"); name != "" {
		if _, ok := p.ParamType(name); !ok {
			return "", usageErr("--param %s: the pipeline has no such parameter (it has: %s)", name, strings.Join(names, ", "))
		}
		return name, nil
	}
	if len(names) != 1 {
		return "", usageErr("--param: the pipeline has %d parameters (%s): say which one receives the values", len(names), strings.Join(names, ", "))
	}
	return names[0], nil
}

// streamLine is a run of pirn stream --json.
type streamLine struct {
	RunID  string            `json:"run_id,omitempty"`
	Status string            `json:"status"`
	Values int               `json:"values"`
	Origin map[string]string `json:"origin"`
	Error  string            `json:"error,omitempty"`
}

// printStreamRun prints one run of a stream: a JSON line, or the run id,
// its status and the origin of its values (and its error).
func printStreamRun(w io.Writer, r serve.StreamRun, asJSON bool) {
	status := string(r.Status)
	switch {
	case r.Rejected:
		status = "rejected"
	case status == "":
		status = "unrecorded"
	}
	origin := map[string]string{}
	for k, v := range r.Labels {
		if rest, ok := strings.CutPrefix(k, serve.LabelOrigin); ok {
			origin[rest] = v
		}
	}
	if asJSON {
		l := streamLine{RunID: r.RunID, Status: status, Values: r.Values, Origin: origin}
		if r.Err != nil {
			l.Error = r.Err.Error()
		}
		b, _ := json.Marshal(l)
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	parts := make([]string, 0, len(origin))
	for _, k := range slices.Sorted(maps.Keys(origin)) {
		parts = append(parts, k+"="+origin[k])
	}
	id := r.RunID
	if id == "" {
		id = "-"
	}
	line := fmt.Sprintf("%s %s %s", id, status, strings.Join(parts, " "))
	if r.Err != nil {
		line += ": " + firstLine(r.Err.Error())
	}
	fmt.Fprintln(w, line)
}
