package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/pipeline"
	"github.com/pirn-wasm/pirn/scheduler"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a pipeline",
		ArgsUsage: "PIPELINE | BUNDLE | oci://HOST/REPOSITORY:TAG | sha256:DIGEST",
		Description: `Runs the pipeline (a YAML file; a bundle made by pirn bundle, as a file
or in an OCI registry where pirn push put it; or the sha256:… digest
under which the data store keeps a pipeline that ran before, which pirn
runs show names) and prints its outputs and a table of every knot's
outcome and duration. The run and its lineage are recorded in the state
directory. Exit status: 0 if every knot succeeded or skipped, 1 if a knot
failed or the run was interrupted, 2 for a bad pipeline or argument.`,
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: "param", Aliases: []string{"p"}, Usage: "a parameter value, `name=value` (repeatable); the value is YAML (xs=[1, 2]) unless the parameter is a str"},
			&cli.StringSliceFlag{Name: "terminal", Aliases: []string{"t"}, Usage: "run only what this knot `id` needs (repeatable)"},
			&cli.StringFlag{Name: "run-id", Usage: "the run's id (default: a fresh run-<hex>); an id already recorded is refused unless --replace"},
			&cli.BoolFlag{Name: "replace", Usage: "let --run-id replace the run recorded under that id"},
			&cli.IntFlag{Name: "workers", Usage: "knots run at once (default: the number of CPUs)"},
			&cli.BoolFlag{Name: "memory", Usage: "keep history and data in memory: record nothing"},
			&cli.BoolFlag{Name: "unpinned", Usage: "allow modules the lock file does not pin (prints a warning)"},
			digestFlag, trustFlag, insecureRegistryFlag, registryTimeoutFlag,
			&cli.BoolFlag{Name: "allow-grants", Usage: "let a bundle, or a pipeline from the data store, grant its knots capabilities (files, environment, clock, randomness, HTTP); they are listed on stderr"},
			stateFlag, jsonFlag, workerWaitFlag, noProgressFlag, noCacheFlag,
		}, natsFlags("dispatch", false)...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErr("run takes one pipeline file, got %d arguments", c.NArg())
			}
			eng, err := engine(c, pirn.Config{Workers: c.Int("workers"), AllowUnpinned: c.Bool("unpinned")}, !c.Bool("memory"))
			if err != nil {
				return err
			}
			defer eng.Close(context.Background())
			var p *pirn.Pipeline
			// pirn run is one run in a short-lived process: a tighter GC
			// target (the heap grows to 1.5× what is live, rather than
			// 2×) keeps its peak memory down, for a little more GC work.
			// A 5000-knot chain with SQLite and the disk store: peak RSS
			// 55 MiB rather than 60, wall time +5%. GOGC in the
			// environment overrides it.
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(50)
			}
			path := c.Args().First()
			if _, err := registryOptions(c, path); err != nil {
				return err
			}
			if !pirn.IsBundle(path) && (c.IsSet("digest") || c.IsSet("trust") || c.IsSet("allow-grants")) {
				return usageErr("--digest, --trust and --allow-grants apply to a bundle; %s is a pipeline", path)
			}
			switch {
			case pirn.IsBundle(path): // a file, in a registry, or kept in the data store
				if c.Bool("unpinned") {
					return usageErr("--unpinned does not apply to a bundle or a pipeline from the data store: it carries its modules, verified by digest")
				}
				var opts pirn.LoadBundleOptions
				if opts, err = bundleOptions(c, path); err != nil {
					return err
				}
				opts.AllowGrants = c.Bool("allow-grants")
				if p, err = eng.LoadBundle(c.Context, path, opts); err == nil {
					for _, g := range p.Grants() {
						fmt.Fprintf(c.App.ErrWriter, "pirn: the bundle grants %s\n", g)
					}
				}
			default:
				p, err = eng.LoadPipeline(c.Context, path)
			}
			if err != nil {
				return inputErr(err)
			}
			for _, m := range p.Unpinned {
				fmt.Fprintf(c.App.ErrWriter, "pirn: warning: module %q is not pinned by a lock file; its bytes are not verified\n", m)
			}
			params, err := parseParams(p, c.StringSlice("param"))
			if err != nil {
				return err
			}
			req := pirn.RunRequest{RunID: c.String("run-id"), Pipeline: p.Spec.Name, Params: params, Replace: c.Bool("replace"), NoCache: c.Bool("no-cache")}
			if ts := c.StringSlice("terminal"); len(ts) > 0 {
				req.Terminals = ts
			}
			return runAndReport(c, eng, p, req)
		},
	}
}

