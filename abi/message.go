package abi

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/pirn-wasm/pirn/internal/pcbor"
)

// Limits on messages decoded from a guest.
const (
	MaxNestedLevels = pcbor.MaxNestedLevels
	MaxElements     = pcbor.MaxElements // per array, and pairs per map
)

// ErrMalformed is wrapped by every decoding error of this package.
var ErrMalformed = errors.New("abi: malformed message")

func malformed(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrMalformed, what, err)
}

// Arg is one named value of a [Request]; Value is its CBOR encoding.
type Arg struct {
	Name  string
	Value []byte
}

// Request is the message pirn_invoke receives:
//
//	{"knot": text, "config": {name: value, ...}, "inputs": {name: value, ...}}
//
// Inputs hold the values of the knot's parents, by input name; Config holds
// the constants the pipeline binds to inputs. A name appears in at most one
// of the two. Both are in canonical key order.
type Request struct {
	Knot   string
	Inputs []Arg
	Config []Arg
}

// keyLess orders text keys as deterministic CBOR does: shorter first, then
// bytewise.
func keyCompare(a, b string) int {
	if c := cmp.Compare(len(a), len(b)); c != 0 {
		return c
	}
	return cmp.Compare(a, b)
}

// SortArgs sorts args into canonical key order.
func SortArgs(args []Arg) {
	slices.SortFunc(args, func(a, b Arg) int { return keyCompare(a.Name, b.Name) })
}

// AppendRequest appends the encoding of r to dst. Inputs and Config must be
// sorted with [SortArgs] and their values canonical for the result to be
// canonical; the values are copied verbatim.
func AppendRequest(dst []byte, r *Request) []byte {
	dst = pcbor.AppendHead(dst, pcbor.Map, 3)
	dst = pcbor.AppendText(dst, "knot")
	dst = pcbor.AppendText(dst, r.Knot)
	dst = pcbor.AppendText(dst, "config")
	dst = AppendArgs(dst, r.Config)
	dst = pcbor.AppendText(dst, "inputs")
	return AppendArgs(dst, r.Inputs)
}

// AppendArgs appends args as one CBOR map from each name to its value
// (copied verbatim), in the order given. args must be sorted with
// [SortArgs], without a name twice, and their values canonical for the
// result to be canonical.
func AppendArgs(dst []byte, args []Arg) []byte {
	return pcbor.AppendMap(dst, args, func(a Arg) (string, []byte) { return a.Name, a.Value })
}

// DecodeRequest decodes a request (the guest side of [AppendRequest]). The
// envelope must be a definite-length map; Args come back in canonical key
// order. Values alias b; names are copies.
func DecodeRequest(b []byte) (*Request, error) {
	r := &Request{}
	if err := r.decode(b, false); err != nil {
		return nil, err
	}
	return r, nil
}

// DecodeFrom decodes a request into r, reusing r's slices. Unlike
// [DecodeRequest] the knot and argument names alias b too, so r is valid
// only while b is unchanged. It exists for guests, where every allocation
// costs (the Go PDK decodes each invocation this way).
func (r *Request) DecodeFrom(b []byte) error { return r.decode(b, true) }

func (r *Request) decode(b []byte, alias bool) error {
	r.Knot, r.Inputs, r.Config = "", r.Inputs[:0], r.Config[:0]
	if err := r.parse(b, alias); err != nil {
		return malformed("request", err)
	}
	return nil
}

