// Package experiments runs experiments: a spec (YAML) names a cluster, data, a
// timeline of phases, workloads and faults on one clock, and the failure modes to
// score; the runner provisions or connects, seeds, runs, samples each node's leading
// indicators every second, audits durability and scores every mode against its
// budgets, with a verdict and the evidence.
package experiments
