package experiments

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/results"
)

const (
	refMemoryKills = "the article: sized on data (2 TB on 3 x 128 GB) and OOM within 48 h; 10 concurrent copies of a ~12 GB " +
		"dashboard query: OOM kills, node restarts, cluster instability"
	refMemoryErrors = "the article: sized for data, not workload; memory = data x 0.3 + peak query concurrency x max query memory " +
		"+ write buffer x 2 + 20-30% safety called for ~1 TB against 384 GB provisioned: off by 3x"
	refMovement = "the article: a join on mismatched shard keys broadcast a 200 MB table and moved 2.8 GB for a 50 KB answer (12 s); " +
		"co-located by the join key: under 1 MB moved, 200 ms"
)

// memoryClasses are the faults memory-headroom scores (and claims): memory
// pressure on the nodes.
var memoryClasses = []faults.Class{faults.ClassMemory}

// Inputs of the article's sizing formula that a run does not measure.
const (
	sizingSafety      = 0.25     // the article's 20-30%
	orderRowBytes     = 120      // estimated bytes per orders row, data and index
	userRowBytes      = 100      // estimated bytes per users row
	defaultLogBufSize = 16 << 20 // MariaDB's innodb_log_buffer_size default
)

func memoryHeadroomScorer() Scorer {
	return scorer{
		mode: ModeMemoryHeadroom,
		budgets: []BudgetSpec{
			{Key: "oltp-error-rate", Type: BudgetPercent, Default: "0.1%", Help: "OLTP errors over OLTP operations from the memory fill (or the baseline's end) to the run's end"},
		},
		score: scoreMemory,
	}
}

// scoreMemory: "nodes killed or restarted" (nodes with an OOM kill, a restart
// or a stop that no fault asked for; any fails), with memory per node, the
// memory each extra concurrent analytics query adds and the article's sizing
// formula in the notes; and "oltp error rate" under memory pressure, held to
// oltp-error-rate.
func scoreMemory(r *Recorded, b Budgets) []Finding {
	kills := Finding{Mode: ModeMemoryHeadroom, Name: "nodes killed or restarted", Unit: UnitCount, Reference: refMemoryKills}
	errs := Finding{Mode: ModeMemoryHeadroom, Name: "oltp error rate", Unit: UnitFraction, Budget: b.Get("oltp-error-rate"), Reference: refMemoryErrors}
	fills := r.faultsOfClass(memoryClasses...)
	for _, f := range fills {
		if !f.TookEffect() {
			why := notEffective(r, f)
			return []Finding{kills.inconclusive("%s", why), errs.inconclusive("%s", why)}
		}
	}
	stress := Window{Name: "after-baseline", Start: r.Start, End: r.End}
	if base, ok := r.phase(PhaseBaseline); ok {
		stress.Start = base.End
	}
	for i, f := range fills {
		if i == 0 || f.Effective.Before(stress.Start) {
			stress.Start, stress.Name = f.Effective, f.Window(r.End).Name // to the run's end
		}
	}
	return []Finding{r.memoryKills(kills, stress), r.memoryErrors(errs, stress)}
}

func (r *Recorded) memoryKills(fd Finding, stress Window) Finding {
	have := false
	for _, s := range r.Indicators {
		if s.MemoryPct > 0 || s.Running || s.Restarts > 0 || s.OOMKilled {
			have = true
			break
		}
	}
	if !have {
		return fd.inconclusive("no container indicators (memory, OOM kills, restarts) were sampled")
	}
	// Windows in which a fault stopped or restarted a node on purpose.
	excused := map[int][]Window{}
	for _, f := range r.faultsWhere(func(k *faults.Kind) bool { return k.StopsServer }) {
		if !f.TookEffect() {
			continue
		}
		end := f.Healthy
		if end.IsZero() {
			end = r.End
		}
		for _, n := range f.Nodes {
			excused[n] = append(excused[n], Window{Start: f.Injected, End: end.Add(time.Second)})
		}
	}
	inExcused := func(n int, t time.Time) bool {
		for _, w := range excused[n] {
			if !t.Before(w.Start) && !t.After(w.End) {
				return true
			}
		}
		return false
	}
	all := Window{Start: r.Start, End: r.End.Add(time.Nanosecond)}
	base, _ := r.phase(PhaseBaseline)
	var affected []int
	var events []string
	for _, n := range r.nodes() {
		ss := r.samplesOf(n, all)
		if len(ss) == 0 {
			continue
		}
		everRunning := slices.ContainsFunc(ss, func(s Sample) bool { return s.Running })
		var evs []string
		maxMem, maxAt := 0.0, time.Time{}
		for i, s := range ss {
			if s.MemoryPct > maxMem {
				maxMem, maxAt = s.MemoryPct, s.T
			}
			var prev Sample
			if i > 0 {
				prev = ss[i-1]
			}
			switch {
			case s.OOMKilled && (i == 0 || !prev.OOMKilled):
				evs = append(evs, "OOM killed at "+r.at(s.T))
			case i > 0 && s.Restarts > prev.Restarts && !inExcused(n, s.T):
				evs = append(evs, fmt.Sprintf("restarted at %s (restart count %d -> %d)", r.at(s.T), prev.Restarts, s.Restarts))
			case i > 0 && everRunning && prev.Running && !s.Running && !inExcused(n, s.T):
				evs = append(evs, "stopped running at "+r.at(s.T))
			}
		}
		if maxMem > 0 {
			var bm []float64
			for _, s := range r.samplesOf(n, base) {
				if s.MemoryPct > 0 {
					bm = append(bm, s.MemoryPct)
				}
			}
			m, _ := meanSD(bm)
			fd.note("node %d: memory max %.1f%% of its limit at %s (baseline mean %.1f%%)", n, maxMem, r.at(maxAt), m)
		}
		if len(evs) > 0 {
			affected = append(affected, n)
			events = append(events, fmt.Sprintf("node %d: %s", n, strings.Join(evs, ", ")))
			fd.Evidence = append(fd.Evidence, evidence("", "", n, stress, strings.Join(evs, ", ")))
		}
	}
	fd.judge(float64(len(affected)), 0, false, "")
	if fd.Verdict == Fail {
		fd.Reason = strings.Join(events, "; ")
	}
	for _, n := range r.memoryNotes() {
		fd.note("%s", n)
	}
	return fd
}

