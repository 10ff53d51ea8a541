package pdk

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/pirn-wasm/pirn/abi"
)

// Error is an error with a type and optional detail, returned by a knot to
// control what the host records.
type Error struct {
	Type    string // e.g. "ValueError"; "Error" if empty
	Message string
	Detail  any // any value in the data model; optional
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// Fail returns an *Error with the given type and a formatted message.
func Fail(typ, format string, args ...any) error {
	return &Error{Type: typ, Message: fmt.Sprintf(format, args...)}
}

// SkipError is returned (usually via [Skip]) to make an invocation skip.
type SkipError struct {
	Reason string
	Detail any
}

func (e *SkipError) Error() string { return "skip: " + e.Reason }

// Skip returns an error that makes the invocation skip with reason.
func Skip(reason string) error { return &SkipError{Reason: reason} }

// Log levels for [Log].
const (
	LevelDebug = abi.LogDebug
	LevelInfo  = abi.LogInfo
	LevelWarn  = abi.LogWarn
	LevelError = abi.LogError
)

// Log sends a log line to the host.
func Log(level abi.LogLevel, msg string) { logSink(level, msg) }

// Logf is Log with formatting.
func Logf(level abi.LogLevel, format string, args ...any) {
	logSink(level, fmt.Sprintf(format, args...))
}

// logSink is replaced by the host import in wasm builds.
var logSink = func(abi.LogLevel, string) {}

// Handler is a knot declared from a Go function: its manifest entry,
// derived from the function's types, and the code that binds a request to
// the function's input struct.
type Handler struct {
	spec  abi.KnotSpec
	binds []bind
	rest  *bind // collects further inputs, if declared
	// invoke binds a request's inputs, runs the knot and appends the
	// response to dst, reusing one input struct (the module path: under
	// Go/wasm every allocation is expensive).
	invoke func(req *abi.Request, dst []byte) []byte
	// respond is invoke for callers that run knots concurrently: a fresh
	// input struct per call, and the caller's context.
	respond func(ctx context.Context, req *abi.Request) abi.Response
}

type knot = Handler

type bind struct {
	name     string
	field    []int
	optional bool
	decode   func(raw []byte, dst reflect.Value) error
}

var registry = struct {
	knots []*knot
	names map[string]*knot
}{names: map[string]*knot{}}

// Register declares the knot name with a doc line. In must be a struct type
// whose fields are the knot's inputs (see the package doc). Register panics
// on a malformed declaration; call it from init.
func Register[In, Out any](name, doc string, fn func(In) (Out, error)) {
	if _, dup := registry.names[name]; dup {
		panic(fmt.Sprintf("pdk: Register(%q): registered twice", name))
	}
	k, err := New(name, doc, func(_ context.Context, in In) (Out, error) { return fn(in) })
	if err != nil {
		panic(fmt.Sprintf("pdk: Register(%q): %v", name, err))
	}
	registry.knots = append(registry.knots, k)
	registry.names[name] = k
}

// New declares a knot without registering it in the module: for programs
// that run Go functions as knots on the host (package pirn's Func), and for
// tests. It fails on a malformed declaration.
func New[In, Out any](name, doc string, fn func(context.Context, In) (Out, error)) (*Handler, error) {
	k, err := newKnot(name, doc, reflect.TypeFor[In](), reflect.TypeFor[Out]())
	if err != nil {
		return nil, err
	}
	var (
		mu   sync.Mutex
		in   In
		zero In
	)
	inv := reflect.ValueOf(&in).Elem()
	k.invoke = func(req *abi.Request, dst []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		in = zero
		if r, ok := k.bind(req, inv); !ok {
			return appendResponse(dst, &r)
		}
		out, r, err := callRecover(context.Background(), fn, in)
		switch {
		case r != nil:
			return appendResponse(dst, r)
		case err != nil:
			r := fromError(err)
			return appendResponse(dst, &r)
		}
		start := len(dst)
		dst = append(dst, 0xa1, 0x62, 'o', 'k') // {"ok": ...
		dst, err = appendValue(dst, out)
		if err != nil {
			r := abi.Fail("OutputError", fmt.Sprintf("knot %q: encode output: %v", name, err))
			return appendResponse(dst[:start], &r)
		}
		return dst
	}
	k.respond = func(ctx context.Context, req *abi.Request) abi.Response {
		var in In
		if r, ok := k.bind(req, reflect.ValueOf(&in).Elem()); !ok {
			return r
		}
		out, r, err := callRecover(ctx, fn, in)
		switch {
		case r != nil:
			return *r
		case err != nil:
			return fromError(err)
		}
		b, err := appendValue(nil, out)
		if err != nil {
			return abi.Fail("OutputError", fmt.Sprintf("knot %q: encode output: %v", name, err))
		}
		return abi.OK(b)
	}
	return k, nil
}

// Spec returns the knot's manifest entry.
func (k *Handler) Spec() abi.KnotSpec { return k.spec }

// Respond runs the knot on a request. It is safe for concurrent use, and
// never panics: a panic becomes an err response.
func (k *Handler) Respond(ctx context.Context, req *abi.Request) abi.Response {
	return k.respond(ctx, req)
}

// callRecover calls fn, turning a panic into an err response.
func callRecover[In, Out any](ctx context.Context, fn func(context.Context, In) (Out, error), in In) (out Out, r *abi.Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			r = &abi.Response{Outcome: abi.OutcomeErr, Error: &abi.Error{
				Type: "Panic", Message: fmt.Sprint(p), Trace: string(debug.Stack()),
			}}
		}
	}()
	out, err = fn(ctx, in)
	return out, nil, err
}

