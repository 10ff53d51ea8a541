//go:build !unix

package host

// reserveMaps: reserve allocates the whole maximum here, so only a memory
// that must be reset (and so have a fixed address) is reserved.
const reserveMaps = false

// reserve allocates max bytes (elsewhere than Unix, from the Go heap).
func reserve(max uint64) []byte { return make([]byte, max) }

func release([]byte) {}
