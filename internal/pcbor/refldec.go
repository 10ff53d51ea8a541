package pcbor

// This file is the reflective decoder that goes with refl.go's encoder:
// what [UnmarshalValue] and [UnmarshalMessage] are in wasip1 builds. It
// follows the library's rules as pcbor configures it: the limits of
// [MaxNestedLevels] and [MaxElements], tags forbidden, invalid UTF-8 and
// duplicate map keys refused, indefinite lengths accepted; struct fields
// matched by name (exactly, else case-insensitively unless strict), keys a
// struct lacks ignored unless strict; an any holds the data model's Go
// values, as [Decode] gives them. It stops at the first error (the
// library goes on and reports the first).

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// UnmarshalReflect is [UnmarshalValue] (strict false) or
// [UnmarshalMessage] (strict true) without the CBOR library.
func UnmarshalReflect(b []byte, v any, strict bool) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer {
		return fmt.Errorf("cbor: Unmarshal(non-pointer %v)", rv.Type())
	}
	if rv.IsNil() {
		return fmt.Errorf("cbor: Unmarshal(nil %v)", rv.Type())
	}
	n, err := itemLen(b)
	if err != nil {
		return err
	}
	if n != len(b) {
		return fmt.Errorf("cbor: %d bytes of extraneous data starting at index %d", len(b)-n, n)
	}
	d := reflDecoder{strict: strict}
	_, err = d.decode(b, rv.Elem())
	return err
}

// itemLen checks the data item at the start of b (well-formed, within the
// limits, no tags, valid UTF-8 text) and returns its length.
func itemLen(b []byte) (int, error) { return checkItem(b, true) }

// checkItem is itemLen with indefinite lengths allowed or not.
func checkItem(b []byte, indefinite bool) (int, error) {
	n, err := wellFormed(b, 0, indefinite)
	if errors.Is(err, ErrTruncated) {
		err = ErrEOF
	}
	if err != nil {
		return 0, fmt.Errorf("cbor: %w", err)
	}
	return n, nil
}

func wellFormed(b []byte, level int, indefinite bool) (int, error) {
	major, ai, arg, n, err := ReadHead(b)
	if err != nil {
		return 0, err
	}
	if ai == 31 && !indefinite && major != Simple {
		return 0, errors.New("indefinite-length item isn't allowed")
	}
	switch major {
	case Uint, Neg:
		return n, nil
	case Bytes, Text:
		if ai == 31 {
			for {
				if n >= len(b) {
					return 0, ErrTruncated
				}
				if b[n] == 0xff {
					return n + 1, nil
				}
				cm, cai, carg, cn, err := ReadHead(b[n:])
				if err != nil {
					return 0, err
				}
				if cm != major || cai == 31 {
					return 0, errors.New("wrong element type in indefinite-length string")
				}
				if carg > uint64(len(b)-n-cn) {
					return 0, ErrTruncated
				}
				if major == Text && !utf8.Valid(b[n+cn:n+cn+int(carg)]) {
					return 0, errors.New("invalid UTF-8 string")
				}
				n += cn + int(carg)
			}
		}
		if arg > uint64(len(b)-n) {
			return 0, ErrTruncated
		}
		if major == Text && !utf8.Valid(b[n:n+int(arg)]) {
			return 0, errors.New("invalid UTF-8 string")
		}
		return n + int(arg), nil
	case Array, Map:
		if level >= MaxNestedLevels {
			return 0, fmt.Errorf("exceeded max nested level %d", MaxNestedLevels)
		}
		per := 1
		if major == Map {
			per = 2
		}
		if ai != 31 && arg > MaxElements {
			return 0, fmt.Errorf("exceeded max number of elements %d for CBOR array or map", MaxElements)
		}
		for i := uint64(0); ai == 31 || i < arg; i++ {
			if ai == 31 {
				if n >= len(b) {
					return 0, ErrTruncated
				}
				if b[n] == 0xff {
					return n + 1, nil
				}
				if i >= MaxElements {
					return 0, fmt.Errorf("exceeded max number of elements %d for CBOR array or map", MaxElements)
				}
			}
			for range per {
				m, err := wellFormed(b[n:], level+1, indefinite)
				if err != nil {
					return 0, err
				}
				n += m
			}
		}
		return n, nil
	case Tag:
		return 0, errors.New("CBOR tag isn't allowed")
	}
	switch {
	case ai == 31:
		return 0, errors.New(`unexpected "break" code`)
	case ai == 24 && arg < 32:
		return 0, fmt.Errorf("invalid simple value %d for type primitives", arg)
	}
	return n, nil
}

type reflDecoder struct{ strict bool }

