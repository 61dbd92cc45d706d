// Package experiments runs experiments: a spec (YAML) names a cluster, data, a
// timeline of phases, workloads and faults on one clock, and the failure modes to
// score; the runner provisions or connects, seeds, runs, samples each node's leading
// indicators every second, audits durability and scores every mode against its
// budgets, with a verdict and the evidence.
//
// The failure modes, and the figures findings are held to, come from a
// practitioner's account of SingleStore in production: "the article" in this
// package's comments and in findings' references is that SingleStore production
// article, described in docs/failure-modes.md.
//
// The package reads as three concerns and the runner that joins them; the file
// names say which:
//
//   - spec_*.go: the experiment file. Spec and its parts (spec.go), reading and
//     checking it with file:line errors (spec_parse.go), the builtin experiments
//     (spec_builtin.go and builtin/), the plan printed before a run (spec_plan.go),
//     and the registries a spec is checked against (spec_registries.go).
//   - observe_*.go: what watches a run. The indicator sampler (observe_indicators.go),
//     the freshness heartbeat (observe_heartbeat.go), the durability audit
//     (observe_audit.go) and the abort guard (observe_abort.go).
//   - score_*.go: judging what was recorded. Recorded, findings and fault records
//     (score_record.go), the Scorer interface and its registry (score.go), the
//     builtin scorers, one file per failure mode (score_<mode>.go, helpers in
//     score_builtin.go), and the aggregation of repeated runs (score_aggregate.go).
//   - run*.go: the runner. Run (run.go) is a sequence of stages over one runState:
//     prepareCluster (resolve the cluster or target, lock, health check, nodes),
//     connect (run directory, proxies, load targets), seed (run_seed.go),
//     startObservers (run_observe.go), runTimeline (faults and load on one clock,
//     run_timeline.go), then stop, audit, score and record (run_finish.go).
//     Repeat (repeat.go) and Suite (suite.go) run it several times; rundir.go
//     reads a run directory back; junit.go writes JUnit XML.
//
// To extend: a workload (loadgen.Registry.Register), a fault kind
// (faults.Registry.Register) or a scorer (ScorerRegistry.Register, here) reaches a
// spec through ParseOptions and a run through Options, which take the registries.
// Options.On runs on any cluster behind faults.Cluster.
package experiments
