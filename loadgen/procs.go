package loadgen

import "math"

// Processors a load needs, by measurement on a 2-core machine (scripts/bench-load.sh,
// scripts/bench-experiment.sh): a second processor, mostly idle, costs the Go
// scheduler more CPU in handing goroutines between threads than it gives. At 2K
// ops/s open loop, one processor used a third less CPU than two; 32 closed-loop
// workers made as many point reads a second on one as on two, with 15% less CPU per
// read. The open loop at 50K ops/s needs two to keep its schedule (lag p99 under
// 1 ms). So a light load runs on one processor, and one is added per step of load.
const (
	opsPerProc     = 10_000 // open loop: planned operations a second per processor
	workersPerProc = 32     // closed loop: workers per processor
)

// Procs is how many processors (GOMAXPROCS) the workloads need at their peak: one per
// 10K ops/s of open-loop rate and one per 32 closed-loop workers, summed over the
// workloads, plus one when a workload is heavy (its operations can hold a processor
// for milliseconds, which on one processor would show as latency of the others), at
// least one and at most limit. A run works with more or fewer; this sets what it
// costs in CPU (see the README's figures).
func Procs(specs []Spec, limit int) int {
	var rate float64
	var workers int
	heavy := false
	for _, s := range specs {
		heavy = heavy || s.Workload != nil && s.Workload.Heavy
		var peakRate float64
		var peakConc int
		for _, p := range s.Phases {
			peakRate = max(peakRate, p.Rate)
			peakConc = max(peakConc, p.Concurrency)
		}
		if s.Closed {
			workers += peakConc
		} else {
			rate += peakRate
		}
	}
	n := max(1, int(math.Ceil(rate/opsPerProc))+(workers+workersPerProc-1)/workersPerProc)
	if heavy {
		n++
	}
	return max(1, min(n, limit))
}
