package pcbor

// This file is a reflective encoder of the one encoding that does not use
// the CBOR library: Go knot modules (wasip1 builds, see guest.go) encode
// with it, so that they do not link the library, which with what it pulls
// in (math/big, its caches, its many modes) is about 1 MB of a module's
// code and a third of its compile time. Host builds keep the library;
// refl_test.go checks that both write the same bytes for the same values.
//
// It follows the library's rules as pcbor configures it (core
// deterministic encoding, RFC 3339 times): struct fields named by their
// cbor tag, else their json tag, else the field name, with the options
// omitempty, omitzero, keyasint and the struct option toarray; embedded
// structs promoted as encoding/json does; MarshalCBOR and MarshalBinary
// honoured; nil slices, maps and pointers as null.

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/x448/float16"
)

// RawMessage is an encoded CBOR data item kept as it is: encoding it
// writes its bytes (null when it is empty), decoding into it copies the
// item. It is abi's type for values carried inside messages.
type RawMessage []byte

// MarshalCBOR returns m, or null when m is empty.
func (m RawMessage) MarshalCBOR() ([]byte, error) {
	if len(m) == 0 {
		return []byte{0xf6}, nil
	}
	return m, nil
}

// UnmarshalCBOR keeps a copy of data.
func (m *RawMessage) UnmarshalCBOR(data []byte) error {
	if m == nil {
		return errors.New("cbor: UnmarshalCBOR on nil RawMessage")
	}
	*m = append((*m)[:0], data...)
	return nil
}

// IsZero reports whether m is empty, for the omitzero option.
func (m RawMessage) IsZero() bool { return len(m) == 0 }

type (
	cborMarshaler   interface{ MarshalCBOR() ([]byte, error) }
	cborUnmarshaler interface{ UnmarshalCBOR([]byte) error }
	isZeroer        interface{ IsZero() bool }
	// bigInt is the part of *math/big.Int the encoder uses, so that it
	// need not import math/big.
	bigInt interface {
		IsInt64() bool
		Int64() int64
		IsUint64() bool
		Uint64() uint64
	}
)

var (
	typeTime              = reflect.TypeFor[time.Time]()
	typeMarshaler         = reflect.TypeFor[cborMarshaler]()
	typeUnmarshaler       = reflect.TypeFor[cborUnmarshaler]()
	typeBinaryMarshaler   = reflect.TypeFor[encoding.BinaryMarshaler]()
	typeBinaryUnmarshaler = reflect.TypeFor[encoding.BinaryUnmarshaler]()
	typeIsZeroer          = reflect.TypeFor[isZeroer]()
)

// maxEncodeDepth bounds how deep the encoders follow a value, in steps
// (each pointer, interface, container and struct field counts one), so
// that a cyclic value is an error rather than a stack overflow.
const maxEncodeDepth = 10_000

// MarshalReflect is [Marshal] without the CBOR library.
func MarshalReflect(v any) ([]byte, error) {
	if v == nil {
		return []byte{0xf6}, nil
	}
	return appendValue(nil, reflect.ValueOf(v), 0)
}

func unsupported(t reflect.Type) error { return fmt.Errorf("cbor: unsupported type: %v", t) }

func isLibType(t reflect.Type, name string) bool {
	return t.Name() == name && t.PkgPath() == "github.com/fxamacker/cbor/v2"
}

func isBigInt(t reflect.Type) bool { return t.Name() == "Int" && t.PkgPath() == "math/big" }

// addressable returns v's address if it has one, else the address of a
// copy: methods with pointer receivers are called on it.
func addressable(v reflect.Value) reflect.Value {
	if v.CanAddr() {
		return v.Addr()
	}
	p := reflect.New(v.Type())
	p.Elem().Set(v)
	return p
}

