package scheduler_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/model"
	"github.com/pirn-wasm/pirn/scheduler"
)

// The property test builds random tapestries (every node kind, every error
// policy, optional knots, parents bound under several inputs, Maps whose
// list is also a shared input, random failures, skips and panics, random
// worker counts and subset runs), runs each with the scheduler, and
// compares every node's outcome and value with a deliberately simple
// reference interpreter: sequential, recursive, written from the package's
// documented semantics and sharing no code with the scheduler.
//
// CI runs a fixed seed and a bounded number of cases; run it longer with
//
//	go test ./scheduler -run TestSchedulerAgreesWithReference -prop.cases 200000 -prop.seed 0
//
// (seed 0 picks a random seed and logs it).
var (
	propCases = flag.Int("prop.cases", 2000, "random tapestries the property test runs")
	propSeed  = flag.Uint64("prop.seed", 1, "the property test's seed; 0 picks one at random")
)

// gkind is a generated node's kind.
type gkind int

const (
	gParam gkind = iota
	gKnot
	gSource
	gSink
	gAggregator
	gGate
	gBranch
	gArm // generated with its branch
	gMap
	gReduce
)

// gnode is a generated node: everything both interpreters need.
type gnode struct {
	id       string
	kind     gkind
	parents  [][2]string // (input, parent id); the first is the primary for gate, branch, map, reduce
	config   map[string]any
	policy   model.Policy
	optional bool
	salt     int64
	arms     []string // branch
	branch   string   // arm
	arm      string   // arm
	onSkip   model.OnSkip
	pairwise bool
	initial  int64
	value    any // parameter
}

// outcome is what either interpreter says of one node (or Map element).
type outcome struct {
	Outcome string
	Value   any    // ok
	Reason  string // skipped
	ErrType string // err
}

// num folds any value of the test's data model into an int.
func num(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case nil:
		return 7
	case []any:
		s := int64(len(x)) * 3
		for _, e := range x {
			s += num(e)
		}
		return s % 100003
	case map[string]any: // a receive_errors document
		switch {
		case hasKey(x, "ok"):
			return num(x["ok"]) + 1
		case hasKey(x, "err"):
			return 1000
		case hasKey(x, "skip"):
			return 2000
		}
		return 3000
	}
	panic(fmt.Sprintf("num(%T)", v))
}

func hasKey(m map[string]any, k string) bool { _, ok := m[k]; return ok }

// mix is every generated function: deterministic in its inputs and salt,
// it errs, skips, panics, returns a list or an int.
func mix(salt int64, in map[string]any) (any, error) {
	h := salt
	for i, name := range slices.Sorted(maps.Keys(in)) {
		h = (h + num(in[name])*int64(i+2) + int64(len(name))) % 100003
	}
	if h < 0 {
		h = -h
	}
	switch {
	case h%19 == 0:
		panic(fmt.Sprintf("panic at %d", h))
	case h%13 == 0:
		return nil, fmt.Errorf("fails at %d", h)
	case h%17 == 0:
		return nil, skipErr("fnskip")
	case h%3 == 0:
		list := make([]any, h%5)
		for i := range list {
			list[i] = h + int64(i)
		}
		return list, nil
	}
	return h % 1000, nil
}

// selector returns one of arms, or a name that is not an arm.
func selector(salt int64, arms []string, in map[string]any) (any, error) {
	v, err := mix(salt, in)
	if err != nil {
		return nil, err
	}
	i := int(num(v) % int64(len(arms)+1))
	if i == len(arms) {
		return "nowhere", nil
	}
	return arms[i], nil
}

// predicate returns an int whose truth decides a gate.
func predicate(salt int64, in map[string]any) (any, error) {
	v, err := mix(salt, in)
	if err != nil {
		return nil, err
	}
	return num(v) % 3, nil // 0 is falsy
}

