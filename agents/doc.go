// Package agents spreads one load run over several processes (agents) driven by a
// coordinator, so that a run can offer more load than one client machine can.
//
// The coordinator (Run) splits the run's schedule (not its rate) into shares
// (Plans): agent k of n issues the operations k, k+n, k+2n, ... of each open-loop
// schedule, so the union of the agents' intended times is the schedule one process
// would follow and the totals are exact. Agents run loadgen.Run with their share
// and hand every closed interval (results.IntervalFrame: raw histograms, counts and
// gap coverage) to the coordinator, which ingests them into its own results.Recorder
// and ticks it: the run directory is what one process would have written, plus
// per-agent histogram tags and agents.json.
//
// The wire protocol (protocol.go) is length-prefixed JSON over one TCP connection per
// agent, TLS 1.3 with a pinned per-run certificate off loopback, authenticated by a
// per-run token checked before any plan (which carries DSNs) is sent. An agent whose
// frames stop for LossTimeout is lost: the run goes on without it and is marked
// degraded.
package agents