func (r *Request) parse(b []byte, alias bool) error {
	major, ai, arg, n, err := head(b)
	if err != nil {
		return err
	}
	if major != 0xa0 || ai == 31 {
		return errors.New("want a definite-length map")
	}
	var seen [3]bool
	for range arg {
		k, m, err := readText(b[n:], true)
		if err != nil {
			return fmt.Errorf("key: %w", err)
		}
		n += m
		var i int
		switch k {
		case "knot":
			i = 0
			r.Knot, m, err = readText(b[n:], alias)
		case "inputs":
			i = 1
			r.Inputs, m, err = readArgs(r.Inputs, b[n:], alias)
		case "config":
			i = 2
			r.Config, m, err = readArgs(r.Config, b[n:], alias)
		default:
			return fmt.Errorf("unknown key %q", k)
		}
		if seen[i] {
			return fmt.Errorf("duplicate key %q", k)
		}
		seen[i] = true
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		n += m
	}
	if n != len(b) {
		return fmt.Errorf("%d trailing bytes", len(b)-n)
	}
	if r.Knot == "" {
		return errors.New(`missing "knot"`)
	}
	for _, args := range [][]Arg{r.Inputs, r.Config} {
		if !slices.IsSortedFunc(args, func(a, b Arg) int { return keyCompare(a.Name, b.Name) }) {
			SortArgs(args)
		}
		for i := 1; i < len(args); i++ {
			if args[i].Name == args[i-1].Name {
				return fmt.Errorf("duplicate name %q", args[i].Name)
			}
		}
	}
	for _, a := range r.Inputs {
		if r.inConfig(a.Name) {
			return fmt.Errorf("%q is both an input and config", a.Name)
		}
	}
	return nil
}

func (r *Request) inConfig(name string) bool {
	_, ok := lookup(r.Config, name)
	return ok
}

func lookup(args []Arg, name string) ([]byte, bool) {
	i, ok := slices.BinarySearchFunc(args, name, func(a Arg, n string) int { return keyCompare(a.Name, n) })
	if !ok {
		return nil, false
	}
	return args[i].Value, true
}

// Lookup returns the value bound to name, from Inputs or else Config.
func (r *Request) Lookup(name string) ([]byte, bool) {
	if v, ok := lookup(r.Inputs, name); ok {
		return v, true
	}
	return lookup(r.Config, name)
}

// Outcome is the kind of a [Response].
type Outcome uint8

// Outcomes.
const (
	OutcomeOK Outcome = iota + 1
	OutcomeErr
	OutcomeSkip
)

func (o Outcome) String() string {
	switch o {
	case OutcomeOK:
		return "ok"
	case OutcomeErr:
		return "err"
	case OutcomeSkip:
		return "skipped"
	}
	return fmt.Sprintf("Outcome(%d)", o)
}

// RawMessage is an encoded CBOR data item carried as it is inside a
// message (an error's or a skip's detail): encoding writes its bytes, or
// null when it is empty, and decoding keeps a copy of the item. Any []byte
// assigns to it.
type RawMessage = pcbor.RawMessage

