// Package pipeline reads YAML pipeline files: the declaration of a
// tapestry's parameters and knots, and the modules the knots come from. It
// checks everything that can be checked without loading a module (ids,
// references, cycles, types, unknown keys) and reports every problem with
// the file and line. It also reads and writes the lock file that pins each
// module's digest.
package pipeline

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/internal/fileread"
	"github.com/pirn-wasm/pirn/internal/suggest"
	"github.com/pirn-wasm/pirn/model"
)

// Spec is a parsed, checked pipeline.
type Spec struct {
	File        string // as given to Parse; used in messages
	Source      []byte // the bytes parsed
	Dir         string // directory module paths are relative to
	Name        string
	Description string
	Limits      model.Limits // defaults for every knot
	// Instance is every knot's default instance state (StateDefault: the
	// host\'s, keep).
	Instance model.State
	// Cache is every knot's default memoisation setting (`cache: true`
	// or `false`; CacheDefault when absent): see model.Cache.
	Cache   model.Cache
	Modules []Module
	// Outputs, if set, lists the nodes the pipeline exists to produce; a
	// node that contributes to none of them is reported by pirn check.
	Outputs     []string
	OutputsLine int
	Nodes       []Node // in a topological order: parents before children
}

// Module is an entry of the module table.
type Module struct {
	Name string
	Path string // as written; relative paths are relative to Spec.Dir
	// ABI is how the host talks to the module: "" (pirn's ABI), "extism"
	// or "wasi-command".
	ABI string
	// Format is the document encoding of an extism or wasi-command
	// module: "", "cbor" or "json".
	Format string
	Line   int
}

// Module ABIs and formats, as written in a pipeline.
var (
	ModuleABIs    = []string{"pirn", "extism", "wasi-command"}
	ModuleFormats = []string{"cbor", "json"}
)

// Node is one node of a pipeline.
type Node struct {
	ID          string
	Kind        model.Kind
	Line        int
	Description string
	Tags        []string

	// Parameters.
	ParamName  string   // the id, or the part after the first ':' of it
	ValueType  abi.Type // type_
	Default    any
	HasDefault bool

	// Knots, sources and sinks: a knot of a module.
	Module string // a name in the module table
	Knot   string // the knot's name inside the module

	// Gates and branches: the node whose value they take.
	Input string
	// Branches: the arm names; each arm is the node "<id>.<arm>".
	Arms []string
	// Maps.
	Over   string
	Bind   string // the input that receives each element
	OnSkip model.OnSkip
	// MaxElements bounds a map's list (0: the scheduler's default).
	MaxElements int
	// Reduces.
	Of         string
	Initial    any
	HasInitial bool // an initial value makes the fold pairwise

	// Fn is a gate's predicate, a branch's selector, an aggregator's or
	// reduce's combine, or a map's each.
	Fn *Fn

	Parents     map[string]string // input name -> node id
	Config      map[string]any    // input name -> constant
	Policy      model.Policy      // error_policy
	Optional    bool
	NoTypeCheck bool         // validate_io: false
	Limits      model.Limits // merged with the pipeline's
	Grants      model.Grants // capabilities; none (and an instance state that is not kept) makes the knot hermetic
	GrantsLine  int          // where grants are written
	Instance    model.State  // StateDefault: the pipeline's
	Cache       model.Cache  // CacheDefault: the pipeline's

	keyLines map[string]int // line of each input name, for messages
	refLines map[string]int // line of input, over and of
}

// Fn is an inline expression or a knot of a module.
type Fn struct {
	Expr   string // a CEL expression, or
	Module string // a module name
	Knot   string // and a knot in it
	Line   int
}

// Ref is a reference from a node to another node.
type Ref struct {
	Input string // the input name, or "input", "over", "of"
	ID    string // the referenced node (for an arm, "<branch>.<arm>")
	Line  int
}

// Refs returns the node's references to other nodes, sorted by input.
func (n *Node) Refs() []Ref {
	var refs []Ref
	for _, input := range sortedKeys(n.Parents) {
		refs = append(refs, Ref{Input: input, ID: n.Parents[input], Line: n.InputLine(input)})
	}
	for input, id := range map[string]string{"input": n.Input, "over": n.Over, "of": n.Of} {
		if id != "" {
			refs = append(refs, Ref{Input: input, ID: id, Line: n.refLines[input]})
		}
	}
	slices.SortFunc(refs, func(a, b Ref) int { return strings.Compare(a.Input, b.Input) })
	return refs
}