func (r *Recorded) memoryErrors(fd Finding, stress Window) Finding {
	oltp := r.workloadsOfKind("oltp")
	if len(oltp) == 0 {
		return fd.inconclusive("the run has no OLTP workload")
	}
	var sum PhaseStats
	how := ""
	for _, w := range oltp {
		if s, ok := r.tally(stress, func(l results.IntervalLine) bool { return l.Workload == w }); ok {
			sum, how = addStats(sum, s), fmt.Sprintf("%s to %s", r.at(stress.Start), r.at(stress.End))
			continue
		}
		// Without per-second lines: the phases from the stress start on.
		var names []string
		for _, p := range r.Phases {
			if p.Name == PhaseWarmup || p.Name == PhaseBaseline || strings.HasPrefix(p.Name, FaultPrefix) || p.End.Before(stress.Start) || p.End.Equal(stress.Start) {
				continue
			}
			if s, ok := r.stat(p.Name, w, "", 0); ok {
				sum = addStats(sum, s)
				names = append(names, p.Name)
			}
		}
		how = "phases " + strings.Join(names, ", ")
	}
	if sum.Count+sum.Errors < minOps {
		return fd.inconclusive("too few samples: %d OLTP operations under memory pressure (fewer than %d)", sum.Count+sum.Errors, minOps)
	}
	fd.Evidence = append(fd.Evidence, evidence(strings.Join(oltp, ","), "", 0, stress, how))
	fd.judge(errorRate(sum), fd.Budget, false, "oltp-error-rate")
	fd.note("OLTP under memory pressure (%s): %d errors in %d operations: %s", how, sum.Errors, sum.Count+sum.Errors, classes(sum.ByClass))
	if r.Summary != nil {
		res := map[string]int64{}
		for _, s := range r.Summary.Workloads {
			res[s.Workload] += s.Errors[results.ClassResource]
		}
		var parts []string
		for _, k := range []string{"oltp", "analytics", "batch"} {
			for _, w := range r.workloadsOfKind(k) {
				parts = append(parts, fmt.Sprintf("%s %d", w, res[w]))
			}
		}
		if len(parts) > 0 {
			fd.note("out-of-memory / resource errors over the run (MariaDB 1037, 1038, 1041, 1114, ...): %s", strings.Join(parts, ", "))
		}
	}
	for _, w := range oltp {
		var parts []string
		for _, p := range r.Phases {
			if p.Name == PhaseWarmup || strings.HasPrefix(p.Name, FaultPrefix) {
				continue
			}
			if s, ok := r.stat(p.Name, w, "", 0); ok && s.Count > 0 {
				parts = append(parts, fmt.Sprintf("%s %.2f ms", p.Name, s.Latency.P99))
			}
		}
		if len(parts) > 0 {
			fd.note("%s p99 by phase: %s", w, strings.Join(parts, ", "))
		}
	}
	for _, w := range r.workloadsOfKind("analytics") {
		var parts []string
		for _, p := range r.Phases {
			if s, ok := r.stat(p.Name, w, "", 0); ok && s.Count+s.Errors > 0 && !strings.HasPrefix(p.Name, FaultPrefix) {
				parts = append(parts, fmt.Sprintf("%s %d ok, %d failed (%s), p99 %.0f ms", p.Name, s.Count, s.Errors, classes(s.ByClass), s.Latency.P99))
			}
		}
		if len(parts) > 0 {
			fd.note("%s by phase: %s", w, strings.Join(parts, "; "))
		}
	}
	return fd
}

