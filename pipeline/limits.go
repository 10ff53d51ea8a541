package pipeline

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Limits bound a knot's invocations. Zero fields inherit: a knot's limits
// from the pipeline's, the pipeline's from the engine's defaults.
type Limits struct {
	Timeout        time.Duration // "2s"; "none" is -1 (no interruption, trusted knots only)
	Memory         uint64        // bytes of linear memory: 67108864, "64MiB", "1GB"
	HighWater      uint64        // bytes
	MaxOutput      uint64        // bytes
	MaxLog         uint64        // bytes
	MaxLogRecords  int           // log calls and lines of stdout and stderr
	MaxInput       uint64        // bytes of a request
	MaxDepth       int           // nesting of an input value
	MaxInvocations int
	MaxInstances   int
}

var limitKeys = []string{"timeout", "memory", "high_water", "max_output", "max_log", "max_log_records", "max_input", "max_depth", "max_invocations", "max_instances"}

func (p *parser) limits(v *yaml.Node, what string) Limits {
	var l Limits
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, "%s: limits must be a mapping (keys: %s)", what, strings.Join(limitKeys, ", "))
		return l
	}
	p.fields(v, what+": limits", limitKeys, func(key string, val *yaml.Node) {
		s := p.str(val, key)
		var err error
		switch key {
		case "timeout":
			if s == "none" {
				l.Timeout = -1
				break
			}
			l.Timeout, err = time.ParseDuration(s)
			if err == nil && l.Timeout <= 0 {
				err = fmt.Errorf("must be positive (or none)")
			}
		case "memory":
			l.Memory, err = ParseSize(s)
		case "high_water":
			l.HighWater, err = ParseSize(s)
		case "max_output":
			l.MaxOutput, err = ParseSize(s)
		case "max_log":
			l.MaxLog, err = ParseSize(s)
		case "max_log_records":
			l.MaxLogRecords, err = strconv.Atoi(s)
			if err == nil && l.MaxLogRecords <= 0 {
				err = fmt.Errorf("must be positive")
			}
		case "max_input":
			l.MaxInput, err = ParseSize(s)
		case "max_depth":
			l.MaxDepth, err = strconv.Atoi(s)
			if err == nil && (l.MaxDepth <= 0 || l.MaxDepth > 64) {
				err = fmt.Errorf("must be 1 to 64")
			}
		case "max_invocations":
			l.MaxInvocations, err = strconv.Atoi(s)
			if err == nil && l.MaxInvocations <= 0 {
				err = fmt.Errorf("must be positive")
			}
		case "max_instances":
			l.MaxInstances, err = strconv.Atoi(s)
			if err == nil && l.MaxInstances <= 0 {
				err = fmt.Errorf("must be positive")
			}
		}
		if err != nil {
			p.errorf(val.Line, "%s: limits: %s %q: %v", what, key, s, err)
		}
	})
	return l
}

// Merge returns l with its zero fields taken from base.
func (l Limits) Merge(base Limits) Limits {
	if l.Timeout == 0 {
		l.Timeout = base.Timeout
	}
	if l.Memory == 0 {
		l.Memory = base.Memory
	}
	if l.HighWater == 0 {
		l.HighWater = base.HighWater
	}
	if l.MaxOutput == 0 {
		l.MaxOutput = base.MaxOutput
	}
	if l.MaxLog == 0 {
		l.MaxLog = base.MaxLog
	}
	if l.MaxLogRecords == 0 {
		l.MaxLogRecords = base.MaxLogRecords
	}
	if l.MaxInput == 0 {
		l.MaxInput = base.MaxInput
	}
	if l.MaxDepth == 0 {
		l.MaxDepth = base.MaxDepth
	}
	if l.MaxInvocations == 0 {
		l.MaxInvocations = base.MaxInvocations
	}
	if l.MaxInstances == 0 {
		l.MaxInstances = base.MaxInstances
	}
	return l
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