// InputLine returns the line of an input name in parents or config, or
// the node's line.
func (n *Node) InputLine(input string) int {
	if l, ok := n.keyLines[input]; ok {
		return l
	}
	return n.Line
}

// ModulePath returns the path of the named module, resolved against Dir.
func (s *Spec) ModulePath(name string) (string, bool) {
	for _, m := range s.Modules {
		if m.Name == name {
			return s.resolve(m.Path), true
		}
	}
	return "", false
}

func (s *Spec) resolve(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(s.Dir, p)
}

// Error is one problem in a pipeline file.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Errors is every problem found in a pipeline file, in line order.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// MaxFileBytes is the largest pipeline or lock file read (4 MiB: a
// pipeline of 5,000 knots is about 400 KB).
const MaxFileBytes = 4 << 20

// Load reads and parses the pipeline file at path, a regular file of at
// most MaxFileBytes.
func Load(path string) (*Spec, error) {
	b, err := fileread.Read(path, "pipeline", MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("read pipeline: %w", err)
	}
	return Parse(path, b)
}

// Parse parses a pipeline. file names it in messages and locates relative
// module paths. A failure is an [Errors] listing every problem found.
func Parse(file string, data []byte) (*Spec, error) {
	if len(data) > MaxFileBytes {
		return nil, Errors{{File: file, Msg: fmt.Sprintf("the pipeline is %d bytes, over the limit of %d", len(data), MaxFileBytes)}}
	}
	p := &parser{spec: &Spec{File: file, Dir: filepath.Dir(file), Source: data}}
	p.parse(data)
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
		return nil, p.errs
	}
	return p.spec, nil
}

type parser struct {
	spec   *Spec
	errs   Errors
	values valueDecoder // shared by every value of the file
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.spec.File, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) parse(data []byte) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		p.errorf(0, "not valid YAML: %v", err)
		return
	}
	if len(doc.Content) == 0 {
		p.errorf(0, "empty pipeline")
		return
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		p.errorf(root.Line, "a pipeline must be a mapping with name, modules and nodes")
		return
	}
	var nodes *yaml.Node
	p.fields(root, "pipeline", []string{"name", "description", "limits", "instance", "cache", "modules", "outputs", "nodes"}, func(key string, v *yaml.Node) {
		switch key {
		case "cache":
			p.spec.Cache = model.CacheOf(p.boolean(v, "pipeline: cache"))
		case "instance":
			p.spec.Instance = p.instance(v, "pipeline")
		case "outputs":
			p.spec.Outputs = p.strings(v, "outputs")
			p.spec.OutputsLine = v.Line
		case "limits":
			p.spec.Limits = p.limits(v, "pipeline")
		case "name":
			p.spec.Name = p.str(v, key)
		case "description":
			p.spec.Description = p.str(v, key)
		case "modules":
			p.modules(v)
		case "nodes":
			nodes = v
		}
	})
	if nodes == nil {
		p.errorf(root.Line, "pipeline has no nodes")
		return
	}
	p.nodes(nodes)
	if len(p.errs) == 0 {
		p.order()
	}
	for i := range p.spec.Nodes {
		p.spec.Nodes[i].Limits = p.spec.Nodes[i].Limits.Merge(p.spec.Limits)
	}
}

// fields walks a mapping, refusing unknown and duplicate keys.
func (p *parser) fields(m *yaml.Node, what string, allowed []string, f func(key string, v *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		key := k.Value
		if first, dup := seen[key]; dup {
			p.errorf(k.Line, "%s: key %q repeated (first at line %d)", what, key, first)
			continue
		}
		seen[key] = k.Line
		if !slices.Contains(allowed, key) {
			p.errorf(k.Line, "%s: unknown key %q%s", what, key, suggest.DidYouMean(key, allowed))
			continue
		}
		f(key, v)
	}
}

func (p *parser) str(v *yaml.Node, what string) string {
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		p.errorf(v.Line, "%s must be a string", what)
		return ""
	}
	return v.Value
}

