package experiments

import (
	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/loadgen"
)

// registries are the workload, fault and scorer registries a spec is checked
// against and a run uses: the caller's (ParseOptions, Options), or the builtins.
type registries struct {
	workloads *loadgen.Registry
	faults    *faults.Registry
	scorers   *ScorerRegistry
}

// or fills what r lacks from d, then from the builtins.
func (r registries) or(d registries) registries {
	if r.workloads == nil {
		r.workloads = d.workloads
	}
	if r.faults == nil {
		r.faults = d.faults
	}
	if r.scorers == nil {
		r.scorers = d.scorers
	}
	if r.workloads == nil {
		r.workloads = loadgen.NewRegistry()
	}
	if r.faults == nil {
		r.faults = faults.NewRegistry()
	}
	if r.scorers == nil {
		r.scorers = NewScorers()
	}
	return r
}

// any says whether the caller gave a registry.
func (r registries) any() bool { return r.workloads != nil || r.faults != nil || r.scorers != nil }

// registries are the ones the spec was read with, the builtins where none was
// given.
func (s *Spec) registries() registries { return s.regs.or(registries{}) }
