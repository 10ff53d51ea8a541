package emit

import (
	"fmt"
	"maps"
	"time"
)

// NewHubEmitter makes the emitter of one serve.yaml entry: the keys
// "policy", "queue" and "timeout" are the Hub's (see HubEmitter), and the
// rest go to the type's factory in Emitters.
func NewHubEmitter(s Spec) (HubEmitter, error) {
	var hub struct {
		Policy  Policy   `json:"policy"`
		Queue   int      `json:"queue"`
		Timeout Duration `json:"timeout"`
	}
	own, rest := Spec{Type: s.Type, Fields: map[string]any{}}, s
	rest.Fields = maps.Clone(s.Fields)
	for _, k := range []string{"policy", "queue", "timeout"} {
		if v, ok := rest.Fields[k]; ok {
			own.Fields[k] = v
			delete(rest.Fields, k)
		}
	}
	if err := own.Decode(&hub); err != nil {
		return HubEmitter{}, err
	}
	switch hub.Policy {
	case "", Warn, Ignore, Fail:
	default:
		return HubEmitter{}, fmt.Errorf("%s: policy %q, want warn, ignore or fail", s.Type, hub.Policy)
	}
	if hub.Queue < 0 || hub.Timeout < 0 {
		return HubEmitter{}, fmt.Errorf("%s: queue and timeout must not be negative", s.Type)
	}
	e, err := Emitters.New(rest)
	if err != nil {
		return HubEmitter{}, err
	}
	return HubEmitter{Emitter: e, Policy: hub.Policy, Queue: hub.Queue, Timeout: time.Duration(hub.Timeout)}, nil
}
