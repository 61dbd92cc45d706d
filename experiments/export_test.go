package experiments

// DataMovementRuns are the data-movement runs of this test binary by engine
// (spider, vitess): the external tests compare them.
func DataMovementRuns() map[string]string { return dataMovementRuns }
