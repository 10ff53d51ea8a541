package abi

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is the shape of a [Type].
type Kind uint8

// Kinds.
const (
	KindAny Kind = iota
	KindNull
	KindBool
	KindInt
	KindFloat
	KindStr
	KindBytes
	KindList     // Elem is the element type
	KindDict     // text keys; Elem is the value type
	KindOptional // null or Elem
)

var kindNames = [...]string{"any", "null", "bool", "int", "float", "str", "bytes", "list", "dict", "optional"}

// Type is a value type as written in manifests and pipelines:
//
//	any null bool int float str bytes
//	list  list[T]  dict  dict[T]  optional[T]
//
// Aliases accepted on input: Any, None, string, map (= dict), tuple and set
// (= list); map[T] is dict[T]. The zero Type is any.
type Type struct {
	Kind Kind
	Elem *Type // for list, dict and optional; nil means any
}

// Common types.
var (
	Any   = Type{Kind: KindAny}
	Int   = Type{Kind: KindInt}
	Float = Type{Kind: KindFloat}
	Str   = Type{Kind: KindStr}
	Bool  = Type{Kind: KindBool}
	Bytes = Type{Kind: KindBytes}
	Null  = Type{Kind: KindNull}
)

// ListOf returns list[elem].
func ListOf(elem Type) Type { return Type{Kind: KindList, Elem: &elem} }

// DictOf returns dict[elem].
func DictOf(elem Type) Type { return Type{Kind: KindDict, Elem: &elem} }

// OptionalOf returns optional[elem].
func OptionalOf(elem Type) Type { return Type{Kind: KindOptional, Elem: &elem} }

var scalarNames = map[string]Kind{
	"any": KindAny, "Any": KindAny,
	"null": KindNull, "None": KindNull,
	"bool":  KindBool,
	"int":   KindInt,
	"float": KindFloat,
	"str":   KindStr, "string": KindStr,
	"bytes": KindBytes,
	"list":  KindList, "tuple": KindList, "set": KindList,
	"dict": KindDict, "map": KindDict,
}

// ParseType parses a type expression.
func ParseType(s string) (Type, error) {
	t, rest, err := parseType(strings.TrimSpace(s))
	if err != nil {
		return Type{}, fmt.Errorf("type %q: %w", s, err)
	}
	if rest != "" {
		return Type{}, fmt.Errorf("type %q: unexpected %q", s, rest)
	}
	return t, nil
}

// MustParseType is ParseType for constant expressions; it panics on error.
func MustParseType(s string) Type {
	t, err := ParseType(s)
	if err != nil {
		panic(err)
	}
	return t
}

func parseType(s string) (Type, string, error) {
	i := strings.IndexAny(s, "[],")
	name, rest := s, ""
	if i >= 0 {
		name, rest = s[:i], s[i:]
	}
	name = strings.TrimSpace(name)
	if name == "optional" || name == "Optional" {
		if !strings.HasPrefix(rest, "[") {
			return Type{}, "", fmt.Errorf("optional needs an element type: optional[T]")
		}
		elem, r, err := parseElem(rest)
		return OptionalOf(elem), r, err
	}
	k, ok := scalarNames[name]
	if !ok {
		if name == "" {
			return Type{}, "", fmt.Errorf("missing type name")
		}
		return Type{}, "", fmt.Errorf("unknown type %q (want one of any, null, bool, int, float, str, bytes, list[T], dict[T], optional[T])", name)
	}
	t := Type{Kind: k}
	if strings.HasPrefix(rest, "[") {
		if k != KindList && k != KindDict {
			return Type{}, "", fmt.Errorf("%s takes no element type", name)
		}
		elem, r, err := parseElem(rest)
		if err != nil {
			return Type{}, "", err
		}
		t.Elem = &elem
		rest = r
	}
	return t, rest, nil
}

// parseElem parses "[T]" (or "[str, T]" for dict-like spellings) and returns
// T and what follows the closing bracket.
func parseElem(s string) (Type, string, error) {
	elem, rest, err := parseType(strings.TrimSpace(s[1:]))
	if err != nil {
		return Type{}, "", err
	}
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, ",") { // dict[str, T]: keys are always text
		if elem.Kind != KindStr {
			return Type{}, "", fmt.Errorf("dict keys must be str")
		}
		elem, rest, err = parseType(strings.TrimSpace(rest[1:]))
		if err != nil {
			return Type{}, "", err
		}
		rest = strings.TrimSpace(rest)
	}
	if !strings.HasPrefix(rest, "]") {
		return Type{}, "", fmt.Errorf("missing ]")
	}
	return elem, strings.TrimSpace(rest[1:]), nil
}

