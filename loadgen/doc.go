// Package loadgen drives load at MySQL-wire nodes and records every operation in
// a [results.Recorder].
//
// A [Workload] is a named set of [Op]s with a default mix; the builtin ones (oltp,
// analytics, batch, the sharded analytical shapes, noop) are in the [Registry]
// that [NewRegistry] returns, and a caller registers its own with
// [Registry.Register]. An op makes exactly one attempt on the worker's own
// connection and declares its traits: whether it changes data (its gaps are
// write gaps), whether its inserts go to the acknowledged-write ledger the
// durability audit reads back, whether its peak memory is measured.
//
// [Run] runs one or more workloads ([Spec]) against [Target]s on one clock: open
// loop by default (operations start on a fixed [Schedule] whatever the database
// does, latency from the intended start, late and dropped operations counted), or
// closed loop with a fixed number of workers. The runner owns concurrency, routes
// ([Route]) and client retries ([Retry]). [Setup] creates and seeds htapchaos's
// own schema (users, orders; [SetupSharded] for the sharded topologies).
//
// "The article" in this package's comments is "Lessons Learned Running SingleStore
// in Production (The Painful Ones)" by Shahid Moosa, whose failure modes htapchaos
// scores (docs/failure-modes.md): the builtin schema, dashboard, revenue join and
// fraud scan model its incidents.
package loadgen
