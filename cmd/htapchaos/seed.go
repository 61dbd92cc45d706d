package main

import (
	"math/rand/v2"
	"strconv"

	"github.com/spf13/cobra"
)

// seedValue is a --seed flag whose default is a random seed drawn once: help
// says "random" instead of a number that changes on every call, and the value is
// a plain uint64 for the command (a run records the seed it drew).
type seedValue struct {
	p   *uint64
	set bool
}

func (s *seedValue) String() string {
	if !s.set {
		return "random"
	}
	return strconv.FormatUint(*s.p, 10)
}

func (s *seedValue) Set(v string) error {
	n, err := strconv.ParseUint(v, 0, 64)
	if err != nil {
		return err
	}
	*s.p, s.set = n, true
	return nil
}

func (s *seedValue) Type() string { return "uint64" }

// seedVar defines --seed on cmd: p holds a random seed until the flag is given.
func seedVar(cmd *cobra.Command, p *uint64, usage string) {
	*p = rand.Uint64()
	cmd.Flags().Var(&seedValue{p: p}, "seed", usage)
}