func appendResponse(dst []byte, r *abi.Response) []byte {
	out, err := abi.AppendResponse(dst, r)
	if err != nil {
		out, _ = abi.AppendResponse(dst, &abi.Response{Outcome: abi.OutcomeErr, Error: &abi.Error{Type: "PDKError", Message: err.Error()}})
	}
	return out
}

func newKnot(name, doc string, in, out reflect.Type) (*knot, error) {
	if !abi.ValidKnotName(name) {
		return nil, errors.New("invalid knot name (want 1-256 of A-Z a-z 0-9 _ . : -)")
	}
	if in.Kind() != reflect.Struct {
		return nil, fmt.Errorf("input type %v is not a struct", in)
	}
	outType, err := typeOf(out)
	if err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	k := &knot{spec: abi.KnotSpec{Name: name, Doc: doc, Output: outType.String(), Inputs: []abi.InputSpec{}}}
	for _, f := range reflect.VisibleFields(in) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		tag := f.Tag.Get("pirn")
		if tag == "-" {
			continue
		}
		tagName, opts, _ := strings.Cut(tag, ",")
		if tagName == "*" {
			if f.Type.Kind() != reflect.Map || f.Type.Key().Kind() != reflect.String {
				return nil, fmt.Errorf("field %s: pirn:\"*\" needs a map[string]T", f.Name)
			}
			if k.rest != nil {
				return nil, fmt.Errorf("field %s: a second pirn:\"*\" field", f.Name)
			}
			t, err := typeOf(f.Type.Elem())
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", f.Name, err)
			}
			k.spec.Rest = t.String()
			k.rest = &bind{name: "*", field: f.Index, decode: decoderFor(f.Type.Elem())}
			continue
		}
		if tagName == "" {
			tagName = snake(f.Name)
		}
		if !abi.ValidInputName(tagName) {
			return nil, fmt.Errorf("field %s: input name %q is not an identifier", f.Name, tagName)
		}
		t, err := typeOf(f.Type)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f.Name, err)
		}
		optional := opts == "optional" || f.Type.Kind() == reflect.Pointer
		for _, b := range k.binds {
			if b.name == tagName {
				return nil, fmt.Errorf("field %s: input %q declared twice", f.Name, tagName)
			}
		}
		k.binds = append(k.binds, bind{name: tagName, field: f.Index, optional: optional, decode: decoderFor(f.Type)})
		k.spec.Inputs = append(k.spec.Inputs, abi.InputSpec{Name: tagName, Type: t.String(), Doc: f.Tag.Get("doc"), Optional: optional})
	}
	return k, nil
}

// snake converts a Go field name to snake_case: UserID → user_id, X → x.
func snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			prevLower := i > 0 && !unicode.IsUpper(rs[i-1])
			nextLower := i > 0 && i+1 < len(rs) && unicode.IsLower(rs[i+1]) && unicode.IsUpper(rs[i-1])
			if prevLower || nextLower {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// typeOf maps a Go type to its ABI type.
func typeOf(t reflect.Type) (abi.Type, error) {
	switch t.Kind() {
	case reflect.Bool:
		return abi.Bool, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return abi.Int, nil
	case reflect.Float32, reflect.Float64:
		return abi.Float, nil
	case reflect.String:
		return abi.Str, nil
	case reflect.Interface:
		return abi.Any, nil
	case reflect.Pointer:
		e, err := typeOf(t.Elem())
		return abi.OptionalOf(e), err
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return abi.Bytes, nil
		}
		e, err := typeOf(t.Elem())
		return abi.ListOf(e), err
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return abi.Type{}, fmt.Errorf("map key type %v is not string", t.Key())
		}
		e, err := typeOf(t.Elem())
		return abi.DictOf(e), err
	case reflect.Struct:
		if t == reflect.TypeFor[time.Time]() {
			return abi.Str, nil // RFC 3339 text, as the one encoding writes it
		}
		return abi.Type{Kind: abi.KindDict}, nil
	}
	return abi.Type{}, fmt.Errorf("type %v has no ABI equivalent", t)
}