// generate makes a random tapestry description.
func generate(r *rand.Rand) []*gnode {
	var nodes []*gnode
	consumable := func() []*gnode { // nodes another node may take as a parent
		var out []*gnode
		for _, n := range nodes {
			if n.kind != gSink && n.kind != gBranch {
				out = append(out, n)
			}
		}
		return out
	}
	pick := func() string {
		c := consumable()
		return c[r.IntN(len(c))].id
	}
	for i := range 1 + r.IntN(2) {
		var v any = int64(r.IntN(50))
		if r.IntN(3) == 0 {
			v = []any{int64(r.IntN(9)), int64(r.IntN(9)), int64(r.IntN(9))}[:r.IntN(4)]
		}
		nodes = append(nodes, &gnode{id: "p" + strconv.Itoa(i), kind: gParam, value: v})
	}
	policies := []model.Policy{model.SkipIfParentFailed, model.ReceiveErrors, model.RequireAllParents}
	size := 3 + r.IntN(25)
	for i := range size {
		id := "n" + strconv.Itoa(i)
		n := &gnode{id: id, salt: int64(r.IntN(1000)), optional: r.IntN(5) == 0, policy: policies[r.IntN(3)]}
		inputs := func(k int) {
			for j := range k {
				name := string(rune('a' + j))
				if r.IntN(4) == 0 {
					n.config = map[string]any{name + "c": int64(r.IntN(9))}
				}
				// Often the same parent as the previous input.
				if j > 0 && r.IntN(3) == 0 {
					n.parents = append(n.parents, [2]string{name, n.parents[j-1][1]})
				} else {
					n.parents = append(n.parents, [2]string{name, pick()})
				}
			}
		}
		single := func(edge string) {
			if n.policy == model.ReceiveErrors {
				n.policy = model.SkipIfParentFailed
			}
			n.parents = [][2]string{{edge, pick()}}
		}
		switch k := r.IntN(10); {
		case k < 3:
			n.kind = gKnot
			inputs(1 + r.IntN(3))
		case k == 3:
			n.kind = gSource
			n.config = map[string]any{"c": int64(r.IntN(9))}
		case k == 4:
			n.kind = gSink
			inputs(1 + r.IntN(2))
		case k == 5:
			n.kind = gAggregator
			inputs(1 + r.IntN(4))
		case k == 6:
			n.kind = gGate
			single("input")
		case k == 7:
			n.kind = gBranch
			single("input")
			n.arms = []string{"l", "r", "m"}[:1+r.IntN(3)]
		case k == 8:
			n.kind = gMap
			single("over")
			n.onSkip = model.OnSkip(r.IntN(3))
			for j := range r.IntN(3) {
				p := pick()
				if r.IntN(2) == 0 {
					p = n.parents[0][1] // the list is also a shared input
				}
				n.parents = append(n.parents, [2]string{"s" + strconv.Itoa(j), p})
			}
			if r.IntN(3) == 0 {
				n.config = map[string]any{"k": int64(r.IntN(9))}
			}
		default:
			n.kind = gReduce
			single("of")
			n.pairwise = r.IntN(2) == 0
			n.initial = int64(r.IntN(20))
		}
		nodes = append(nodes, n)
		for _, a := range n.arms {
			nodes = append(nodes, &gnode{id: id + "." + a, kind: gArm, branch: id, arm: a, parents: [][2]string{{"chosen", id}}})
		}
	}
	return nodes
}

// build makes the scheduler's tapestry from the description; every
// function call first calls called (if not nil).
func build(t *testing.T, nodes []*gnode, called func()) *scheduler.Tapestry {
	t.Helper()
	if called == nil {
		called = func() {}
	}
	tp := scheduler.NewTapestry()
	parents := func(n *gnode, from int) map[string]string {
		m := map[string]string{}
		for _, p := range n.parents[from:] {
			m[p[0]] = p[1]
		}
		return m
	}
	for _, n := range nodes {
		salt := n.salt
		knot := scheduler.Fn{Invoker: fn(func(_ context.Context, in map[string]any) (any, error) { called(); return mix(salt, in) }), Name: "host:mix"}
		var err error
		switch n.kind {
		case gParam:
			_, err = tp.AddParameter(scheduler.ParamDecl{ID: n.id, Name: n.id, Type: abi.Any})
		case gKnot, gSource, gSink, gAggregator:
			kind := map[gkind]model.Kind{gKnot: model.KindKnot, gSource: model.KindSource, gSink: model.KindSink, gAggregator: model.KindAggregator}[n.kind]
			_, err = tp.AddKnot(scheduler.KnotDecl{ID: n.id, Kind: kind, Fn: knot, Parents: parents(n, 0), Config: n.config, Policy: n.policy, Optional: n.optional})
		case gGate:
			pred := scheduler.Fn{Invoker: fn(func(_ context.Context, in map[string]any) (any, error) { called(); return predicate(salt, in) }), Name: "host:pred"}
			_, err = tp.AddGate(scheduler.GateDecl{ID: n.id, Input: n.parents[0][1], Fn: pred, Policy: n.policy, Optional: n.optional})
		case gBranch:
			arms := n.arms
			sel := scheduler.Fn{Invoker: fn(func(_ context.Context, in map[string]any) (any, error) { called(); return selector(salt, arms, in) }), Name: "host:sel"}
			_, err = tp.AddBranch(scheduler.BranchDecl{ID: n.id, Input: n.parents[0][1], Fn: sel, Arms: n.arms, Policy: n.policy, Optional: n.optional})
		case gArm: // added with its branch
		case gMap:
			_, err = tp.AddMap(scheduler.MapDecl{ID: n.id, Over: n.parents[0][1], Fn: knot, Bind: "item", Parents: parents(n, 1), Config: n.config,
				OnSkip: n.onSkip, Policy: n.policy, Optional: n.optional})
		case gReduce:
			_, err = tp.AddReduce(scheduler.ReduceDecl{ID: n.id, Of: n.parents[0][1], Fn: knot, Pairwise: n.pairwise, Initial: n.initial,
				Policy: n.policy, Optional: n.optional})
		}
		if err != nil {
			t.Fatalf("build %s: %v", n.id, err)
		}
	}
	return tp
}

