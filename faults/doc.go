// Package faults injects the faults real outages start with, each as a life cycle
// (set up, inject, wait until it took effect, recover, wait until recovered, clean
// up) run by a state machine that always recovers: on success, on error, on cancel.
//
// Faults act on a Cluster of Nodes and ask each node for the capabilities they use
// (Killer, Pauser, Execer, CPULimiter, ...) by type assertion, so a fault works on
// any cluster whose nodes can do what it needs. The package knows nothing of
// containers: faulttarget.Cluster (testcontainers/faulttarget) adapts a cluster
// in containers, LoadExecTarget a cluster htapchaos did not create (shell
// commands per action).
//
// Where things are:
//   - fault.go: the Fault interface, Env and the Runner (the state machine);
//   - registry.go: Kind, parameters, classes, and the builtin kinds, one line each;
//   - one file per builtin kind, named after it (node_kill.go, pause.go,
//     slow_node.go, memory_fill.go, ...), holding its declaration (a func
//     returning its *Kind), its life cycle and its Measure* names; spike.go is the
//     run both spike kinds share, memhog.pl memory-fill's hog (embedded);
//   - kinds.go: what the kinds share (capability checks, each, poll, waitReady);
//   - target.go: Cluster, Node, the capabilities, and Resolve (--node);
//   - journal.go, heal.go, health.go, lock.go: what survives a crash of the
//     process running a fault (the journal), undoing it (heal), the health check
//     before a fault, and one actor per cluster;
//   - execctl.go: exec targets; proxy.go: the latency proxies;
//   - record.go: fault.json and events.jsonl of one run (htapchaos fault --out).
package faults
