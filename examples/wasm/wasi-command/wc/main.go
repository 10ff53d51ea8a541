//go:build wasip1

// Command wc is an ordinary WASI program that pirn runs as a knot with no
// PDK at all (abi: wasi-command): it reads its inputs as one JSON object
// on standard input, {"text": "..."}, and writes one JSON document to
// standard output, {"lines": n, "words": n, "chars": n}. It exits 1 with a
// message on standard error when there is no text, which pirn records as
// an err.
//
// Build (make wasm does this):
//
//	GOOS=wasip1 GOARCH=wasm go build -trimpath -buildvcs=false -ldflags="-w -buildid=" -o wc.wasm .
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"
)

func main() {
	var in struct {
		Text *string `json:"text"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintf(os.Stderr, "wc: reading input: %v\n", err)
		os.Exit(2)
	}
	if in.Text == nil {
		fmt.Fprintln(os.Stderr, "wc: no text input")
		os.Exit(1)
	}
	text := *in.Text
	out := map[string]int{
		"lines": strings.Count(text, "\n"),
		"words": len(strings.Fields(text)),
		"chars": utf8.RuneCountInString(text),
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(2)
	}
}