func (p *parser) modules(v *yaml.Node) {
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, "modules must be a mapping of name to path")
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		name := k.Value
		if first, dup := seen[name]; dup {
			p.errorf(k.Line, "module %q declared twice (first at line %d)", name, first)
			continue
		}
		seen[name] = k.Line
		if !abi.ValidKnotName(name) {
			p.errorf(k.Line, "module name %q is invalid (allowed: A-Z a-z 0-9 _ - . :)", name)
		}
		m := Module{Name: name, Line: k.Line}
		switch val.Kind {
		case yaml.ScalarNode:
			m.Path = val.Value
		case yaml.MappingNode:
			p.fields(val, fmt.Sprintf("module %q", name), []string{"path", "abi", "format"}, func(key string, pv *yaml.Node) {
				switch key {
				case "path":
					m.Path = p.str(pv, "path")
				case "abi":
					if m.ABI = p.str(pv, "abi"); !slices.Contains(ModuleABIs, m.ABI) {
						p.errorf(pv.Line, "module %q: unknown abi %q (want one of %s)%s", name, m.ABI, strings.Join(ModuleABIs, ", "), suggest.DidYouMean(m.ABI, ModuleABIs))
					}
					if m.ABI == "pirn" {
						m.ABI = ""
					}
				case "format":
					if m.Format = p.str(pv, "format"); !slices.Contains(ModuleFormats, m.Format) {
						p.errorf(pv.Line, "module %q: unknown format %q (want cbor or json)", name, m.Format)
					}
				}
			})
			if m.Format != "" && m.ABI == "" {
				p.errorf(val.Line, "module %q: format applies only to abi extism or wasi-command (pirn modules speak CBOR)", name)
			}
		default:
			p.errorf(val.Line, "module %q: want a path or a mapping with path (and abi, format)", name)
		}
		if m.Path == "" {
			p.errorf(k.Line, "module %q has no path", name)
		}
		p.spec.Modules = append(p.spec.Modules, m)
	}
}

// The keys each node type accepts.
var (
	commonKeys = []string{"id", "type", "description", "tags"}
	nodeKeys   = append(slices.Clone(commonKeys), "error_policy", "optional", "validate_io", "limits", "grants", "instance", "cache")
	typeKeys   = map[model.Kind][]string{
		model.KindParameter:  append(slices.Clone(commonKeys), "type_", "default", "has_default"),
		model.KindKnot:       append(slices.Clone(nodeKeys), "module", "knot", "parents", "config"),
		model.KindSource:     append(slices.Clone(nodeKeys), "module", "knot", "config"),
		model.KindSink:       append(slices.Clone(nodeKeys), "module", "knot", "parents", "config"),
		model.KindAggregator: append(slices.Clone(nodeKeys), "parents", "config", "combine"),
		model.KindBranch:     append(slices.Clone(nodeKeys), "input", "selector", "branches"),
		model.KindGate:       append(slices.Clone(nodeKeys), "input", "predicate"),
		model.KindMap:        append(slices.Clone(nodeKeys), "over", "each", "bind", "parents", "config", "on_skip", "max_elements"),
		model.KindReduce:     append(slices.Clone(nodeKeys), "of", "combine", "initial"),
	}
	nodeTypes = model.DeclaredKinds()
)

func (p *parser) nodes(v *yaml.Node) {
	if v.Kind != yaml.SequenceNode {
		p.errorf(v.Line, "nodes must be a list")
		return
	}
	ids := make(map[string]int, len(v.Content))
	p.spec.Nodes = slices.Grow(p.spec.Nodes, len(v.Content))
	for _, item := range v.Content {
		if item.Kind != yaml.MappingNode {
			p.errorf(item.Line, "a node must be a mapping with id and type")
			continue
		}
		n := p.node(item)
		if n == nil {
			continue
		}
		defined := []string{n.ID}
		for _, a := range n.Arms {
			defined = append(defined, n.ID+"."+a)
		}
		for _, id := range defined {
			if first, dup := ids[id]; dup {
				p.errorf(n.Line, "duplicate node id %q (first defined at line %d)", id, first)
			}
			ids[id] = n.Line
		}
		p.spec.Nodes = append(p.spec.Nodes, *n)
	}
	if len(v.Content) == 0 {
		p.errorf(v.Line, "pipeline has no nodes")
	}
}