// runAndReport runs the pipeline and prints its outputs and table. A
// dispatched run first keeps its request on the broker, for pirn resume,
// and marks it finished there once it is recorded.
func runAndReport(c *cli.Context, eng *session, p *pirn.Pipeline, req pirn.RunRequest) error {
	if eng.coord != nil {
		req.RunID = cmp.Or(req.RunID, scheduler.NewRunID())
		if err := keepRun(c, eng, p, req); err != nil {
			return err
		}
	}
	var pr *progress
	if w, ok := wantProgress(c); ok {
		pr = newProgress(w, false, shedSize(p.Tapestry.Scheduler(), req.Terminals))
		if req.Observer != nil {
			req.Observer = observers{req.Observer, pr}
		} else {
			req.Observer = pr
		}
	}
	res, err := eng.Run(c.Context, p.Tapestry, req)
	if pr != nil {
		pr.Stop()
	}
	if eng.coord != nil && res != nil && c.Context.Err() == nil {
		if ferr := eng.coord.FinishRun(context.WithoutCancel(c.Context), res.ID); ferr != nil {
			fmt.Fprintf(c.App.ErrWriter, "pirn: warning: cannot mark run %s finished on the broker: %v\n", res.ID, ferr)
		}
	}
	if errors.Is(err, lineage.ErrRunExists) {
		return usageErr("run id %q is already recorded in %s: choose another id, or pass --replace to replace that run", req.RunID, c.String("state"))
	}
	if res == nil {
		return inputErr(err)
	}
	tooLarge := map[string]error{}
	for id, v := range res.Values {
		if _, ok := res.Outputs[id]; !ok {
			tooLarge[id] = fmt.Errorf("%w: %d bytes, more than %d elements", cas.ErrTooLarge, len(v.Bytes), scheduler.MaxOutputItems)
		}
	}
	if werr := report(c.App.Writer, &res.Run, res.Outputs, tooLarge, c.Bool("json")); werr != nil {
		return werr
	}
	if err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	if res.Status != lineage.Succeeded {
		return &exitError{code: exitFailed, err: errors.New("")}
	}
	return nil
}

// parseParams turns -p name=value flags into request parameters. Values
// for str and bytes parameters are taken verbatim; numbers and booleans
// are coerced by the parameter's type; other types are parsed as YAML
// (so -p items=[1,2,3] is a list).
func parseParams(p *pirn.Pipeline, flags []string) (map[string]any, error) {
	params := map[string]any{}
	for _, f := range flags {
		name, value, ok := strings.Cut(f, "=")
		if !ok {
			return nil, usageErr("-p %q: want name=value", f)
		}
		if _, dup := params[name]; dup {
			return nil, usageErr("-p %s given twice", name)
		}
		t, known := p.ParamType(name)
		if !known {
			params[name] = value // the scheduler names the unknown parameter
			continue
		}
		switch t.Kind {
		case abi.KindStr, abi.KindBytes, abi.KindInt, abi.KindFloat, abi.KindBool:
			params[name] = value
		default:
			v, err := pipeline.ParseValue(value)
			if err != nil {
				return nil, usageErr("-p %s: %v", name, err)
			}
			params[name] = v
		}
	}
	return params, nil
}

type jsonRun struct {
	RunID    string `json:"run_id"`
	Pipeline string `json:"pipeline,omitempty"`
	// PipelineDigest names the pipeline as the data store keeps it.
	PipelineDigest string `json:"pipeline_digest,omitempty"`
	// Labels say where the run came from (lineage.Run.Labels).
	Labels     map[string]string `json:"labels,omitempty"`
	Status     string            `json:"status"`
	StartedAt  time.Time         `json:"started_at"`
	FinishedAt time.Time         `json:"finished_at"`
	Outputs    map[string]any    `json:"outputs"`
	// Unreadable says, by node id, why an ok output is not in Outputs.
	Unreadable map[string]string `json:"unreadable_outputs,omitempty"`
	Knots      []jsonKnot        `json:"knots"`
	Errors     []jsonError       `json:"errors"`
}

