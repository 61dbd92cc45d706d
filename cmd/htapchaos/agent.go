package main

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/htapchaos/htapchaos/agents"
	"github.com/htapchaos/htapchaos/loadgen"
)

// exitCoordinatorGone is the agent's exit code when its coordinator went away
// (unreachable, closed, silent for 3 s, or the plan's deadline passed): the
// agent stopped its load by itself.
const exitCoordinatorGone = 5

// exitError carries an exit code of its own (see app.exitCode).
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// ExitCode is the process exit code for the error.
func (e exitError) ExitCode() int { return e.code }

func (a *app) agentCmd() *cobra.Command {
	o := agents.AgentOptions{Index: -1}
	cmd := &cobra.Command{
		Use:   "agent --coordinator HOST:PORT",
		Short: "Run one agent of a distributed load (started by load --agents)",
		Long: `agent runs its share of a load for a coordinator (load --agents N), which
starts the agents itself with --launcher local. It dials the coordinator, proves
it belongs to the run with the run's token, takes its plan, and reports every
interval back; the coordinator writes the run directory.

The token comes from $` + agents.EnvToken + ` (kept out of the process list) or
--token. Off a loopback address the connection is TLS 1.3 and the coordinator's
certificate must have the fingerprint --cert-sha256.

The agent stops its load by itself when the coordinator goes silent for 3 s, the
connection breaks, or the plan's deadline passes.

Exit codes: 0 done, 2 refused (token, protocol version, index) or bad flags,
3 the plan failed here, 5 the coordinator went away, 130 interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Coordinator == "" {
				return usagef("--coordinator: required: the coordinator's host:port")
			}
			if o.Token == "" {
				o.Token = os.Getenv(agents.EnvToken)
			}
			if o.Token == "" {
				return usagef("no token: set $%s or --token", agents.EnvToken)
			}
			if o.Index < -1 {
				return usagef("--index %d: want an agent number from 0, or -1 for any", o.Index)
			}
			o.Stderr = a.stderr
			restore := func() {}
			defer func() { restore() }()
			o.OnPlan = func(cfg *loadgen.Config) {
				restore = a.useProcs(func(limit int) int { return loadgen.Procs(agents.ShareSpecs(cfg), limit) })
			}
			err := agents.RunAgent(cmd.Context(), o)
			switch {
			case errors.Is(err, agents.ErrRefused):
				return usageError{err}
			case errors.Is(err, agents.ErrCoordinatorGone):
				return exitError{exitCoordinatorGone, err}
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Coordinator, "coordinator", "", "the coordinator's host:port")
	fl.StringVar(&o.Token, "token", "", "the run's token (default: $"+agents.EnvToken+"; the flag shows in the process list)")
	fl.StringVar(&o.CertSHA256, "cert-sha256", "", "hex SHA-256 fingerprint of the coordinator's certificate (required off loopback)")
	fl.IntVar(&o.Index, "index", -1, "the agent number to ask for, from 0 (-1: the coordinator assigns one)")
	return cmd
}
