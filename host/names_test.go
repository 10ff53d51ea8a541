package host_test

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/host/hosttest"
	"github.com/pirn-wasm/pirn/model"
)

// uleb reads an unsigned LEB128 number.
func uleb(b []byte) (uint64, int) { return binary.Uvarint(b) }

// withFunctionNames returns wasm with its name section replaced by one that
// gives every function the name name.
func withFunctionNames(t *testing.T, wasm []byte, name string) []byte {
	t.Helper()
	out := append([]byte{}, wasm[:8]...)
	funcs := uint64(0)
	for b := wasm[8:]; len(b) > 0; {
		id := b[0]
		size, n := uleb(b[1:])
		payload := b[1+n : 1+n+int(size)]
		section := b[:1+n+int(size)]
		b = b[1+n+int(size):]
		switch id {
		case 0: // custom: drop the old name section
			nl, k := uleb(payload)
			if string(payload[k:k+int(nl)]) == "name" {
				continue
			}
		case 2: // imports: count the functions
			count, k := uleb(payload)
			p := payload[k:]
			for range count {
				for range 2 { // module and field names
					l, k := uleb(p)
					p = p[k+int(l):]
				}
				kind := p[0]
				p = p[1:]
				switch kind {
				case 0: // func: a type index
					funcs++
					_, k := uleb(p)
					p = p[k:]
				case 1, 2: // table (a reference type first), memory: limits
					if kind == 1 {
						p = p[1:]
					}
					flag := p[0]
					_, k := uleb(p[1:])
					p = p[1+k:]
					if flag&1 != 0 {
						_, k := uleb(p)
						p = p[k:]
					}
				case 3: // global: a value type and mutability
					p = p[2:]
				}
			}
		case 3: // functions
			count, _ := uleb(payload)
			funcs += count
		}
		out = append(out, section...)
	}
	var names []byte
	names = binary.AppendUvarint(names, funcs)
	for i := range funcs {
		names = binary.AppendUvarint(names, i)
		names = binary.AppendUvarint(names, uint64(len(name)))
		names = append(names, name...)
	}
	var sub []byte
	sub = append(sub, 1) // function names
	sub = binary.AppendUvarint(sub, uint64(len(names)))
	sub = append(sub, names...)
	var custom []byte
	custom = binary.AppendUvarint(custom, 4)
	custom = append(custom, "name"...)
	custom = append(custom, sub...)
	out = append(out, 0)
	out = binary.AppendUvarint(out, uint64(len(custom)))
	return append(out, custom...)
}

// TestErrorTextBounded gives every function of misbehave the longest name
// allowed and makes it trap, also deep in recursion: the trace names a
// function in every frame, yet the err's message and trace stay within
// abi's bounds. A longer name is refused at load.
func TestErrorTextBounded(t *testing.T) {
	t.Parallel()
	h := newHost(t, host.Config{})
	// A name over MaxNameBytes is refused at load...
	_, err := h.Load(t.Context(), "hugenames", withFunctionNames(t, readWasm(t, misbehave), strings.Repeat("N", 1<<20)))
	if err == nil || !strings.Contains(err.Error(), "its name section holds a name of 1048576 bytes, over the limit of 65536") {
		t.Errorf("names of 1 MiB: %v", err)
	}
	// ...and names at the bound still make traces longer than theirs.
	wasm := withFunctionNames(t, readWasm(t, misbehave), strings.Repeat("N", host.MaxNameBytes))
	m, err := h.Load(t.Context(), "bignames", wasm)
	if err != nil {
		t.Fatal(err)
	}
	for _, knot := range []string{"deep", "trap"} {
		r := hosttest.Knot(t, m, host.KnotConfig{Name: knot, Limits: model.Limits{Timeout: 10 * time.Second}}).Invoke(t.Context(), call())
		if r.Outcome != abi.OutcomeErr || r.Error.Type != host.ErrTrap {
			t.Fatalf("%s: %v %+v, want a trap", knot, r.Outcome, r.Error)
		}
		if len(r.Error.Message) > abi.MaxErrorMessage || len(r.Error.Trace) > abi.MaxErrorTrace {
			t.Errorf("%s: message %d bytes, trace %d bytes, over the bounds", knot, len(r.Error.Message), len(r.Error.Trace))
		}
		if knot == "trap" && !bytes.Contains([]byte(r.Error.Trace), []byte("bytes clipped]")) {
			t.Errorf("%s: nothing says the trace was clipped: %.200q", knot, r.Error.Trace)
		}
	}
}
