package pdk

import "runtime"

var sinceYield, callsSinceYield int

// collect runs at the end of every invocation. Inside a wasm reactor the Go
// scheduler runs only during exported calls, so a collection that an
// allocation starts is never finished by its background mark workers, and
// the heap grows without bound (1.7 GiB after 1000 calls of 1 MiB).
// Yielding lets those workers run. A yield costs a few microseconds under
// Go/wasm, so it happens every 16 invocations or every 256 KiB of requests,
// whichever comes first: the heap can outgrow its goal by at most that much
// allocation.
func collect(requestBytes int) {
	sinceYield += requestBytes
	callsSinceYield++
	if sinceYield >= 256<<10 || callsSinceYield >= 16 {
		sinceYield, callsSinceYield = 0, 0
		runtime.Gosched()
	}
}