// String returns the canonical spelling, e.g. "list[int]".
func (t Type) String() string {
	name := kindNames[t.Kind]
	if t.Elem == nil {
		return name
	}
	return name + "[" + t.Elem.String() + "]"
}

// MarshalText implements encoding.TextMarshaler.
func (t Type) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *Type) UnmarshalText(b []byte) error {
	v, err := ParseType(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

func (t Type) elem() Type {
	if t.Elem == nil {
		return Any
	}
	return *t.Elem
}

// CoerceError reports a value that does not fit a type.
type CoerceError struct {
	Path string // e.g. "[2].name"; empty at the top level
	Want Type
	Got  any
	Why  string // optional detail
}

func (e *CoerceError) Error() string {
	var b strings.Builder
	if e.Path != "" {
		fmt.Fprintf(&b, "at %s: ", e.Path)
	}
	fmt.Fprintf(&b, "want %s, got %s", e.Want, describe(e.Got))
	if e.Why != "" {
		b.WriteString(" (" + e.Why + ")")
	}
	return b.String()
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool " + strconv.FormatBool(x)
	case string:
		if len(x) > 40 {
			x = x[:40] + "…"
		}
		return "str " + strconv.Quote(x)
	case []byte:
		return fmt.Sprintf("bytes (%d)", len(x))
	case []any:
		return fmt.Sprintf("list (%d)", len(x))
	case map[string]any:
		return fmt.Sprintf("dict (%d)", len(x))
	case float32, float64:
		return fmt.Sprintf("float %v", x)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprintf("int %d", x)
	}
	return fmt.Sprintf("%T", v)
}

// Coerce converts v, a value in the data model (as cas.Decode returns it,
// or the equivalent Go scalars), to type t with the lax rules of the
// original's parameters:
//
//	int    accepts ints, integral floats (5.0), integral decimal text with
//	       surrounding spaces (" 7 ", "5.0", "1e3"), and booleans; refuses
//	       7.5, "7.5", "0x10" and "inf"
//	float  accepts floats, ints and numeric text
//	str    accepts text only (not numbers)
//	bool   accepts booleans, 0 and 1, and text 0/1/true/false/yes/no/on/off/t/f/y/n
//	bytes  accepts bytes, text (its UTF-8), and base64 text prefixed "base64:"
//	list   accepts lists, coercing each element
//	dict   accepts text-keyed maps, coercing each value
//	null   accepts only null; optional[T] accepts null or T; any accepts all
//
// The result uses int64, float64, string, []byte, []any and map[string]any.
// Errors are *[CoerceError].
func (t Type) Coerce(v any) (any, error) { return t.coerce(v, "") }

func (t Type) coerce(v any, path string) (any, error) {
	fail := func(why string) (any, error) {
		return nil, &CoerceError{Path: path, Want: t, Got: v, Why: why}
	}
	if i, ok := asInt(v); ok {
		v = i
	}
	switch t.Kind {
	case KindAny:
		return normalize(v)
	case KindNull:
		if v == nil {
			return nil, nil
		}
		return fail("")
	case KindOptional:
		if v == nil {
			return nil, nil
		}
		return t.elem().coerce(v, path)
	case KindBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case int64:
			if x == 0 || x == 1 {
				return x == 1, nil
			}
		case float64:
			if x == 0 || x == 1 {
				return x == 1, nil
			}
		case string:
			switch strings.ToLower(strings.TrimSpace(x)) {
			case "1", "true", "t", "yes", "y", "on":
				return true, nil
			case "0", "false", "f", "no", "n", "off":
				return false, nil
			}
		}
		return fail("")
	case KindInt:
		switch x := v.(type) {
		case int64:
			return x, nil
		case bool:
			if x {
				return int64(1), nil
			}
			return int64(0), nil
		case float64:
			if x != math.Trunc(x) || math.IsInf(x, 0) || math.IsNaN(x) {
				return fail("has a fractional part or is not finite")
			}
			if x < -(1<<63) || x >= 1<<63 {
				return fail("out of int64 range")
			}
			return int64(x), nil
		case string:
			i, err := parseIntText(strings.TrimSpace(x))
			if err != nil {
				return fail(err.Error())
			}
			return i, nil
		}
		return fail("")
	case KindFloat:
		switch x := v.(type) {
		case float64:
			return x, nil
		case float32:
			return float64(x), nil
		case int64:
			return float64(x), nil
		case string:
			f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
			if err != nil {
				return fail("not a number")
			}
			return f, nil
		}
		return fail("")
	case KindStr:
		if x, ok := v.(string); ok {
			return x, nil
		}
		return fail("")
	case KindBytes:
		switch x := v.(type) {
		case []byte:
			return x, nil
		case string:
			if enc, ok := strings.CutPrefix(x, "base64:"); ok {
				b, err := base64.StdEncoding.DecodeString(enc)
				if err != nil {
					return fail("bad base64")
				}
				return b, nil
			}
			return []byte(x), nil
		}
		return fail("")
	case KindList:
		xs, ok := v.([]any)
		if !ok {
			return fail("")
		}
		out := make([]any, len(xs))
		for i, e := range xs {
			c, err := t.elem().coerce(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case KindDict:
		m, ok := v.(map[string]any)
		if !ok {
			return fail("")
		}
		out := make(map[string]any, len(m))
		for k, e := range m {
			c, err := t.elem().coerce(e, path+"."+k)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	}
	return fail("unknown kind")
}

// parseIntText parses text as an int: decimal digits with an optional
// sign, or a decimal number whose value is integral ("5.0", "1e3",
// "-2.50e1"), exactly and within int64. Hexadecimal, underscores, "inf"
// and "nan" are refused, as are fractional values ("7.5"). (Hand-written
// rather than with math/big, which guests would then link.)
func parseIntText(s string) (int64, error) {
	i, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err == nil:
		return i, nil
	case errors.Is(err, strconv.ErrRange):
		return 0, errors.New("out of int64 range")
	}
	sign, mant, frac, exp, ok := splitDecimal(s)
	if !ok {
		return 0, errors.New("not a decimal integer")
	}
	// The value is mant × 10^shift, mant's last frac digits being the
	// fractional part.
	shift := exp - frac
	if shift < 0 {
		cut := min(-shift, len(mant))
		if strings.Trim(mant[len(mant)-cut:], "0") != "" {
			return 0, errors.New("has a fractional part")
		}
		mant = mant[:len(mant)-cut]
	} else if shift > 0 {
		if strings.Trim(mant, "0") == "" {
			return 0, nil
		}
		if len(strings.TrimLeft(mant, "0"))+shift > 19 {
			return 0, errors.New("out of int64 range")
		}
		mant += strings.Repeat("0", shift)
	}
	if mant == "" {
		return 0, nil
	}
	i, err = strconv.ParseInt(sign+mant, 10, 64)
	if err != nil {
		return 0, errors.New("out of int64 range")
	}
	return i, nil
}

// splitDecimal splits [sign] digits [. digits] [e [sign] digits] into its
// sign ("" or "-"), its digits without the point, how many of them follow
// the point, and its exponent (at most four digits), with digits on at
// least one side of the point.
func splitDecimal(s string) (sign, mant string, frac, exp int, ok bool) {
	digits := func() string {
		n := 0
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		d := s[:n]
		s = s[n:]
		return d
	}
	if s != "" && (s[0] == '+' || s[0] == '-') {
		if s[0] == '-' {
			sign = "-"
		}
		s = s[1:]
	}
	mant = digits()
	if s != "" && s[0] == '.' {
		s = s[1:]
		f := digits()
		mant, frac = mant+f, len(f)
	}
	if mant == "" {
		return "", "", 0, 0, false
	}
	if s != "" && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		neg := s != "" && s[0] == '-'
		if s != "" && (s[0] == '+' || s[0] == '-') {
			s = s[1:]
		}
		d := digits()
		if d == "" || len(d) > 4 {
			return "", "", 0, 0, false
		}
		exp, _ = strconv.Atoi(d)
		if neg {
			exp = -exp
		}
	}
	return sign, mant, frac, exp, s == ""
}

// asInt widens Go integer types to int64.
func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint:
		if uint64(x) <= math.MaxInt64 {
			return int64(x), true
		}
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	}
	return 0, false
}