func scalar(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func (p *parser) strings(v *yaml.Node, what string) []string {
	if v.Kind != yaml.SequenceNode {
		p.errorf(v.Line, "%s must be a list", what)
		return nil
	}
	var out []string
	for _, e := range v.Content {
		out = append(out, p.str(e, what))
	}
	return out
}

func (p *parser) boolean(v *yaml.Node, what string) bool {
	var b bool
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" || v.Decode(&b) != nil {
		p.errorf(v.Line, "%s must be true or false", what)
	}
	return b
}

func (p *parser) node(m *yaml.Node) *Node {
	n := &Node{Line: m.Line, refLines: map[string]int{}}
	idv := scalar(m, "id")
	if idv == nil {
		p.errorf(m.Line, "node has no id")
		return nil
	}
	n.ID = p.str(idv, "id")
	if !abi.ValidKnotName(n.ID) {
		p.errorf(idv.Line, "node id %q contains invalid characters or is too long (allowed: A-Z a-z 0-9 _ - . :, at most 256)", n.ID)
	}
	what := fmt.Sprintf("node %q", n.ID)
	tv := scalar(m, "type")
	if tv == nil {
		p.errorf(m.Line, "%s has no type (want one of %s)", what, strings.Join(nodeTypes, ", "))
		return nil
	}
	typ := p.str(tv, "type")
	kind, err := model.ParseKind(typ)
	if err != nil {
		p.errorf(tv.Line, "%s: unknown type %q (want one of %s)%s", what, typ, strings.Join(nodeTypes, ", "), suggest.DidYouMean(typ, nodeTypes))
		return nil
	}
	n.Kind = kind
	keys := typeKeys[kind]
	what = fmt.Sprintf("%s %q", n.Kind, n.ID)
	var explicitDefault *bool
	hasDefaultLine, cacheLine := 0, 0
	ref := func(key string, v *yaml.Node) string {
		n.refLines[key] = v.Line
		return p.str(v, key)
	}
	p.fields(m, what, keys, func(key string, v *yaml.Node) {
		switch key {
		case "description":
			n.Description = p.str(v, key)
		case "tags":
			n.Tags = p.strings(v, key)
		case "type_":
			t, err := abi.ParseType(p.str(v, key))
			if err != nil {
				p.errorf(v.Line, "%s: %v", what, err)
			}
			n.ValueType = t
		case "default":
			n.Default = p.value(v, what+": default")
			n.HasDefault = true
		case "has_default":
			b := p.boolean(v, what+": has_default")
			explicitDefault = &b
			hasDefaultLine = v.Line
		case "module":
			n.Module = p.str(v, key)
		case "knot":
			n.Knot = p.str(v, key)
		case "input":
			n.Input = ref(key, v)
		case "over":
			n.Over = ref(key, v)
		case "of":
			n.Of = ref(key, v)
		case "bind":
			n.Bind = p.str(v, key)
			if !abi.ValidInputName(n.Bind) {
				p.errorf(v.Line, "%s: bind %q is not an identifier", what, n.Bind)
			}
		case "max_elements":
			if err := v.Decode(&n.MaxElements); err != nil || n.MaxElements <= 0 {
				p.errorf(v.Line, "%s: max_elements %q: want a positive integer", what, v.Value)
			}
		case "on_skip":
			s := p.str(v, key)
			var err error
			if n.OnSkip, err = model.ParseOnSkip(s); err != nil || s == "" {
				p.errorf(v.Line, "%s: unknown on_skip %q (want null, drop or skip)", what, s)
			}
		case "initial":
			n.Initial = p.value(v, what+": initial")
			n.HasInitial = true
		case "branches":
			n.Arms = p.strings(v, key)
			for _, a := range n.Arms {
				if !abi.ValidInputName(a) {
					p.errorf(v.Line, "%s: arm name %q is not an identifier", what, a)
				}
			}
			if len(n.Arms) == 0 {
				p.errorf(v.Line, "%s: a branch needs at least one arm", what)
			}
		case "predicate", "selector", "combine", "each":
			n.Fn = p.fn(v, what+": "+key)
		case "parents":
			n.Parents = map[string]string{}
			p.inputs(v, what+": parents", n, func(name string, val *yaml.Node) { n.Parents[name] = p.str(val, "parent id") })
		case "config":
			n.Config = map[string]any{}
			p.inputs(v, what+": config", n, func(name string, val *yaml.Node) { n.Config[name] = p.value(val, what+": config "+name) })
		case "error_policy":
			s := p.str(v, key)
			var err error
			if n.Policy, err = model.ParsePolicy(s); err != nil || s == "" {
				names := []string{"skip_if_parent_failed", "receive_errors", "require_all_parents"}
				p.errorf(v.Line, "%s: unknown error_policy %q (want skip_if_parent_failed, receive_errors or require_all_parents)%s",
					what, s, suggest.DidYouMean(s, names))
			}
		case "optional":
			n.Optional = p.boolean(v, what+": optional")
		case "validate_io":
			n.NoTypeCheck = !p.boolean(v, what+": validate_io")
		case "limits":
			n.Limits = p.limits(v, what)
		case "grants":
			n.Grants, n.GrantsLine = p.grants(v, what), v.Line
		case "instance":
			n.Instance = p.instance(v, what)
		case "cache":
			n.Cache = model.CacheOf(p.boolean(v, what+": cache"))
			cacheLine = v.Line
		}
	})
	if n.Cache != model.CacheDefault && n.Module == "" && (n.Fn == nil || n.Fn.Module == "") {
		p.errorf(cacheLine, "%s: cache applies to a module's knot, and this node runs none (expressions are never memoised)", what)
	}
	if !n.Grants.Empty() && n.Module == "" && (n.Fn == nil || n.Fn.Module == "") {
		p.errorf(n.GrantsLine, "%s: grants apply to a module's knot, and this node runs none", what)
	}
	if n.Instance != model.StateDefault && n.Module == "" && (n.Fn == nil || n.Fn.Module == "") {
		p.errorf(n.Line, "%s: instance applies to a module's knot, and this node runs none", what)
	}
	need := func(ok bool, msg string) {
		if !ok {
			p.errorf(m.Line, "%s: %s", what, msg)
		}
	}
	switch n.Kind {
	case model.KindParameter:
		n.ParamName = n.ID
		if _, after, ok := strings.Cut(n.ID, ":"); ok {
			n.ParamName = after
		}
		need(scalar(m, "type_") != nil, "a parameter needs a type_ (int, float, str, bool, bytes, list[T], dict[T], any)")
		if explicitDefault != nil {
			if !*explicitDefault && n.HasDefault {
				p.errorf(hasDefaultLine, "%s: has_default is false but a default is given", what)
			}
			n.HasDefault = n.HasDefault || *explicitDefault // has_default: true alone means a null default
		}
	case model.KindKnot, model.KindSource, model.KindSink:
		need(n.Module != "", "needs a module (a name from the modules table)")
		need(n.Knot != "", "needs a knot (its name inside the module)")
	case model.KindGate:
		need(n.Input != "", "needs an input (the node whose value it passes or stops)")
		need(n.Fn != nil, "needs a predicate (an expression, or {module, knot})")
	case model.KindBranch:
		need(n.Input != "", "needs an input (the node whose value it routes)")
		need(n.Fn != nil, "needs a selector (an expression, or {module, knot})")
		need(scalar(m, "branches") != nil, "needs branches (the arm names)")
	case model.KindMap:
		need(n.Over != "", "needs over (the node producing the list)")
		need(n.Fn != nil, "needs each (an expression, or {module, knot})")
	case model.KindReduce:
		need(n.Of != "", "needs of (the node producing the list)")
		need(n.Fn != nil, "needs combine (an expression, or {module, knot})")
	}
	for name := range n.Parents {
		if _, both := n.Config[name]; both {
			p.errorf(n.InputLine(name), "%s: input %q is in both parents and config", what, name)
		}
	}
	return n
}

