package serve

import (
	"fmt"
)

// Mapping turns an event's decoded body (JSON, or a message's value) into
// run parameters. With no field set, a JSON object's fields are the
// parameters and anything else is an error.
type Mapping struct {
	// Param, when set, passes the whole body as this one parameter.
	Param string `json:"param,omitempty"`
	// Params maps parameter names to CEL expressions over `event` (the
	// body) and `labels` (the trigger's labels: topic, offset, headers).
	Params map[string]string `json:"params,omitempty"`
	// Static parameters are added to every request (the body's win).
	Static map[string]any `json:"static,omitempty"`
}

// Apply returns the parameters for one event.
func (m *Mapping) Apply(event any, labels map[string]string) (map[string]any, error) {
	params := map[string]any{}
	for k, v := range m.Static {
		params[k] = v
	}
	switch {
	case m.Param != "":
		params[m.Param] = event
	case len(m.Params) > 0:
		return nil, fmt.Errorf("%w: CEL parameter mappings are not built yet", ErrBadRequest)
	default:
		obj, ok := event.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: the event is %T, not a JSON object of parameters", ErrBadRequest, event)
		}
		for k, v := range obj {
			params[k] = v
		}
	}
	return params, nil
}
