// Package host runs knot modules: it compiles WebAssembly modules with
// wazero, checks them against ABI v1, and invokes their knots on pooled,
// sandboxed instances.
//
// # Contract
//
//   - A module is addressed by the SHA-256 of its bytes ([cas.Digest]) and
//     compiled once per runtime; compiled code is cached on disk (by default
//     under the user cache directory) so later processes skip compilation.
//   - [Host.Load] refuses a module whose ABI version is unknown, that lacks
//     a required export, or that imports anything the host does not
//     provide; the error names the module and the problem.
//   - Each (module, [Limits]) pair has a pool of instances with cached
//     export handles. An instance serves one invocation at a time and is
//     discarded after a trap, a timeout, an ABI violation, MaxInvocations
//     invocations, or when its linear memory passes HighWater.
//   - Instances have no ambient capabilities: no file system, network,
//     environment or arguments, and wazero's deterministic clock and random
//     source. Their stdout, stderr and log calls become slog records tagged
//     with the run and knot.
//   - [Knot.Invoke] never panics and never returns a Go error: every failure
//     of the guest is an err [abi.Response] whose Type says what happened
//     (see the Err* constants). ok values come back canonical (cas).
//
// Host, Module and Knot are safe for concurrent use.
package host
