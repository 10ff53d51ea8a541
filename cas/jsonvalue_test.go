package cas_test

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/pirn-wasm/pirn/cas"
)

func TestJSONValue(t *testing.T) {
	in := map[string]any{"b": []byte{1, 2}, "f": []any{math.NaN(), math.Inf(-1), 1.5}, "s": "x", "n": int64(3)}
	got, err := json.Marshal(cas.JSONValue(in))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"b":"base64:AQI=","f":["NaN","-Inf",1.5],"n":3,"s":"x"}`
	if string(got) != want {
		t.Errorf("JSONValue = %s, want %s", got, want)
	}
	if _, ok := in["b"].([]byte); !ok {
		t.Error("JSONValue changed its argument")
	}
}
