// Package memtest measures the process's resident memory for tests that
// bound what a hostile input can make the host spend.
//
// Peak reads the kernel's high-water mark (VmHWM), which ResetPeak sets
// back to the current RSS; a test brackets the hostile work with the two.
// Tests of one package run one at a time unless they call t.Parallel, so
// the mark is the test's own (plus the Go runtime's background work).
package memtest

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
)

// ResetPeak sets the peak RSS back to the current RSS. It reports false
// where the kernel does not allow it (not Linux, or /proc unavailable).
func ResetPeak() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// Peak returns the peak RSS in bytes since the process started or since
// ResetPeak, and false where it cannot be read.
func Peak() (uint64, bool) { return status("VmHWM:") }

// RSS returns the current RSS in bytes, and false where it cannot be read.
func RSS() (uint64, bool) { return status("VmRSS:") }

// status reads a "Name:   123 kB" line of /proc/self/status.
func status(field string) (uint64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), field)
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, false
		}
		return kb << 10, true
	}
	return 0, false
}