// concurrencyIn is the analytics concurrency of a workload in a phase: its
// concurrency (closed loop; phase_rates change it), or rate x mean latency
// (open loop, Little's law).
func (r *Recorded) concurrencyIn(ws WorkloadSpec, p Window) float64 {
	if ws.Closed() {
		c := float64(ws.Concurrency)
		if v, ok := ws.PhaseRates[p.Name]; ok {
			c = v
		}
		return c
	}
	s, ok := r.stat(p.Name, ws.Name, "", 0)
	if !ok {
		return 0
	}
	return s.Rate * s.Latency.Mean / 1000
}

// memoryNotes: the memory each extra concurrent analytics query adds, from the
// phases of rising concurrency, and what the article's sizing formula
// recommends for what the run saw.
func (r *Recorded) memoryNotes() []string {
	var out []string
	var slope, peak float64
	measured := false
	if r.Spec != nil {
		for _, ws := range r.Spec.Workloads {
			if ws.Kind != "analytics" {
				continue
			}
			var xs, ys []float64
			var pts []string
			for _, p := range r.Phases {
				if p.Name == PhaseWarmup || strings.HasPrefix(p.Name, FaultPrefix) || !r.activeIn(ws.Name, p) {
					continue
				}
				c := r.concurrencyIn(ws, p)
				var mem []float64
				for _, n := range r.nodes() {
					for _, s := range r.samplesOf(n, p) {
						if s.MemoryPct > 0 {
							mem = append(mem, s.MemoryPct)
						}
					}
				}
				if c <= 0 || len(mem) == 0 {
					continue
				}
				m, _ := meanSD(mem)
				xs, ys = append(xs, c), append(ys, m)
				pts = append(pts, fmt.Sprintf("%s: %.2g concurrent, %.1f%%", p.Name, c, m))
				peak = max(peak, c)
			}
			if k, ok := fitSlope(xs, ys); ok && !measured {
				slope, measured = k, true
				per := ""
				if r.Spec.Cluster != nil && r.Spec.Cluster.Memory > 0 {
					per = " (~" + bytesStr(k/100*float64(r.Spec.Cluster.Memory)) + ")"
				}
				out = append(out, fmt.Sprintf("memory per extra concurrent %s query: %+.2f%% of the node's limit%s, mean over the nodes (%s)", ws.Name, k, per, strings.Join(pts, "; ")))
			}
		}
	}
	if !measured {
		out = append(out, "memory per extra concurrent query not measured (inconclusive): no phases of rising analytics concurrency with memory samples")
	}

	// The article's formula.
	if r.Spec == nil {
		return out
	}
	data, dataHow := 0.0, ""
	for _, f := range r.Faults {
		if v, _, ok := f.measurement(faults.MeasureTableSize); ok && v > data {
			data, dataHow = v, "measured (the altered table)"
		}
	}
	if data == 0 {
		data = float64(r.Spec.Data.Orders*orderRowBytes + r.Spec.Data.Users*userRowBytes)
		dataHow = fmt.Sprintf("estimated: %d orders x %d B + %d users x %d B", r.Spec.Data.Orders, orderRowBytes, r.Spec.Data.Users, userRowBytes)
	}
	wb, wbHow := float64(defaultLogBufSize), "innodb_log_buffer_size default"
	var limit float64
	if c := r.Spec.Cluster; c != nil {
		limit = float64(c.Memory)
		if v, ok := c.Settings["innodb_log_buffer_size"]; ok {
			if n, err := ParseSize(v); err == nil {
				wb, wbHow = float64(n), "innodb_log_buffer_size"
			}
		}
	}
	perQuery := 0.0
	if measured && limit > 0 {
		perQuery = max(0, slope/100*limit)
	}
	need := (data*0.3 + peak*perQuery + wb*2) * (1 + sizingSafety)
	s := fmt.Sprintf("the article's sizing formula, per node (every node holds all the data): data %s (%s) x 0.3 + peak concurrency %.2g x max query memory %s + write buffer %s (%s) x 2, + %.0f%% safety = %s",
		bytesStr(data), dataHow, peak, bytesStr(perQuery), bytesStr(wb), wbHow, sizingSafety*100, bytesStr(need))
	if !measured || limit == 0 {
		s += "; the memory per query is not measured: a lower bound"
	}
	if limit > 0 {
		s += fmt.Sprintf("; provisioned %s per node (%.2gx the formula's)", bytesStr(limit), limit/need)
	}
	return append(out, s)
}

