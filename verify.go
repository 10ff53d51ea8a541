package pirn

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/internal/pcbor"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/scheduler"
)

// VerifyStatus is what Verify concluded of one record.
type VerifyStatus string

// Verify's conclusions.
const (
	// Verified: the knot, invoked again with the recorded inputs, the
	// node's configuration and its module, produced the recorded output.
	Verified VerifyStatus = "verified"
	// Mismatch: it produced something else (or erred), or a value the
	// record names is corrupt in the data store: non-determinism,
	// tampering with the history or the store, or a runtime that
	// changed.
	Mismatch VerifyStatus = "mismatch"
	// Unverifiable: the record cannot be checked (a knot with grants, an
	// input no longer in the data store, a module or pipeline missing,
	// a configuration that changed, an outcome other than ok, a tapestry
	// built in Go). Never a pass.
	Unverifiable VerifyStatus = "unverifiable"
	// NotSampled: left out by VerifyOptions.Sample.
	NotSampled VerifyStatus = "not_sampled"
)

// VerifyOptions say which records of a run Verify checks.
type VerifyOptions struct {
	// Knot, if set, checks only the records of this node: its own, or a
	// Map's elements.
	Knot string
	// Sample, if positive, checks that many records picked at random
	// (seeded by Seed) among those Verify would check; the others are
	// NotSampled.
	Sample int
	// Seed seeds the sample; the same seed picks the same records.
	Seed uint64
}

// VerifyResult is Verify's conclusion on one record.
type VerifyResult struct {
	KnotID string
	Status VerifyStatus
	// Reason says why a record is a Mismatch or Unverifiable.
	Reason string
	// Recorded is the output digest the history holds; Got the one the
	// knot produced again (zero unless it produced a value).
	Recorded, Got cas.Digest
	// Duration is how long the re-execution took.
	Duration time.Duration
}

// VerifyReport is what Verify found in one run.
type VerifyReport struct {
	RunID          string
	PipelineDigest cas.Digest
	Seed           uint64
	// Results has an entry per record of a module's knot (or of
	// Options.Knot), in the run's order.
	Results []VerifyResult
	// Counts by status.
	Verified, Mismatches, Unverifiable, NotSampled int
}

// OK reports whether every record checked was verified: at least one,
// no mismatch and nothing unverifiable.
func (r *VerifyReport) OK() bool { return r.Verified > 0 && r.Mismatches == 0 && r.Unverifiable == 0 }

// ErrUnknownKnot is wrapped by Verify's error when VerifyOptions.Knot
// names no record of the run.
var ErrUnknownKnot = errors.New("no record of that knot in the run")

