package abi_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn/abi"
)

func TestParseType(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"int", "int"},
		{" str ", "str"},
		{"string", "str"},
		{"Any", "any"},
		{"None", "null"},
		{"list", "list"},
		{"tuple", "list"},
		{"list[int]", "list[int]"},
		{"list[ list[float] ]", "list[list[float]]"},
		{"dict[str]", "dict[str]"},
		{"map[int]", "dict[int]"},
		{"dict[str, int]", "dict[int]"},
		{"optional[bytes]", "optional[bytes]"},
		{"list[optional[dict[any]]]", "list[optional[dict[any]]]"},
	} {
		got, err := abi.ParseType(tc.in)
		if err != nil {
			t.Errorf("ParseType(%q) error: %v", tc.in, err)
			continue
		}
		if got.String() != tc.want {
			t.Errorf("ParseType(%q) = %s, want %s", tc.in, got, tc.want)
		}
		again, err := abi.ParseType(got.String())
		if err != nil || again.String() != got.String() {
			t.Errorf("round trip of %s = %s, %v", got, again, err)
		}
	}
	for _, bad := range []string{"", "widget", "int[str]", "list[", "list[int", "list[int]]", "optional", "dict[int, str]", "list[widget]"} {
		if _, err := abi.ParseType(bad); err == nil {
			t.Errorf("ParseType(%q) succeeded, want error", bad)
		}
	}
}

func TestCoerce(t *testing.T) {
	type tc struct {
		typ  string
		in   any
		want any
	}
	ok := []tc{
		{"int", int64(5), int64(5)},
		{"int", 5, int64(5)},
		{"int", "5", int64(5)},
		{"int", " 7 ", int64(7)},
		{"int", 5.0, int64(5)},
		{"int", "5.0", int64(5)},
		{"int", " -2.50e1 ", int64(-25)},
		{"int", "1e3", int64(1000)},
		{"int", "1200e-2", int64(12)},
		{"int", "0.0e9999", int64(0)},
		{"int", "-9223372036854775808.000", int64(math.MinInt64)},
		{"int", "92233720368547758.07e2", int64(math.MaxInt64)},
		{"int", ".0", int64(0)},
		{"int", "5.", int64(5)},
		{"int", true, int64(1)},
		{"float", int64(2), 2.0},
		{"float", "2.5", 2.5},
		{"str", "x", "x"},
		{"bool", "yes", true},
		{"bool", "OFF", false},
		{"bool", int64(1), true},
		{"bool", 0.0, false},
		{"bytes", "hi", []byte("hi")},
		{"bytes", "base64:aGk=", []byte("hi")},
		{"list[int]", []any{"1", 2.0}, []any{int64(1), int64(2)}},
		{"dict[float]", map[string]any{"a": int64(1)}, map[string]any{"a": 1.0}},
		{"optional[int]", nil, nil},
		{"optional[int]", "3", int64(3)},
		{"null", nil, nil},
		{"any", []any{1, "x"}, []any{int64(1), "x"}},
	}
	for _, c := range ok {
		got, err := abi.MustParseType(c.typ).Coerce(c.in)
		if err != nil {
			t.Errorf("Coerce(%s, %#v) error: %v", c.typ, c.in, err)
			continue
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("Coerce(%s, %#v) mismatch (-want +got):\n%s", c.typ, c.in, diff)
		}
	}
	bad := []struct {
		typ  string
		in   any
		want string
	}{
		{"int", 7.5, "want int, got float 7.5 (has a fractional part or is not finite)"},
		{"int", "7.5", `want int, got str "7.5" (has a fractional part)`},
		{"int", "1e-3", `want int, got str "1e-3" (has a fractional part)`},
		{"int", "9223372036854775808", `want int, got str "9223372036854775808" (out of int64 range)`},
		{"int", "9223372036854775808.0", `want int, got str "9223372036854775808.0" (out of int64 range)`},
		{"int", "1e19", `want int, got str "1e19" (out of int64 range)`},
		{"int", "1e99999", `want int, got str "1e99999" (not a decimal integer)`},
		{"int", "0x10", `want int, got str "0x10" (not a decimal integer)`},
		{"int", "1_000", `want int, got str "1_000" (not a decimal integer)`},
		{"int", "inf", `want int, got str "inf" (not a decimal integer)`},
		{"int", ".", `want int, got str "." (not a decimal integer)`},
		{"int", math.Inf(1), "want int, got float +Inf (has a fractional part or is not finite)"},
		{"str", int64(5), "want str, got int 5"},
		{"bool", "maybe", `want bool, got str "maybe"`},
		{"bool", int64(2), "want bool, got int 2"},
		{"list[int]", []any{int64(1), "x"}, `at [1]: want int, got str "x" (not a decimal integer)`},
		{"dict[int]", map[string]any{"k": []any{}}, "at .k: want int, got list (0)"},
		{"null", int64(0), "want null, got int 0"},
		{"bytes", "base64:!!", `want bytes, got str "base64:!!" (bad base64)`},
	}
	for _, c := range bad {
		_, err := abi.MustParseType(c.typ).Coerce(c.in)
		var ce *abi.CoerceError
		if !errors.As(err, &ce) {
			t.Errorf("Coerce(%s, %#v) error = %v, want *CoerceError", c.typ, c.in, err)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("Coerce(%s, %#v) error = %q, want %q", c.typ, c.in, err, c.want)
		}
	}
}

