package host

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
)

// Format is the encoding of the documents an Extism plugin or a WASI
// command reads and writes.
type Format string

// Formats.
const (
	FormatCBOR Format = "cbor"
	FormatJSON Format = "json"
)

// inputDocument encodes a call's inputs and config as one map from input
// name to value, in format f. JSON has no byte strings: bytes become text
// "base64:<standard encoding>", which a declared bytes input accepts back.
func inputDocument(f Format, c *Call) ([]byte, error) {
	if f == FormatCBOR {
		return cborDocument(c), nil
	}
	doc := make(map[string]any, len(c.Inputs)+len(c.Config))
	for _, args := range [2][]abi.Arg{c.Inputs, c.Config} {
		for _, a := range args {
			v, err := cas.Decode(a.Value)
			if err != nil {
				return nil, fmt.Errorf("input %q: %w", a.Name, err)
			}
			if doc[a.Name], err = toJSON(v); err != nil {
				return nil, fmt.Errorf("input %q: %w", a.Name, err)
			}
		}
	}
	return json.Marshal(doc)
}

// cborDocument builds the canonical CBOR map of a call's arguments from
// their canonical encodings, without decoding them.
func cborDocument(c *Call) []byte {
	args := make([]abi.Arg, 0, len(c.Inputs)+len(c.Config))
	args = append(append(args, c.Inputs...), c.Config...)
	abi.SortArgs(args)
	n := 9
	for _, a := range args {
		n += 9 + len(a.Name) + len(a.Value)
	}
	return abi.AppendArgs(make([]byte, 0, n), args)
}

// toJSON converts a decoded value for encoding/json.
func toJSON(v any) (any, error) {
	switch v := v.(type) {
	case []byte:
		return "base64:" + base64.StdEncoding.EncodeToString(v), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%v has no JSON form", v)
		}
		return v, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			var err error
			if out[i], err = toJSON(e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			var err error
			if out[k], err = toJSON(e); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return v, nil
}

// decodeDocument reads one document in format f as a canonical value. An
// empty document (nothing but white space, for JSON) is null.
func decodeDocument(f Format, b []byte) ([]byte, error) {
	if f == FormatCBOR {
		if len(b) == 0 {
			return cas.Encode(nil)
		}
		return cas.Canonicalize(b)
	}
	v, err := parseJSON(b)
	if err != nil {
		return nil, err
	}
	return cas.Encode(v)
}

// maxJSONDepth bounds the nesting of a JSON document, as the CBOR
// decoder bounds CBOR's.
const maxJSONDepth = cas.MaxNestedLevels

// parseJSON decodes exactly one JSON document (or none: null) into the
// data model: integers without a fraction or exponent that fit in int64
// are ints, other numbers floats.
func parseJSON(b []byte) (any, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := readJSON(dec, 0)
	if err != nil {
		return nil, fmt.Errorf("JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("JSON: more than one document")
	}
	return v, nil
}

func readJSON(dec *json.Decoder, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxJSONDepth)
	}
	t, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	switch t := t.(type) {
	case json.Delim:
		switch t {
		case '[':
			list := []any{}
			for dec.More() {
				e, err := readJSON(dec, depth+1)
				if err != nil {
					return nil, err
				}
				list = append(list, e)
			}
			_, err := dec.Token()
			return list, err
		case '{':
			m := map[string]any{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key := k.(string) // the decoder guarantees object keys are strings
				if _, dup := m[key]; dup {
					return nil, fmt.Errorf("duplicate key %q", key)
				}
				if m[key], err = readJSON(dec, depth+1); err != nil {
					return nil, err
				}
			}
			_, err := dec.Token()
			return m, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		s := string(t)
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return i, nil
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", s, err)
		}
		return f, nil
	}
	return t, nil // string, bool or nil
}
