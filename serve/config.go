package serve

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/pirn-wasm/pirn/emit"
)

// Defaults of serve.yaml.
const (
	DefaultListen = "127.0.0.1:8080"
	DefaultDrain  = 30 * time.Second
	// MaxConfigSize bounds serve.yaml.
	MaxConfigSize = 1 << 20
)

// Config is serve.yaml: what a Server loads, starts and listens on. The
// zero value of every field is its documented default. docs/serving.md
// is the reference.
type Config struct {
	// File is the path the configuration was read from, for messages;
	// Dir is the directory relative paths are relative to.
	File, Dir string
	// Listen is the address of /healthz, /readyz and the webhooks
	// (default 127.0.0.1:8080: loopback only); "-" listens nowhere.
	Listen string
	// Drain is how long runs in flight may finish after the server is
	// told to stop (default 30s); the rest are cancelled.
	Drain time.Duration
	// State, History and Store say where runs are recorded, as pirn run's
	// --state, --history and --store do. The Server itself uses the
	// engine it is given; the CLI opens these.
	State, History, Store string
	Pipelines             []PipelineConfig
	// Triggers, Streams and Emitters are the entries of those lists:
	// each an emit.Spec (its type and its other fields).
	Triggers, Streams, Emitters []Entry
}

// PipelineConfig is one entry of serve.yaml's pipelines.
type PipelineConfig struct {
	// Name is how triggers and streams name the pipeline.
	Name string
	// Path is a pipeline file (its modules pinned by its lock file), or
	// Bundle a bundle (a file, oci://…, or sha256:…) as pirn run takes it,
	// with Digest, Trust (paths of PEM public keys) and AllowGrants.
	Path, Bundle string
	Digest       string
	Trust        []string
	AllowGrants  bool
	// Concurrency is how many runs go at once (default 4); Queue how many
	// more wait (default 64; 0 means none).
	Concurrency, Queue int
	// Line is the entry's line in File.
	Line int
}

// Entry is one entry of serve.yaml's triggers, streams or emitters.
type Entry struct {
	emit.Spec
	// Pipeline is the entry's pipeline field (triggers and streams),
	// also left in Fields.
	Pipeline string
	// Line is the entry's line in the configuration file.
	Line int
}

// Where names the entry's place, "serve.yaml:12: webhook".
func (e *Entry) Where(file string) string { return fmt.Sprintf("%s:%d: %s", file, e.Line, e.Type) }

// ConfigError is one problem of a configuration file.
type ConfigError struct {
	File string
	Line int // 0 when the problem has no line
	Msg  string
}

func (e ConfigError) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// ConfigErrors is every problem of a configuration file, in file order.
type ConfigErrors []ConfigError

func (es ConfigErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Load reads and checks serve.yaml at path (see Parse).
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(src) > MaxConfigSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, MaxConfigSize)
	}
	return Parse(path, src)
}

// Parse parses and checks a serve.yaml read from file: unknown keys,
// malformed values, pipelines named twice or not at all, and every
// trigger built through Triggers (so a bad cron expression or a webhook
// without authentication is found here, not at start). Its error is
// ConfigErrors, each naming the file and line.
func Parse(file string, src []byte) (*Config, error) {
	p := &parser{file: file}
	cfg := p.parse(src)
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return cfg, nil
}

