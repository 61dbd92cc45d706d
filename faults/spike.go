package faults

// spikeKinds: batch-spike and analytics-spike (to be written).
func spikeKinds() []*Kind { return nil }
