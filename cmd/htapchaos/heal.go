package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/testcontainers/faulttarget"
)

func (a *app) healCmd() *cobra.Command {
	var cluster, target string
	var force bool
	cmd := &cobra.Command{
		Use:   "heal --cluster NAME | --target FILE | RUNDIR",
		Short: "Undo the faults a dead htapchaos left on a cluster, from its fault journal",
		Long: `Every fault is written to a journal before it acts, and its recovery after: in
the user's state directory (` + "`$XDG_STATE_HOME/htapchaos/journal`" + `, or ~/.local/state/htapchaos;
HTAPCHAOS_STATE_DIR overrides), one file per cluster or target, and as
faults.journal.jsonl in a run's directory. When htapchaos dies with a fault in
place (kill -9, a crash, a dropped session), heal replays the recovery of every
fault the journal shows as not recovered: it unpauses, reconnects, starts, lifts
the CPU cap, removes the bandwidth filter, kills the CPU or memory hog, drops the
MEMORY tables, ends and undoes the ALTER. Each step is idempotent, so heal can run
twice. It then checks that every node it touched serves again.

A fault whose process still runs is left alone (that process recovers it), unless
--force.`,
		Example: `  htapchaos heal --cluster demo
  htapchaos heal --target staging.yaml
  htapchaos heal runs/failover-pause`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			given := 0
			for _, v := range []bool{cluster != "", target != "", len(args) == 1} {
				if v {
					given++
				}
			}
			if given != 1 {
				return usagef("heal: give one of --cluster NAME, --target FILE or a run directory")
			}
			a.ran = true // past here, an error is the infrastructure's (exit 3)
			var (
				key     faults.JournalKey
				entries []faults.JournalEntry
				runDir  string
			)
			if len(args) == 1 {
				runDir = args[0]
				path := filepath.Join(runDir, "faults.journal.jsonl")
				if _, err := os.Stat(path); err != nil {
					return usagef("%s: no fault journal (faults.journal.jsonl) in this directory", runDir)
				}
				es, err := faults.ReadJournal(path)
				if err != nil {
					return err
				}
				for _, e := range es {
					if e.Cluster != "" || e.Target != "" {
						key = faults.JournalKey{Cluster: e.Cluster, Target: e.Target}
						break
					}
				}
				if key == (faults.JournalKey{}) {
					fmt.Fprintf(a.stdout, "%s: the journal names no fault: nothing to heal\n", runDir)
					return nil
				}
				entries = es
			} else {
				key = faults.JournalKey{Cluster: cluster, Target: target}
				path, err := faults.JournalPath(key)
				if err != nil {
					return err
				}
				if entries, err = faults.ReadJournal(path); err != nil {
					return err
				}
			}
			// The state directory's journal has the heals of other runs too.
			if path, err := faults.JournalPath(key); err == nil && runDir != "" {
				if more, err := faults.ReadJournal(path); err == nil {
					entries = append(entries, more...)
				}
			}
			left := faults.Unrecovered(entries)
			if len(left) == 0 {
				fmt.Fprintf(a.stdout, "nothing to heal: every fault the journal holds was recovered\n")
				return nil
			}
			var todo []faults.JournalEntry
			for _, e := range dedupe(left) {
				if e.PID != os.Getpid() && e.Alive() && !force {
					fmt.Fprintf(a.stdout, "left alone: %s on %s: its process %d (%s) still runs and recovers it (--force heals it anyway)\n",
						e.Kind, strings.Join(e.Labels, ", "), e.PID, e.Command)
					continue
				}
				todo = append(todo, e)
			}
			if len(todo) == 0 {
				return nil
			}
			// One actor per cluster: not while a run, a fault or another heal acts.
			if lk, err := faults.AcquireLock(key, "htapchaos heal"); err == nil {
				defer lk.Release()
			} else if !force {
				return fmt.Errorf("%w (--force heals anyway)", err)
			}
			var c faults.Cluster
			if key.Target != "" {
				t, err := faults.LoadExecTarget(key.Target)
				if err != nil {
					return err
				}
				c = t.Cluster()
			} else {
				hc, err := attach(ctx, key.Cluster)
				if err != nil {
					return err
				}
				c = faulttarget.Cluster(hc)
			}
			j, err := faults.OpenJournal(key, runDir)
			if err != nil {
				return err
			}
			var errs []error
			for _, r := range faults.Heal(ctx, c, todo) {
				e := r.Entry
				what := fmt.Sprintf("%s on %s (injected %s by pid %d)", e.Kind, strings.Join(e.Labels, ", "), e.Time.Local().Format("2006-01-02 15:04:05"), e.PID)
				if r.Err != nil {
					fmt.Fprintf(a.stdout, "NOT healed: %s: %v\n", what, r.Err)
					errs = append(errs, fmt.Errorf("%s: %w", what, r.Err))
					continue
				}
				note := "undone; the nodes serve"
				if faults.LeavesNothing(e.Kind) {
					note = "left nothing behind; the nodes serve"
				}
				if err := j.Append(faults.JournalEntry{ID: e.ID, Event: faults.JournalHealed, Kind: e.Kind, Note: note}); err != nil {
					errs = append(errs, err)
				}
				fmt.Fprintf(a.stdout, "healed: %s: %s\n", what, note)
			}
			return errors.Join(errs...)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cluster, "cluster", "", "a cluster htapchaos started (htapchaos cluster ls)")
	f.StringVar(&target, "target", "", "an exec target file (the one the faults were run with)")
	f.BoolVar(&force, "force", false, "heal a fault even while the process that injected it still runs")
	return cmd
}

// dedupe keeps one entry per id (a run directory's copy and the state
// directory's hold the same entries).
func dedupe(es []faults.JournalEntry) []faults.JournalEntry {
	seen := map[string]bool{}
	var out []faults.JournalEntry
	for _, e := range es {
		if !seen[e.ID] {
			seen[e.ID] = true
			out = append(out, e)
		}
	}
	return out
}
