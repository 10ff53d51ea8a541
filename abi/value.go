package abi

import (
	"errors"
	"fmt"
	"slices"

	"github.com/pirn-wasm/pirn/internal/pcbor"
)

// DecodeValue decodes one CBOR data item into the data model's Go values:
// nil, bool, int64, float64, string, []byte, []any and map[string]any.
// Integers are int64; only a positive integer above math.MaxInt64 (which
// the host never sends: the data model stops at int64) is a uint64. Maps
// must have text keys, each once. Indefinite lengths are accepted; tags,
// simple values other than false, true and null, trailing bytes, nesting
// deeper than [MaxNestedLevels] and more than [MaxElements] elements are
// errors wrapping [ErrMalformed].
//
// It reads without reflection: the Go PDK decodes any-typed inputs with
// it, and the host coerces inputs through it ([Signature.CoerceArgs]).
func DecodeValue(b []byte) (any, error) {
	v, err := pcbor.Decode(b, true)
	if err != nil {
		return nil, malformed("value", err)
	}
	return v, nil
}

// Signature is a knot's declared types, parsed once from its manifest
// entry: what the host coerces each input to before an invocation, and an
// ok output after it. Every kind of knot (a module's, under any ABI, and a
// Go function on the host) is coerced by it, so a value that one accepts
// the others accept too. A Signature is read-only and safe for concurrent
// use.
type Signature struct {
	knot   string
	inputs map[string]Type
	rest   Type // Any when the knot takes no further inputs
	output Type
}

// NewSignature parses spec's types.
func NewSignature(spec *KnotSpec) (*Signature, error) {
	s := &Signature{knot: spec.Name, inputs: make(map[string]Type, len(spec.Inputs))}
	var err error
	for _, in := range spec.Inputs {
		if s.inputs[in.Name], err = ParseType(in.Type); err != nil {
			return nil, fmt.Errorf("knot %s: input %q: %w", spec.Name, in.Name, err)
		}
	}
	if spec.Rest != "" {
		if s.rest, err = ParseType(spec.Rest); err != nil {
			return nil, fmt.Errorf("knot %s: rest: %w", spec.Name, err)
		}
	}
	if s.output, err = ParseType(spec.Output); err != nil {
		return nil, fmt.Errorf("knot %s: output: %w", spec.Name, err)
	}
	return s, nil
}

// ArgError reports an argument that cannot be coerced to its declared
// type.
type ArgError struct {
	Knot  string
	Input string // "" for the output
	Err   error  // a *CoerceError, or a decoding error
}

func (e *ArgError) Error() string {
	if e.Input == "" {
		return fmt.Sprintf("knot %s: output: %v", e.Knot, e.Err)
	}
	return fmt.Sprintf("knot %s: input %q: %v", e.Knot, e.Input, e.Err)
}

func (e *ArgError) Unwrap() error { return e.Err }

// CoerceArgs coerces each argument (canonical CBOR) to its declared type
// by the rules of [Type.Coerce]: a str "3" becomes the int 3 for an int
// input. It returns args itself when every value already has its type (the
// common case, checked without decoding), and otherwise a copy with the
// coerced values in canonical form; args is never modified. Arguments the
// knot does not declare are left to the knot. Errors are *[ArgError].
func (s *Signature) CoerceArgs(args []Arg) ([]Arg, error) {
	out, copied := args, false
	for i, a := range args {
		t, declared := s.inputs[a.Name]
		if !declared {
			t = s.rest
		}
		if t.Matches(a.Value) {
			continue
		}
		v, err := coerceBytes(t, a.Value)
		if err != nil {
			return nil, &ArgError{Knot: s.knot, Input: a.Name, Err: err}
		}
		if !copied {
			out, copied = slices.Clone(args), true
		}
		out[i].Value = v
	}
	return out, nil
}

// CoerceRequest coerces a request's inputs and config with
// [Signature.CoerceArgs]; each result is the argument itself when nothing
// in it changed.
func (s *Signature) CoerceRequest(inputs, config []Arg) ([]Arg, []Arg, error) {
	in, err := s.CoerceArgs(inputs)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := s.CoerceArgs(config)
	if err != nil {
		return nil, nil, err
	}
	return in, cfg, nil
}

// CoerceOutput coerces an ok value (canonical CBOR) to the declared output
// type, returning b itself when it already fits. Errors are *[ArgError].
func (s *Signature) CoerceOutput(b []byte) ([]byte, error) {
	if s.output.Matches(b) {
		return b, nil
	}
	v, err := coerceBytes(s.output, b)
	if err != nil {
		return nil, &ArgError{Knot: s.knot, Err: err}
	}
	return v, nil
}

// MaxCoerceItems bounds a value that coercion decodes, in data items
// (every scalar, list and dict in it); one that already has its type is
// never decoded.
const MaxCoerceItems = 1 << 20

// coerceBytes decodes b, coerces it to t and encodes the result
// canonically.
func coerceBytes(t Type, b []byte) ([]byte, error) {
	v, err := pcbor.DecodeMax(b, true, MaxCoerceItems)
	if errors.Is(err, pcbor.ErrTooMany) {
		return nil, fmt.Errorf("the value is too large to convert: %w", err)
	}
	if err != nil {
		return nil, malformed("value", err)
	}
	c, err := t.Coerce(v)
	if err != nil {
		return nil, err
	}
	return Marshal(c)
}
