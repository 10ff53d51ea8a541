package emit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Spec is one entry of a configuration list (serve.yaml's emitters,
// triggers and streams): its type and the rest of its fields, which the
// type's factory decodes.
type Spec struct {
	Type string
	// Fields are the entry's other fields, as YAML or JSON decoded them
	// (maps, lists, strings, numbers, bools).
	Fields map[string]any
	// Dir is the directory of the file the entry is in, for relative paths.
	Dir string
	// Logger is the server's.
	Logger *slog.Logger
}

// Decode decodes the entry's fields into v, a pointer to a struct with
// json tags; a field v does not have is an error naming it. Durations are
// Duration fields ("10s", "1m30s").
func (s Spec) Decode(v any) error {
	b, err := json.Marshal(s.Fields)
	if err != nil {
		return fmt.Errorf("%s: %w", s.Type, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", s.Type, err)
	}
	return nil
}

// Duration is a time.Duration written as Go writes one ("250ms", "1m").
type Duration time.Duration

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"10s\", not %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Registry maps a type name to the factory of its kind (emitters here;
// triggers and sources in package serve).
type Registry[T any] struct {
	mu sync.RWMutex
	m  map[string]func(Spec) (T, error)
}

// NewRegistry returns a registry holding the types of m: each package's
// own built-in types, listed where the registry is declared (no init
// registration; pirn serve adds the types of other packages, such as
// Kafka's, from one explicit table in cmd/pirn).
func NewRegistry[T any](m map[string]func(Spec) (T, error)) *Registry[T] {
	return &Registry[T]{m: m}
}

// Register adds a type; registering a type twice panics.
func (r *Registry[T]) Register(typ string, f func(Spec) (T, error)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]func(Spec) (T, error){}
	}
	if _, dup := r.m[typ]; dup {
		panic("emit: type " + typ + " registered twice")
	}
	r.m[typ] = f
}

// New makes a T of the spec's type; an unknown type is an error listing
// the known ones.
func (r *Registry[T]) New(s Spec) (T, error) {
	r.mu.RLock()
	f, ok := r.m[s.Type]
	r.mu.RUnlock()
	if !ok {
		var zero T
		return zero, fmt.Errorf("unknown type %q (known: %v)", s.Type, r.Types())
	}
	return f(s)
}

// Types lists the registered types, sorted.
func (r *Registry[T]) Types() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ts := make([]string, 0, len(r.m))
	for t := range r.m {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

// Emitters is the registry of emitter types: this package's log and
// webhook; pirn serve adds otel, openlineage, kafka, valkey and nats.
var Emitters = NewRegistry(map[string]func(Spec) (Emitter, error){
	"log":     logFromSpec,
	"webhook": webhookFromSpec,
})
