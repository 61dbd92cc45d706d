package faults

func networkKinds() []*Kind { return nil }
