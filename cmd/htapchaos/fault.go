package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/testcontainers/faulttarget"
)

func (a *app) faultCmd() *cobra.Command {
	reg := faults.NewRegistry()
	var (
		cluster    string
		target     string
		allow      bool
		skipHealth bool
		dryRun     bool
		out        string
		node       string
		duration   time.Duration
		params     []string
		seed       uint64
	)
	var kinds strings.Builder
	for _, name := range reg.Names() {
		k, _ := reg.Get(name)
		fmt.Fprintf(&kinds, "  %-18s %s\n", name, k.Description)
	}
	cmd := &cobra.Command{
		Use:   "fault KIND (--cluster NAME | --target FILE) --node N",
		Short: "Inject one fault now, hold it, recover, and report what happened",
		Long: `Inject one fault into a cluster started by "htapchaos cluster up", wait until it
verifiably took effect, hold it for --duration, recover, and wait until the nodes
serve again. Recovery always runs: on error, and on Ctrl-C.

Faults:
` + kinds.String() + `
--node takes an index (2), a name (n2 or the container name), random, all-but-one,
or primary; several joined by commas.

--target FILE controls a cluster htapchaos did not create (a game day): a YAML
file with a shell command per action (kill, stop, start, pause, resume,
partition, heal, ready) and per node a name, role, DSN and variables for the
commands. Faults that can hurt it need --allow-destructive and nodes named one
by one. DSN passwords are never printed.

--out DIR writes events.jsonl (every step, as it happens) and fault.json (what
happened and what was measured).`,
		Example: `  htapchaos fault node-kill --cluster demo --node 2 --duration 20s
  htapchaos fault pause --cluster demo --node random --duration 5s
  htapchaos fault partition --cluster demo --node 3 --duration 30s
  htapchaos fault memory-fill --cluster demo --node 1 --param percent=90 --duration 1m
  htapchaos fault network-latency --cluster demo --node 2 --param delay=50ms --duration 1m
  htapchaos fault node-kill --target staging.yaml --node db2 --allow-destructive`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			kind, err := reg.Get(args[0])
			if err != nil {
				return err
			}
			raw, err := faults.ParseParams(params)
			if err != nil {
				return err
			}
			p, perr := kind.Parse(raw)
			var errs []error
			errs = append(errs, perr)
			if duration <= 0 {
				errs = append(errs, usagef("--duration %v: must be positive", duration))
			}
			if (cluster == "") == (target == "") {
				errs = append(errs, usagef("--cluster or --target: give one (htapchaos cluster ls lists clusters)"))
			}
			if node == "" {
				errs = append(errs, usagef("--node: name the node(s) to hurt"))
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			var c faults.Cluster
			if target != "" {
				t, err := faults.LoadExecTarget(target)
				if err != nil {
					return err
				}
				c = t.Cluster()
			} else {
				hc, err := attach(ctx, cluster)
				if err != nil {
					return err
				}
				c = faulttarget.Cluster(hc)
			}
			targets, err := faults.Resolve(c, node, seed)
			if err != nil {
				return err
			}
			if err := errors.Join(kind.Check(targets), faults.CheckConsent(c, kind, node, allow)); err != nil {
				return err
			}
			if dryRun {
				// What would be done, to which node, in which order: nothing is.
				fmt.Fprintf(a.stdout, "dry run: %s on %s, held %v after it takes effect, then recovered and the nodes checked%s\n",
					kind.Name, nodeNames(targets), duration, paramsText(p))
				for _, n := range targets {
					for _, c := range faults.PlannedCommands(n, kind.Name) {
						fmt.Fprintf(a.stdout, "  %s would run %s\n", n.Label(), c)
					}
				}
				fmt.Fprintln(a.stdout, "nothing was done")
				return nil
			}
			lk, err := faults.AcquireLock(faults.JournalKey{Cluster: cluster, Target: target}, "htapchaos fault "+kind.Name)
			if err != nil {
				return err
			}
			defer lk.Release()
			if h := lk.TookOver; h != nil {
				a.progress("took the lock over from process %d (%s), which died holding it", h.PID, h.Command)
			}
			if !skipHealth {
				a.progress("checking every node before the fault (--skip-health-check skips it)")
				if err := faults.HealthCheck(ctx, c, faults.JournalKey{Cluster: cluster, Target: target}); err != nil {
					return err
				}
			}
			var rec *faults.Record
			if out != "" {
				if rec, err = faults.NewRecord(out); err != nil {
					return usagef("--out %s: %v", out, err)
				}
				defer rec.Close()
			}
			events := faults.NewEvents(rec.Events())
			start := time.Now()
			events.OnEvent = func(e faults.Event) {
				line := fmt.Sprintf("%6.1fs %-10s %-10s %s", e.Time.Sub(start).Seconds(), e.Fault, e.Step, strings.Join(e.Nodes, ","))
				if e.Details != "" {
					line += ": " + e.Details
				}
				fmt.Fprintln(a.stderr, line)
			}
			journal, err := faults.OpenJournal(faults.JournalKey{Cluster: cluster, Target: target}, out)
			if err != nil {
				return err
			}
			r := faults.NewRunner(kind.Name, kind.New(p), &faults.Env{Targets: targets, Cluster: c, Events: events, Params: p, Journal: journal})
			err = r.Run(ctx, duration, 5*time.Minute)
			if !r.Effective.IsZero() {
				fmt.Fprintf(a.stdout, "%s on %s: took effect %.2fs after inject, held %.1fs", kind.Name, nodeNames(targets),
					r.Effective.Sub(r.Injected).Seconds(), r.Recovered.Sub(r.Effective).Seconds())
				if !r.Healthy.IsZero() {
					fmt.Fprintf(a.stdout, ", serving again %.2fs after recover", r.Healthy.Sub(r.Recovered).Seconds())
				}
				fmt.Fprintln(a.stdout)
			}
			for _, m := range r.Measurements() {
				fmt.Fprintf(a.stdout, "  %s\n", m)
			}
			if rec != nil {
				if werr := rec.WriteResult(r, err); werr != nil {
					err = errors.Join(err, werr)
				} else {
					fmt.Fprintf(a.stderr, "results in %s (fault.json, events.jsonl)\n", out)
				}
			}
			if ctx.Err() != nil && err == nil && r.State() == faults.StateCleaned {
				fmt.Fprintln(a.stderr, "interrupted: the fault was recovered")
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cluster, "cluster", "", "cluster name (htapchaos cluster ls)")
	f.StringVar(&target, "target", "", "exec target file: a cluster htapchaos did not create")
	f.BoolVar(&allow, "allow-destructive", false, "allow faults that can hurt a --target cluster")
	f.BoolVar(&dryRun, "dry-run", false, "print what would be done to which node, and the commands a --target would run, and do nothing")
	f.BoolVar(&skipHealth, "skip-health-check", false, "hurt the cluster even when a node is not healthy or holds a fault's leftovers")
	f.StringVar(&out, "out", "", "directory for events.jsonl and fault.json")
	f.StringVar(&node, "node", "", "node(s): index, name, random, all-but-one, primary")
	f.DurationVar(&duration, "duration", 10*time.Second, "how long to hold the fault")
	f.StringArrayVar(&params, "param", nil, "fault parameter key=value (repeatable)")
	seedVar(cmd, &seed, "seed for --node random")
	return cmd
}

func nodeNames(ns []faults.Node) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = n.Label()
	}
	return strings.Join(s, ",")
}

// paramsText is a fault's parameters for people: " (k=v, ...)", "" when none.
func paramsText(p faults.Params) string {
	if len(p) == 0 {
		return ""
	}
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(p)) {
		kv = append(kv, k+"="+p[k])
	}
	return " (" + strings.Join(kv, ", ") + ")"
}
