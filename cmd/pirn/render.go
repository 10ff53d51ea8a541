package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/pirn-wasm/pirn/cas"
)

// jsonValue converts a data-model value for encoding/json (see
// cas.JSONValue): bytes become "base64:<...>" (the spelling parameters
// accept for bytes) and non-finite floats become strings.
func jsonValue(v any) any { return cas.JSONValue(v) }

// show renders a value on one line as compact JSON.
func show(v any) string {
	b, err := json.Marshal(jsonValue(v))
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	const max = 200
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}

// duration renders a duration with three significant digits.
func duration(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%.3gµs", float64(d.Nanoseconds())/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.3gms", float64(d.Nanoseconds())/1e6)
	}
	return fmt.Sprintf("%.3gs", d.Seconds())
}

// table renders rows with columns padded to the widest cell.
func table(header []string, rows [][]string) string {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = len([]rune(h))
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		for i, c := range cells {
			if i == len(cells)-1 {
				b.WriteString(c)
			} else {
				b.WriteString(c + strings.Repeat(" ", widths[i]-len([]rune(c))+2))
			}
		}
		b.WriteString("\n")
	}
	line(header)
	for _, r := range rows {
		line(r)
	}
	return b.String()
}

func short(d fmt.Stringer) string {
	s := d.String()
	if len(s) > 19 {
		return s[:19] + "…"
	}
	return s
}