// normalize checks that v is in the data model, widening Go scalars.
func normalize(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, int64, float64, []byte:
		return v, nil
	case float32:
		return float64(x), nil
	case string:
		if !utf8.ValidString(x) {
			return nil, fmt.Errorf("text is not valid UTF-8")
		}
		return x, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	}
	if i, ok := asInt(v); ok {
		return i, nil
	}
	return nil, fmt.Errorf("%T is not in the data model", v)
}

// Matches reports whether the canonical CBOR value b already has type t,
// so that no coercion is needed. It reads b without decoding it.
func (t Type) Matches(b []byte) bool {
	n, ok := t.match(b, 0)
	return ok && n == len(b)
}

func (t Type) match(b []byte, depth int) (int, bool) {
	if depth > MaxNestedLevels {
		return 0, false
	}
	if t.Kind == KindAny {
		n, err := itemLen(b, MaxNestedLevels-depth)
		return n, err == nil
	}
	major, ai, arg, n, err := head(b)
	if err != nil || ai == 31 {
		return 0, false
	}
	switch t.Kind {
	case KindNull:
		return 1, b[0] == 0xf6
	case KindOptional:
		if b[0] == 0xf6 {
			return 1, true
		}
		return t.elem().match(b, depth)
	case KindBool:
		return 1, b[0] == 0xf4 || b[0] == 0xf5
	case KindInt:
		return n, major == 0x00 || major == 0x20
	case KindFloat:
		return n, major == 0xe0 && ai >= 25 && ai <= 27
	case KindStr, KindBytes:
		want := byte(0x60)
		if t.Kind == KindBytes {
			want = 0x40
		}
		if major != want || arg > uint64(len(b)-n) {
			return 0, false
		}
		return n + int(arg), true
	case KindList:
		if major != 0x80 {
			return 0, false
		}
		for range arg {
			if n >= len(b) {
				return 0, false
			}
			m, ok := t.elem().match(b[n:], depth+1)
			if !ok {
				return 0, false
			}
			n += m
		}
		return n, true
	case KindDict:
		if major != 0xa0 {
			return 0, false
		}
		for range arg {
			if n >= len(b) || b[n]&0xe0 != 0x60 {
				return 0, false
			}
			k, err := itemLen(b[n:], 1)
			if err != nil {
				return 0, false
			}
			n += k
			if n >= len(b) {
				return 0, false
			}
			m, ok := t.elem().match(b[n:], depth+1)
			if !ok {
				return 0, false
			}
			n += m
		}
		return n, true
	}
	return 0, false
}