// reference interprets the description sequentially. It returns the
// outcome of every node in the shed of terminals (nil: every terminal),
// and of every Map element ("<map>:<index>").
func reference(nodes []*gnode, terminals []string) map[string]outcome {
	byID := map[string]*gnode{}
	consumed := map[string]bool{}
	for _, n := range nodes {
		byID[n.id] = n
		for _, p := range n.parents {
			consumed[p[1]] = true
		}
	}
	if terminals == nil {
		for _, n := range nodes {
			if !consumed[n.id] {
				terminals = append(terminals, n.id)
			}
		}
	}
	out := map[string]outcome{}
	through := map[string]any{} // a branch's input, for its arms
	var eval func(id string) outcome
	// call runs a function as the scheduler would: a panic is an err.
	call := func(f func() (any, error)) (o outcome) {
		defer func() {
			if p := recover(); p != nil {
				o = outcome{Outcome: "err", ErrType: scheduler.ErrPanic}
			}
		}()
		v, err := f()
		switch e := err.(type) {
		case nil:
			return outcome{Outcome: "ok", Value: v}
		case skipErr:
			return outcome{Outcome: "skipped", Reason: string(e)}
		}
		return outcome{Outcome: "err", ErrType: "TestError"}
	}
	eval = func(id string) outcome {
		if o, done := out[id]; done {
			return o
		}
		n := byID[id]
		var o outcome
		defer func() { out[id] = o }()
		if n.kind == gParam {
			o = outcome{Outcome: "ok", Value: n.value}
			return o
		}
		// The policy, over each parent as its children see it: an
		// optional knot's err is a skip.
		seen := func(p string) string {
			po := eval(p)
			if po.Outcome == "err" && byID[p].optional {
				return "skipped"
			}
			return po.Outcome
		}
		bad := false
		for _, p := range n.parents { // every parent runs, whatever the others did
			if seen(p[1]) != "ok" {
				bad = true
			}
		}
		if bad {
			switch n.policy {
			case model.SkipIfParentFailed:
				o = outcome{Outcome: "skipped", Reason: scheduler.ReasonParentFailed}
				return o
			case model.RequireAllParents:
				o = outcome{Outcome: "err", ErrType: scheduler.ErrParents}
				return o
			}
		}
		in := map[string]any{}
		for k, v := range n.config {
			in[k] = v
		}
		arg := func(p string) any {
			po := eval(p)
			if n.policy != model.ReceiveErrors {
				return po.Value
			}
			switch seen(p) {
			case "ok":
				return map[string]any{"ok": po.Value}
			case "err":
				return map[string]any{"err": "…"}
			}
			return map[string]any{"skip": "…"}
		}
		primary := func() any { return eval(n.parents[0][1]).Value }
		switch n.kind {
		case gKnot, gSource, gSink, gAggregator:
			for _, p := range n.parents {
				in[p[0]] = arg(p[1])
			}
			o = call(func() (any, error) { return mix(n.salt, in) })
			if n.kind == gSink && o.Outcome == "ok" {
				o.Value = nil
			}
		case gGate:
			v := primary()
			o = call(func() (any, error) { return predicate(n.salt, map[string]any{"input": v}) })
			if o.Outcome == "ok" {
				if o.Value == int64(0) {
					o = outcome{Outcome: "skipped", Reason: scheduler.ReasonGateClosed}
				} else {
					o.Value = v
				}
			}
		case gBranch:
			v := primary()
			o = call(func() (any, error) { return selector(n.salt, n.arms, map[string]any{"input": v}) })
			if o.Outcome == "ok" && !slices.Contains(n.arms, o.Value.(string)) {
				o = outcome{Outcome: "err", ErrType: scheduler.ErrBranch}
			}
			through[n.id] = v
		case gArm:
			if eval(n.branch).Value != n.arm {
				o = outcome{Outcome: "skipped", Reason: scheduler.ReasonBranchNotSelected}
			} else {
				o = outcome{Outcome: "ok", Value: through[n.branch]}
			}
		case gMap:
			list, isList := primary().([]any)
			if !isList {
				o = outcome{Outcome: "err", ErrType: scheduler.ErrType}
				return o
			}
			for _, p := range n.parents[1:] {
				in[p[0]] = arg(p[1])
			}
			res := []any{}
			var firstErr, firstSkip bool
			for i, item := range list {
				elemIn := maps.Clone(in)
				elemIn["item"] = item
				eo := call(func() (any, error) { return mix(n.salt, elemIn) })
				out[n.id+":"+strconv.Itoa(i)] = eo
				switch eo.Outcome {
				case "ok":
					res = append(res, eo.Value)
				case "err":
					firstErr = true
				case "skipped":
					switch n.onSkip {
					case model.OnSkipNull:
						res = append(res, nil)
					case model.OnSkipSkip:
						firstSkip = true
					}
				}
			}
			switch {
			case firstErr:
				o = outcome{Outcome: "err", ErrType: scheduler.ErrElement}
			case firstSkip:
				o = outcome{Outcome: "skipped", Reason: scheduler.ReasonElementSkipped}
			default:
				o = outcome{Outcome: "ok", Value: res}
			}
		case gReduce:
			list, isList := primary().([]any)
			if !isList {
				o = outcome{Outcome: "err", ErrType: scheduler.ErrType}
				return o
			}
			if !n.pairwise {
				o = call(func() (any, error) { return mix(n.salt, map[string]any{"items": list}) })
				return o
			}
			acc := any(n.initial)
			for _, item := range list {
				o = call(func() (any, error) { return mix(n.salt, map[string]any{"acc": acc, "item": item}) })
				if o.Outcome != "ok" {
					return o
				}
				acc = o.Value
			}
			o = outcome{Outcome: "ok", Value: acc}
		}
		return o
	}
	for _, id := range terminals {
		eval(id)
	}
	return out
}