// typeError is the library's error for a value of the wrong kind.
func typeError(major byte, t reflect.Type, msg string) error {
	names := map[byte]string{Uint: "positive integer", Neg: "negative integer", Bytes: "byte string",
		Text: "UTF-8 text string", Array: "array", Map: "map", Tag: "tag", Simple: "primitives"}
	return &unmarshalTypeError{cborType: names[major], goType: t.String(), msg: msg}
}

// unmarshalTypeError words itself as the library's UnmarshalTypeError.
type unmarshalTypeError struct {
	cborType, goType string
	field            string // the outermost struct field it was decoding, as "pkg.Type.key"
	msg              string
}

func (e *unmarshalTypeError) Error() string {
	s := "cbor: cannot unmarshal " + e.cborType + " into Go value of type " + e.goType
	if e.field != "" {
		s = "cbor: cannot unmarshal " + e.cborType + " into Go struct field " + e.field + " of type " + e.goType
	}
	if e.msg != "" {
		s += " (" + e.msg + ")"
	}
	return s
}

// stringBytes returns the content of the (well-formed) byte or text string
// at the start of b, chunks joined, and the string's length.
func stringBytes(b []byte) ([]byte, int) {
	_, ai, arg, n, _ := ReadHead(b)
	if ai != 31 {
		return b[n : n+int(arg)], n + int(arg)
	}
	s := []byte{}
	for b[n] != 0xff {
		_, _, carg, cn, _ := ReadHead(b[n:])
		s = append(s, b[n+cn:n+cn+int(carg)]...)
		n += cn + int(carg)
	}
	return s, n + 1
}

// decode decodes the well-formed item at the start of b into v and returns
// its length.
func (d *reflDecoder) decode(b []byte, v reflect.Value) (int, error) {
	size, _ := wellFormed(b, 0, true) // checked whole by the caller
	if (b[0] == 0xf6 || b[0] == 0xf7) && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) {
		v.SetZero()
		return 1, nil
	}
	if v.Kind() == reflect.Interface {
		if v.NumMethod() == 0 {
			x, _, err := (&decoder{left: -1}).value(b[:size], 0)
			if err != nil {
				return 0, fmt.Errorf("cbor: %w", err)
			}
			if x == nil {
				v.SetZero()
			} else {
				v.Set(reflect.ValueOf(x))
			}
			return size, nil
		}
		e := v.Elem()
		if v.IsNil() || e.Kind() != reflect.Pointer || e.IsNil() {
			return 0, typeError(b[0]&0xe0, v.Type(), "")
		}
		v = e
	}
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			if !v.CanSet() {
				return 0, errors.New("cbor: cannot set new value for " + v.Type().String())
			}
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	t := v.Type()
	switch {
	case t == typeTime:
		return size, d.decodeTime(b[:size], v)
	case reflect.PointerTo(t).Implements(typeUnmarshaler) && v.CanAddr():
		return size, v.Addr().Interface().(cborUnmarshaler).UnmarshalCBOR(b[:size])
	case isBigInt(t) && v.CanAddr():
		major, _, arg, _, _ := ReadHead(b)
		var s string
		switch major {
		case Uint:
			s = strconv.FormatUint(arg, 10)
		case Neg:
			s = negString(arg)
		default:
			return 0, typeError(major, t, "")
		}
		return size, v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s))
	}
	major, ai, arg, n, _ := ReadHead(b)
	switch major {
	case Uint:
		return n, fillUint(arg, v)
	case Neg:
		if arg > math.MaxInt64 {
			return 0, typeError(major, t, negString(arg)+" overflows Go's int64")
		}
		return n, fillInt(-1-int64(arg), v)
	case Bytes:
		s, _ := stringBytes(b)
		if reflect.PointerTo(t).Implements(typeBinaryUnmarshaler) && v.CanAddr() {
			return size, v.Addr().Interface().(encoding.BinaryUnmarshaler).UnmarshalBinary(s)
		}
		switch {
		case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
			v.SetBytes(append([]byte{}, s...))
			return size, nil
		case t.Kind() == reflect.Array && t.Elem().Kind() == reflect.Uint8:
			for i := range v.Len() {
				if i < len(s) {
					v.Index(i).SetUint(uint64(s[i]))
				} else {
					v.Index(i).SetZero()
				}
			}
			return size, nil
		}
		return 0, typeError(major, t, "")
	case Text:
		if t.Kind() != reflect.String {
			return 0, typeError(major, t, "")
		}
		s, _ := stringBytes(b)
		v.SetString(string(s))
		return size, nil
	case Array:
		switch t.Kind() {
		case reflect.Slice:
			return size, d.decodeArray(b, v, true)
		case reflect.Array:
			return size, d.decodeArray(b, v, false)
		case reflect.Struct:
			return size, d.decodeStructArray(b, v)
		}
		return 0, typeError(major, t, "")
	case Map:
		switch t.Kind() {
		case reflect.Struct:
			return size, d.decodeStruct(b, v)
		case reflect.Map:
			return size, d.decodeMap(b, v)
		}
		return 0, typeError(major, t, "")
	}
	switch ai {
	case 20, 21:
		if t.Kind() != reflect.Bool {
			return 0, typeError(major, t, "")
		}
		v.SetBool(ai == 21)
	case 22, 23: // null, undefined: nil containers, else left as they are
		if k := t.Kind(); k == reflect.Slice || k == reflect.Map {
			v.SetZero()
		}
	case 25, 26, 27:
		f := Float(ai, arg)
		if k := t.Kind(); k != reflect.Float32 && k != reflect.Float64 {
			return 0, typeError(major, t, "")
		}
		if v.OverflowFloat(f) {
			return 0, typeError(major, t, strconv.FormatFloat(f, 'E', -1, 64)+" overflows "+t.String())
		}
		v.SetFloat(f)
	default:
		return 0, typeError(major, t, "simple value "+strconv.FormatUint(arg, 10)+" is not in the data model")
	}
	return n, nil
}