// Compatible reports whether a value of type from can be passed where to is
// declared: Always if every value fits (possibly after coercion: int into
// float), Maybe if some values fit after coercion (str into int: "5" does,
// "x" does not), and Never if none can.
func Compatible(from, to Type) Compatibility {
	if to.Kind == KindAny || from.Kind == KindAny {
		if to.Kind == KindAny {
			return Always
		}
		return Maybe
	}
	if to.Kind == KindOptional {
		if from.Kind == KindNull {
			return Always
		}
		if from.Kind == KindOptional {
			return Compatible(from.elem(), to.elem())
		}
		return Compatible(from, to.elem())
	}
	if from.Kind == KindOptional {
		if to.Kind == KindNull {
			return Maybe
		}
		return min(Maybe, Compatible(from.elem(), to))
	}
	if from.Kind == to.Kind {
		switch from.Kind {
		case KindList, KindDict:
			return Compatible(from.elem(), to.elem())
		}
		return Always
	}
	switch to.Kind {
	case KindFloat:
		switch from.Kind {
		case KindInt:
			return Always
		case KindStr:
			return Maybe
		}
	case KindInt:
		switch from.Kind {
		case KindBool:
			return Always
		case KindFloat, KindStr:
			return Maybe
		}
	case KindBool:
		switch from.Kind {
		case KindInt, KindFloat, KindStr:
			return Maybe
		}
	case KindBytes:
		if from.Kind == KindStr {
			return Always
		}
	}
	return Never
}

// Compatibility is the answer of [Compatible].
type Compatibility uint8

// Compatibilities, from worst to best.
const (
	Never Compatibility = iota
	Maybe
	Always
)
