package faults

import (
	"slices"

	"github.com/htapchaos/htapchaos/loadgen"
)

// batchSpikeKind declares batch-spike (the run is spike, in spike.go).
func batchSpikeKind() *Kind {
	return &Kind{
		Name:        "batch-spike",
		Description: "run the batch workload (multi-row INSERTs into orders) at rate x times against the nodes; stop it on recover",
		Class:       ClassSpike,
		Workload:    loadgen.Batch().Name,
		Measures:    append(slices.Clone(spikeMeasures), MeasureSpikeRows),
		Params: []ParamSpec{
			{Name: "rate", Type: Int, Default: "5", Help: spikeRateHelp},
			{Name: "times", Type: Int, Default: "10", Help: "the spike runs at rate x times"},
			{Name: "rows", Type: Int, Default: "500", Help: "rows per INSERT"},
		},
		Needs:    capability[SQLNode](),
		Validate: func(p Params) error { return newSpike("batch-spike", loadgen.Batch(), p).err },
		New:      func(p Params) Fault { return newSpike("batch-spike", loadgen.Batch(), p) },
	}
}