func TestValidNames(t *testing.T) {
	long := strings.Repeat("a", 256)
	for s, want := range map[string]bool{
		"d": true, "param:x": true, "a.b-c_d:9": true, long: true, long + "a": false,
		"": false, "a b": false, "a\n": false, "é": false, "a/b": false,
	} {
		if got := abi.ValidKnotName(s); got != want {
			t.Errorf("ValidKnotName(%q) = %v, want %v", s, got, want)
		}
	}
	for s, want := range map[string]bool{
		"x": true, "_x1": true, "user_id": true, "1x": false, "": false, "a-b": false, "a.b": false, strings.Repeat("x", 129): false,
	} {
		if got := abi.ValidInputName(s); got != want {
			t.Errorf("ValidInputName(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestMatches(t *testing.T) {
	enc := func(v any) []byte {
		b, err := abi.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		typ  string
		v    any
		want bool
	}{
		{"int", 5, true}, {"int", -5, true}, {"int", 5.5, false}, {"int", "5", false},
		{"float", 5.5, true}, {"float", 5, false},
		{"str", "a", true}, {"str", []byte("a"), false}, {"bytes", []byte("a"), true},
		{"bool", true, true}, {"bool", 1, false}, {"null", nil, true},
		{"optional[int]", nil, true}, {"optional[int]", 3, true}, {"optional[int]", "3", false},
		{"list[int]", []any{1, 2}, true}, {"list[int]", []any{1, "2"}, false}, {"list", []any{1, "2"}, true},
		{"dict[int]", map[string]any{"a": 1}, true}, {"dict[int]", map[string]any{"a": 1.5}, false},
		{"any", map[string]any{"a": []any{1}}, true},
	} {
		if got := abi.MustParseType(tc.typ).Matches(enc(tc.v)); got != tc.want {
			t.Errorf("%s.Matches(%#v) = %v, want %v", tc.typ, tc.v, got, tc.want)
		}
	}
}

func TestCompatible(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		want     abi.Compatibility
	}{
		{"int", "int", abi.Always}, {"int", "float", abi.Always}, {"int", "any", abi.Always}, {"any", "int", abi.Maybe},
		{"str", "int", abi.Maybe}, {"float", "int", abi.Maybe}, {"list[int]", "int", abi.Never}, {"str", "list", abi.Never},
		{"list[int]", "list[float]", abi.Always}, {"list[str]", "list[int]", abi.Maybe}, {"dict[int]", "list[int]", abi.Never},
		{"null", "optional[int]", abi.Always}, {"optional[int]", "int", abi.Maybe}, {"int", "optional[float]", abi.Always},
		{"str", "bytes", abi.Always}, {"bytes", "str", abi.Never},
	} {
		if got := abi.Compatible(abi.MustParseType(tc.from), abi.MustParseType(tc.to)); got != tc.want {
			t.Errorf("Compatible(%s, %s) = %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
}
