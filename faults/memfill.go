package faults

// memoryKinds: memory-fill (to be written).
func memoryKinds() []*Kind { return nil }