// fitSlope is the least-squares slope of ys over xs; ok is false with fewer
// than two distinct xs.
func fitSlope(xs, ys []float64) (float64, bool) {
	if len(xs) < 2 {
		return 0, false
	}
	mx, _ := meanSD(xs)
	my, _ := meanSD(ys)
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	if sxx == 0 {
		return 0, false
	}
	return sxy / sxx, true
}

// shardedTopologies are the topologies that place rows on some nodes only.
var shardedTopologies = []string{"singlestore", "tidb", "vitess", "sharded"}

func dataMovementScorer() Scorer {
	return scorer{
		mode: ModeDataMovement,
		budgets: []BudgetSpec{
			{Key: "movement-ratio", Type: BudgetRatio, Default: "1000", Help: "bytes moved between nodes over bytes returned, per analytical query class (sharded targets)"},
		},
		score: scoreMovement,
	}
}

// scoreMovement: "bytes moved over bytes returned". Inconclusive on a target
// that is not sharded, and until bytes returned are recorded; the network
// bytes per analytical window and per spike (the faults it claims,
// spikeClasses) are reported in the notes either way, and a spike that never
// took effect is named.
func scoreMovement(r *Recorded, b Budgets) []Finding {
	fd := Finding{Mode: ModeDataMovement, Name: "bytes moved / bytes returned", Unit: UnitRatio, Budget: b.Get("movement-ratio"), Reference: refMovement}
	type win struct {
		w   Window
		ops int64
		// of names the ops: "" for analytical queries, else the spike's workload.
		of string
	}
	var wins []win
	if base, ok := r.phase(PhaseBaseline); ok {
		wins = append(wins, win{w: base})
	}
	analytics := r.workloadsOfKind("analytics")
	for _, p := range r.Phases {
		if p.Name == PhaseWarmup || p.Name == PhaseBaseline || strings.HasPrefix(p.Name, FaultPrefix) {
			continue
		}
		var q int64
		active := false
		for _, w := range analytics {
			if ws, ok := r.workloadSpec(w); ok && len(ws.During) > 0 && r.activeIn(w, p) {
				active = true
				if s, ok := r.stat(p.Name, w, "", 0); ok {
					q += s.Count
				}
			}
		}
		if active {
			wins = append(wins, win{w: p, ops: q})
		}
	}
	// Every spike's window (the claim, spikeClasses): an analytics spike's moves
	// data to answer queries, a batch spike's to replicate its rows.
	var missed []string
	for _, f := range r.faultsOfClass(spikeClasses...) {
		if !f.TookEffect() {
			missed = append(missed, notEffective(r, f)+": its window is not measured")
			continue
		}
		ops, _, _ := f.measurement(faults.MeasureSpikeOps)
		of := "spike"
		if k, ok := f.traits(); ok && k.Workload == loadgen.Analytics().Name {
			of = ""
		} else if ok && k.Workload != "" {
			of = k.Workload
		}
		wins = append(wins, win{w: f.Window(r.End), ops: int64(ops), of: of})
	}
	for _, w := range wins {
		var rx, tx int64
		for _, n := range r.nodes() {
			for _, s := range r.samplesOf(n, w.w) {
				rx += s.NetRxBytes
				tx += s.NetTxBytes
			}
		}
		if rx == 0 && tx == 0 {
			continue
		}
		secs := w.w.Duration().Seconds()
		s := fmt.Sprintf("%s: nodes received %s and sent %s (%s/s)", w.w.Name, bytesStr(float64(rx)), bytesStr(float64(tx)), bytesStr(ratio(float64(rx+tx), secs)))
		switch {
		case w.ops > 0 && w.of == "":
			s += fmt.Sprintf(", %d analytical queries: ~%s per query", w.ops, bytesStr(float64(rx+tx)/float64(w.ops)))
		case w.ops > 0:
			s += fmt.Sprintf(", %d %s operations: ~%s per operation", w.ops, w.of, bytesStr(float64(rx+tx)/float64(w.ops)))
		}
		fd.note("%s", s)
	}
	if len(fd.Notes) == 0 {
		fd.note("no network counters were sampled")
	} else {
		fd.note("network bytes include replication and client traffic; the baseline shows them without analytics")
	}
	for _, m := range missed {
		fd.note("%s", m)
	}
	if !slices.Contains(shardedTopologies, r.Topology) {
		topo := r.Topology
		if topo == "" {
			topo = "unknown"
		}
		return []Finding{fd.inconclusive("the target is not sharded (MariaDB/Galera replicate everything): no shard key to mismatch (topology %s)", topo)}
	}
	return []Finding{fd.inconclusive("bytes returned per analytical query class are not recorded: the ratio cannot be computed")}
}
