package model

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxDepth is the deepest nesting of arrays and maps a value may have
// (the ABI's bound, abi.MaxNestedLevels).
const MaxDepth = 64

// Limits bound a knot's invocations. Zero fields inherit: a knot's from
// its pipeline's, a pipeline's from the engine's, the engine's from the
// host's defaults.
type Limits struct {
	// Timeout is the wall-clock limit of one invocation (default 60s). A
	// negative Timeout disables interruption entirely: guest loops run
	// faster, but a knot that never returns hangs its worker. Only for
	// trusted knots.
	Timeout time.Duration
	// Memory is the linear-memory ceiling in bytes (default 256 MiB,
	// rounded up to 64 KiB pages, at most 4 GiB).
	Memory uint64
	// HighWater discards an instance after an invocation that leaves its
	// linear memory above this many bytes (default Memory/2).
	HighWater uint64
	// MaxInvocations discards an instance after this many invocations
	// (default 1000).
	MaxInvocations int
	// MaxInstances caps the live instances of one module under these
	// limits (default GOMAXPROCS).
	MaxInstances int
	// MaxOutput is the largest response a guest may hand back, in bytes
	// (default 64 MiB).
	MaxOutput int
	// MaxLog is the most log and stdout/stderr bytes one invocation may
	// write (default 1 MiB); beyond it the invocation errs.
	MaxLog int
	// MaxLogRecords is the most log records one invocation may make: log
	// calls, and lines of stdout and stderr, empty ones included (default
	// 10,000); beyond it the invocation errs. Each record also costs the
	// host its metadata, so bytes alone would not bound a flood of empty
	// records.
	MaxLogRecords int
	// MaxInput is the largest request (the inputs and config of one
	// invocation) the host will send, in bytes (default 64 MiB).
	MaxInput int
	// MaxDepth is the deepest nesting of arrays and maps in an input value
	// (default and at most MaxDepth, the ABI's bound).
	MaxDepth int
}

// Merge returns l with its zero fields taken from base.
func (l Limits) Merge(base Limits) Limits {
	or := func(a, b int) int {
		if a == 0 {
			return b
		}
		return a
	}
	if l.Timeout == 0 {
		l.Timeout = base.Timeout
	}
	if l.Memory == 0 {
		l.Memory = base.Memory
	}
	if l.HighWater == 0 {
		l.HighWater = base.HighWater
	}
	l.MaxInvocations = or(l.MaxInvocations, base.MaxInvocations)
	l.MaxInstances = or(l.MaxInstances, base.MaxInstances)
	l.MaxOutput = or(l.MaxOutput, base.MaxOutput)
	l.MaxLog = or(l.MaxLog, base.MaxLog)
	l.MaxLogRecords = or(l.MaxLogRecords, base.MaxLogRecords)
	l.MaxInput = or(l.MaxInput, base.MaxInput)
	l.MaxDepth = or(l.MaxDepth, base.MaxDepth)
	return l
}

// Validate checks l's fields on their own: no negative count, a high
// water within the memory (so a high water needs a memory), a depth
// within the ABI's bound.
func (l Limits) Validate() error {
	var errs []error
	if l.HighWater > l.Memory {
		errs = append(errs, fmt.Errorf("HighWater %d exceeds Memory %d", l.HighWater, l.Memory))
	}
	if l.MaxInvocations < 0 || l.MaxInstances < 0 || l.MaxOutput < 0 || l.MaxLog < 0 || l.MaxLogRecords < 0 || l.MaxInput < 0 {
		errs = append(errs, errors.New("negative count limit"))
	}
	if l.MaxDepth < 0 || l.MaxDepth > MaxDepth {
		errs = append(errs, fmt.Errorf("MaxDepth %d is not within 1..%d", l.MaxDepth, MaxDepth))
	}
	return errors.Join(errs...)
}

var sizeUnits = []struct {
	suffix string
	mult   uint64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
}

// ParseSize parses a byte count: a plain integer or one with a unit (B,
// KB, MB, GB, KiB, MiB, GiB).
func ParseSize(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	mult := uint64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("want a byte count such as 1048576 or 64MiB")
	}
	if n > 0 && n*mult/mult != n {
		return 0, fmt.Errorf("too large")
	}
	return n * mult, nil
}
