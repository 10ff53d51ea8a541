// Package scheduler runs a tapestry: a DAG of knots and parameters.
//
// # Contract
//
//   - A [Tapestry] is built node by node; a knot's parents must already be
//     in it, so a tapestry is acyclic by construction. Ids are explicit,
//     unique and match [A-Za-z0-9_.:-]{1,256}.
//   - [Scheduler.Run] binds parameters first: a request value is coerced to
//     the parameter's type (the original's lax rules), a missing value with
//     no default fails the run before anything executes, and an unknown
//     parameter name is an error. Setup errors return a nil Result and
//     record nothing.
//   - Only the requested terminals and what they need run. A knot starts as
//     soon as its parents have finished (a ready queue, not waves with
//     barriers), on a pool of Config.Workers goroutines. A parent bound
//     under several inputs counts once. A worker waits only while another
//     runs a task; were nothing ready and nothing running with nodes left
//     (a scheduler bug), the run ends with those nodes erring
//     [ErrStalled] rather than waiting forever.
//   - Every node ends ok, err or skipped, and gets a lineage record of its
//     kind ([Kind.Record]); each element of a Map gets one of kind
//     lineage.KindElement, naming the Map and the index in Record.Map and
//     Record.Index. Under the default policy a knot whose parent erred or
//     skipped is skipped with reason "parent_failed_or_skipped". Error
//     records have stable ids: the content hash of the knot id and the
//     failure.
//   - Values are canonical CBOR (package cas); each ok value is put in the
//     data store under its digest, and the whole run is recorded in the
//     history in one call, even when the run's context was cancelled.
//   - Knots are reached only through the [Knot] interface, so the scheduler
//     knows nothing of WebAssembly.
//
// A Scheduler is safe for concurrent use; a Tapestry may be run by several
// runs at once once it is no longer being modified.
package scheduler