// Error is the err arm of a response: {"type", "message", "detail"?, "trace"?}.
type Error struct {
	Type    string     `cbor:"type"`            // short class of failure, e.g. "ValueError"
	Message string     `cbor:"message"`         // human-readable
	Detail  RawMessage `cbor:"detail,omitzero"` // any value; optional
	Trace   string     `cbor:"trace,omitempty"` // the guest's stack trace, if it has one
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// Skip is the skip arm of a response: {"reason", "detail"?}.
type Skip struct {
	Reason string     `cbor:"reason"`
	Detail RawMessage `cbor:"detail,omitzero"`
}

// Response is what pirn_invoke hands back: exactly one of
//
//	{"ok": value}
//	{"err": {"type": text, "message": text, "detail"?: value, "trace"?: text}}
//	{"skip": {"reason": text, "detail"?: value}}
type Response struct {
	Outcome Outcome
	Value   []byte // CBOR of the value, when Outcome is OutcomeOK
	Error   *Error // when OutcomeErr
	Skip    *Skip  // when OutcomeSkip
	// Logs holds the lines the guest logged during the invocation, as
	// the host kept them (bounded: see [Log]). It is not part of the
	// wire encoding: a guest cannot set it.
	Logs []LogLine
}

// OK returns an ok response carrying the CBOR-encoded value.
func OK(value []byte) Response { return Response{Outcome: OutcomeOK, Value: value} }

// Fail returns an err response.
func Fail(typ, message string) Response {
	return Response{Outcome: OutcomeErr, Error: &Error{Type: typ, Message: message}}
}

// Skipped returns a skip response.
func Skipped(reason string) Response {
	return Response{Outcome: OutcomeSkip, Skip: &Skip{Reason: reason}}
}

type wireResponse struct {
	OK   RawMessage `cbor:"ok,omitzero"`
	Err  *Error     `cbor:"err,omitempty"`
	Skip *Skip      `cbor:"skip,omitempty"`
}

// AppendResponse appends the encoding of r to dst.
func AppendResponse(dst []byte, r *Response) ([]byte, error) {
	var w wireResponse
	switch r.Outcome {
	case OutcomeOK:
		if len(r.Value) == 0 {
			return dst, errors.New("abi: ok response without a value")
		}
		dst = pcbor.AppendHead(dst, pcbor.Map, 1)
		dst = pcbor.AppendText(dst, "ok")
		return append(dst, r.Value...), nil
	case OutcomeErr:
		if r.Error == nil || r.Error.Type == "" {
			return dst, errors.New("abi: err response without a type")
		}
		w.Err = r.Error
	case OutcomeSkip:
		if r.Skip == nil || r.Skip.Reason == "" {
			return dst, errors.New("abi: skip response without a reason")
		}
		w.Skip = r.Skip
	default:
		return dst, fmt.Errorf("abi: response with %v", r.Outcome)
	}
	b, err := pcbor.Marshal(w)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// DecodeResponse decodes and checks a response. Value may alias b.
func DecodeResponse(b []byte) (Response, error) {
	// Fast path for the common case, {"ok": value}, without reflection.
	if len(b) > 4 && b[0] == 0xa1 && b[1] == 0x62 && b[2] == 'o' && b[3] == 'k' {
		if n, err := itemLen(b[4:], MaxNestedLevels); err == nil && n == len(b)-4 {
			return OK(b[4:]), nil
		}
	}
	var w wireResponse
	if err := pcbor.UnmarshalMessage(b, &w); err != nil {
		return Response{}, malformed("response", err)
	}
	n := 0
	var r Response
	if w.OK != nil {
		n++
		r = OK(w.OK)
	}
	if w.Err != nil {
		n++
		if w.Err.Type == "" {
			return Response{}, malformed("response", errors.New(`err without a "type"`))
		}
		r = Response{Outcome: OutcomeErr, Error: w.Err}
	}
	if w.Skip != nil {
		n++
		if w.Skip.Reason == "" {
			return Response{}, malformed("response", errors.New(`skip without a "reason"`))
		}
		r = Response{Outcome: OutcomeSkip, Skip: w.Skip}
	}
	if n != 1 {
		return Response{}, malformed("response", fmt.Errorf(`want exactly one of "ok", "err", "skip"; got %d`, n))
	}
	return r, nil
}

// EncodeManifest encodes m deterministically.
//
// A knot without inputs is written with "inputs": [] (never null).
func EncodeManifest(m *Manifest) ([]byte, error) {
	if slices.ContainsFunc(m.Knots, func(k KnotSpec) bool { return k.Inputs == nil }) {
		cp := *m
		cp.Knots = slices.Clone(m.Knots)
		for i := range cp.Knots {
			if cp.Knots[i].Inputs == nil {
				cp.Knots[i].Inputs = []InputSpec{}
			}
		}
		m = &cp
	}
	return pcbor.Marshal(m)
}

// DecodeManifest decodes a manifest strictly (unknown keys are errors) and
// validates it.
func DecodeManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := pcbor.UnmarshalMessage(b, &m); err != nil {
		return nil, malformed("manifest", err)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("abi: invalid manifest: %w", err)
	}
	return &m, nil
}

// Marshal encodes v deterministically, in the one encoding cas.Encode
// writes too (a time.Time is RFC 3339 text with nanoseconds): a
// convenience for guests building values. Unlike cas.Encode it does not
// refuse values outside the data model.
func Marshal(v any) ([]byte, error) { return pcbor.Marshal(v) }

// Unmarshal decodes a CBOR value into v with this package's limits. Map
// keys that v's struct types do not have are ignored.
func Unmarshal(b []byte, v any) error {
	if err := pcbor.UnmarshalValue(b, v); err != nil {
		return malformed("value", err)
	}
	return nil
}

// Equal reports whether two requests are identical (used by tests and the
// conformance kit).
func (r *Request) Equal(o *Request) bool {
	eq := func(a, b []Arg) bool {
		return slices.EqualFunc(a, b, func(x, y Arg) bool { return x.Name == y.Name && bytes.Equal(x.Value, y.Value) })
	}
	return r.Knot == o.Knot && eq(r.Inputs, o.Inputs) && eq(r.Config, o.Config)
}