// Verify re-executes the recorded executions of module knots in the run
// runID and checks each output digest against the record. A record is
// re-executed only if it is hermetic (no grants), ended ok, its node is
// in the pipeline loaded again by the run's PipelineDigest with the
// recorded configuration hash, module and knot, and every input it
// consumed is in the data store (a Map element's is read from the Map's
// list); otherwise it is Unverifiable, with the reason. Each invocation
// runs with the knot's own limits (its timeout, memory and fuel). The
// error is for a run that cannot be read or whose records were never
// written (running, interrupted), an unknown Knot, or ctx's end;
// a pipeline that cannot be loaded makes every record Unverifiable.
// The pipeline is loaded whatever it grants: a knot with grants is
// never invoked (its record is Unverifiable), so they give nothing.
func (e *Engine) Verify(ctx context.Context, runID string, opts VerifyOptions) (*VerifyReport, error) {
	run, err := e.hist.Run(ctx, runID)
	if err != nil {
		return nil, fmt.Errorf("run %q: %w", runID, err)
	}
	if err := recorded(run); err != nil {
		return nil, err
	}
	rep := &VerifyReport{RunID: run.ID, PipelineDigest: run.PipelineDigest, Seed: opts.Seed}
	var picked []int // indexes into run.Records
	for i := range run.Records {
		r := &run.Records[i]
		if opts.Knot != "" {
			if r.KnotID == opts.Knot || (r.Kind == lineage.KindElement && r.Map == opts.Knot) {
				picked = append(picked, i)
			}
			continue
		}
		if r.Module != "" {
			picked = append(picked, i)
		}
	}
	if opts.Knot != "" && len(picked) == 0 {
		return nil, fmt.Errorf("run %s, knot %q: %w", runID, opts.Knot, ErrUnknownKnot)
	}
	sampled := map[int]bool{}
	if opts.Sample > 0 && opts.Sample < len(picked) {
		rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))
		for _, j := range rng.Perm(len(picked))[:opts.Sample] {
			sampled[picked[j]] = true
		}
	} else {
		for _, i := range picked {
			sampled[i] = true
		}
	}
	v := &verifier{e: e, run: run, lists: map[string][][]byte{}, byID: map[string]*lineage.Record{}}
	for i := range run.Records {
		v.byID[run.Records[i].KnotID] = &run.Records[i]
	}
	if run.PipelineDigest.IsZero() {
		v.loadErr = ErrNoPipeline
	} else if p, err := e.LoadBundle(ctx, run.PipelineDigest.String(), LoadBundleOptions{AllowGrants: true}); err != nil {
		v.loadErr = fmt.Errorf("its pipeline %s cannot be loaded from the data store: %w", run.PipelineDigest, err)
	} else {
		// Not Prepare: that would start an instance of every knot, the
		// granted ones too; a knot verify invokes starts its own.
		v.t = p.Tapestry.l.T
	}
	for _, i := range picked {
		r := &run.Records[i]
		res := VerifyResult{KnotID: r.KnotID, Recorded: r.Output, Status: NotSampled}
		if sampled[i] {
			res = v.check(ctx, r)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		switch res.Status {
		case Verified:
			rep.Verified++
		case Mismatch:
			rep.Mismatches++
		case Unverifiable:
			rep.Unverifiable++
		case NotSampled:
			rep.NotSampled++
		}
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}

// verifier checks the records of one run.
type verifier struct {
	e       *Engine
	run     *lineage.Run
	t       *scheduler.Tapestry // nil if loadErr
	loadErr error
	byID    map[string]*lineage.Record
	lists   map[string][][]byte // a Map's list, split, by Map id
}

// check re-executes one record.
func (v *verifier) check(ctx context.Context, r *lineage.Record) VerifyResult {
	res := VerifyResult{KnotID: r.KnotID, Recorded: r.Output}
	unverifiable := func(format string, args ...any) VerifyResult {
		res.Status, res.Reason = Unverifiable, fmt.Sprintf(format, args...)
		return res
	}
	mismatch := func(format string, args ...any) VerifyResult {
		res.Status, res.Reason = Mismatch, fmt.Sprintf(format, args...)
		return res
	}
	switch {
	case !r.Hermetic():
		return unverifiable("not hermetic: it ran with %s", strings.Join(r.Grants, ", "))
	case r.Module == "":
		return unverifiable("no module ran (%s)", r.Knot)
	case r.Outcome != lineage.OK:
		return unverifiable("it ended %s: only ok outputs are checked", r.Outcome)
	case v.loadErr != nil:
		return unverifiable("%v", v.loadErr)
	case r.Kind == lineage.KindMap:
		return v.checkMap(ctx, r)
	}
	id := r.KnotID
	if r.Kind == lineage.KindElement {
		id = r.Map
	}
	n, ok := v.t.Node(id)
	if !ok {
		return unverifiable("the pipeline has no node %q", id)
	}
	if mod, knot := n.What(); mod != r.Module || knot != r.Knot {
		return unverifiable("the pipeline's node runs %s %s, the record %s %s", knot, mod, r.Knot, r.Module)
	}
	if n.ConfigHash() != r.ConfigHash {
		return unverifiable("configuration changed: the pipeline's node hashes to %s, the record to %s", n.ConfigHash(), r.ConfigHash)
	}
	inputs := make(map[string]cas.Value, len(r.Inputs))
	for _, in := range r.Inputs {
		if p, ok := v.byID[in.Parent]; ok && p.Outcome != lineage.OK {
			return unverifiable("input %s was %s's %s, not a value", in.Name, in.Parent, p.Outcome)
		}
		b, err := v.e.store.Get(ctx, in.Digest)
		if errors.Is(err, cas.ErrNotFound) && r.Kind == lineage.KindElement && in.Parent == v.overOf(r) {
			b, err = v.element(ctx, r)
		}
		switch {
		case errors.Is(err, cas.ErrCorrupt):
			return mismatch("input %s (%s) is corrupt in the data store: %v", in.Name, in.Digest, err)
		case err != nil:
			return unverifiable("input %s (%s): %v", in.Name, shortDigest(in.Digest), v.e.missing(ctx, in.Digest, err))
		}
		val := cas.CanonicalValue(b)
		if val.Digest != in.Digest {
			return mismatch("input %s: the value found hashes to %s, the record names %s", in.Name, val.Digest, in.Digest)
		}
		inputs[in.Name] = val
	}
	start := time.Now()
	got, err := v.t.Reexecute(ctx, r, inputs)
	switch {
	case err != nil:
		return unverifiable("%v", err)
	case got.Outcome != lineage.OK:
		return mismatch("recorded ok, re-executed %s: %s", got.Outcome, got.Reason)
	case got.Output != r.Output:
		res.Got = got.Output
		return mismatch("recorded output %s, re-executed %s", r.Output, got.Output)
	}
	res.Got, res.Duration = got.Output, time.Since(start)
	res.Status, res.Reason = v.storedOutput(ctx, r)
	return res
}

// storedOutput checks the data store's copy of a verified record's
// output, if it has one: a corrupt copy is a Mismatch.
func (v *verifier) storedOutput(ctx context.Context, r *lineage.Record) (VerifyStatus, string) {
	if _, err := v.e.store.Get(ctx, r.Output); errors.Is(err, cas.ErrCorrupt) {
		return Mismatch, fmt.Sprintf("the output digest is right, but the data store's value of it is corrupt: %v", err)
	}
	return Verified, ""
}

// checkMap checks a Map's own record: its output must be the list of
// its elements' outputs, in order (the elements are checked each on
// its own). Elements that did not end ok make the list depend on the
// Map's on_skip mode: unverifiable.
func (v *verifier) checkMap(ctx context.Context, r *lineage.Record) VerifyResult {
	res := VerifyResult{KnotID: r.KnotID, Recorded: r.Output, Status: Unverifiable}
	var elems []*lineage.Record
	for i := range v.run.Records {
		e := &v.run.Records[i]
		if e.Kind == lineage.KindElement && e.Map == r.KnotID {
			if e.Outcome != lineage.OK {
				res.Reason = fmt.Sprintf("element %d ended %s: the list depends on the map's on_skip", e.Index, e.Outcome)
				return res
			}
			elems = append(elems, e)
		}
	}
	slices.SortFunc(elems, func(a, b *lineage.Record) int { return a.Index - b.Index })
	list := pcbor.AppendHead(nil, pcbor.Array, uint64(len(elems)))
	for i, e := range elems {
		if e.Index != i {
			res.Status, res.Reason = Mismatch, fmt.Sprintf("the run records no element %d", i)
			return res
		}
		b, err := v.e.store.Get(ctx, e.Output)
		if err != nil {
			if errors.Is(err, cas.ErrCorrupt) {
				res.Status = Mismatch
			}
			res.Reason = fmt.Sprintf("element %d's output (%s): %v", i, shortDigest(e.Output), v.e.missing(ctx, e.Output, err))
			return res
		}
		list = append(list, b...)
	}
	res.Got = cas.CanonicalValue(list).Digest
	if res.Got != r.Output {
		res.Status, res.Reason = Mismatch, fmt.Sprintf("recorded output %s, the list of its elements' outputs %s", r.Output, res.Got)
		return res
	}
	res.Status, res.Reason = v.storedOutput(ctx, r)
	return res
}

// overOf returns the id of the node whose list the element's Map
// consumed ("" if the run does not say).
func (v *verifier) overOf(r *lineage.Record) string {
	m, ok := v.byID[r.Map]
	if !ok {
		return ""
	}
	for _, in := range m.Inputs {
		if in.Name == "over" {
			return in.Parent
		}
	}
	return ""
}

// element reads a Map element's value from the Map's list in the store
// (elements are not stored one by one).
func (v *verifier) element(ctx context.Context, r *lineage.Record) ([]byte, error) {
	items, ok := v.lists[r.Map]
	if !ok {
		m := v.byID[r.Map]
		d, _ := m.Input("over")
		b, err := v.e.store.Get(ctx, d)
		if err != nil {
			return nil, fmt.Errorf("the list of map %s (%s): %w", r.Map, shortDigest(d), v.e.missing(ctx, d, err))
		}
		if items, err = cas.Elements(b); err != nil {
			return nil, fmt.Errorf("the list of map %s: %w", r.Map, err)
		}
		v.lists[r.Map] = items
	}
	if r.Index < 0 || r.Index >= len(items) {
		return nil, fmt.Errorf("map %s's list has %d elements, the record is element %d: %w", r.Map, len(items), r.Index, cas.ErrCorrupt)
	}
	return items[r.Index], nil
}

// shortDigest abbreviates a digest for a reason: "sha256:0123456789ab…".
func shortDigest(d cas.Digest) string {
	s := d.String()
	if len(s) > 19 {
		return s[:19] + "…"
	}
	return s
}
