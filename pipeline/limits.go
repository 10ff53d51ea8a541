package pipeline

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/pirn-wasm/pirn/model"
	"go.yaml.in/yaml/v3"
)

var limitKeys = []string{"timeout", "memory", "high_water", "max_output", "max_log", "max_log_records", "max_input", "max_depth", "max_invocations", "max_instances"}

func (p *parser) limits(v *yaml.Node, what string) model.Limits {
	var l model.Limits
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
			l.Memory, err = model.ParseSize(s)
		case "high_water":
			l.HighWater, err = model.ParseSize(s)
		case "max_output":
			l.MaxOutput, err = size(s)
		case "max_log":
			l.MaxLog, err = size(s)
		case "max_log_records":
			l.MaxLogRecords, err = strconv.Atoi(s)
			if err == nil && l.MaxLogRecords <= 0 {
				err = fmt.Errorf("must be positive")
			}
		case "max_input":
			l.MaxInput, err = size(s)
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

// size parses a byte count for a limit the host holds as an int,
// clamped to 2 GiB - 1 (a guest's lengths are 32-bit).
func size(s string) (int, error) {
	n, err := model.ParseSize(s)
	return int(min(n, math.MaxInt32)), err
}
