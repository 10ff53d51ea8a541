package cas

import (
	"encoding/base64"
	"fmt"
	"math"
)

// JSONValue converts a decoded data-model value (what [Decode] returns)
// into one encoding/json renders faithfully: bytes become
// "base64:<standard base64>" (the spelling parameters accept for bytes)
// and non-finite floats become their text ("NaN", "+Inf", "-Inf"). Lists
// and maps are copied; v is not changed.
func JSONValue(v any) any {
	switch x := v.(type) {
	case []byte:
		return "base64:" + base64.StdEncoding.EncodeToString(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Sprint(x)
		}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = JSONValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = JSONValue(e)
		}
		return out
	}
	return v
}