// fn parses a predicate, selector, combine or each: an expression string,
// or {module, knot}.
func (p *parser) fn(v *yaml.Node, what string) *Fn {
	f := &Fn{Line: v.Line}
	switch v.Kind {
	case yaml.ScalarNode:
		f.Expr = p.str(v, what)
		if strings.TrimSpace(f.Expr) == "" {
			p.errorf(v.Line, "%s: empty expression", what)
		}
	case yaml.MappingNode:
		p.fields(v, what, []string{"module", "knot"}, func(key string, kv *yaml.Node) {
			if key == "module" {
				f.Module = p.str(kv, key)
			} else {
				f.Knot = p.str(kv, key)
			}
		})
		if f.Module == "" || f.Knot == "" {
			p.errorf(v.Line, "%s: want {module: <name>, knot: <name>}", what)
		}
	default:
		p.errorf(v.Line, "%s: want an expression or {module, knot}", what)
	}
	return f
}

func (p *parser) inputs(v *yaml.Node, what string, n *Node, f func(name string, val *yaml.Node)) {
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, "%s must be a mapping of input name to value", what)
		return
	}
	if n.keyLines == nil {
		n.keyLines = map[string]int{}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		if seen[k.Value] {
			p.errorf(k.Line, "%s: input %q repeated", what, k.Value)
			continue
		}
		seen[k.Value] = true
		if !abi.ValidInputName(k.Value) {
			p.errorf(k.Line, "%s: input name %q is not an identifier", what, k.Value)
			continue
		}
		n.keyLines[k.Value] = k.Line
		f(k.Value, val)
	}
}

