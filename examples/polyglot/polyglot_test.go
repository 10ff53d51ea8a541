// Package polyglot_test runs examples/polyglot/pipeline.yaml, whose stages
// are written in seven languages and ABIs, and checks its report against
// values computed here in Go from the same text.
package polyglot_test

import (
	"context"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/host"
)

const text = "It was the best of times, it was the worst of times;\nit was the age of wisdom.\n"

// expected computes the report of the pipeline for text in Go.
func expected(text string) map[string]any {
	shout := strings.ToUpper(text)
	vowels := 0
	for _, r := range strings.ToLower(shout) {
		if strings.ContainsRune("aeiou", r) {
			vowels++
		}
	}
	counts := map[string]int{}
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) }) {
		counts[w]++
	}
	words := slices.Collect(func(yield func(string) bool) {
		for w := range counts {
			if !yield(w) {
				return
			}
		}
	})
	sort.Slice(words, func(i, j int) bool {
		if counts[words[i]] != counts[words[j]] {
			return counts[words[i]] > counts[words[j]]
		}
		return words[i] < words[j]
	})
	fields := strings.Fields(text)
	total := 0
	for _, w := range fields {
		total += utf8.RuneCountInString(strings.ToLower(w))
	}
	mean := float64(total) / float64(len(fields))
	return map[string]any{
		"shout": shout,
		"counts": map[string]any{
			"lines": int64(strings.Count(text, "\n")),
			"words": int64(len(fields)),
			"chars": int64(utf8.RuneCountInString(text)),
		},
		"top":                []any{words[0], words[1], words[2]},
		"mean_length":        math.Round(mean*100) / 100,
		"minus_twice_vowels": int64(-2 * vowels),
	}
}

func TestPolyglotPipeline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng, err := pirn.Open(ctx, pirn.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	p, err := eng.LoadPipeline(ctx, "pipeline.yaml") // pinned by pipeline.lock
	if err != nil {
		t.Fatal(err)
	}
	abis := map[host.ABI]int{}
	for _, m := range p.Modules {
		abis[m.ABI()]++
	}
	if want := map[host.ABI]int{host.ABIPirn: 5, host.ABIExtism: 1, host.ABICommand: 1}; !cmp.Equal(abis, want) {
		t.Errorf("module ABIs = %v, want %v", abis, want)
	}

	res, err := eng.Run(ctx, p.Tapestry, pirn.RunRequest{Params: map[string]any{"text": text}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Succeeded() {
		t.Fatalf("run %s: errors %+v, skipped %+v", res.Status, res.Errors, res.Skipped)
	}
	if diff := cmp.Diff(expected(text), res.Outputs["report"]); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}

	// Every stage left a lineage record naming the module that ran it;
	// seven distinct modules ran.
	modules := map[string]bool{}
	for _, r := range res.Records {
		if r.Module != "" {
			modules[r.Module] = true
		}
	}
	if len(modules) != 7 {
		t.Errorf("%d modules in lineage, want 7: %v", len(modules), modules)
	}

	// The same input gives the same report, digest for digest: no stage
	// depends on anything but its inputs.
	again, err := eng.Run(ctx, p.Tapestry, pirn.RunRequest{Params: map[string]any{"text": text}})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := res.Values["report"].Digest, again.Values["report"].Digest; a != b {
		t.Errorf("report digest changed between runs: %s, then %s", a, b)
	}
}