type parser struct {
	file string
	errs ConfigErrors
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, ConfigError{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// yamlErr turns a YAML decoder's error (which may hold several "line N:
// …" messages) into config errors.
func (p *parser) yamlErr(line int, err error) {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, msg := range te.Errors {
			l := line
			if rest, ok := strings.CutPrefix(msg, "line "); ok {
				var n int
				if _, scanErr := fmt.Sscanf(rest, "%d:", &n); scanErr == nil {
					l = n
					_, msg, _ = strings.Cut(rest, ": ")
				}
			}
			p.errorf(l, "%s", msg)
		}
		return
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "yaml: line "); ok {
		var n int
		if _, scanErr := fmt.Sscanf(rest, "%d:", &n); scanErr == nil {
			line = n
			_, msg, _ = strings.Cut(rest, ": ")
		}
	}
	p.errorf(line, "%s", msg)
}

// rawConfig is serve.yaml as written.
type rawConfig struct {
	Listen    *string     `yaml:"listen"`
	Drain     duration    `yaml:"drain"`
	State     string      `yaml:"state"`
	History   string      `yaml:"history"`
	Store     string      `yaml:"store"`
	Pipelines []yaml.Node `yaml:"pipelines"`
	Triggers  []yaml.Node `yaml:"triggers"`
	Streams   []yaml.Node `yaml:"streams"`
	Emitters  []yaml.Node `yaml:"emitters"`
}

type rawPipeline struct {
	Name        string   `yaml:"name"`
	Path        string   `yaml:"path"`
	Bundle      string   `yaml:"bundle"`
	Digest      string   `yaml:"digest"`
	Trust       []string `yaml:"trust"`
	AllowGrants bool     `yaml:"allow_grants"`
	Concurrency int      `yaml:"concurrency"`
	Queue       *int     `yaml:"queue"`
}

// duration is a time.Duration written as Go writes one ("30s").
type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as 30s or 1m30s, not %q", n.Line, n.Value)
	}
	*d = duration(v)
	return nil
}

// strict decodes the mapping n into v, a pointer to a struct with yaml
// tags, refusing keys the struct does not have (naming their lines).
func (p *parser) strict(n *yaml.Node, v any) bool {
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, "want a mapping")
		return false
	}
	known := map[string]bool{}
	t := reflect.TypeOf(v).Elem()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		known[name] = true
	}
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !known[k.Value] {
			p.errorf(k.Line, "unknown key %q", k.Value)
			ok = false
		}
	}
	if err := n.Decode(v); err != nil {
		p.yamlErr(n.Line, err)
		return false
	}
	return ok
}

func (p *parser) parse(src []byte) *Config {
	cfg := &Config{File: p.file, Dir: filepath.Dir(p.file), Listen: DefaultListen, Drain: DefaultDrain}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		p.yamlErr(0, err)
		return nil
	}
	if len(doc.Content) == 0 {
		p.errorf(0, "empty file: want a mapping with pipelines and triggers or streams")
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		p.errorf(root.Line, "want a mapping (listen, drain, pipelines, triggers…)")
		return nil
	}
	var raw rawConfig
	if !p.strict(root, &raw) {
		return nil
	}
	if raw.Listen != nil {
		cfg.Listen = *raw.Listen
	}
	if raw.Drain < 0 {
		p.errorf(lineOf(root, "drain"), "drain is %s, want >= 0", time.Duration(raw.Drain))
	} else if raw.Drain > 0 {
		cfg.Drain = time.Duration(raw.Drain)
	}
	cfg.State, cfg.History, cfg.Store = raw.State, raw.History, raw.Store
	names := map[string]bool{}
	for i := range raw.Pipelines {
		if pc, ok := p.pipeline(&raw.Pipelines[i], names); ok {
			cfg.Pipelines = append(cfg.Pipelines, pc)
		}
	}
	if len(raw.Pipelines) == 0 {
		p.errorf(root.Line, "no pipelines: list at least one under pipelines:")
	}
	cfg.Triggers = p.entries(raw.Triggers, "trigger", names, true)
	cfg.Streams = p.entries(raw.Streams, "stream", names, true)
	cfg.Emitters = p.entries(raw.Emitters, "emitter", names, false)
	if len(raw.Triggers)+len(raw.Streams) == 0 && len(raw.Pipelines) > 0 {
		p.errorf(root.Line, "no triggers or streams: nothing would start a run")
	}
	for i := range cfg.Triggers {
		e := &cfg.Triggers[i]
		if _, err := Triggers.New(e.Spec); err != nil {
			p.errorf(e.Line, "trigger %s: %v", e.Type, err)
		}
	}
	p.checkRoutes(cfg.Triggers)
	return cfg
}

// lineOf returns the line of key's value in the mapping n, or n's.
func lineOf(n *yaml.Node, key string) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1].Line
		}
	}
	return n.Line
}