// negString is the decimal text of the negative integer -1-arg.
func negString(arg uint64) string {
	if arg == math.MaxUint64 {
		return "-18446744073709551616"
	}
	return "-" + strconv.FormatUint(arg+1, 10)
}

func fillUint(u uint64, v reflect.Value) error {
	t := v.Type()
	over := func() error { return typeError(Uint, t, strconv.FormatUint(u, 10)+" overflows "+t.String()) }
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if u > math.MaxInt64 || v.OverflowInt(int64(u)) {
			return over()
		}
		v.SetInt(int64(u))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if v.OverflowUint(u) {
			return over()
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(u))
	default:
		return typeError(Uint, t, "")
	}
	return nil
}

func fillInt(i int64, v reflect.Value) error {
	t := v.Type()
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.OverflowInt(i) {
			return typeError(Neg, t, strconv.FormatInt(i, 10)+" overflows "+t.String())
		}
		v.SetInt(i)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(i))
	default:
		return typeError(Neg, t, "")
	}
	return nil
}

func (d *reflDecoder) decodeTime(b []byte, v reflect.Value) error {
	major, ai, arg, _, _ := ReadHead(b)
	var t time.Time
	switch {
	case b[0] == 0xf6 || b[0] == 0xf7:
		return nil // left as it is
	case major == Text:
		s, _ := stringBytes(b)
		if err := t.UnmarshalText(s); err != nil {
			return fmt.Errorf("cbor: cannot set %s for time.Time: %w", s, err)
		}
	case major == Uint && arg <= math.MaxInt64:
		t = time.Unix(int64(arg), 0)
	case major == Neg && arg <= math.MaxInt64:
		t = time.Unix(-1-int64(arg), 0)
	case major == Simple && ai >= 25 && ai <= 27:
		f := Float(ai, arg)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			break // the zero time
		}
		sec, frac := math.Modf(f)
		if sec >= math.MaxInt64 || sec < math.MinInt64 {
			return typeError(major, typeTime, fmt.Sprintf("%v overflows Go's int64", f))
		}
		t = time.Unix(int64(sec), int64(frac*1e9))
	default:
		return typeError(major, typeTime, "")
	}
	v.Set(reflect.ValueOf(t))
	return nil
}

// entriesOf calls fn with the offset of each entry of the well-formed
// array or map at the start of b (for a map, each key), and its index.
func entriesOf(b []byte, fn func(i, off int) (int, error)) error {
	_, ai, arg, n, _ := ReadHead(b)
	for i := 0; ai == 31 || uint64(i) < arg; i++ {
		if ai == 31 && b[n] == 0xff {
			return nil
		}
		m, err := fn(i, n)
		if err != nil {
			return err
		}
		n += m
	}
	return nil
}

func count(b []byte) int {
	_, ai, arg, _, _ := ReadHead(b)
	if ai != 31 {
		return int(arg)
	}
	c := 0
	_ = entriesOf(b, func(_, off int) (int, error) {
		c++
		n, _ := wellFormed(b[off:], 0, true)
		if b[0]&0xe0 == Map {
			m, _ := wellFormed(b[off+n:], 0, true)
			n += m
		}
		return n, nil
	})
	return c
}

func (d *reflDecoder) decodeArray(b []byte, v reflect.Value, slice bool) error {
	c := count(b)
	if slice {
		v.Set(reflect.MakeSlice(v.Type(), c, c))
	}
	err := entriesOf(b, func(i, off int) (int, error) {
		if i >= v.Len() {
			return wellFormed(b[off:], 0, true)
		}
		return d.decode(b[off:], v.Index(i))
	})
	for i := c; i < v.Len(); i++ {
		v.Index(i).SetZero()
	}
	return err
}

