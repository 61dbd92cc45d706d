package faults

import "github.com/htapchaos/htapchaos/loadgen"

// analyticsSpikeKind declares analytics-spike (the run is spike, in spike.go).
func analyticsSpikeKind() *Kind {
	return &Kind{
		Name:        "analytics-spike",
		Description: "run the analytics workload at rate x times against the nodes (many concurrent scans); stop it on recover",
		Class:       ClassSpike,
		Workload:    loadgen.Analytics().Name,
		Measures:    spikeMeasures,
		Params: []ParamSpec{
			{Name: "rate", Type: Int, Default: "2", Help: spikeRateHelp},
			{Name: "times", Type: Int, Default: "10", Help: "the spike runs at rate x times"},
			{Name: "mix", Type: String, Help: "operations, with optional weights: fraud-scan, or dashboard=50,fraud-scan=50 (default: the workload's mix)"},
		},
		Needs:    capability[SQLNode](),
		Validate: func(p Params) error { return newSpike("analytics-spike", loadgen.Analytics(), p).err },
		New:      func(p Params) Fault { return newSpike("analytics-spike", loadgen.Analytics(), p) },
	}
}