// MaxValueNodes bounds the values of one pipeline file (defaults,
// constants, initial values, all together) and of one -p value, counted
// as decoded: every scalar, list and map, aliases expanded. A YAML alias
// costs a few bytes and can stand for a whole subtree, so a small file can
// describe an enormous value ("billion laughs"); this bound stops the
// expansion at about 30 MiB of decoded values.
const MaxValueNodes = 1 << 18

// value decodes a YAML value into the data model: nil, bool, int64,
// float64, string, []byte (from !!binary), []any and map[string]any.
func (p *parser) value(v *yaml.Node, what string) any {
	x, err := p.values.decode(v, 0)
	if err != nil {
		p.errorf(v.Line, "%s: %v", what, err)
	}
	return x
}

// valueDecoder decodes YAML values, counting what it produces against
// MaxValueNodes.
type valueDecoder struct{ nodes int }

func (d *valueDecoder) decode(v *yaml.Node, depth int) (any, error) {
	if depth > 64 {
		return nil, errors.New("nested deeper than 64 levels")
	}
	if v.Kind != yaml.AliasNode {
		if d.nodes++; d.nodes > MaxValueNodes {
			return nil, fmt.Errorf("the values expand to more than %d elements (YAML aliases?)", MaxValueNodes)
		}
	}
	switch v.Kind {
	case yaml.AliasNode:
		return d.decode(v.Alias, depth+1)
	case yaml.ScalarNode:
		switch v.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			err := v.Decode(&b)
			return b, err
		case "!!int":
			var i int64
			if err := v.Decode(&i); err != nil {
				return nil, fmt.Errorf("integer %s does not fit in int64", v.Value)
			}
			return i, nil
		case "!!float":
			var f float64
			err := v.Decode(&f)
			return f, err
		case "!!binary":
			b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(v.Value), ""))
			if err != nil {
				return nil, fmt.Errorf("bad !!binary: %w", err)
			}
			return b, nil
		default: // !!str, !!timestamp and anything else stay text
			return v.Value, nil
		}
	case yaml.SequenceNode:
		out := make([]any, len(v.Content))
		for i, e := range v.Content {
			x, err := d.decode(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(v.Content)/2)
		for i := 0; i+1 < len(v.Content); i += 2 {
			k := v.Content[i]
			if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
				return nil, fmt.Errorf("line %d: map keys must be strings", k.Line)
			}
			if _, dup := out[k.Value]; dup {
				return nil, fmt.Errorf("line %d: key %q repeated", k.Line, k.Value)
			}
			x, err := d.decode(v.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			out[k.Value] = x
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported YAML node")
}

// order checks references and cycles and sorts the nodes so that parents
// come before children, keeping the file's order where it can.
func (p *parser) order() {
	s := p.spec
	byID := map[string]*Node{} // arms map to their branch
	var ids []string
	for i := range s.Nodes {
		n := &s.Nodes[i]
		byID[n.ID] = n
		ids = append(ids, n.ID)
		for _, a := range n.Arms {
			byID[n.ID+"."+a] = n
			ids = append(ids, n.ID+"."+a)
		}
	}
	mods := map[string]bool{}
	var names []string
	for _, m := range s.Modules {
		mods[m.Name] = true
		names = append(names, m.Name)
	}
	checkModule := func(n *Node, module string, line int) {
		if module != "" && !mods[module] {
			declared := "none are declared"
			if len(names) > 0 {
				declared = "declared: " + strings.Join(names, ", ")
			}
			p.errorf(line, "%s %q: unknown module %q (%s)%s", n.Kind, n.ID, module, declared, suggest.DidYouMean(module, names))
		}
	}
	for i := range s.Nodes {
		n := &s.Nodes[i]
		checkModule(n, n.Module, n.Line)
		if n.Fn != nil {
			checkModule(n, n.Fn.Module, n.Fn.Line)
		}
		// "route:tool" is accepted for the arm "route.tool".
		norm := func(id string) string {
			if _, ok := byID[id]; !ok {
				if b, a, found := strings.Cut(id, ":"); found {
					if bn, ok := byID[b]; ok && slices.Contains(bn.Arms, a) {
						return b + "." + a
					}
				}
			}
			return id
		}
		for input, id := range n.Parents {
			n.Parents[input] = norm(id)
		}
		n.Input, n.Over, n.Of = norm(n.Input), norm(n.Over), norm(n.Of)
		for _, r := range n.Refs() {
			target, ok := byID[r.ID]
			switch {
			case !ok:
				p.errorf(r.Line, "%s %q: %s references unknown node %q%s", n.Kind, n.ID, describeRef(r), r.ID, suggest.DidYouMean(r.ID, ids))
			case target.Kind == model.KindBranch && r.ID == target.ID:
				arms := make([]string, len(target.Arms))
				for i, a := range target.Arms {
					arms[i] = target.ID + "." + a
				}
				p.errorf(r.Line, "%s %q: %s references branch %q itself; use one of its arms: %s", n.Kind, n.ID, describeRef(r), r.ID, strings.Join(arms, ", "))
			case target.Kind == model.KindSink:
				p.errorf(r.Line, "%s %q: %s references sink %q, which nothing may consume", n.Kind, n.ID, describeRef(r), r.ID)
			}
		}
	}
	for _, o := range s.Outputs {
		if _, ok := byID[o]; !ok {
			p.errorf(s.OutputsLine, "outputs: unknown node %q%s", o, suggest.DidYouMean(o, ids))
		}
	}
	if len(p.errs) > 0 {
		return
	}
	// Depth-first topological sort in file order; a back edge is a cycle.
	const (
		unvisited = iota
		active
		done
	)
	mark := make(map[string]int, len(s.Nodes))
	sorted := make([]Node, 0, len(s.Nodes))
	var stack []string
	var visit func(n *Node) bool
	visit = func(n *Node) bool {
		switch mark[n.ID] {
		case done:
			return true
		case active:
			i := slices.Index(stack, n.ID)
			cycle := append(slices.Clone(stack[i:]), n.ID)
			p.errorf(n.Line, "cycle: %s", strings.Join(cycle, " -> "))
			return false
		}
		mark[n.ID] = active
		stack = append(stack, n.ID)
		for _, r := range n.Refs() {
			if !visit(byID[r.ID]) {
				return false
			}
		}
		stack = stack[:len(stack)-1]
		mark[n.ID] = done
		sorted = append(sorted, *n)
		return true
	}
	for i := range s.Nodes {
		if !visit(&s.Nodes[i]) {
			return
		}
	}
	s.Nodes = sorted
}

func describeRef(r Ref) string {
	switch r.Input {
	case "input", "over", "of":
		if r.Line != 0 {
			return r.Input
		}
	}
	return fmt.Sprintf("input %q", r.Input)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ParseValue parses a YAML value (a scalar, or a flow sequence or mapping
// such as [1, 2] or {a: 1}) into the data model, as values in a pipeline
// file are parsed.
func ParseValue(s string) (any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(s), &doc); err != nil {
		return nil, fmt.Errorf("not a YAML value: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	var d valueDecoder
	return d.decode(doc.Content[0], 0)
}

// instance parses an instance state: what a knot's instance keeps between
// invocations.
func (p *parser) instance(v *yaml.Node, what string) model.State {
	s := p.str(v, "instance")
	st, err := model.ParseState(s)
	if err != nil || s == "" {
		p.errorf(v.Line, "%s: instance %q: want reset (restore the instance after every invocation), fresh (a new one each time) or keep%s",
			what, s, suggest.DidYouMean(s, []string{"reset", "fresh", "keep"}))
	}
	return st
}