type jsonKnot struct {
	ID         string            `json:"id"`
	Outcome    string            `json:"outcome"`
	DurationMS float64           `json:"duration_ms"`
	Module     string            `json:"module,omitempty"`
	Knot       string            `json:"knot"`
	ConfigHash string            `json:"config_hash"`
	Inputs     map[string]string `json:"inputs"`  // input name -> digest consumed
	Parents    map[string]string `json:"parents"` // input name -> parent node id
	Output     string            `json:"output,omitempty"`
	SkipReason string            `json:"skip_reason,omitempty"`
	ErrorID    string            `json:"error_id,omitempty"`
	Grants     []string          `json:"grants,omitempty"`
	Hermetic   bool              `json:"hermetic"`
	// CacheKey is the memoisation key, when the result may be reused;
	// ReusedFrom names the record a reused result came from.
	CacheKey   string         `json:"cache_key,omitempty"`
	ReusedFrom *jsonRecordRef `json:"reused_from,omitempty"`
	// Logs is the digest of the lines the knot logged, a value in the
	// data store.
	Logs string `json:"logs,omitempty"`
}

type jsonError struct {
	ID      string `json:"id"`
	Knot    string `json:"knot"`
	Type    string `json:"type"`
	Message string `json:"message"`
	Trace   string `json:"trace,omitempty"`
}

func knotJSON(r *lineage.Record) jsonKnot {
	k := jsonKnot{ID: r.KnotID, Outcome: string(r.Outcome), DurationMS: float64(r.Duration().Microseconds()) / 1000,
		Module: r.Module, Knot: r.Knot, ConfigHash: r.ConfigHash.String(), Inputs: map[string]string{}, Parents: map[string]string{},
		Output: r.Output.String(), SkipReason: r.SkipReason, ErrorID: r.ErrorID.String(), Grants: r.Grants, Hermetic: r.Hermetic(),
		CacheKey: r.CacheKey.String(), Logs: r.Logs.String()}
	if r.Reused() {
		k.ReusedFrom = &jsonRecordRef{RunID: r.ReusedFrom.RunID, KnotID: r.ReusedFrom.KnotID}
	}
	for _, in := range r.Inputs {
		k.Inputs[in.Name] = in.Digest.String()
		k.Parents[in.Name] = in.Parent
	}
	return k
}