// observed reads the scheduler's result in the same shape.
func observed(res *scheduler.Result) map[string]outcome {
	types := map[cas.Digest]string{}
	for _, e := range res.Errors {
		types[e.ID] = e.Type
	}
	out := map[string]outcome{}
	for _, r := range res.Records {
		o := outcome{Outcome: string(r.Outcome)}
		switch r.Outcome {
		case lineage.OK:
			if r.Kind != lineage.KindElement {
				o.Value = res.Outputs[r.KnotID]
			} else {
				o.Value = "element" // compared through the Map's output
			}
		case lineage.Skipped:
			o.Reason = r.SkipReason
		case lineage.Err:
			o.ErrType = types[r.ErrorID]
		}
		out[r.KnotID] = o
	}
	return out
}

func TestSchedulerAgreesWithReference(t *testing.T) {
	seed := *propSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d, %d cases", seed, *propCases)
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	start := time.Now()
	for c := range *propCases {
		nodes := generate(r)
		var terminals []string
		if r.IntN(4) == 0 { // a subset run
			for _, n := range nodes {
				if n.kind != gBranch && r.IntN(4) == 0 {
					terminals = append(terminals, n.id)
				}
			}
		}
		want := reference(nodes, terminals)
		for k, o := range want {
			if strings.Contains(k, ":") && o.Outcome == "ok" {
				o.Value = "element"
				want[k] = o
			}
		}
		params := map[string]any{}
		for _, n := range nodes {
			if n.kind == gParam {
				params[n.id] = n.value
			}
		}
		cfg := scheduler.Config{Workers: 1 + r.IntN(8), StoreWriters: r.IntN(3)}
		e := newEnv(t, cfg)
		tp := build(t, nodes, nil)
		req := scheduler.Request{Params: params, Terminals: terminals}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		res, err := e.s.Run(ctx, tp, req)
		cancel()
		if err != nil {
			t.Fatalf("case %d (seed %d): %v\n%s", c, seed, err, describeCase(nodes, terminals, cfg))
		}
		if diff := cmp.Diff(want, observed(res)); diff != "" {
			t.Fatalf("case %d (seed %d): scheduler and reference disagree (-reference +scheduler):\n%s\n%s", c, seed, diff, describeCase(nodes, terminals, cfg))
		}
		wantStatus := lineage.Succeeded
		for id, o := range want {
			if o.Outcome == "err" && !strings.Contains(id, ":") && !nodeOf(nodes, id).optional {
				wantStatus = lineage.Failed
			}
		}
		if res.Status != wantStatus {
			t.Fatalf("case %d (seed %d): status %s, want %s\n%s", c, seed, res.Status, wantStatus, describeCase(nodes, terminals, cfg))
		}
	}
	t.Logf("%d cases in %v", *propCases, time.Since(start).Round(time.Millisecond))
}

