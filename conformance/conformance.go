// Package conformance exercises a knot module against the ABI: the
// handshake, the manifest, each knot's declared types on sample inputs,
// the shape of its errors for missing and mistyped inputs, determinism,
// and memory across repeated calls. `pirn conformance` prints its report;
// CI runs it on every example module.
package conformance

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/model"
)

// Status is the result of one check.
type Status string

// Statuses.
const (
	Pass Status = "pass"
	Warn Status = "warn" // allowed by the ABI, but a user would not expect it
	Fail Status = "fail"
	Skip Status = "skip" // does not apply to this module or knot
)

// Check is one check's result.
type Check struct {
	Knot   string `json:"knot,omitempty"` // "" for the module's checks
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
}

// Report is the result of checking one module.
type Report struct {
	Module string  `json:"module"`
	Digest string  `json:"digest"`
	ABI    string  `json:"abi"`
	Checks []Check `json:"checks"`
}

// Count returns how many checks have status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}

// OK reports whether no check failed.
func (r *Report) OK() bool { return r.Count(Fail) == 0 }

// Options configure a run.
type Options struct {
	Load host.LoadOptions // how to run the module
	// Calls is the number of repeated calls of the memory check (default
	// 2000, after 200 to warm up).
	Calls int
	// Timeout bounds each call (default 10s).
	Timeout time.Duration
}

// Errors only the host produces: a knot that causes one on valid input
// has failed, whatever its inputs were.
var hostErrors = []string{host.ErrTrap, host.ErrTimeout, host.ErrMemory, host.ErrLimit, host.ErrABI, host.ErrExit, host.ErrInstantiate}

const warmup = 200

