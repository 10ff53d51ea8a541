//go:build wasip1

// Command wordfreq is an Extism plugin that pirn runs as a set of knots.
// It describes itself with a pirn manifest in JSON (its pirn_manifest
// function), so pirn type-checks its knots and exchanges JSON documents
// with it: each knot reads {"input name": value, ...} and writes a pirn
// response, {"ok": value}, {"err": {...}} or {"skip": {...}}.
//
// Build (make wasm does this):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -ldflags="-w -buildid=" -o wordfreq.wasm ./wordfreq
package main

import (
	"encoding/json"
	"runtime"
	"sort"
	"strings"
	"unicode"

	"github.com/extism/go-pdk"
)

func main() {}

type input struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Doc  string `json:"doc,omitempty"`
}

type knot struct {
	Name   string  `json:"name"`
	Doc    string  `json:"doc"`
	Inputs []input `json:"inputs"`
	Output string  `json:"output"`
}

var manifest = map[string]any{
	"abi":  1,
	"name": "wordfreq",
	"knots": []knot{
		{Name: "count_vowels", Doc: "Counts the vowels (a, e, i, o, u, any case) in text.",
			Inputs: []input{{Name: "text", Type: "str"}}, Output: "int"},
		{Name: "top_words", Doc: "Returns the n most frequent words of text, most frequent first (ties alphabetical); skips text with no words.",
			Inputs: []input{{Name: "text", Type: "str"}, {Name: "n", Type: "int", Doc: "how many, at least 1"}}, Output: "list[str]"},
	},
}

//go:wasmexport pirn_manifest
func pirnManifest() int32 { return respond(manifest) }

//go:wasmexport count_vowels
func countVowels() int32 {
	var in struct {
		Text *string `json:"text"`
	}
	if err := pdk.InputJSON(&in); err != nil {
		return respond(fail("InputError", "count_vowels: "+err.Error()))
	}
	if in.Text == nil {
		return respond(fail("InputError", `count_vowels: missing input "text"`))
	}
	n := 0
	for _, r := range strings.ToLower(*in.Text) {
		if strings.ContainsRune("aeiou", r) {
			n++
		}
	}
	return respond(map[string]any{"ok": n})
}

//go:wasmexport top_words
func topWords() int32 {
	var in struct {
		Text *string `json:"text"`
		N    *int    `json:"n"`
	}
	if err := pdk.InputJSON(&in); err != nil {
		return respond(fail("InputError", "top_words: "+err.Error()))
	}
	if in.Text == nil || in.N == nil {
		return respond(fail("InputError", `top_words: missing input "text" or "n"`))
	}
	if *in.N < 1 {
		return respond(fail("ValueError", "n must be at least 1"))
	}
	counts := map[string]int{}
	for _, w := range strings.FieldsFunc(strings.ToLower(*in.Text), func(r rune) bool { return !unicode.IsLetter(r) }) {
		counts[w]++
	}
	if len(counts) == 0 {
		return respond(map[string]any{"skip": map[string]any{"reason": "no words"}})
	}
	words := make([]string, 0, len(counts))
	for w := range counts {
		words = append(words, w)
	}
	sort.Slice(words, func(i, j int) bool {
		if counts[words[i]] != counts[words[j]] {
			return counts[words[i]] > counts[words[j]]
		}
		return words[i] < words[j]
	})
	if len(words) > *in.N {
		words = words[:*in.N]
	}
	pdk.Log(pdk.LogInfo, "top_words: "+strings.Join(words, " "))
	return respond(map[string]any{"ok": words})
}

func fail(typ, msg string) map[string]any {
	return map[string]any{"err": map[string]any{"type": typ, "message": msg}}
}

// respond writes a JSON document as the call's output.
func respond(v any) int32 {
	defer collect()
	b, err := json.Marshal(v)
	if err != nil {
		pdk.SetError(err)
		return 1
	}
	pdk.Output(b)
	return 0
}

var calls int

// collect yields to the Go scheduler every 16 calls. In a reactor module
// the scheduler runs only inside exported calls, so the garbage
// collector's background workers never finish a cycle unless a call
// yields, and the heap grows with every call (pirn conformance's memory
// check catches exactly this). pirn's Go PDK does the same.
func collect() {
	if calls++; calls%16 == 0 {
		runtime.Gosched()
	}
}
