package abi_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn/abi"
)

var update = flag.Bool("update", false, "rewrite the golden vectors in testdata/")

func enc(t *testing.T, v any) []byte {
	t.Helper()
	b, err := abi.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// golden compares b with testdata/name, or rewrites the file under -update.
func golden(t *testing.T, name string, b []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("%s: encoded %x, golden %x", name, b, want)
	}
}

func requests(t *testing.T) map[string]*abi.Request {
	rs := map[string]*abi.Request{
		"request-add.cbor": {
			Knot:   "add",
			Inputs: []abi.Arg{{Name: "a", Value: enc(t, 5)}, {Name: "b", Value: enc(t, 10)}},
		},
		"request-mixed.cbor": {
			Knot: "describe",
			Inputs: []abi.Arg{
				{Name: "items", Value: enc(t, []any{1, -2, 2.5, "x", []byte{0, 1}, nil, true})},
				{Name: "x", Value: enc(t, map[string]any{"zz": 1, "a": "é"})},
			},
			Config: []abi.Arg{{Name: "label", Value: enc(t, "hello")}, {Name: "scale", Value: enc(t, 0.5)}},
		},
	}
	for _, r := range rs {
		abi.SortArgs(r.Inputs)
		abi.SortArgs(r.Config)
	}
	return rs
}

func TestRequestGolden(t *testing.T) {
	for name, r := range requests(t) {
		t.Run(name, func(t *testing.T) {
			b := abi.AppendRequest(nil, r)
			golden(t, name, b)
			// The hand-framed encoding must equal what the CBOR library
			// produces for the same message in deterministic mode.
			lib := map[string]any{"knot": r.Knot, "inputs": rawMap(r.Inputs), "config": rawMap(r.Config)}
			if want := enc(t, lib); !bytes.Equal(b, want) {
				t.Errorf("AppendRequest = %x, library encoding %x", b, want)
			}
			got, err := abi.DecodeRequest(b)
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			if !got.Equal(r) {
				t.Errorf("DecodeRequest(AppendRequest(r)) = %+v, want %+v", got, r)
			}
		})
	}
}

func rawMap(args []abi.Arg) map[string]any {
	m := make(map[string]any, len(args))
	for _, a := range args {
		m[a.Name] = rawValue(a.Value)
	}
	return m
}

type rawValue []byte

func (r rawValue) MarshalCBOR() ([]byte, error) { return r, nil }

func TestRequestLookupAndSort(t *testing.T) {
	args := []abi.Arg{{Name: "bb", Value: []byte{1}}, {Name: "c", Value: []byte{2}}, {Name: "a", Value: []byte{3}}}
	abi.SortArgs(args)
	var names []string
	for _, a := range args {
		names = append(names, a.Name)
	}
	if diff := cmp.Diff([]string{"a", "c", "bb"}, names); diff != "" {
		t.Errorf("SortArgs order (-want +got):\n%s", diff)
	}
	r := &abi.Request{Knot: "k", Inputs: args[:2], Config: args[2:]}
	for _, n := range []string{"a", "c", "bb"} {
		if _, ok := r.Lookup(n); !ok {
			t.Errorf("Lookup(%q) not found", n)
		}
	}
	if _, ok := r.Lookup("zz"); ok {
		t.Error("Lookup(zz) found")
	}
}

func responses(t *testing.T) map[string]abi.Response {
	return map[string]abi.Response{
		"response-ok.cbor":      abi.OK(enc(t, 15)),
		"response-ok-map.cbor":  abi.OK(enc(t, map[string]any{"sum": 3, "items": []any{1, 2}})),
		"response-ok-null.cbor": abi.OK(enc(t, nil)),
		"response-err.cbor": {Outcome: abi.OutcomeErr, Error: &abi.Error{
			Type: "ValueError", Message: "boom", Detail: enc(t, map[string]any{"code": 7}), Trace: "main.go:3",
		}},
		"response-skip.cbor": abi.Skipped("nothing to do"),
	}
}

