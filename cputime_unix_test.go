//go:build unix

package pirn_test

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user and system) the process has used,
// every goroutine and the GC's included; ok is false where it is unknown.
func processCPU() (d time.Duration, ok bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