// decoderFor returns a decoder for values of type t: a direct one for
// scalars and for lists and maps of them (reflection-based decoding is
// slow under Go/wasm: about 2 µs per element of an []int64), the CBOR
// library otherwise.
func decoderFor(t reflect.Type) func([]byte, reflect.Value) error {
	if d := directDecoder(t); d != nil {
		return d
	}
	return func(raw []byte, dst reflect.Value) error { return abi.Unmarshal(raw, dst.Addr().Interface()) }
}

// directDecoder returns a reflection-light decoder for t, or nil.
func directDecoder(t reflect.Type) func([]byte, reflect.Value) error {
	switch t.Kind() {
	case reflect.Interface:
		if t.NumMethod() != 0 {
			return nil
		}
		// any: the data model's own Go types (abi.DecodeValue), so that a
		// knot's type switch sees int64 and map[string]any, never the
		// CBOR library's uint64 and map[any]any.
		return func(raw []byte, dst reflect.Value) error {
			v, err := abi.DecodeValue(raw)
			if err != nil {
				return err
			}
			if v == nil {
				dst.SetZero()
				return nil
			}
			dst.Set(reflect.ValueOf(v))
			return nil
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return func(raw []byte, dst reflect.Value) error {
			i, err := abi.DecodeInt(raw)
			if err == nil && dst.OverflowInt(i) {
				err = fmt.Errorf("%d overflows %v", i, dst.Type())
			}
			if err != nil {
				return err
			}
			dst.SetInt(i)
			return nil
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return func(raw []byte, dst reflect.Value) error {
			i, err := abi.DecodeInt(raw)
			if err == nil && (i < 0 || dst.OverflowUint(uint64(i))) {
				err = fmt.Errorf("%d overflows %v", i, dst.Type())
			}
			if err != nil {
				return err
			}
			dst.SetUint(uint64(i))
			return nil
		}
	case reflect.Float32, reflect.Float64:
		return func(raw []byte, dst reflect.Value) error {
			f, err := abi.DecodeFloat(raw)
			if err != nil {
				return err
			}
			dst.SetFloat(f)
			return nil
		}
	case reflect.String:
		return func(raw []byte, dst reflect.Value) error {
			s, err := abi.DecodeText(raw)
			if err != nil {
				return err
			}
			dst.SetString(s)
			return nil
		}
	case reflect.Bool:
		return func(raw []byte, dst reflect.Value) error {
			v, err := abi.DecodeBool(raw)
			if err != nil {
				return err
			}
			dst.SetBool(v)
			return nil
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return func(raw []byte, dst reflect.Value) error {
				v, err := abi.DecodeBytes(raw)
				if err != nil {
					return err
				}
				dst.SetBytes(v)
				return nil
			}
		}
		ed := directDecoder(t.Elem())
		if ed == nil {
			return nil
		}
		return func(raw []byte, dst reflect.Value) error {
			if len(raw) == 1 && raw[0] == 0xf6 { // null: a nil slice
				dst.SetZero()
				return nil
			}
			return abi.DecodeArray(raw,
				func(n int) { dst.Set(reflect.MakeSlice(t, n, n)) },
				func(i int, item []byte) error { return ed(item, dst.Index(i)) })
		}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil
		}
		ed := directDecoder(t.Elem())
		if ed == nil {
			return nil
		}
		return func(raw []byte, dst reflect.Value) error {
			if len(raw) == 1 && raw[0] == 0xf6 {
				dst.SetZero()
				return nil
			}
			return abi.DecodeMap(raw,
				func(n int) { dst.Set(reflect.MakeMapWithSize(t, n)) },
				func(key string, item []byte) error {
					v := reflect.New(t.Elem()).Elem()
					if err := ed(item, v); err != nil {
						return err
					}
					dst.SetMapIndex(reflect.ValueOf(key).Convert(t.Key()), v)
					return nil
				})
		}
	}
	return nil
}

// appendValue appends the encoding of a knot's output, directly for common
// scalars.
func appendValue[T any](dst []byte, v T) ([]byte, error) {
	switch x := any(v).(type) {
	case nil:
		return append(dst, 0xf6), nil
	case bool:
		if x {
			return append(dst, 0xf5), nil
		}
		return append(dst, 0xf4), nil
	case int64:
		return abi.AppendInt(dst, x), nil
	case int:
		return abi.AppendInt(dst, int64(x)), nil
	case int32:
		return abi.AppendInt(dst, int64(x)), nil
	case string:
		return abi.AppendText(dst, x), nil
	case []byte:
		if x == nil {
			return append(dst, 0xf6), nil
		}
		return abi.AppendBytes(dst, x), nil
	}
	b, err := abi.Marshal(v)
	return append(dst, b...), err
}

// Manifest returns the module's manifest encoded as CBOR.
func Manifest() ([]byte, error) {
	m := abi.Manifest{ABI: abi.Version, Knots: make([]abi.KnotSpec, len(registry.knots))}
	for i, k := range registry.knots {
		m.Knots[i] = k.spec
	}
	return abi.EncodeManifest(&m)
}

// Invoke runs one invocation: it decodes a request, calls the knot and
// returns the encoded response. It is what pirn_invoke does inside the
// module, exposed so that knots can be tested natively with go test.
func Invoke(request []byte) []byte { return invoke(request, nil) }

var scratchReq abi.Request // reused by invoke; guarded by invokeMu
var invokeMu sync.Mutex

// invoke appends the response to request to dst.
func invoke(request, dst []byte) []byte {
	invokeMu.Lock()
	defer invokeMu.Unlock()
	req := &scratchReq
	if err := req.DecodeFrom(request); err != nil {
		r := abi.Fail("PDKError", err.Error())
		return appendResponse(dst, &r)
	}
	k, ok := registry.names[req.Knot]
	if !ok {
		r := abi.Fail("UnknownKnot", fmt.Sprintf("module has no knot %q", req.Knot))
		return appendResponse(dst, &r)
	}
	return k.invoke(req, dst)
}

func (k *knot) bind(req *abi.Request, in reflect.Value) (abi.Response, bool) {
	bound := 0
	for _, b := range k.binds {
		raw, ok := req.Lookup(b.name)
		if !ok {
			if b.optional {
				continue
			}
			return abi.Fail("InputError", fmt.Sprintf("knot %q: missing input %q", k.spec.Name, b.name)), false
		}
		bound++
		if err := b.decode(raw, in.FieldByIndex(b.field)); err != nil {
			return abi.Fail("InputError", fmt.Sprintf("knot %q: input %q: %v", k.spec.Name, b.name, err)), false
		}
	}
	total := len(req.Inputs) + len(req.Config)
	if total == bound {
		return abi.Response{}, true
	}
	if k.rest == nil {
		for _, args := range [][]abi.Arg{req.Inputs, req.Config} {
			for _, a := range args {
				if !k.declares(a.Name) {
					return abi.Fail("InputError", fmt.Sprintf("knot %q: unknown input %q", k.spec.Name, a.Name)), false
				}
			}
		}
		return abi.Response{}, true
	}
	rest := in.FieldByIndex(k.rest.field)
	m := reflect.MakeMapWithSize(rest.Type(), total-bound)
	for _, args := range [][]abi.Arg{req.Inputs, req.Config} {
		for _, a := range args {
			if k.declares(a.Name) {
				continue
			}
			v := reflect.New(rest.Type().Elem())
			if err := k.rest.decode(a.Value, v.Elem()); err != nil {
				return abi.Fail("InputError", fmt.Sprintf("knot %q: input %q: %v", k.spec.Name, a.Name, err)), false
			}
			m.SetMapIndex(reflect.ValueOf(strings.Clone(a.Name)), v.Elem())
		}
	}
	rest.Set(m)
	return abi.Response{}, true
}

func (k *knot) declares(name string) bool {
	for _, b := range k.binds {
		if b.name == name {
			return true
		}
	}
	return false
}

func fromError(err error) abi.Response {
	var skip *SkipError
	if errors.As(err, &skip) {
		s := &abi.Skip{Reason: skip.Reason}
		if skip.Detail != nil {
			s.Detail, _ = abi.Marshal(skip.Detail)
		}
		if s.Reason == "" {
			s.Reason = "skipped"
		}
		return abi.Response{Outcome: abi.OutcomeSkip, Skip: s}
	}
	e := &abi.Error{Type: "Error", Message: err.Error()}
	var pe *Error
	if errors.As(err, &pe) {
		e.Message = pe.Message
		if pe.Type != "" {
			e.Type = pe.Type
		}
		if pe.Detail != nil {
			e.Detail, _ = abi.Marshal(pe.Detail)
		}
		if pe != err { // wrapped: keep the whole chain's message
			e.Message = err.Error()
		}
	}
	return abi.Response{Outcome: abi.OutcomeErr, Error: e}
}