func TestResponseGolden(t *testing.T) {
	for name, r := range responses(t) {
		t.Run(name, func(t *testing.T) {
			b, err := abi.AppendResponse(nil, &r)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name, b)
			got, err := abi.DecodeResponse(b)
			if err != nil {
				t.Fatalf("DecodeResponse: %v", err)
			}
			if diff := cmp.Diff(r, got); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeResponseRejects(t *testing.T) {
	cases := map[string]struct {
		v    any
		want string
	}{
		"bad-two-arms.cbor":       {map[string]any{"ok": 1, "skip": map[string]any{"reason": "x"}}, "exactly one"},
		"bad-no-arm.cbor":         {map[string]any{}, "exactly one"},
		"bad-unknown-key.cbor":    {map[string]any{"okay": 1}, "unknown field"},
		"bad-err-no-type.cbor":    {map[string]any{"err": map[string]any{"message": "m"}}, `without a "type"`},
		"bad-skip-no-reason.cbor": {map[string]any{"skip": map[string]any{}}, `without a "reason"`},
		"bad-not-a-map.cbor":      {[]any{1}, "cannot unmarshal"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			b := enc(t, tc.v)
			golden(t, name, b)
			_, err := abi.DecodeResponse(b)
			if !errors.Is(err, abi.ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("DecodeResponse(%x) error = %v, want ErrMalformed containing %q", b, err, tc.want)
			}
		})
	}
	for _, raw := range [][]byte{nil, {0xa1}, {0xa1, 0x62, 'o', 'k'}, {0xa1, 0x62, 'o', 'k', 0x01, 0x01}, bytes.Repeat([]byte{0x81}, 200)} {
		if _, err := abi.DecodeResponse(raw); !errors.Is(err, abi.ErrMalformed) {
			t.Errorf("DecodeResponse(%x) error = %v, want ErrMalformed", raw, err)
		}
	}
}

func TestAppendResponseRefusesIncomplete(t *testing.T) {
	for _, r := range []abi.Response{
		{},
		{Outcome: abi.OutcomeOK},
		{Outcome: abi.OutcomeErr},
		{Outcome: abi.OutcomeErr, Error: &abi.Error{Message: "no type"}},
		{Outcome: abi.OutcomeSkip, Skip: &abi.Skip{}},
	} {
		if _, err := abi.AppendResponse(nil, &r); err == nil {
			t.Errorf("AppendResponse(%+v) succeeded, want error", r)
		}
	}
}

func arithManifest() *abi.Manifest {
	return &abi.Manifest{ABI: abi.Version, Name: "arith", Knots: []abi.KnotSpec{
		{Name: "double", Doc: "Returns 2x.", Inputs: []abi.InputSpec{{Name: "x", Type: "int"}}, Output: "int"},
		{Name: "add", Doc: "Returns a+b.", Inputs: []abi.InputSpec{{Name: "a", Type: "int"}, {Name: "b", Type: "int"}}, Output: "int"},
		{Name: "sum", Doc: "Sums every input.", Rest: "int", Output: "int"},
	}}
}

func TestManifestGolden(t *testing.T) {
	m := arithManifest()
	b, err := abi.EncodeManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "manifest.cbor", b)
	got, err := abi.DecodeManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("finputs\x80")) || bytes.Contains(b, []byte("finputs\xf6")) {
		t.Errorf("a knot without inputs must be written with \"inputs\": [], not null: %x", b)
	}
	m.Knots[2].Inputs = []abi.InputSpec{} // decoded from an empty array
	if diff := cmp.Diff(m, got, cmpNilEmpty); diff != "" {
		t.Errorf("manifest round trip (-want +got):\n%s", diff)
	}
}

var cmpNilEmpty = cmp.FilterValues(func(a, b []abi.InputSpec) bool { return len(a) == 0 && len(b) == 0 }, cmp.Ignore())

func TestManifestValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(m *abi.Manifest)
		want string
	}{
		{"version", func(m *abi.Manifest) { m.ABI = 2 }, "ABI version 2"},
		{"no knots", func(m *abi.Manifest) { m.Knots = nil }, "no knots"},
		{"bad knot name", func(m *abi.Manifest) { m.Knots[0].Name = "a b" }, "invalid name"},
		{"duplicate knot", func(m *abi.Manifest) { m.Knots[1].Name = "double" }, "duplicate knot name"},
		{"bad output type", func(m *abi.Manifest) { m.Knots[0].Output = "widget" }, `unknown type "widget"`},
		{"bad input name", func(m *abi.Manifest) { m.Knots[0].Inputs[0].Name = "1x" }, `input "1x": invalid name`},
		{"duplicate input", func(m *abi.Manifest) { m.Knots[1].Inputs[1].Name = "a" }, `input "a" declared twice`},
		{"bad rest", func(m *abi.Manifest) { m.Knots[2].Rest = "list[" }, "rest:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := arithManifest()
			tc.edit(m)
			err := m.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want error containing %q", err, tc.want)
			}
			b, _ := abi.EncodeManifest(m)
			if _, err := abi.DecodeManifest(b); err == nil {
				t.Errorf("DecodeManifest accepted an invalid manifest")
			}
		})
	}
	if err := arithManifest().Validate(); err != nil {
		t.Errorf("valid manifest: %v", err)
	}
	if _, err := abi.DecodeManifest(enc(t, map[string]any{"abi": 1, "knots": []any{}, "extra": true})); !errors.Is(err, abi.ErrMalformed) {
		t.Errorf("manifest with unknown key: error = %v, want ErrMalformed", err)
	}
}

func TestDepth(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want int
	}{
		{5, 0}, {"text", 0}, {[]byte{1}, 0}, {nil, 0},
		{[]any{}, 1}, {[]any{1, "a"}, 1}, {map[string]any{"a": 1}, 1},
		{[]any{1, []any{2, []any{3}}, "x"}, 3},
		{map[string]any{"a": []any{map[string]any{"b": []any{}}}, "z": 1}, 4},
	} {
		if got := abi.Depth(enc(t, tc.v)); got != tc.want {
			t.Errorf("Depth(%v) = %d, want %d", tc.v, got, tc.want)
		}
	}
	// Indefinite lengths and a tag.
	if got := abi.Depth([]byte{0x9f, 0x9f, 0x01, 0xff, 0xff}); got != 2 {
		t.Errorf("Depth([_ [_ 1]]) = %d, want 2", got)
	}
	if got := abi.Depth([]byte{0xc1, 0x81, 0x81, 0x01}); got != 2 {
		t.Errorf("Depth(tag [[1]]) = %d, want 2", got)
	}
	if got := abi.Depth([]byte{0x83, 0x81}); got != 2 {
		t.Errorf("Depth(truncated) = %d, want 2 (as far as it reads)", got)
	}
}
