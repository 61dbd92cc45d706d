package faults

// schemaKinds: schema-change (to be written).
func schemaKinds() []*Kind { return nil }
