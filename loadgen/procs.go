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
// workloads, at least one and at most limit. A run still works with more or fewer;
// this only sets what it costs in CPU (see the README's figures).
func Procs(specs []Spec, limit int) int {
	var rate float64
	var workers int
	for _, s := range specs {
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
	return ProcsFor(rate, workers, limit)
}

// ProcsFor is Procs for a total open-loop rate and a number of closed-loop workers.
func ProcsFor(rate float64, workers, limit int) int {
	n := int(math.Ceil(rate/opsPerProc)) + (workers+workersPerProc-1)/workersPerProc
	return max(1, min(n, limit))
}
