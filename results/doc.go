// Package results records the measurements of a run and owns what is written
// to the run directory. It is the only place that writes measurement results.
//
// A load generator takes one [Handle] per [Key] (workload, operation, node)
// from a [Recorder] and reports every operation to it with [Handle.Record]
// (intended start, actual start, end, error) or [Handle.Dropped] when the
// operation never started. Latency is measured from the intended start, so it
// includes queueing and is free of coordinated omission; the service time
// (from the actual start) is kept apart. Errors are measurements too: they are
// classified by [Classify] and counted per [Class]; errors caused by our own
// shutdown ([ClassCanceled]) are counted apart and never as failures of the
// database.
//
// The runner's clock calls [Recorder.Tick] once per interval (normally every
// second). Each tick closes the interval: the interval histograms of every
// handle are swapped for spare ones, merged into the cumulative histograms,
// appended to one HdrHistogram interval log per workload
// (<Dir>/<workload>.hlog) and summarised in <Dir>/intervals.jsonl. Memory does
// not grow with the length of the run. [Recorder.Close] closes the last
// interval and writes <Dir>/summary.json, read back by [ReadSummary].
//
// Per stream (workload, node) the recorder also finds the unavailability
// windows ("gaps"): windows without a successful completion at least as long
// as Options.GapThreshold.
//
// A [Ledger] keeps the ids of acknowledged writes for a later durability audit.
package results
