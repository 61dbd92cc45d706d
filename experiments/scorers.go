package experiments

// builtinScorers returns one scorer per failure mode (to be written).
func builtinScorers() []Scorer { return nil }
