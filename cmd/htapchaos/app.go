package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/internal/usage"
	"github.com/htapchaos/htapchaos/testcontainers"
)

// Exit codes.
const (
	exitOK          = 0
	exitVerdictFail = 1
	exitUsage       = 2
	exitInfra       = 3
	exitAborted     = 4 // an abort condition held (--abort-on, a spec's abort:, a target's default guard)
	exitInterrupted = 130
)

// usageError is bad command-line input.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitCode maps an error to the process exit code, in this one place. An error
// before the command ran (unknown command or flag, wrong arguments) is a usage error.
func (a *app) exitCode(ctx context.Context, err error) int {
	var inputErr *usage.Error
	var uerr usageError
	var verr verdictError
	var xerr exitError
	switch {
	case ctx.Err() != nil:
		// Stopped by a signal, even where the command then ended without an
		// error (a load returns what it measured).
		return exitInterrupted
	case errors.As(err, new(*experiments.Aborted)):
		return exitAborted
	case err == nil:
		return exitOK
	case errors.As(err, &verr):
		return exitVerdictFail
	case errors.As(err, &xerr):
		return xerr.ExitCode()
	case !a.ran, errors.As(err, &uerr), errors.As(err, &inputErr):
		return exitUsage
	default:
		return exitInfra
	}
}

// app holds what commands share; there are no package globals.
type app struct {
	stdout, stderr io.Writer
	// ran is set once flags and arguments were accepted: an error before that is a
	// usage error.
	ran bool
	// procs is --procs: processors for the Go runtime (0: what the load needs).
	procs int
}

func newApp(stdout, stderr io.Writer) *app { return &app{stdout: stdout, stderr: stderr} }

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "htapchaos",
		Short: "Find out how a MySQL-wire cluster fails before production does",
		Long: `htapchaos drives OLTP, analytical and batch traffic at a MySQL-wire cluster
(MariaDB Galera, MySQL, SingleStore, TiDB) while it injects the faults that real
outages start with, and scores each experiment against known production failure modes.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if a.procs < 0 {
				return usagef("--procs %d: want a number of processors >= 1, or 0 for what the load needs", a.procs)
			}
			a.ran = true
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.PersistentFlags().IntVar(&a.procs, "procs", 0,
		"processors the Go runtime runs on (GOMAXPROCS); 0: one per 10K ops/s or 32 closed-loop workers of the load, one more beside analytics or batch work")
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(a.versionCmd(), a.imageCmd(), a.clusterCmd(), a.loadCmd(), a.faultCmd(),
		a.listCmd(), a.validateCmd(), a.runCmd(), a.suiteCmd(), a.reportCmd(), a.compareCmd(), a.healCmd(), a.agentCmd())
	a.addCompletions(root)
	return root
}

// attach finds a cluster started by "cluster up"; an unknown name is bad input.
func attach(ctx context.Context, name string) (*testcontainers.Cluster, error) {
	c, err := testcontainers.Attach(ctx, name)
	if errors.Is(err, testcontainers.ErrNoCluster) {
		return nil, usageError{err}
	}
	return c, err
}

// group is a command that only holds subcommands; with arguments it is a usage error.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use: use, Short: short, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(subs...)
	return cmd
}

// progress prints a timestamped progress line to stderr.
func (a *app) progress(format string, args ...any) {
	fmt.Fprintf(a.stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// cleanupContext outlives an interrupted command, so cleanup still runs after Ctrl-C.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
}

// useProcs sets the Go runtime's processors for a load: --procs when given,
// GOMAXPROCS from the environment when set, else what the load needs (need, given
// the machine's limit): one processor for a light load costs a third less CPU than
// two (see loadgen.Procs). The returned func restores the previous setting.
func (a *app) useProcs(need func(limit int) int) (restore func()) {
	prev := runtime.GOMAXPROCS(0)
	switch {
	case a.procs > 0:
		runtime.GOMAXPROCS(a.procs)
	case os.Getenv("GOMAXPROCS") != "":
		return func() {}
	default:
		runtime.GOMAXPROCS(need(prev))
	}
	return func() { runtime.GOMAXPROCS(prev) }
}