// Run checks the module wasm (named name in the report) on h.
func Run(ctx context.Context, h *host.Host, name string, wasm []byte, opts Options) *Report {
	if opts.Calls <= 0 {
		opts.Calls = 2000
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	abiName := string(opts.Load.ABI)
	if abiName == "" {
		abiName = string(host.ABIPirn)
	}
	r := &Report{Module: name, Digest: cas.Sum(wasm).String(), ABI: abiName}
	add := func(knot, check string, s Status, format string, args ...any) {
		r.Checks = append(r.Checks, Check{Knot: knot, Name: check, Status: s, Detail: fmt.Sprintf(format, args...)})
	}
	m, err := h.LoadWith(ctx, name, wasm, opts.Load)
	if err != nil {
		add("", "handshake", Fail, "%v", err)
		return r
	}
	man := m.Manifest()
	add("", "handshake", Pass, "ABI version %d; %d knots: %s", man.ABI, len(man.Knots), strings.Join(man.KnotNames(), ", "))
	var undocumented []string
	for _, k := range man.Knots {
		if strings.TrimSpace(k.Doc) == "" {
			undocumented = append(undocumented, k.Name)
		}
	}
	if len(undocumented) > 0 {
		add("", "manifest", Warn, "well-formed, but without a doc line: %s", strings.Join(undocumented, ", "))
	} else {
		add("", "manifest", Pass, "well-formed; every knot has a doc line")
	}
	for i := range man.Knots {
		c := &knotChecker{ctx: ctx, m: m, spec: &man.Knots[i], opts: opts, add: add}
		c.run()
	}
	return r
}

type knotChecker struct {
	ctx  context.Context
	m    *host.Module
	spec *abi.KnotSpec
	opts Options
	add  func(knot, check string, s Status, format string, args ...any)
}

func (c *knotChecker) knot(lim model.Limits) (*host.Knot, error) {
	lim.Timeout = c.opts.Timeout
	k, err := c.m.Knot(host.KnotConfig{Name: c.spec.Name, Limits: lim, NoTypeCheck: true})
	if err != nil {
		return nil, err
	}
	return k, k.Prepare(c.ctx)
}

func (c *knotChecker) run() {
	name := c.spec.Name
	k, err := c.knot(model.Limits{})
	if err != nil {
		c.add(name, "knot", Fail, "%v", err)
		return
	}
	out := abi.MustParseType(c.spec.Output)
	calls := c.samples()

	// Sample inputs of the declared types: no host-level failure, and ok
	// values of the declared output type.
	var okCall *host.Call
	counts := map[abi.Outcome]int{}
	var errTypes, problems []string
	coerced := 0
	for _, call := range calls {
		r := k.Invoke(c.ctx, call)
		counts[r.Outcome]++
		switch r.Outcome {
		case abi.OutcomeOK:
			if okCall == nil {
				okCall = call
			}
			if out.Matches(r.Value) {
				break
			}
			if v, _ := cas.Decode(r.Value); v != nil {
				if _, err := out.Coerce(v); err == nil {
					coerced++
					break
				}
			}
			problems = append(problems, fmt.Sprintf("on %s returned %s, which is not %s", describe(call), show(r.Value), out))
		case abi.OutcomeErr:
			if slices.Contains(hostErrors, r.Error.Type) {
				problems = append(problems, fmt.Sprintf("on %s: %s: %s", describe(call), r.Error.Type, firstLine(r.Error.Message)))
			} else if !slices.Contains(errTypes, r.Error.Type) {
				errTypes = append(errTypes, r.Error.Type)
			}
		}
	}
	summary := fmt.Sprintf("%d calls: %d ok, %d err%s, %d skipped", len(calls), counts[abi.OutcomeOK], counts[abi.OutcomeErr], list(errTypes), counts[abi.OutcomeSkip])
	switch {
	case len(problems) > 0:
		c.add(name, "sample inputs", Fail, "%s; %s", summary, strings.Join(problems, "; "))
	case coerced > 0:
		c.add(name, "sample inputs", Warn, "%s; %d ok values needed coercing to %s (the host coerces them, but a knot should return its declared type)", summary, coerced, out)
	default:
		c.add(name, "sample inputs", Pass, "%s; outputs are %s", summary, out)
	}

	// A call without the required inputs, and one with a mistyped input,
	// get an err from the knot, not a trap.
	var required []string
	for _, in := range c.spec.Inputs {
		if !in.Optional {
			required = append(required, in.Name)
		}
	}
	if len(required) == 0 {
		c.add(name, "missing input", Skip, "no required inputs")
	} else {
		c.expectErr(k, "missing input", &host.Call{RunID: "conformance", KnotID: name}, "without "+strings.Join(required, ", "))
	}
	if call, what, ok := c.mistyped(); ok {
		c.expectErr(k, "mistyped input", call, what)
	} else {
		c.add(name, "mistyped input", Skip, "every input accepts any value")
	}

	// From here on, one instance of the knot's own (so that its memory
	// and state are the knot's alone).
	// Its high-water mark is its memory limit, so that a leak ends in a
	// MemoryLimit err rather than a quiet replacement.
	single, err := c.knot(model.Limits{MaxInstances: 1, MaxInvocations: c.uniqueMaxInvocations(), Memory: host.DefaultMemory, HighWater: host.DefaultMemory})
	if err != nil {
		c.add(name, "knot", Fail, "%v", err)
		return
	}

	// The same input twice gives the same response.
	if len(calls) > 0 {
		a, b := single.Invoke(c.ctx, calls[0]), single.Invoke(c.ctx, calls[0])
		if da, db := responseDigest(a), responseDigest(b); da != db {
			c.add(name, "deterministic", Warn, "two calls on %s answered %s and then %s (knots should be pure functions of their inputs)", describe(calls[0]), outcome(a), outcome(b))
		} else {
			c.add(name, "deterministic", Pass, "the same input gave the same answer twice (%s)", a.Outcome)
		}
	}

	c.memory(single, okCall)
}

// expectErr calls k and wants an err from the knot itself.
func (c *knotChecker) expectErr(k *host.Knot, check string, call *host.Call, what string) {
	r := k.Invoke(c.ctx, call)
	switch {
	case r.Outcome == abi.OutcomeErr && slices.Contains(hostErrors, r.Error.Type):
		c.add(c.spec.Name, check, Fail, "%s: %s: %s (a knot should answer bad input with an err of its own)", what, r.Error.Type, firstLine(r.Error.Message))
	case r.Outcome == abi.OutcomeErr && r.Error.Type == host.ErrType:
		c.add(c.spec.Name, check, Warn, "%s: err %s: %s (the host reserves TypeError for its own check; a knot should answer InputError, docs/abi.md §2.3)", what, r.Error.Type, firstLine(r.Error.Message))
	case r.Outcome == abi.OutcomeErr:
		c.add(c.spec.Name, check, Pass, "%s: err %s: %s", what, r.Error.Type, firstLine(r.Error.Message))
	default:
		c.add(c.spec.Name, check, Warn, "%s: answered %s (the host checks types before a call, but a knot run with validate_io: false sees this)", what, outcome(r))
	}
}

// uniqueMaxInvocations gives each knot's single-instance pool limits of
// its own: the host shares a pool between the knots of a module that have
// equal limits. It is large enough never to recycle the instance during
// the checks.
func (c *knotChecker) uniqueMaxInvocations() int {
	return 1<<30 - slices.IndexFunc(c.m.Manifest().Knots, func(k abi.KnotSpec) bool { return k.Name == c.spec.Name })
}

// memory calls the knot many times on one instance and fails if its
// memory keeps growing. It prefers bulky inputs (8 KiB strings and bytes,
// long lists), so that a knot that keeps its inputs leaks fast.
func (c *knotChecker) memory(k *host.Knot, call *host.Call) {
	name := c.spec.Name
	if c.m.ABI() == host.ABICommand {
		c.add(name, "memory", Skip, "a WASI command runs in a fresh instance per call")
		return
	}
	if call == nil {
		c.add(name, "memory", Skip, "no sample input gave an ok value to repeat")
		return
	}
	if bulky := c.bulky(); bulky != nil {
		if r := k.Invoke(c.ctx, bulky); r.Outcome == abi.OutcomeOK {
			call = bulky
		}
	}
	n := c.opts.Calls
	began := time.Now()
	repeat := func(times int) (string, bool) {
		for i := range times {
			if r := k.Invoke(c.ctx, call); r.Outcome == abi.OutcomeErr && slices.Contains(hostErrors, r.Error.Type) {
				return fmt.Sprintf("call %d of %s: %s: %s", i+1, describe(call), r.Error.Type, firstLine(r.Error.Message)), false
			}
		}
		return "", true
	}
	if msg, ok := repeat(warmup); !ok {
		c.add(name, "memory", Fail, "%s", msg)
		return
	}
	// A garbage-collected guest's heap grows for a while before it
	// settles; a leak never settles. Repeat phases of n calls until two in
	// a row leave memory where it was.
	start := k.Stats()
	prev, still := start, 0
	for phase := 1; phase <= maxPhases; phase++ {
		if msg, ok := repeat(n); !ok {
			c.add(name, "memory", Fail, "%s", msg)
			return
		}
		st := k.Stats()
		if st.Created != start.Created || st.Idle != 1 || start.Idle != 1 {
			c.add(name, "memory", Fail, "the instance was discarded during the calls (%d instances started), which a leak would explain", st.Created)
			return
		}
		if grown := st.IdleMemory - min(st.IdleMemory, start.IdleMemory); grown > growthBound {
			c.add(name, "memory", Fail, "%d calls on one instance: linear memory grew from %s to %s (a leak in the knot or its PDK)",
				warmup+phase*n, mib(start.IdleMemory), mib(st.IdleMemory))
			return
		}
		if st.IdleMemory > prev.IdleMemory {
			still = 0
		} else if still++; still == 2 {
			c.add(name, "memory", Pass, "%d calls on one instance in %s: linear memory %s after %d warm-up calls, and steady at %s from call %d on",
				warmup+phase*n, time.Since(began).Round(time.Millisecond), mib(start.IdleMemory), warmup, mib(st.IdleMemory), warmup+(phase-2)*n)
			return
		}
		prev = st
	}
	c.add(name, "memory", Warn, "%d calls on one instance: linear memory grew from %s to %s, within %s, but was still growing over the last %d calls (a slow leak, or a heap still settling)",
		warmup+maxPhases*n, mib(start.IdleMemory), mib(prev.IdleMemory), mib(growthBound), n)
}

// The memory check runs at most maxPhases×Calls calls, and fails when
// memory grows by more than growthBound: a garbage-collected guest's heap
// settles well within it (a Go guest grows by up to 5 MiB), and a knot
// that keeps its 8 KiB inputs passes it within 2000 calls.
const (
	maxPhases   = 20
	growthBound = 16 << 20
)

func mib(n uint64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }

// samples returns calls binding every declared input (or, for a knot
// that takes only further inputs, two of them) to sample values of its
// type.
func (c *knotChecker) samples() []*host.Call {
	type input struct {
		name string
		vals []any
	}
	var ins []input
	for _, in := range c.spec.Inputs {
		ins = append(ins, input{in.Name, samplesOf(abi.MustParseType(in.Type))})
	}
	if len(ins) == 0 && c.spec.Rest != "" {
		rest := samplesOf(abi.MustParseType(c.spec.Rest))
		ins = append(ins, input{"a", rest}, input{"b", rest})
	}
	n := 1
	for _, in := range ins {
		n = max(n, len(in.vals))
	}
	calls := make([]*host.Call, 0, n)
	for i := range n {
		call := &host.Call{RunID: "conformance", KnotID: c.spec.Name}
		for _, in := range ins {
			b, err := cas.Encode(in.vals[i%len(in.vals)])
			if err != nil {
				panic(err) // samples are in the data model
			}
			call.Inputs = append(call.Inputs, abi.Arg{Name: in.name, Value: b})
		}
		abi.SortArgs(call.Inputs)
		calls = append(calls, call)
	}
	return calls
}

// bulky returns a call binding every input to a large value of its type,
// or nil if no input can be large.
func (c *knotChecker) bulky() *host.Call {
	call := &host.Call{RunID: "conformance", KnotID: c.spec.Name}
	large := false
	for _, in := range c.spec.Inputs {
		v, big := bulkOf(abi.MustParseType(in.Type))
		large = large || big
		b, err := cas.Encode(v)
		if err != nil {
			panic(err)
		}
		call.Inputs = append(call.Inputs, abi.Arg{Name: in.Name, Value: b})
	}
	if !large {
		return nil
	}
	abi.SortArgs(call.Inputs)
	return call
}

// bulkOf returns a value of type t of 8 KiB or 256 elements where t
// allows: enough that a knot keeping its inputs leaks 4 MiB or more per
// 2000 calls.
func bulkOf(t abi.Type) (any, bool) {
	const size = 8 << 10
	switch t.Kind {
	case abi.KindStr:
		return strings.Repeat("pirn ", size/5), true
	case abi.KindBytes:
		return make([]byte, size), true
	case abi.KindList:
		e, _ := bulkOf(elem(t))
		if elem(t).Kind == abi.KindStr || elem(t).Kind == abi.KindBytes {
			return []any{e}, true
		}
		list := make([]any, 256)
		for i := range list {
			list[i] = e
		}
		return list, true
	case abi.KindDict:
		e, _ := bulkOf(elem(t))
		return map[string]any{"a": e}, elem(t).Kind == abi.KindStr || elem(t).Kind == abi.KindBytes
	case abi.KindOptional:
		return bulkOf(elem(t))
	}
	s := samplesOf(t)
	return s[min(1, len(s)-1)], false
}

// samplesOf returns values of type t, the simplest first.
func samplesOf(t abi.Type) []any {
	switch t.Kind {
	case abi.KindNull:
		return []any{nil}
	case abi.KindBool:
		return []any{false, true}
	case abi.KindInt:
		return []any{int64(0), int64(1), int64(-7), int64(1) << 40}
	case abi.KindFloat:
		return []any{0.0, 2.5, -0.001, 1e300}
	case abi.KindStr:
		return []any{"", "hello", "héllo wörld, 2 words", "a\nb c"}
	case abi.KindBytes:
		return []any{[]byte{}, []byte{0, 1, 2, 255}}
	case abi.KindList:
		e := samplesOf(elem(t))
		return []any{[]any{}, []any{e[0]}, []any{e[len(e)-1], e[0], e[len(e)/2]}}
	case abi.KindDict:
		e := samplesOf(elem(t))
		return []any{map[string]any{}, map[string]any{"a": e[0]}, map[string]any{"a": e[len(e)-1], "b": e[0]}}
	case abi.KindOptional:
		return append([]any{nil}, samplesOf(elem(t))...)
	}
	return []any{nil, int64(1), "text", []any{int64(1), "a"}, map[string]any{"k": 1.5}}
}

// elem is the element type of a list, dict or optional (any when bare).
func elem(t abi.Type) abi.Type {
	if t.Elem == nil {
		return abi.Type{Kind: abi.KindAny}
	}
	return *t.Elem
}

// mistyped returns a call with the first typed input bound to a value
// of another type.
func (c *knotChecker) mistyped() (*host.Call, string, bool) {
	for _, in := range c.spec.Inputs {
		t := abi.MustParseType(in.Type)
		wrong, ok := wrongFor(t)
		if !ok {
			continue
		}
		call := c.samples()[0]
		b, _ := cas.Encode(wrong)
		for i := range call.Inputs {
			if call.Inputs[i].Name == in.Name {
				call.Inputs[i].Value = b
			}
		}
		return call, fmt.Sprintf("%s (%s) = %s", in.Name, t, show(b)), true
	}
	return nil, "", false
}

func wrongFor(t abi.Type) (any, bool) {
	switch t.Kind {
	case abi.KindAny:
		return nil, false
	case abi.KindOptional:
		return wrongFor(elem(t))
	case abi.KindStr:
		return []any{int64(1)}, true
	case abi.KindList:
		return map[string]any{"not": "a list"}, true
	case abi.KindDict:
		return []any{"not", "a dict"}, true
	case abi.KindNull:
		return "not null", true
	}
	return map[string]any{"not": t.String()}, true
}

func responseDigest(r abi.Response) string {
	switch r.Outcome {
	case abi.OutcomeOK:
		return "ok " + cas.Sum(r.Value).String()
	case abi.OutcomeErr:
		return "err " + r.Error.Type + " " + r.Error.Message
	}
	return "skip " + r.Skip.Reason
}

func outcome(r abi.Response) string {
	switch r.Outcome {
	case abi.OutcomeOK:
		return "ok " + show(r.Value)
	case abi.OutcomeErr:
		return fmt.Sprintf("err %s: %s", r.Error.Type, firstLine(r.Error.Message))
	}
	return "skip: " + r.Skip.Reason
}

// describe shows a call's inputs briefly.
func describe(c *host.Call) string {
	if len(c.Inputs) == 0 {
		return "no inputs"
	}
	parts := make([]string, len(c.Inputs))
	for i, a := range c.Inputs {
		parts[i] = a.Name + "=" + show(a.Value)
	}
	return strings.Join(parts, ", ")
}

// show renders a canonical value briefly.
func show(b []byte) string {
	v, err := cas.Decode(b)
	if err != nil {
		return fmt.Sprintf("<%d bytes: %v>", len(b), err)
	}
	var sb strings.Builder
	render(&sb, v)
	s := sb.String()
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// render writes v in a JSON-like notation, bytes as h'hex'.
func render(b *strings.Builder, v any) {
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case string:
		fmt.Fprintf(b, "%q", v)
	case []byte:
		fmt.Fprintf(b, "h'%x'", v)
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			render(b, e)
		}
		b.WriteByte(']')
	case map[string]any:
		keys := slices.Sorted(maps.Keys(v))
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(b, "%q: ", k)
			render(b, v[k])
		}
		b.WriteByte('}')
	default:
		fmt.Fprint(b, v)
	}
}

func list(types []string) string {
	if len(types) == 0 {
		return ""
	}
	return " (" + strings.Join(types, ", ") + ")"
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
