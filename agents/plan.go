package agents

import (
	"errors"
	"slices"
	"time"

	"github.com/htapchaos/htapchaos/internal/usage"
	"github.com/htapchaos/htapchaos/loadgen"
)

// MaxAgents bounds --agents: each agent gets a 16-bit writer-id range of its own
// (see Plans), and more agents than this would leave each too few ids.
const MaxAgents = 256

// seedStep spreads the agents' seeds (the golden ratio's 64-bit constant): agent k
// runs with Seed + k*seedStep, and agent 0 keeps the seed, so one agent picks the
// operations a local run picks.
const seedStep uint64 = 0x9E3779B97F4A7C15

// minGapThreshold is the smallest gap threshold a distributed run accepts: below it
// an agent's success runs fragment into one per success and its frames grow with
// the load.
const minGapThreshold = 10 * time.Millisecond

// idSpace is the writer ids of one run tag (16 bits; 0 is never a worker's).
const idSpace = 0xffff

// Plans splits cfg over n agents: agent k takes the k-th share of every schedule
// (loadgen.Share), the worker (writer) ids from k*stride+1 (stride = 65535/n) and
// the seed Seed + k*0x9E3779B97F4A7C15. Errors are usage errors, all at once: a
// workload no agent can rebuild (no Source), a ledgered run without its RunTag, an
// agent needing more workers than its id range, a gap threshold under 10 ms.
func Plans(cfg loadgen.Config, n int) ([]Plan, error) {
	if n < 1 || n > MaxAgents {
		return nil, usage.Errorf("--agents", "%d: want 1-%d agents", n, MaxAgents)
	}
	var errs []error
	stride := idSpace / n
	workers := 0 // ids one agent uses, over all workloads
	needTag := false
	for _, s := range cfg.Workloads {
		if s.Workload == nil {
			errs = append(errs, usage.Errorf("--workload", "nil workload"))
			continue
		}
		if s.Workload.Source == nil || (s.Workload.Source.Builtin == "" && len(s.Workload.Source.Data) == 0) {
			errs = append(errs, usage.Errorf("--agents", "workload %s has no source an agent can load (a builtin or a workload file)", s.Workload.Name))
		}
		workers += agentWorkers(cfg, s, n)
		if mix, err := loadgen.NewMix(s.Workload, s.Mix); err == nil && slices.ContainsFunc(mix.Ops(), func(o *loadgen.Op) bool { return o.Ledgered }) {
			needTag = true
		}
	}
	if needTag && cfg.RunTag == 0 {
		errs = append(errs, usage.Errorf("--agents", "a ledgered workload needs the run tag chosen by the coordinator (Config.RunTag), so that the agents share one id range"))
	}
	if workers >= stride {
		errs = append(errs, usage.Errorf("--agents", "%d agents: each would run %d workers, and has ids for %d: fewer agents, or fewer --workers or --concurrency", n, workers, stride-1))
	}
	if cfg.GapThreshold != 0 && cfg.GapThreshold < minGapThreshold {
		errs = append(errs, usage.Errorf("--gap-threshold", "%v: with --agents at least %v", cfg.GapThreshold, minGapThreshold))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	deadline := runLength(cfg) + 30*time.Second
	plans := make([]Plan, n)
	for k := range plans {
		p := Plan{
			RunTag: cfg.RunTag, Interval: cfg.Interval, GapThreshold: cfg.GapThreshold, LateThreshold: cfg.LateThreshold,
			Targets: cfg.Targets, Params: cfg.Params,
			Share: loadgen.Share{Index: k, Of: n}, WorkerBase: k * stride, Deadline: deadline,
		}
		for _, s := range cfg.Workloads {
			p.Specs = append(p.Specs, PlanSpec{
				Source: *s.Workload.Source, Name: s.Name, Mix: s.Mix, Closed: s.Closed, Phases: s.Phases,
				Route: s.Route, Workers: s.Workers, MaxInFlight: s.MaxInFlight, OpTimeout: s.OpTimeout,
				Retry: s.Retry, MaxOps: s.MaxOps, Seed: s.Seed + uint64(k)*seedStep, MeasureMemory: s.MeasureMemory,
			})
		}
		plans[k] = p
	}
	return plans, nil
}

// agentWorkers is the worker ids one agent of n uses for s: Workers per routed node
// in the open loop, its share of the peak concurrency in the closed loop.
func agentWorkers(cfg loadgen.Config, s loadgen.Spec, n int) int {
	if s.Closed {
		conc := 0
		for _, p := range s.Phases {
			conc = max(conc, p.Concurrency)
		}
		return (conc + n - 1) / n
	}
	w := s.Workers
	if w == 0 {
		w = 32 // loadgen's default
	}
	nodes := len(s.Route.Nodes)
	if nodes == 0 {
		nodes = max(len(cfg.Targets), 1)
	}
	return w * nodes
}

// runLength bounds how long an agent's run may take from its start: the longest
// workload's phases plus the drain of its last operation (every attempt at its
// timeout, with the backoffs between them).
func runLength(cfg loadgen.Config) time.Duration {
	var longest time.Duration
	for _, s := range cfg.Workloads {
		var d time.Duration
		for _, p := range s.Phases {
			d += p.Duration
		}
		op := s.OpTimeout
		if op == 0 {
			op = 10 * time.Second
		}
		backoff := s.Retry.Backoff
		if backoff == 0 {
			backoff = 100 * time.Millisecond
		}
		drain := op
		for range s.Retry.Retries {
			drain += op + backoff
			backoff *= 2
		}
		longest = max(longest, d+drain)
	}
	return longest
}
