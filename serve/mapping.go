package serve

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/expr"
)

// MappingTimeout bounds the evaluation of one event's expressions (each
// is also bounded by expr's cost limit).
const MappingTimeout = time.Second

// Mapping turns an event's decoded body (JSON, or a message's value) into
// run parameters. With no field set, a JSON object's fields are the
// parameters and anything else is an error. It is safe for concurrent
// use once compiled.
type Mapping struct {
	// Param, when set, passes the whole body as this one parameter.
	Param string `json:"param,omitempty"`
	// Params maps parameter names to CEL expressions over `event` (the
	// body) and `labels` (the trigger's labels: topic, offset, headers),
	// evaluated with package expr's cost limit: {x: "event.n * 2"}.
	Params map[string]string `json:"params,omitempty"`
	// Static parameters are added to every request (the body's win).
	Static map[string]any `json:"static,omitempty"`

	// c is the compiled form, shared by copies of a compiled Mapping (a
	// Mapping is copied by value into triggers' configurations).
	c *compiledMapping
}

type compiledMapping struct {
	once  sync.Once
	progs map[string]*expr.Program
	err   error
}

// mappingMu guards the allocation of Mapping.c.
var mappingMu sync.Mutex

func (m *Mapping) compiled() *compiledMapping {
	mappingMu.Lock()
	defer mappingMu.Unlock()
	if m.c == nil {
		m.c = &compiledMapping{}
	}
	return m.c
}

// mappingVars are the variables of a mapping's expressions.
var mappingVars = expr.Vars{"event": abi.Any, "labels": abi.DictOf(abi.Str)}

// Compile checks the mapping and compiles its expressions, once; the
// error names the trigger (as given) and the parameter. A trigger calls
// it when it is built, so that a bad expression is a configuration
// error; Apply compiles on first use otherwise.
func (m *Mapping) Compile(trigger string) error {
	c := m.compiled()
	c.once.Do(func() {
		if m.Param != "" && len(m.Params) > 0 {
			c.err = fmt.Errorf("%s: mapping: param and params exclude each other", trigger)
			return
		}
		c.progs = make(map[string]*expr.Program, len(m.Params))
		for _, name := range slices.Sorted(maps.Keys(m.Params)) {
			prg, err := expr.Compile(m.Params[name], mappingVars, abi.Any)
			if err != nil {
				c.err = fmt.Errorf("%s: mapping: parameter %q: %w", trigger, name, err)
				return
			}
			c.progs[name] = prg
		}
	})
	return c.err
}

// Apply returns the parameters for one event. Its errors wrap
// ErrBadRequest and name what was wrong.
func (m *Mapping) Apply(event any, labels map[string]string) (map[string]any, error) {
	if err := m.Compile("trigger"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	params := maps.Clone(m.Static)
	if params == nil {
		params = map[string]any{}
	}
	switch {
	case m.Param != "":
		params[m.Param] = event
	case len(m.c.progs) > 0:
		if labels == nil {
			labels = map[string]string{}
		}
		ctx, cancel := context.WithTimeout(context.Background(), MappingTimeout)
		defer cancel()
		vars := map[string]any{"event": event, "labels": labels}
		for _, name := range slices.Sorted(maps.Keys(m.c.progs)) {
			v, err := m.c.progs[name].Eval(ctx, vars)
			if err != nil {
				return nil, fmt.Errorf("%w: parameter %q = %s: %w", ErrBadRequest, name, m.c.progs[name].Source(), err)
			}
			params[name] = v
		}
	default:
		obj, ok := event.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: the event is %s, not a JSON object of parameters", ErrBadRequest, jsonKind(event))
		}
		maps.Copy(params, obj)
	}
	return params, nil
}

// jsonKind names a decoded JSON value's kind.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	case int64, float64:
		return "a number"
	}
	return fmt.Sprintf("a %T", v)
}
