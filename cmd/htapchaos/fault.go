package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/htapchaos/htapchaos/faults"
)

func (a *app) faultCmd() *cobra.Command {
	reg := faults.NewRegistry()
	var (
		cluster  string
		node     string
		duration time.Duration
		params   []string
		seed     uint64
	)
	var kinds strings.Builder
	for _, name := range reg.Names() {
		k, _ := reg.Get(name)
		fmt.Fprintf(&kinds, "  %-10s %s\n", name, k.Description)
	}
	cmd := &cobra.Command{
		Use:   "fault KIND --cluster NAME --node N",
		Short: "Inject one fault now, hold it, recover, and report what happened",
		Long: `Inject one fault into a cluster started by "htapchaos cluster up", wait until it
verifiably took effect, hold it for --duration, recover, and wait until the nodes
serve again. Recovery always runs: on error, and on Ctrl-C.

Faults:
` + kinds.String() + `
--node takes an index (2), a name (n2 or the container name), random, all-but-one,
or primary; several joined by commas.`,
		Example: `  htapchaos fault node-kill --cluster demo --node 2 --duration 20s
  htapchaos fault pause --cluster demo --node random --duration 5s
  htapchaos fault partition --cluster demo --node 3 --duration 30s`,
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
			if cluster == "" {
				errs = append(errs, usagef("--cluster: name the cluster (htapchaos cluster ls)"))
			}
			if node == "" {
				errs = append(errs, usagef("--node: name the node(s) to hurt"))
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			hc, err := attach(ctx, cluster)
			if err != nil {
				return err
			}
			c := faults.Containers(hc)
			targets, err := faults.Resolve(c, node, seed)
			if err != nil {
				return err
			}
			if err := kind.Check(targets); err != nil {
				return err
			}
			events := faults.NewEvents(nil)
			start := time.Now()
			events.OnEvent = func(e faults.Event) {
				line := fmt.Sprintf("%6.1fs %-10s %-10s %s", e.Time.Sub(start).Seconds(), e.Fault, e.Step, strings.Join(e.Nodes, ","))
				if e.Details != "" {
					line += ": " + e.Details
				}
				fmt.Fprintln(a.stderr, line)
			}
			r := faults.NewRunner(kind.Name, kind.New(p), &faults.Env{Targets: targets, Cluster: c, Events: events, Params: p})
			err = r.Run(ctx, duration, 5*time.Minute)
			if !r.Effective.IsZero() {
				fmt.Fprintf(a.stdout, "%s on %s: took effect %.2fs after inject, held %.1fs", kind.Name, nodeNames(targets),
					r.Effective.Sub(r.Injected).Seconds(), r.Recovered.Sub(r.Effective).Seconds())
				if !r.Healthy.IsZero() {
					fmt.Fprintf(a.stdout, ", serving again %.2fs after recover", r.Healthy.Sub(r.Recovered).Seconds())
				}
				fmt.Fprintln(a.stdout)
			}
			if ctx.Err() != nil && err == nil && r.State() == faults.StateCleaned {
				fmt.Fprintln(a.stderr, "interrupted: the fault was recovered")
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cluster, "cluster", "", "cluster name")
	f.StringVar(&node, "node", "", "node(s): index, name, random, all-but-one, primary")
	f.DurationVar(&duration, "duration", 10*time.Second, "how long to hold the fault")
	f.StringArrayVar(&params, "param", nil, "fault parameter key=value (repeatable)")
	f.Uint64Var(&seed, "seed", uint64(time.Now().UnixNano()), "seed for --node random")
	return cmd
}

func nodeNames(ns []faults.Node) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = n.Label()
	}
	return strings.Join(s, ",")
}