// report prints a run: outputs (those present in values; unreadable says
// why the others are not), a knot table and the errors.
func report(w io.Writer, run *lineage.Run, values map[string]any, unreadable map[string]error, asJSON bool) error {
	if asJSON {
		out := jsonRun{RunID: run.ID, Pipeline: run.Pipeline, PipelineDigest: run.PipelineDigest.String(), Labels: run.Labels, Status: string(run.Status), StartedAt: run.StartedAt,
			FinishedAt: run.FinishedAt, Outputs: map[string]any{}, Knots: []jsonKnot{}, Errors: []jsonError{}}
		for id, v := range values {
			out.Outputs[id] = jsonValue(v)
		}
		for id, err := range unreadable {
			if out.Unreadable == nil {
				out.Unreadable = map[string]string{}
			}
			out.Unreadable[id] = valueProblem(err)
		}
		for i := range run.Records {
			out.Knots = append(out.Knots, knotJSON(&run.Records[i]))
		}
		for _, e := range run.Errors {
			out.Errors = append(out.Errors, jsonError{ID: e.ID.String(), Knot: e.KnotID, Type: e.Type, Message: e.Message, Trace: e.Trace})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	s := lineage.Summarize(run)
	elements := ""
	if s.Elements > 0 {
		elements = fmt.Sprintf("; %s", plural(s.Elements, "map element"))
	}
	fmt.Fprintf(w, "run %s %s in %s (%s: %d ok, %d failed, %d skipped%s)\n", run.ID, run.Status,
		runDuration(run.StartedAt, run.FinishedAt), plural(s.Knots, "node"), s.Knots-s.Failed-s.Skipped, s.Failed, s.Skipped, elements)
	if !run.PipelineDigest.IsZero() {
		fmt.Fprintf(w, "pipeline %s %s (pirn run that digest runs it again)\n", cmp.Or(run.Pipeline, "(unnamed)"), run.PipelineDigest)
	}
	printLabels(w, run.Labels)
	printReused(w, run.Records)
	var lines []string
	for _, r := range run.Records {
		if r.Outcome != lineage.OK || r.Kind == lineage.KindElement {
			continue
		}
		if v, ok := values[r.KnotID]; ok {
			lines = append(lines, fmt.Sprintf("  %s = %s", r.KnotID, show(v)))
		} else {
			lines = append(lines, fmt.Sprintf("  %s = (%s: %s)", r.KnotID, valueProblem(unreadable[r.KnotID]), r.Output))
		}
	}
	if len(lines) > 0 {
		fmt.Fprintf(w, "\noutputs:\n%s\n", strings.Join(lines, "\n"))
	}
	rows := make([][]string, 0, len(run.Records))
	elems := lineage.CountElements(run.Records) // per Map
	reusedElements := countReused(run.Records)  // per Map
	for _, r := range run.Records {
		if r.Kind == lineage.KindElement && r.Outcome == lineage.OK {
			continue // summarised on the map's row
		}
		detail := ""
		switch r.Outcome {
		case lineage.OK:
			detail = short(r.Output)
		case lineage.Skipped:
			detail = r.SkipReason
		case lineage.Err:
			for _, e := range run.Errors {
				if e.ID == r.ErrorID {
					detail = e.Type + ": " + firstLine(e.Message)
				}
			}
		}
		if c, ok := elems[r.KnotID]; ok && r.Kind == lineage.KindMap {
			detail += " (elements: " + c.String()
			if n := reusedElements[r.KnotID]; n > 0 {
				detail += fmt.Sprintf("; %d reused", n)
			}
			detail += ")"
		}
		rows = append(rows, []string{r.KnotID, outcomeText(&r), duration(r.Duration()), detail})
	}
	fmt.Fprintf(w, "\n%s", table([]string{"knot", "outcome", "duration", "output / reason"}, rows))
	for _, e := range run.Errors {
		fmt.Fprintf(w, "\nerror in %s (%s)\n  %s: %s\n", e.KnotID, e.ID, e.Type, e.Message)
		if e.Trace != "" {
			fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(strings.TrimSpace(e.Trace), "\n", "\n  "))
		}
	}
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	if len(line) > 120 {
		return line[:120] + "…"
	}
	return line
}

// loadValues reads the ok outputs of a recorded run from the data store,
// and says why it could not read the others.
// errScrubbed is wrapped by the problem of a value pirn gc removed.
var errScrubbed = errors.New("scrubbed")

// loadValues reads the outputs of a run's nodes from store; hist, if not
// nil, says which missing ones were scrubbed.
func loadValues(ctx context.Context, store cas.Store, hist lineage.History, run *lineage.Run) (map[string]any, map[string]error) {
	values, unreadable := map[string]any{}, map[string]error{}
	for _, r := range run.Records {
		if r.Outcome != lineage.OK || r.Kind == lineage.KindElement {
			continue
		}
		b, err := store.Get(ctx, r.Output)
		if err != nil {
			if sc, ok := hist.(lineage.Scrubber); ok && errors.Is(err, cas.ErrNotFound) {
				if at, scrubbed, _ := sc.Scrubbed(ctx, r.Output); scrubbed {
					err = fmt.Errorf("%w %s", errScrubbed, at.Format(time.RFC3339))
				}
			}
			unreadable[r.KnotID] = err
			continue
		}
		v, err := cas.DecodeBounded(b, scheduler.MaxOutputItems)
		if err != nil {
			unreadable[r.KnotID] = err
			continue
		}
		values[r.KnotID] = v
	}
	return values, unreadable
}

// valueProblem says in a few words why an output could not be read.
func valueProblem(err error) string {
	switch {
	case errors.Is(err, errScrubbed):
		return err.Error() + " by pirn gc"
	case err == nil, errors.Is(err, cas.ErrNotFound):
		return "not in the data store"
	case errors.Is(err, cas.ErrCorrupt):
		return "corrupt in the data store: " + err.Error()
	case errors.Is(err, cas.ErrTooLarge):
		return "too large to show here: " + err.Error()
	}
	return "unreadable: " + err.Error()
}

// runDuration renders how long a run took; "-" for one never finished (an
// interrupted run has no finish time).
func runDuration(started, finished time.Time) string {
	if finished.IsZero() || finished.Before(started) {
		return "-"
	}
	return duration(finished.Sub(started))
}

// printLabels prints a run's labels, a line each in key order, the value
// quoted: a label comes from outside (a trigger's event, a stream's
// message), and quoting keeps a newline or a tab in it from passing for
// pirn's own layout (the terminal writer escapes what else a terminal
// would act on).
func printLabels(w io.Writer, labels map[string]string) {
	if len(labels) == 0 {
		return
	}
	fmt.Fprintln(w, "labels:")
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		fmt.Fprintf(w, "  %s = %q\n", k, labels[k])
	}
}