// TestCancelledRandomRuns cancels random tapestries after a random number
// of invocations: every run must end, be recorded cancelled, and hold one
// record for every node the reference interpreter would have run, none of
// them stalled.
func TestCancelledRandomRuns(t *testing.T) {
	seed := *propSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	r := rand.New(rand.NewPCG(seed, 0xca9ce1))
	cancelled := 0
	for c := range *propCases / 4 {
		nodes := generate(r)
		want := reference(nodes, nil)
		params := map[string]any{}
		for _, n := range nodes {
			if n.kind == gParam {
				params[n.id] = n.value
			}
		}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		var calls atomic.Int32
		after := int32(r.IntN(6))
		tp := build(t, nodes, func() {
			if calls.Add(1) > after {
				cancel()
			}
		})
		cfg := scheduler.Config{Workers: 1 + r.IntN(8), StoreWriters: r.IntN(3)}
		e := newEnv(t, cfg)
		res, err := e.s.Run(ctx, tp, scheduler.Request{Params: params})
		timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
		cancel()
		if res == nil || timedOut {
			t.Fatalf("case %d (seed %d): result %v, err %v\n%s", c, seed, res, err, describeCase(nodes, nil, cfg))
		}
		got := map[string]bool{}
		for _, rec := range res.Records {
			if rec.Kind != lineage.KindElement {
				got[rec.KnotID] = true
			}
		}
		for id := range want {
			if !strings.Contains(id, ":") && !got[id] {
				t.Fatalf("case %d (seed %d): no record for %s\n%s", c, seed, id, describeCase(nodes, nil, cfg))
			}
		}
		for _, er := range res.Errors {
			if er.Type == scheduler.ErrStalled {
				t.Fatalf("case %d (seed %d): %s\n%s", c, seed, er.Message, describeCase(nodes, nil, cfg))
			}
		}
		if err != nil {
			cancelled++
			if res.Status != lineage.Cancelled {
				t.Fatalf("case %d (seed %d): status %s after %v", c, seed, res.Status, err)
			}
		}
	}
	t.Logf("%d of %d runs cancelled", cancelled, *propCases/4)
}

func nodeOf(nodes []*gnode, id string) *gnode {
	for _, n := range nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// describeCase prints a failing case so that it can be read and replayed.
func describeCase(nodes []*gnode, terminals []string, cfg scheduler.Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "workers %d, store writers %d, terminals %v\n", cfg.Workers, cfg.StoreWriters, terminals)
	kinds := []string{"param", "knot", "source", "sink", "aggregator", "gate", "branch", "arm", "map", "reduce"}
	for _, n := range nodes {
		fmt.Fprintf(&b, "  %-8s %-10s parents %v config %v policy %s optional %v salt %d", n.id, kinds[n.kind], n.parents, n.config, n.policy, n.optional, n.salt)
		switch n.kind {
		case gParam:
			fmt.Fprintf(&b, " value %v", n.value)
		case gMap:
			fmt.Fprintf(&b, " on_skip %s", n.onSkip)
		case gReduce:
			fmt.Fprintf(&b, " pairwise %v initial %d", n.pairwise, n.initial)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