func (p *parser) pipeline(n *yaml.Node, names map[string]bool) (PipelineConfig, bool) {
	var r rawPipeline
	if !p.strict(n, &r) {
		return PipelineConfig{}, false
	}
	errs := len(p.errs)
	switch {
	case r.Name == "":
		p.errorf(n.Line, "a pipeline without a name")
	case names[r.Name]:
		p.errorf(lineOf(n, "name"), "pipeline %q named twice", r.Name)
	}
	names[r.Name] = true
	if (r.Path == "") == (r.Bundle == "") {
		p.errorf(n.Line, "pipeline %q: want one of path: (a pipeline file) or bundle:", r.Name)
	}
	if r.Bundle == "" && (r.Digest != "" || len(r.Trust) > 0 || r.AllowGrants) {
		p.errorf(n.Line, "pipeline %q: digest, trust and allow_grants apply to a bundle", r.Name)
	}
	if r.Concurrency < 0 {
		p.errorf(lineOf(n, "concurrency"), "pipeline %q: concurrency is %d, want >= 1", r.Name, r.Concurrency)
	}
	queue := 0
	if r.Queue != nil {
		if *r.Queue < 0 {
			p.errorf(lineOf(n, "queue"), "pipeline %q: queue is %d, want >= 0", r.Name, *r.Queue)
		}
		queue = *r.Queue
		if queue == 0 {
			queue = -1 // RunnerConfig: no queue
		}
	}
	return PipelineConfig{Name: r.Name, Path: r.Path, Bundle: r.Bundle, Digest: r.Digest, Trust: r.Trust,
		AllowGrants: r.AllowGrants, Concurrency: r.Concurrency, Queue: queue, Line: n.Line}, len(p.errs) == errs
}

// entries decodes a list of typed entries; withPipeline: each must name
// a known pipeline.
func (p *parser) entries(ns []yaml.Node, what string, pipelines map[string]bool, withPipeline bool) []Entry {
	var out []Entry
	for i := range ns {
		n := &ns[i]
		var fields map[string]any
		if n.Kind != yaml.MappingNode {
			p.errorf(n.Line, "a %s is a mapping with a type", what)
			continue
		}
		if err := n.Decode(&fields); err != nil {
			p.yamlErr(n.Line, err)
			continue
		}
		typ, _ := fields["type"].(string)
		if typ == "" {
			p.errorf(n.Line, "a %s without a type", what)
			continue
		}
		delete(fields, "type")
		e := Entry{Spec: emit.Spec{Type: typ, Fields: jsonable(fields).(map[string]any), Dir: filepath.Dir(p.file)}, Line: n.Line}
		if withPipeline {
			name, _ := fields["pipeline"].(string)
			switch {
			case name == "":
				p.errorf(n.Line, "%s %s: no pipeline: name one of %s", what, typ, known(pipelines))
				continue
			case !pipelines[name]:
				p.errorf(lineOf(n, "pipeline"), "%s %s: unknown pipeline %q (pipelines: %s)", what, typ, name, known(pipelines))
				continue
			}
			e.Pipeline = name
		}
		out = append(out, e)
	}
	return out
}

// checkRoutes refuses two webhooks on one path, and paths the server
// answers itself.
func (p *parser) checkRoutes(ts []Entry) {
	seen := map[string]int{}
	for i := range ts {
		if ts[i].Type != "webhook" {
			continue
		}
		path, _ := ts[i].Fields["path"].(string)
		path = webhookPath(path)
		if path == "/healthz" || path == "/readyz" {
			p.errorf(ts[i].Line, "webhook path %s is the server's own", path)
		} else if l, dup := seen[path]; dup {
			p.errorf(ts[i].Line, "webhook path %s is taken by the webhook of line %d", path, l)
		}
		seen[path] = ts[i].Line
	}
}

func known(m map[string]bool) string {
	var names []string
	for n := range m {
		if n != "" {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}

// jsonable converts YAML's decoded values to what encoding/json would
// have produced (map[string]any keys; ints stay int), so that
// emit.Spec.Decode sees the same in both.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonable(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = jsonable(e)
		}
		return x
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	return v
}
