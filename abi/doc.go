// Package abi is version 1 of the contract between the pirn host and a knot
// module: the exports a module provides, the host functions it may import,
// and the CBOR messages that cross between them. docs/abi.md is the
// normative text; this package is its Go rendering, used by the host and by
// the Go PDK (it builds for wasip1).
//
// # Exports (the module provides)
//
//	memory                              the module's linear memory
//	pirn_abi_version() -> i32           must return [Version]
//	pirn_manifest() -> i32              writes the [Manifest] with pirn.output; returns 0
//	pirn_invoke(request_len i32) -> i32 one knot invocation; returns 0
//
// # Imports (the host provides, module "pirn")
//
//	input(ptr i32)                      copies the pending request (request_len bytes) to ptr
//	output(ptr i32, len i32)            hands the host a manifest or response
//	log(level i32, ptr i32, len i32)    a UTF-8 log line at a [LogLevel]
//
// A module may also import wasi_snapshot_preview1; nothing else.
//
// # One invocation
//
// The host calls pirn_invoke(n) exactly once per knot invocation. The guest
// allocates n bytes, calls input to receive the [Request], runs the knot,
// encodes a [Response] and passes it to output, then returns 0. Guest-to-host
// calls are cheap; host-to-guest entries are not (each one arms a timeout),
// which is why an invocation is a single entry with bulk copies.
//
// All messages are CBOR maps with text keys. Values inside them are in the
// data model of package cas (deterministic CBOR, text-keyed maps, int64
// integers); the host canonicalises what a guest returns before hashing it.
package abi
