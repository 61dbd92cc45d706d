package experiments

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/htapchaos/htapchaos/faults"
)

// Plan is what a run of the spec would do, for people: the cluster, the timeline
// with each phase's start, the workloads, each fault with when and where it acts
// (and, on an exec target, the commands it would run there), and the abort
// conditions. It touches nothing: `run --dry-run` prints it.
func (s *Spec) Plan(target *faults.ExecTarget, extra []AbortCondition) string {
	var b strings.Builder
	fmt.Fprintf(&b, "dry run of %s: %s\n", s.Name, s.Description)
	switch {
	case target != nil:
		fmt.Fprintf(&b, "cluster: the target %s (%d node(s)), not started nor removed\n", target.Name, len(target.Cluster().Nodes()))
	case s.Cluster != nil:
		c := s.Cluster
		fmt.Fprintf(&b, "cluster: a new %s cluster of %d node(s), %s each, removed at the end\n", c.Topology, c.Nodes, bytesStr(float64(c.Memory)))
	}
	b.WriteString(s.dataText())
	b.WriteString("timeline:\n")
	var at time.Duration
	for _, p := range s.Phases {
		fmt.Fprintf(&b, "  +%-6v %-22s %v\n", at, p.Name, p.Duration.D())
		at += p.Duration.D()
	}
	fmt.Fprintf(&b, "  +%-6v end\n", at)
	b.WriteString("workloads:\n")
	for i, w := range s.Workloads {
		load := fmt.Sprintf("%g ops/s", w.Rate)
		if w.Concurrency > 0 {
			load = fmt.Sprintf("%d closed-loop workers", w.Concurrency)
		}
		fmt.Fprintf(&b, "  %s (%s): %s, route %s", w.Name, w.Kind, load, s.routeText(i))
		if len(w.During) > 0 {
			fmt.Fprintf(&b, ", during %s", strings.Join(w.During, ", "))
		}
		if len(w.Mix) > 0 {
			var kv []string
			for _, k := range slices.Sorted(maps.Keys(w.Mix)) {
				kv = append(kv, fmt.Sprintf("%s=%d", k, w.Mix[k]))
			}
			fmt.Fprintf(&b, ", mix %s", strings.Join(kv, ","))
		}
		b.WriteString("\n")
	}
	if len(s.Faults) > 0 {
		b.WriteString("faults (each recovered when its hold ends, and on any stop):\n")
	}
	for _, f := range s.Faults {
		start, dur := s.PhaseStart(f.Phase)
		hold := f.For.D()
		if hold == 0 {
			hold = dur - f.Offset.D()
		}
		fmt.Fprintf(&b, "  +%-6v %s (%s) on node %s, held %v", start+f.Offset.D(), f.Name, f.Kind, f.Node, hold)
		if len(f.Params) > 0 {
			var kv []string
			for _, k := range slices.Sorted(maps.Keys(f.Params)) {
				kv = append(kv, k+"="+f.Params[k])
			}
			fmt.Fprintf(&b, " (%s)", strings.Join(kv, ", "))
		}
		b.WriteString("\n")
		if target != nil {
			if nodes, err := faults.Resolve(target.Cluster(), f.Node, 0); err == nil {
				for _, n := range nodes {
					for _, c := range faults.PlannedCommands(n, f.Kind) {
						fmt.Fprintf(&b, "           %s would run %s\n", n.Label(), c)
					}
				}
			}
		}
	}
	conds := append(s.AbortConditions(), extra...)
	if target != nil {
		conds = append(conds, DefaultTargetGuard(s)...)
	}
	for i, c := range conds {
		if i == 0 {
			b.WriteString("aborts when:\n")
		}
		fmt.Fprintf(&b, "  %s\n", c.Text)
	}
	b.WriteString("nothing was done\n")
	return b.String()
}

// dataText is the plan's line of what is seeded before the load: htapchaos's
// users and orders when the run needs them, and the tables of every workload
// file (named by workload: what a file seeds is its own tables: section).
func (s *Spec) dataText() string {
	regs := s.registries()
	var parts []string
	if s.needsBuiltinSchema(regs.workloads, regs.faults) {
		parts = append(parts, fmt.Sprintf("%d users, %d orders", s.Data.Users, s.Data.Orders))
	}
	for _, wl := range s.ownSchemas(regs.workloads) {
		parts = append(parts, fmt.Sprintf("workload %s's own tables", wl.Name))
	}
	if len(parts) == 0 {
		return "data: none seeded\n"
	}
	return "data: " + strings.Join(parts, "; ") + ", seeded first\n"
}

// routeText is the i-th workload's route as the plan prints it.
func (s *Spec) routeText(i int) string {
	if s.routeGiven(i) {
		return cmp.Or(s.Workloads[i].Route, "all")
	}
	switch {
	case s.Cluster != nil && s.Cluster.Topology == "primary-replica":
		return "the primary (the default on primary-replica)"
	case s.Cluster != nil && (s.Cluster.Topology == "sharded" || s.Cluster.Topology == "vitess"):
		return "the aggregators (the default on a sharded cluster)"
	case s.Cluster != nil:
		return "all"
	}
	return "all (the primary on primary-replica, the aggregators on a sharded cluster)"
}
