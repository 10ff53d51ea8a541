package host_test

import (
	"slices"
	"testing"

	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/host/hosttest"
	"github.com/pirn-wasm/pirn/model"
)

// TestInstanceState runs knots that keep state in memory, in a global, in
// the fake clock and random source and in the memory's size, three times
// each, under each State: reset and fresh instances start every
// invocation alike (and a spy never sees another run's input); kept ones
// do not, and say so in their lineage grants.
func TestInstanceState(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	m := load(t, h, "testdata/hostile/stateful.wasm")
	secret := []byte("secret!!")
	for _, state := range []model.State{model.StateReset, model.StateFresh, model.StateKeep} {
		t.Run(state.String(), func(t *testing.T) {
			k := func(name string) *host.Knot {
				// One instance, so that a kept state would be seen.
				return hosttest.Knot(t, m, host.KnotConfig{Name: name, State: state, Limits: model.Limits{MaxInstances: 1}})
			}
			thrice := func(name string) []any {
				var out []any
				for range 3 {
					out = append(out, decode(t, k(name).Invoke(t.Context(), call())))
				}
				return out
			}
			same := func(xs []any) bool {
				for _, x := range xs[1:] {
					if string(must(x)) != string(must(xs[0])) {
						return false
					}
				}
				return true
			}
			keeps := state == model.StateKeep
			for _, name := range []string{"counter", "gcounter", "clock", "random", "grow"} {
				got := thrice(name)
				if same(got) == keeps {
					t.Errorf("%s three times: %v", name, got)
				}
			}
			decode(t, k("stash").Invoke(t.Context(), call(arg(t, "x", secret))))
			spied := decode(t, k("spy").Invoke(t.Context(), call())).([]byte)
			if keeps != (string(spied) == string(secret)) {
				t.Errorf("spy saw %q", spied)
			}
			if got := k("counter").Lineage(); keeps != slices.Contains(got, host.GrantState) {
				t.Errorf("lineage grants %v", got)
			}
		})
	}
}

// must renders a decoded value for comparing.
func must(v any) []byte {
	switch x := v.(type) {
	case []byte:
		return x
	case int64:
		return []byte{byte(x >> 56), byte(x >> 48), byte(x >> 40), byte(x >> 32), byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)}
	}
	return nil
}

// TestStatefulModuleGetsFreshInstances: a module that can change a table
// cannot be reset, so reset gives it a fresh instance per invocation.
func TestStatefulModuleGetsFreshInstances(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	m := load(t, h, "testdata/hostile/tables.wasm")
	k := hosttest.Knot(t, m, host.KnotConfig{Name: "one", State: model.StateReset})
	if k.State() != model.StateFresh {
		t.Errorf("state %s, want fresh", k.State())
	}
	plugin := loadWith(t, h, plainPlugin, host.LoadOptions{ABI: host.ABIExtism})
	if _, err := plugin.Knot(host.KnotConfig{Name: "greet", State: model.StateReset}); err == nil {
		t.Error("an Extism plugin accepted StateReset")
	}
}

// TestMemoryMapped: whatever a knot's state, its instances' linear memory
// is a mapping of the host's, outside the Go heap (docs/performance.md),
// and stays there as the guest grows it: a Go guest grows its memory
// while it starts and as it allocates.
func TestMemoryMapped(t *testing.T) {
	if !host.ReserveMaps {
		t.Skip("this platform's reservations are Go heap allocations")
	}
	h := newHost(t, host.Config{})
	m := load(t, h, arith)
	for _, state := range []model.State{model.StateReset, model.StateKeep} {
		t.Run(state.String(), func(t *testing.T) {
			k := hosttest.Knot(t, m, host.KnotConfig{Name: "inc", State: state, Limits: model.Limits{MaxInstances: 1}})
			for x := range int64(3) {
				if got := decode(t, k.Invoke(t.Context(), call(arg(t, "x", x)))); got != x+1 {
					t.Fatalf("inc(%d) = %v, want %d", x, got, x+1)
				}
			}
			if !host.MemoryMapped(k) {
				t.Errorf("the instance's memory (%d bytes) is not the host's mapping", host.InstanceMemory(k))
			}
		})
	}
}

// TestKnotsShareSignatures: the handles of one knot share its parsed
// types, whatever their limits, and each knot coerces by its own (add
// takes a and b, inc takes x).
func TestKnotsShareSignatures(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	m := load(t, h, arith)
	inc := knot(t, m, "inc", model.Limits{})
	inc2 := knot(t, m, "inc", model.Limits{MaxInstances: 1})
	add := knot(t, m, "add", model.Limits{})
	if !host.SameSignature(inc, inc2) {
		t.Error("two handles of inc parse its types twice")
	}
	if host.SameSignature(inc, add) {
		t.Error("inc and add share a signature")
	}
	if got := decode(t, add.Invoke(t.Context(), call(arg(t, "a", " 2 "), arg(t, "b", 3)))); got != int64(5) {
		t.Errorf(`add(" 2 ", 3) = %v, want 5`, got)
	}
	if got := decode(t, inc2.Invoke(t.Context(), call(arg(t, "x", " 2 ")))); got != int64(3) {
		t.Errorf(`inc(" 2 ") = %v, want 3`, got)
	}
}