func appendValue(dst []byte, v reflect.Value, depth int) ([]byte, error) {
	if depth > maxEncodeDepth {
		return dst, errTooDeep
	}
	t := v.Type()
	switch {
	case t.Kind() == reflect.Pointer:
		if v.IsNil() {
			return append(dst, 0xf6), nil
		}
		return appendValue(dst, v.Elem(), depth+1)
	case t == typeTime:
		return appendTime(dst, v.Interface().(time.Time))
	case isBigInt(t):
		b := addressable(v).Interface().(bigInt)
		switch {
		case b.IsInt64():
			return appendInt(dst, b.Int64()), nil
		case b.IsUint64():
			return AppendHead(dst, Uint, b.Uint64()), nil
		}
		return dst, errors.New("cbor: big.Int overflows 64 bits (bignum tags are outside the data model)")
	case reflect.PointerTo(t).Implements(typeMarshaler):
		b, err := addressable(v).Interface().(cborMarshaler).MarshalCBOR()
		if err != nil {
			return dst, &marshalerError{t, err}
		}
		if n, err := checkItem(b, false); err != nil || n != len(b) {
			if err == nil {
				err = fmt.Errorf("cbor: %d bytes of extraneous data", len(b)-n)
			}
			return dst, &marshalerError{t, err}
		}
		return append(dst, b...), nil
	case reflect.PointerTo(t).Implements(typeBinaryMarshaler):
		b, err := addressable(v).Interface().(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return dst, err
		}
		return append(AppendHead(dst, Bytes, uint64(len(b))), b...), nil
	}
	switch t.Kind() {
	case reflect.Bool:
		if v.Bool() {
			return append(dst, 0xf5), nil
		}
		return append(dst, 0xf4), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return appendInt(dst, v.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return AppendHead(dst, Uint, v.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return AppendFloat(dst, v.Float()), nil
	case reflect.String:
		return AppendText(dst, v.String()), nil
	case reflect.Slice:
		if v.IsNil() {
			return append(dst, 0xf6), nil
		}
		if t.Elem().Kind() == reflect.Uint8 {
			return append(AppendHead(dst, Bytes, uint64(v.Len())), v.Bytes()...), nil
		}
		return appendArray(dst, v, depth)
	case reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			dst = AppendHead(dst, Bytes, uint64(v.Len()))
			for i := range v.Len() {
				dst = append(dst, byte(v.Index(i).Uint()))
			}
			return dst, nil
		}
		return appendArray(dst, v, depth)
	case reflect.Map:
		if v.IsNil() {
			return append(dst, 0xf6), nil
		}
		return appendMap(dst, v, depth)
	case reflect.Struct:
		return appendStruct(dst, v, depth)
	case reflect.Interface:
		if v.IsNil() {
			return append(dst, 0xf6), nil
		}
		return appendValue(dst, v.Elem(), depth+1)
	}
	return dst, unsupported(t)
}

type marshalerError struct {
	t   reflect.Type
	err error
}

func (e *marshalerError) Error() string {
	return fmt.Sprintf("cbor: error calling MarshalCBOR for type %v: %v", e.t, e.err)
}

func (e *marshalerError) Unwrap() error { return e.err }

func appendInt(dst []byte, i int64) []byte {
	if i < 0 {
		return AppendHead(dst, Neg, uint64(-1-i))
	}
	return AppendHead(dst, Uint, uint64(i))
}

// AppendFloat appends f in its shortest exact width (half, single or
// double precision), NaN as the half-precision quiet NaN and the
// infinities in half precision, as core deterministic encoding requires.
func AppendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, 0xf9, 0x7e, 0x00)
	case math.IsInf(f, 1):
		return append(dst, 0xf9, 0x7c, 0x00)
	case math.IsInf(f, -1):
		return append(dst, 0xf9, 0xfc, 0x00)
	}
	f32 := float32(f)
	if float64(f32) != f {
		b := math.Float64bits(f)
		return append(dst, 0xfb, byte(b>>56), byte(b>>48), byte(b>>40), byte(b>>32),
			byte(b>>24), byte(b>>16), byte(b>>8), byte(b))
	}
	if h := float16.Fromfloat32(f32); h.Float32() == f32 {
		return append(dst, 0xf9, byte(h>>8), byte(h))
	}
	b := math.Float32bits(f32)
	return append(dst, 0xfa, byte(b>>24), byte(b>>16), byte(b>>8), byte(b))
}

// appendTime writes t as RFC 3339 text with nanoseconds, as
// time.RFC3339Nano formats it (MarshalText is that format's fast path, and
// links less code than Format), and the zero time as null.
func appendTime(dst []byte, t time.Time) ([]byte, error) {
	if t.IsZero() {
		return append(dst, 0xf6), nil
	}
	b, err := t.MarshalText()
	if err != nil {
		return dst, fmt.Errorf("cbor: %w", err)
	}
	return append(AppendHead(dst, Text, uint64(len(b))), b...), nil
}

