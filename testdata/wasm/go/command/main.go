//go:build wasip1

// Command command is a WASI command for the host's tests. Its input
// document's "mode" picks a behaviour: echo (the input document back),
// fail (a message on stderr, exit 3), silent (exit 4 with no message),
// flood (64 MiB of stdout), loop, garbage (stdout that is not JSON),
// ambient (what it can see of the outside world), panic.
//
// Build (make wasm does this):
//
//	GOOS=wasip1 GOARCH=wasm go build -trimpath -buildvcs=false -ldflags="-w -buildid=" -o command.wasm .
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

func main() {
	b, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var in map[string]any
	if err := json.Unmarshal(b, &in); err != nil {
		fmt.Fprintln(os.Stderr, "bad input:", err)
		os.Exit(2)
	}
	switch in["mode"] {
	case "echo":
		os.Stdout.Write(b)
	case "fail":
		fmt.Fprintln(os.Stderr, "something went wrong")
		fmt.Fprintln(os.Stderr, "badly")
		os.Exit(3)
	case "silent":
		os.Exit(4)
	case "flood":
		chunk := []byte(strings.Repeat("x", 1<<20))
		for range 64 {
			if _, err := os.Stdout.Write(chunk); err != nil {
				os.Exit(5)
			}
		}
	case "loop":
		for {
		}
	case "garbage":
		fmt.Println("this is not json")
	case "ambient":
		_, ferr := os.ReadFile("/etc/passwd")
		entries, _ := os.ReadDir("/")
		json.NewEncoder(os.Stdout).Encode(map[string]any{
			"args":   os.Args,
			"env":    os.Environ(),
			"passwd": ferr == nil,
			"root":   len(entries),
			"year":   time.Now().Year(),
		})
	case "panic":
		var m map[string]int
		m["x"] = 1
	default:
		fmt.Fprintf(os.Stderr, "unknown mode %v\n", in["mode"])
		os.Exit(2)
	}
}
