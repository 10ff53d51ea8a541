package scheduler

import (
	"crypto/sha256"
	"slices"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/internal/pcbor"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/model"
)

// Memoisation: before invoking a module's knot (a plain knot, Source,
// Sink or Aggregator, or a Map's element), the scheduler computes the
// invocation's cache key and asks the history (if it implements
// lineage.Memo) for an executed ok record with that key. If there is one
// and its output is in the data store, the knot is not invoked: the
// stored value is its result, and the record says where it came from
// (Record.ReusedFrom). docs/rationale.md ("Memoisation") explains the key.

// CacheVersion is the key format's version tag, the first item of every
// cache key: changing it invalidates every key at once.
const CacheVersion = "pirn/cache/v1"

// memoBase computes the part of a node's cache key that is the same for
// every invocation: the version tag, the module's digest, the knot's
// name, the ABI version, the knot's declared input and output types, the
// kind of record, the error policy, the constant inputs, the grants and
// the invoker's settings (a Wasm knot's limits). ok is false when the
// node's results may not be reused: no module ran (an expression, a
// builtin, a host-native function), the function's types are unknown,
// caching is off for it, or it has grants without opting in.
func memoBase(n *Node, kind lineage.Kind) (cas.Digest, bool) {
	fn := &n.fn
	switch {
	case fn.Module == "" || fn.Spec == nil || fn.Cache == model.CacheOff:
		return cas.Digest{}, false
	case len(fn.Grants) > 0 && fn.Cache != model.CacheOn:
		return cas.Digest{}, false
	}
	module, err := cas.ParseDigest(fn.Module)
	if err != nil {
		return cas.Digest{}, false // fail closed: a module must be named by its digest
	}
	inputs := make([]any, len(fn.Spec.Inputs))
	for i, in := range fn.Spec.Inputs {
		inputs[i] = []any{in.Name, in.Type, in.Optional}
	}
	config := make([]any, len(n.config))
	for i, a := range n.config {
		config[i] = []any{a.Name, raw(a.Value)}
	}
	doc := []any{
		CacheVersion,
		module[:],
		fn.Name,
		abi.Version,
		map[string]any{"inputs": inputs, "rest": fn.Spec.Rest, "output": fn.Spec.Output},
		string(kind),
		n.policy.String(),
		config,
		anySlice(fn.Grants),
		fn.Settings[:],
	}
	d, err := cas.Hash(doc)
	if err != nil {
		return cas.Digest{}, false // fail closed
	}
	return d, true
}

// cacheKey returns the key of one invocation: the SHA-256 of the
// deterministic CBOR array [CacheVersion, base, salt, [[name, digest],
// …]], the inputs by name in ascending order, each with the digest of the
// exact bytes passed under that name. ins must be sorted by name, with no
// name twice; otherwise ok is false.
func cacheKey(base cas.Digest, salt string, ins []keyInput) (key cas.Digest, ok bool) {
	var buf [512]byte
	b := pcbor.AppendHead(buf[:0], pcbor.Array, 4)
	b = pcbor.AppendText(b, CacheVersion)
	b = appendBytes(b, base[:])
	b = pcbor.AppendText(b, salt)
	b = pcbor.AppendHead(b, pcbor.Array, uint64(len(ins)))
	for i, in := range ins {
		if i > 0 && ins[i-1].name >= in.name {
			return cas.Digest{}, false
		}
		b = pcbor.AppendHead(b, pcbor.Array, 2)
		b = pcbor.AppendText(b, in.name)
		b = appendBytes(b, in.digest[:])
	}
	return sha256.Sum256(b), true
}

func appendBytes(b, s []byte) []byte {
	return append(pcbor.AppendHead(b, pcbor.Bytes, uint64(len(s))), s...)
}

// keyInput is one named input of an invocation, for its cache key.
type keyInput struct {
	name   string
	digest cas.Digest
}

// lookup returns the result of an earlier execution with the key, and the
// record it came from; ok is false when there is none to reuse: the
// history has no entry, the lookup failed, or the value is no longer in
// the data store (collected, scrubbed) or does not match its digest.
func (e *engine) lookup(key cas.Digest) (res result, from lineage.Ref, ok bool) {
	if e.memo == nil || e.noCache || e.ctx.Err() != nil {
		return result{}, lineage.Ref{}, false
	}
	rec, found, err := e.memo.Reusable(e.ctx, key)
	if err != nil || !found || rec.Outcome != lineage.OK || rec.Output.IsZero() || rec.CacheKey != key || rec.RunID == e.runID {
		return result{}, lineage.Ref{}, false
	}
	b, err := e.s.store.Get(e.ctx, rec.Output)
	if err != nil {
		return result{}, lineage.Ref{}, false
	}
	v := cas.CanonicalValue(b)
	if v.Digest != rec.Output {
		return result{}, lineage.Ref{}, false
	}
	from = lineage.Ref{RunID: rec.RunID, KnotID: rec.KnotID}
	if rec.Reused() { // histories index executions only; should one not, name the execution
		from = rec.ReusedFrom
	}
	return result{outcome: lineage.OK, value: v, reused: true}, from, true
}

// callKey returns the cache key of invoking a knot node with c, whose
// inputs are sorted canonically (shorter names first), and whether it
// may be reused.
func (e *engine) callKey(n *Node, c *Call) (cas.Digest, bool) {
	if !n.memoOK || e.memo == nil {
		return cas.Digest{}, false
	}
	var buf [8]keyInput
	ins := buf[:0]
	for _, ed := range n.byName {
		p := e.states[ed.parent.index]
		d := p.res.value.Digest
		if n.policy == model.ReceiveErrors || p.res.outcome != lineage.OK {
			// A wrapped result ({"ok": v}, or an err or skip document):
			// the digest of exactly what is passed.
			i := slices.IndexFunc(c.Inputs, func(a abi.Arg) bool { return a.Name == ed.input })
			if i < 0 {
				return cas.Digest{}, false
			}
			d = cas.Sum(c.Inputs[i].Value)
		}
		ins = append(ins, keyInput{ed.input, d})
	}
	return cacheKey(n.memoBase, e.s.cfg.CacheSalt, ins)
}

// elementKey returns the cache key of invoking a Map's function on one
// element, whose record's inputs (sorted by name: the element under the
// bind name, and the shared parents' values) are ins.
func (e *engine) elementKey(n *Node, ins []lineage.Input) (cas.Digest, bool) {
	if !n.memoOK || e.memo == nil {
		return cas.Digest{}, false
	}
	var buf [8]keyInput
	kis := buf[:0]
	for _, in := range ins {
		kis = append(kis, keyInput{in.Name, in.Digest})
	}
	return cacheKey(n.memoBase, e.s.cfg.CacheSalt, kis)
}

// reuse looks key up and, if there is a result to reuse, sets res and
// the record's CacheKey and ReusedFrom, and reports true.
func (e *engine) reuse(res *result, rec *lineage.Record, key cas.Digest) bool {
	r, from, ok := e.lookup(key)
	if ok {
		*res = r
		rec.CacheKey, rec.ReusedFrom = key, from
	}
	return ok
}
