// Package examples shows htapchaos used as a library from a module of its own,
// the shape a user's repository would have: example_test.go registers a fault
// kind (freeze) and a workload (kv) of its own and runs an experiment with them
// on a cluster in containers through experiments.Run, with the registries in
// experiments.Options. workloads/ holds workload files for `htapchaos load
// --workload-file` and experiment specs (kind: file).
package examples