func appendArray(dst []byte, v reflect.Value, depth int) ([]byte, error) {
	n := v.Len()
	dst = AppendHead(dst, Array, uint64(n))
	var err error
	for i := range n {
		if dst, err = appendValue(dst, v.Index(i), depth+1); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// appendMap writes the entries, then sorts them by their encoded keys
// (bytewise, which for text keys is shorter first, then bytewise).
func appendMap(dst []byte, v reflect.Value, depth int) ([]byte, error) {
	n := v.Len()
	dst = AppendHead(dst, Map, uint64(n))
	if n == 0 {
		return dst, nil
	}
	type entry struct{ start, value, end int }
	start := len(dst)
	es := make([]*entry, 0, n) // pointers: the sort shares the pointer-shaped instantiation
	var err error
	for it := v.MapRange(); it.Next(); {
		e := entry{start: len(dst)}
		if dst, err = appendValue(dst, it.Key(), depth+1); err != nil {
			return dst, err
		}
		e.value = len(dst)
		if dst, err = appendValue(dst, it.Value(), depth+1); err != nil {
			return dst, err
		}
		e.end = len(dst)
		es = append(es, &e)
	}
	body := dst[start:]
	slices.SortFunc(es, func(a, b *entry) int {
		return bytes.Compare(body[a.start-start:a.value-start], body[b.start-start:b.value-start])
	})
	sorted := make([]byte, 0, len(body))
	for _, e := range es {
		sorted = append(sorted, body[e.start-start:e.end-start]...)
	}
	copy(body, sorted)
	return dst, nil
}

func appendStruct(dst []byte, v reflect.Value, depth int) ([]byte, error) {
	st, err := structOf(v.Type())
	if err != nil {
		return dst, err
	}
	if st.toArray {
		dst = AppendHead(dst, Array, uint64(len(st.fields)))
		for _, f := range st.fields {
			fv, ok := fieldOf(v, f.idx)
			if !ok {
				dst = append(dst, 0xf6) // a nil embedded pointer
				continue
			}
			if dst, err = appendValue(dst, fv, depth+1); err != nil {
				return dst, err
			}
		}
		return dst, nil
	}
	// The fields are in encoded-key order; those omitted are left out of
	// the count, which is written last.
	var body []byte
	n := 0
	for _, f := range st.sorted {
		fv, ok := fieldOf(v, f.idx)
		if !ok {
			continue
		}
		if f.omitEmpty {
			empty, err := isEmpty(fv, depth)
			if err != nil {
				return dst, err
			}
			if empty {
				continue
			}
		}
		if f.omitZero && isZero(fv) {
			continue
		}
		body = append(body, f.key...)
		if body, err = appendValue(body, fv, depth+1); err != nil {
			return dst, err
		}
		n++
	}
	return append(AppendHead(dst, Map, uint64(n)), body...), nil
}

// fieldOf returns the field at index path idx, and false if it is behind a
// nil embedded pointer.
func fieldOf(v reflect.Value, idx []int) (reflect.Value, bool) {
	for i, n := range idx {
		v = v.Field(n)
		if i < len(idx)-1 && v.Kind() == reflect.Pointer && v.Type().Elem().Kind() == reflect.Struct {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
	}
	return v, true
}

// isEmpty is the omitempty test: the value would encode as false, 0, an
// empty string or container, or null.
func isEmpty(v reflect.Value, depth int) (bool, error) {
	t := v.Type()
	switch {
	case t.Kind() == reflect.Pointer:
		return v.IsNil(), nil
	case t == typeTime, isBigInt(t):
		return false, nil
	case reflect.PointerTo(t).Implements(typeMarshaler):
		switch {
		case isLibType(t, "RawMessage"):
			return v.Len() == 0, nil
		case isLibType(t, "ByteString"):
			return v.Len() == 0, nil
		}
		return false, nil
	case reflect.PointerTo(t).Implements(typeBinaryMarshaler):
		b, err := addressable(v).Interface().(encoding.BinaryMarshaler).MarshalBinary()
		return len(b) == 0, err
	}
	switch t.Kind() {
	case reflect.Bool:
		return !v.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint() == 0, nil
	case reflect.Float32, reflect.Float64:
		return v.Float() == 0, nil
	case reflect.String, reflect.Slice, reflect.Array, reflect.Map:
		return v.Len() == 0, nil
	case reflect.Interface:
		return v.IsNil(), nil
	case reflect.Struct:
		st, err := structOf(t)
		if err != nil {
			return false, err
		}
		if st.toArray {
			return len(st.fields) == 0, nil
		}
		for _, f := range st.fields {
			if !f.omitEmpty {
				return false, nil
			}
		}
		if depth > maxEncodeDepth {
			return false, errTooDeep
		}
		for _, f := range st.fields {
			fv, ok := fieldOf(v, f.idx)
			if !ok {
				continue
			}
			if e, err := isEmpty(fv, depth+1); err != nil || !e {
				return false, err
			}
		}
		return true, nil
	}
	return false, nil
}

// isZero is the omitzero test: an IsZero method if the type has one, else
// reflect's zero value; a toarray struct is zero when it has no fields.
func isZero(v reflect.Value) bool {
	t := v.Type()
	if t.Kind() == reflect.Struct {
		if st, err := structOf(t); err == nil && st.toArray {
			return len(st.fields) == 0
		}
	}
	switch {
	case t.Kind() == reflect.Interface && t.Implements(typeIsZeroer):
		if v.IsNil() {
			return true
		}
		if e := v.Elem(); e.Kind() == reflect.Pointer && e.IsNil() {
			return true
		}
		return v.Interface().(isZeroer).IsZero()
	case t.Kind() == reflect.Pointer && t.Implements(typeIsZeroer):
		return v.IsNil() || v.Interface().(isZeroer).IsZero()
	case t.Implements(typeIsZeroer):
		if v.CanAddr() {
			return v.Addr().Interface().(isZeroer).IsZero()
		}
		return v.Interface().(isZeroer).IsZero()
	case reflect.PointerTo(t).Implements(typeIsZeroer):
		return addressable(v).Interface().(isZeroer).IsZero()
	}
	return v.IsZero()
}

// A structType is how a struct type encodes: its fields in declaration
// order, and in encoded-key order.
type structType struct {
	fields  []*structField
	sorted  []*structField
	toArray bool
}

type structField struct {
	name      string
	idx       []int
	typ       reflect.Type
	key       []byte // the encoded key: text, or an integer for keyasint
	keyInt    int64
	keyAsInt  bool
	tagged    bool
	omitEmpty bool
	omitZero  bool
}

var structCache sync.Map // reflect.Type → *structType or error

func structOf(t reflect.Type) (*structType, error) {
	if c, ok := structCache.Load(t); ok {
		if err, ok := c.(error); ok {
			return nil, err
		}
		return c.(*structType), nil
	}
	st, err := newStructType(t)
	if err != nil {
		structCache.Store(t, err)
		return nil, err
	}
	structCache.Store(t, st)
	return st, nil
}

func newStructType(t reflect.Type) (*structType, error) {
	st := &structType{}
	if f, ok := t.FieldByName("_"); ok {
		if tag := f.Tag.Get("cbor"); tag != "-" {
			arr, indef := hasOption(tag, "toarray"), hasOption(tag, "toindefarray")
			if arr && indef {
				return nil, fmt.Errorf("cbor: struct %v cannot have both \"toarray\" and \"toindefarray\" options", t)
			}
			if indef {
				return nil, fmt.Errorf("cbor: cannot encode struct %v with `toindefarray` (indefinite lengths are not deterministic)", t)
			}
			st.toArray = arr
		}
	}
	st.fields = collectFields(t)
	for _, f := range st.fields {
		if f.keyAsInt {
			i, err := strconv.Atoi(f.name)
			if err != nil {
				return nil, fmt.Errorf("cbor: failed to parse field name %q to int (%v)", f.name, err)
			}
			f.keyInt = int64(i)
			f.key = appendInt(nil, int64(i))
		} else {
			f.key = AppendText(nil, f.name)
		}
	}
	st.sorted = slices.Clone(st.fields)
	slices.SortFunc(st.sorted, func(a, b *structField) int { return bytes.Compare(a.key, b.key) })
	return st, nil
}

func hasOption(tag, opt string) bool {
	for o := range strings.SplitSeq(tag, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// collectFields lists t's encoded fields by encoding/json's visibility
// rules: embedded structs' fields are promoted, a shallower field hides a
// deeper one of the same name, a tagged one an untagged one at the same
// depth, and fields that still collide are all dropped.
func collectFields(t reflect.Type) []*structField {
	var all []*structField
	type level struct {
		t   reflect.Type
		idx []int
	}
	visited := map[reflect.Type]bool{t: true}
	next := []level{{t, nil}}
	for len(next) > 0 {
		cur := next
		next = nil
		// Anonymous struct fields of one type seen twice at a level are all ignored.
		count := map[reflect.Type]int{}
		var embedded []level
		for _, l := range cur {
			for i := range l.t.NumField() {
				f := l.t.Field(i)
				ft := f.Type
				for ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if !f.IsExported() && !(f.Anonymous && ft.Kind() == reflect.Struct) {
					continue
				}
				tag := f.Tag.Get("cbor")
				if tag == "" {
					tag = f.Tag.Get("json")
				}
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				idx := append(slices.Clone(l.idx), i)
				if f.Anonymous && ft.Kind() == reflect.Struct && name == "" {
					count[ft]++
					embedded = append(embedded, level{ft, idx})
					continue
				}
				sf := &structField{name: name, idx: idx, typ: f.Type, tagged: tag != ""}
				if name == "" {
					sf.name = f.Name
				}
				for o := range strings.SplitSeq(opts, ",") {
					switch o {
					case "omitempty":
						sf.omitEmpty = true
					case "omitzero":
						sf.omitZero = true
					case "keyasint":
						sf.keyAsInt = true
					}
				}
				all = append(all, sf)
			}
		}
		for _, e := range embedded {
			if count[e.t] > 1 || visited[e.t] {
				continue
			}
			visited[e.t] = true
			next = append(next, e)
		}
	}
	for _, f := range all {
		if f.keyAsInt {
			if i, err := strconv.Atoi(f.name); err == nil {
				f.name = strconv.Itoa(i)
			}
		}
	}
	slices.SortFunc(all, func(a, b *structField) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if a.keyAsInt != b.keyAsInt {
			if a.keyAsInt {
				return -1
			}
			return 1
		}
		if c := len(a.idx) - len(b.idx); c != 0 {
			return c
		}
		if a.tagged != b.tagged {
			if a.tagged {
				return -1
			}
			return 1
		}
		return slices.Compare(a.idx, b.idx)
	})
	var out []*structField
	for i := 0; i < len(all); {
		f := all[i]
		j := i + 1
		for j < len(all) && all[j].name == f.name && all[j].keyAsInt == f.keyAsInt {
			j++
		}
		if j == i+1 || len(f.idx) < len(all[i+1].idx) || (f.tagged && !all[i+1].tagged) {
			out = append(out, f)
		}
		i = j
	}
	slices.SortFunc(out, func(a, b *structField) int {
		if c := slices.Compare(a.idx[:min(len(a.idx), len(b.idx))], b.idx[:min(len(a.idx), len(b.idx))]); c != 0 {
			return c
		}
		return len(a.idx) - len(b.idx)
	})
	return out
}

// errTooDeep is the error for a value nested deeper than maxEncodeDepth.
var errTooDeep = fmt.Errorf("cbor: value nested more than %d steps deep (a cycle?)", maxEncodeDepth)

// checkDepth reports a value the encoder would follow deeper than
// maxEncodeDepth levels: a cyclic one, say, on which the CBOR library
// recurses until the goroutine's stack overflows (a fatal error, not a
// panic). Values of types that cannot nest deeper than their declaration
// (no interface, no type that contains itself) are not walked.
func checkDepth(v reflect.Value) error {
	if !v.IsValid() || flat(v.Type()) {
		return nil
	}
	return walkDepth(v, 0)
}

func walkDepth(v reflect.Value, depth int) error {
	if depth > maxEncodeDepth {
		return errTooDeep
	}
	t := v.Type()
	if t == typeTime || isBigInt(t) || flat(t) ||
		reflect.PointerTo(t).Implements(typeMarshaler) || reflect.PointerTo(t).Implements(typeBinaryMarshaler) {
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return walkDepth(v.Elem(), depth+1)
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if err := walkDepth(v.Index(i), depth+1); err != nil {
				return err
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if err := walkDepth(it.Key(), depth+1); err != nil {
				return err
			}
			if err := walkDepth(it.Value(), depth+1); err != nil {
				return err
			}
		}
	case reflect.Struct:
		st, err := structOf(t)
		if err != nil {
			return nil // the encoder reports it
		}
		for _, f := range st.fields {
			if fv, ok := fieldOf(v, f.idx); ok {
				if err := walkDepth(fv, depth+1); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

var flatCache sync.Map // reflect.Type → bool

// flat reports whether values of t nest no deeper than t's declaration:
// t reaches no interface type and no type that contains itself.
func flat(t reflect.Type) bool {
	if b, ok := flatCache.Load(t); ok {
		return b.(bool)
	}
	b := flatType(t, map[reflect.Type]bool{})
	flatCache.Store(t, b)
	return b
}

func flatType(t reflect.Type, path map[reflect.Type]bool) bool {
	if path[t] {
		return false // t contains itself
	}
	switch t.Kind() {
	case reflect.Interface:
		return false
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map, reflect.Struct:
	default:
		return true
	}
	path[t] = true
	defer delete(path, t)
	switch t.Kind() {
	case reflect.Map:
		return flatType(t.Key(), path) && flatType(t.Elem(), path)
	case reflect.Struct:
		for i := range t.NumField() {
			if !flatType(t.Field(i).Type, path) {
				return false
			}
		}
		return true
	}
	return flatType(t.Elem(), path)
}