func (d *reflDecoder) decodeStructArray(b []byte, v reflect.Value) error {
	st, err := structOf(v.Type())
	if err != nil {
		return err
	}
	if !st.toArray {
		return typeError(Array, v.Type(), "")
	}
	if c := count(b); c != len(st.fields) {
		return typeError(Array, v.Type(), "cannot decode CBOR array to struct with different number of elements")
	}
	return entriesOf(b, func(i, off int) (int, error) {
		fv, err := settableField(v, st.fields[i].idx)
		if err != nil {
			return 0, err
		}
		return d.decode(b[off:], fv)
	})
}

// settableField returns the field at index path idx, allocating nil
// embedded pointers on the way.
func settableField(v reflect.Value, idx []int) (reflect.Value, error) {
	for i, n := range idx {
		v = v.Field(n)
		if i < len(idx)-1 && v.Kind() == reflect.Pointer && v.Type().Elem().Kind() == reflect.Struct {
			if v.IsNil() {
				if !v.CanSet() {
					return reflect.Value{}, errors.New("cbor: cannot set embedded pointer to unexported struct: " + v.Type().String())
				}
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
	}
	return v, nil
}

func (d *reflDecoder) decodeStruct(b []byte, v reflect.Value) error {
	st, err := structOf(v.Type())
	if err != nil {
		return err
	}
	if st.toArray {
		return typeError(Map, v.Type(), "cannot decode CBOR map to struct with toarray option")
	}
	seen := make([]bool, len(st.fields))
	var unknown map[any]bool // keys that match no field, to find them twice
	return entriesOf(b, func(i, off int) (int, error) {
		kn, _ := wellFormed(b[off:], 0, true)
		vn, _ := wellFormed(b[off+kn:], 0, true)
		major, _, arg, _, _ := ReadHead(b[off:])
		f := -1
		var key any
		switch major {
		case Text:
			s, _ := stringBytes(b[off:])
			name := string(s)
			key = name
			f = st.match(name, d.strict)
		case Uint, Neg:
			if arg > math.MaxInt64 {
				return 0, typeError(major, reflect.TypeFor[int64](), "map key overflows Go's int64")
			}
			k := int64(arg)
			if major == Neg {
				k = -1 - k
			}
			key = k
			f = st.matchInt(k)
		default:
			return 0, typeError(major, reflect.TypeFor[string](), "map key is of a type that cannot be used to match struct field name")
		}
		if f < 0 && key != nil {
			if unknown[key] {
				return 0, fmt.Errorf("cbor: found duplicate map key %#v at map element index %d", key, i)
			}
			if unknown == nil {
				unknown = map[any]bool{}
			}
			unknown[key] = true
		}
		if f < 0 {
			if d.strict {
				return 0, fmt.Errorf("cbor: found unknown field at map element index %d", i)
			}
			return kn + vn, nil
		}
		if seen[f] {
			return 0, fmt.Errorf("cbor: found duplicate map key %#v at map element index %d", key, i)
		}
		seen[f] = true
		fv, err := settableField(v, st.fields[f].idx)
		if err != nil {
			return 0, err
		}
		if _, err := d.decode(b[off+kn:], fv); err != nil {
			if te, ok := err.(*unmarshalTypeError); ok {
				te.field = v.Type().String() + "." + st.fields[f].name
			}
			return 0, err
		}
		return kn + vn, nil
	})
}

// match returns the index of the field named name: exactly, else (unless
// strict) case-insensitively; -1 if none.
func (st *structType) match(name string, strict bool) int {
	for i, f := range st.fields {
		if !f.keyAsInt && f.name == name {
			return i
		}
	}
	if !strict {
		for i, f := range st.fields {
			if !f.keyAsInt && strings.EqualFold(f.name, name) {
				return i
			}
		}
	}
	return -1
}

func (st *structType) matchInt(k int64) int {
	for i, f := range st.fields {
		if f.keyAsInt && f.keyInt == k {
			return i
		}
	}
	return -1
}

func (d *reflDecoder) decodeMap(b []byte, v reflect.Value) error {
	t := v.Type()
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(t, count(b)))
	}
	return entriesOf(b, func(i, off int) (int, error) {
		key := reflect.New(t.Key()).Elem()
		kn, err := d.decode(b[off:], key)
		if err != nil {
			return 0, err
		}
		if k := key; k.Kind() == reflect.Interface && !k.IsNil() {
			if !k.Elem().Type().Comparable() {
				return 0, fmt.Errorf("cbor: invalid map key type: %v", k.Elem().Type())
			}
		}
		if v.MapIndex(key).IsValid() {
			return 0, fmt.Errorf("cbor: found duplicate map key %#v at map element index %d", key.Interface(), i)
		}
		elem := reflect.New(t.Elem()).Elem()
		vn, err := d.decode(b[off+kn:], elem)
		if err != nil {
			return 0, err
		}
		v.SetMapIndex(key, elem)
		return kn + vn, nil
	})
}
