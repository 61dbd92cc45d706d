package experiments

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/results"
)

// failoverClasses are the faults the failover mode scores (and claims): a node
// lost, frozen or cut off. A run with none of them has every fault scored.
var failoverClasses = []faults.Class{faults.ClassFailover}

const (
	// articleTPS is the article's write rate, to scale failed requests to.
	articleTPS = 50_000
	// failoverSlack is how long after the fault's recovery (or the node's
	// rejoin, whichever is later) a gap still counts as the fault's.
	failoverSlack = 10 * time.Second
	// backSpan is the sliding window, in seconds, whose median throughput and
	// p99 must be within backTolerance of the baseline for a stream to be back.
	backSpan      = 5
	backTolerance = 0.10
)

const (
	refFailoverGap = "the article: automatic failover took 45 s (60-90 s in practice): detection 10-15 s, " +
		"election 5-10 s, reconciliation 10-15 s, client re-routing 5-10 s; at 50K TPS, 45 s is 2.25M failed requests"
	refFailoverBack = "the article: 45 s (60-90 s in practice) from a lost node until the cluster served again; " +
		"active-active with client-side routing: zero failover time"
)

func failoverScorer() Scorer {
	return scorer{
		mode: ModeFailover,
		budgets: []BudgetSpec{{Key: "gap", Type: BudgetDuration, Default: "5s",
			Help: "longest unavailability gap of a client stream routed to a surviving node (streams pinned to the faulted node are reported, not judged)"}},
		score: scoreFailover,
	}
}

// scoreFailover: per fault, "longest gap, surviving nodes" (the longest window
// without a success on a client stream routed to a node the fault did not hit,
// held to the gap budget) and "throughput back to baseline" (seconds from the
// effect until the OLTP throughput is back within 10% of the baseline and stays;
// fails when it is not back by the run's end).
func scoreFailover(r *Recorded, b Budgets) []Finding {
	fs := r.faultsOfClass(failoverClasses...)
	if len(fs) == 0 {
		fs = r.Faults
	}
	if len(fs) == 0 {
		return []Finding{Finding{Mode: ModeFailover, Name: "longest gap, surviving nodes", Unit: UnitSeconds,
			Budget: b.Get("gap"), Reference: refFailoverGap}.inconclusive("the run has no fault: nothing to fail over")}
	}
	var out []Finding
	for _, f := range fs {
		out = append(out, failoverFault(r, b, f, ifMany(len(fs), f.Name))...)
	}
	return out
}

func failoverFault(r *Recorded, b Budgets, f FaultRecord, tag string) []Finding {
	gap := Finding{Mode: ModeFailover, Name: named("longest gap, surviving nodes", tag), Unit: UnitSeconds,
		Budget: b.Get("gap"), Reference: refFailoverGap}
	back := Finding{Mode: ModeFailover, Name: named("throughput back to baseline", tag), Unit: UnitSeconds, Reference: refFailoverBack}
	both := func(format string, args ...any) []Finding {
		return []Finding{gap.inconclusive(format, args...), back.inconclusive(format, args...)}
	}
	if !f.TookEffect() {
		return both("%s", notEffective(r, f))
	}
	base, ok := r.phase(PhaseBaseline)
	if !ok {
		return both("the run has no %s phase to compare with", PhaseBaseline)
	}
	if r.Summary == nil {
		return both("the run has no summary: no client stream gaps were recorded")
	}
	fw := f.Window(r.End)
	var clients []string
	for _, w := range r.workloadsOfKind("oltp") {
		if r.activeIn(w, fw) {
			clients = append(clients, w)
		}
	}
	if len(clients) == 0 {
		return both("no OLTP workload ran while the fault held: no client stream to measure")
	}

	// The span a gap counts in: from the injection to a little after the
	// recovery or the rejoin, whichever is later.
	from := f.Effective
	if !f.Injected.IsZero() && f.Injected.Before(from) {
		from = f.Injected
	}
	to := f.Recovered
	if f.Healthy.After(to) {
		to = f.Healthy
	}
	if to.IsZero() {
		to = r.End
	}
	to = to.Add(failoverSlack)
	if to.After(r.End) {
		to = r.End
	}
	span := Window{Name: fw.Name, Start: from, End: to}

	var (
		worst          results.Gap
		worstSG        results.StreamGaps
		survivors      int
		stalled        int
		baseOps        int64
		survivingNodes []int
	)
	for _, sg := range r.Summary.Gaps {
		if !slices.Contains(clients, sg.Workload) {
			continue
		}
		g := longestOverlap(sg.Gaps, span)
		pinned := sg.Node != 0 && slices.Contains(f.Nodes, sg.Node)
		detail := "no gap over the recorder's threshold"
		if g.Duration > 0 {
			detail = fmt.Sprintf("gap %.2f s from %s, %d failed, %d late inside", g.Duration, r.at(g.Start), g.Failed, g.Late)
			if g.Ongoing {
				detail += ", never served again before the run's end"
			}
		}
		ew := Window{Name: span.Name, Start: g.Start, End: g.End}
		if g.Duration == 0 {
			ew = span
		}
		if pinned {
			detail += "; pinned to the faulted node: reported, not judged"
			gap.note("%s on node %d (faulted): %s", sg.Workload, sg.Node, detail)
			gap.Evidence = append(gap.Evidence, evidence(sg.Workload, "", sg.Node, ew, detail))
			continue
		}
		gap.note("%s on node %d: %s", sg.Workload, sg.Node, detail)
		gap.Evidence = append(gap.Evidence, evidence(sg.Workload, "", sg.Node, ew, detail))
		survivors++
		if !slices.Contains(survivingNodes, sg.Node) {
			survivingNodes = append(survivingNodes, sg.Node)
		}
		if bs, ok := r.stat(PhaseBaseline, sg.Workload, "", sg.Node); ok {
			baseOps += bs.Count
		}
		if g.Duration > gap.Budget {
			stalled++
		}
		if survivors == 1 || g.Duration > worst.Duration {
			worst, worstSG = g, sg
		}
	}
	switch {
	case survivors == 0:
		gap = gap.inconclusive("every client stream is pinned to a faulted node (%v): none is routed to a survivor", f.Nodes)
	case baseOps < minOps:
		gap = gap.inconclusive("too few samples: %d baseline operations on the streams routed to surviving nodes (fewer than %d)", baseOps, minOps)
	default:
		gap.judge(worst.Duration, gap.Budget, false, "gap")
		switch {
		case worst.Ongoing:
			gap.Reason = fmt.Sprintf("%s on node %d never served again after %s, %.1f s before the run's end", worstSG.Workload, worstSG.Node, r.at(worst.Start), worst.Duration)
		case gap.Verdict == Fail:
			gap.Reason = fmt.Sprintf("%s on node %d had no success for %.1f s from %s (budget %.1f s)", worstSG.Workload, worstSG.Node, worst.Duration, r.at(worst.Start), gap.Budget)
		}
		if stalled == survivors && gap.Verdict == Fail {
			gap.note("every stream routed to a surviving node stalled beyond the budget: the survivors stopped serving (lost quorum?)")
		}
	}
	if s, ok := r.nonPrimary(survivingNodes, span); ok {
		gap.note("node %d reported non-Primary at %s (cluster size %d): the survivors lost quorum", s.Node, r.at(s.T), s.ClusterSize)
	}

	// Failed requests, scaled to the article's rate.
	var failed, late, dropped int64
	var baseRate float64
	window := "the fault window"
	for _, w := range clients {
		if s, ok := r.tally(span, func(l results.IntervalLine) bool { return l.Workload == w }); ok {
			failed, late, dropped = failed+s.Errors, late+s.Late, dropped+s.Dropped
			window = fmt.Sprintf("%s to %s", r.at(span.Start), r.at(span.End))
		} else if s, sw, ok := r.faultStat(f, w, "", 0); ok {
			failed, late, dropped = failed+s.Errors, late+s.Late, dropped+s.Dropped
			window = fmt.Sprintf("%s (%s to %s)", sw.Name, r.at(sw.Start), r.at(sw.End))
		}
		if bs, ok := r.stat(PhaseBaseline, w, "", 0); ok {
			baseRate += bs.Rate
		}
	}
	if baseRate > 0 {
		gap.note("failed requests %s: %d (%d late, %d dropped); at the baseline's %.0f ops/s that is %s failed at the article's 50K TPS (the article: 2.25M)",
			window, failed, late, dropped, baseRate, countStr(float64(failed)/baseRate*articleTPS))
	}
	if worst.Duration > 0 && survivors > 0 {
		gap.note("the longest gap on a surviving stream, %.1f s, is %s requests unserved at 50K TPS", worst.Duration, countStr(worst.Duration*articleTPS))
	}
	gap.note("%s", r.noticed(f, base))
	switch {
	case f.Recovered.IsZero():
		gap.note("the fault was not recovered before the run's end")
	case f.Healthy.IsZero():
		gap.note("rejoin: the faulted node did not serve again before the run's end")
	default:
		gap.note("rejoin: the faulted node served again %.1f s after the fault was recovered (%s)", f.Healthy.Sub(f.Recovered).Seconds(), r.at(f.Healthy))
	}

	return []Finding{gap, r.throughputBack(back, f, base, clients)}
}

// longestOverlap returns the longest gap that overlaps w (a zero Gap if none).
func longestOverlap(gaps []results.Gap, w Window) results.Gap {
	var out results.Gap
	for _, g := range gaps {
		if g.Start.Before(w.End) && g.End.After(w.Start) && g.Duration > out.Duration {
			out = g
		}
	}
	return out
}

// nonPrimary finds the first sample in w of one of nodes that says the node is
// up, in a cluster, and not in its primary component.
func (r *Recorded) nonPrimary(nodes []int, w Window) (Sample, bool) {
	var first Sample
	found := false
	for _, n := range nodes {
		for _, s := range r.samplesOf(n, w) {
			if s.Up && s.ClusterSize > 0 && !s.Primary {
				if !found || s.T.Before(first.T) {
					first, found = s, true
				}
				break
			}
		}
	}
	return first, found
}

// noticed says when the cluster noticed the fault: the first sample after the
// effect in which a node the fault did not hit reports a smaller cluster than
// it did in the baseline.
func (r *Recorded) noticed(f FaultRecord, base Window) string {
	var first Sample
	var before int
	found := false
	for _, n := range r.nodes() {
		if slices.Contains(f.Nodes, n) {
			continue
		}
		size := 0
		for _, s := range r.samplesOf(n, base) {
			size = max(size, s.ClusterSize)
		}
		if size == 0 {
			continue
		}
		for _, s := range r.samplesOf(n, Window{Start: f.Effective, End: r.End.Add(time.Nanosecond)}) {
			if s.Up && s.ClusterSize > 0 && s.ClusterSize < size {
				if !found || s.T.Before(first.T) {
					first, before, found = s, size, true
				}
				break
			}
		}
	}
	if !found {
		return "the cluster did not notice: no surviving node reported a smaller cluster (no membership indicators, or the fault did not evict the node)"
	}
	return fmt.Sprintf("the cluster noticed %.1f s after the effect: node %d saw cluster size %d -> %d at %s",
		first.T.Sub(f.Effective).Seconds(), first.Node, before, first.ClusterSize, r.at(first.T))
}

// throughputBack fills the "throughput back to baseline" finding: from the
// per-second series of the client workloads, the time from the effect until
// the 5 s median throughput is within 10% of the baseline's median and stays
// there to the run's end; the same for p99 in the notes.
func (r *Recorded) throughputBack(back Finding, f FaultRecord, base Window, clients []string) Finding {
	series := r.perSecond(func(l results.IntervalLine) bool { return slices.Contains(clients, l.Workload) })
	if series == nil {
		return r.throughputBackByPhase(back, f, clients)
	}
	bb := r.binsIn(series, base)
	var tps, p99s []float64
	var ops int64
	for _, s := range bb {
		tps = append(tps, float64(s.count))
		ops += s.count
		if s.count > 0 {
			p99s = append(p99s, s.p99)
		}
	}
	if ops < minOps {
		return back.inconclusive("too few samples: %d baseline operations (fewer than %d)", ops, minOps)
	}
	refTP, refP99 := median(tps), median(p99s)
	eff := r.bin(f.Effective)
	last := len(series) - backSpan
	if eff > last {
		return back.inconclusive("the run ended less than %d s after the fault took effect", backSpan)
	}
	tpOK := func(w []second) bool {
		var xs []float64
		for _, s := range w {
			xs = append(xs, float64(s.count))
		}
		return median(xs) >= (1-backTolerance)*refTP
	}
	p99OK := func(w []second) bool {
		var xs []float64
		for _, s := range w {
			if s.count > 0 {
				xs = append(xs, s.p99)
			}
		}
		return len(xs) > 0 && median(xs) <= (1+backTolerance)*refP99
	}
	tpAt, tpBack := backAt(series, eff, tpOK)
	p99At, p99Back := backAt(series, eff, p99OK)
	back.Evidence = append(back.Evidence, evidence("", "", 0, Window{Name: PhaseBaseline, Start: base.Start, End: base.End},
		fmt.Sprintf("baseline: median %.0f ops/s, median per-second p99 %.1f ms", refTP, refP99)))
	if !tpBack {
		var xs []float64
		for _, s := range series[last:] {
			xs = append(xs, float64(s.count))
		}
		if f.Recovered.IsZero() {
			back = back.inconclusive("the fault held until the run's end, and the throughput was not back (last %d s median %.0f ops/s, baseline %.0f)", backSpan, median(xs), refTP)
		} else {
			back.Verdict = Fail
			back.Value = r.End.Sub(f.Effective).Seconds()
			back.Reason = fmt.Sprintf("throughput not back within %.0f%% of the baseline by the run's end: last %d s median %.0f ops/s, baseline %.0f",
				backTolerance*100, backSpan, median(xs), refTP)
		}
	} else {
		back.Verdict = Pass
		back.Value = max(0, r.binTime(tpAt-1).Sub(f.Effective).Seconds())
		back.Evidence = append(back.Evidence, evidence("", "", 0, Window{Name: "back", Start: r.binTime(tpAt - 1), End: r.binTime(tpAt + backSpan - 1)},
			fmt.Sprintf("throughput back within %.0f%% from %s", backTolerance*100, r.at(r.binTime(tpAt-1)))))
		if !f.Recovered.IsZero() {
			if d := r.binTime(tpAt - 1).Sub(f.Recovered).Seconds(); d > 0 {
				back.note("throughput back %.0f s after the fault was recovered", d)
			} else {
				back.note("throughput back while the fault still held: the surviving nodes absorbed the load")
			}
		}
	}
	back.note("judged on the %d s median per second of %v against the baseline's median (%.0f ops/s); fails only when not back by the run's end", backSpan, clients, refTP)
	if p99Back {
		back.note("p99 back within %.0f%% of the baseline (%.1f ms, the largest per-key p99 of each second) %.0f s after the effect",
			backTolerance*100, refP99, max(0, r.binTime(p99At-1).Sub(f.Effective).Seconds()))
	} else {
		back.note("p99 not back within %.0f%% of the baseline (%.1f ms) by the run's end", backTolerance*100, refP99)
	}
	return back
}

// backAt returns when a series is back for good: after the last window of
// backSpan bins (from bin from on) that is not good, the first bin that is good
// on its own; from itself when every window is good. ok is false when the
// run's last window is not good.
func backAt(s []second, from int, good func([]second) bool) (int, bool) {
	last := len(s) - backSpan
	for i := last; i >= from; i-- {
		if good(s[i : i+backSpan]) {
			continue
		}
		if i == last {
			return 0, false
		}
		for j := i + 1; j < i+1+backSpan; j++ {
			if good(s[j : j+1]) {
				return j, true
			}
		}
		return i + 1, true
	}
	return from, true
}

// throughputBackByPhase judges "throughput back" without a per-second series:
// the last phase after the fault against the baseline, as a whole.
func (r *Recorded) throughputBackByPhase(back Finding, f FaultRecord, clients []string) Finding {
	fw := f.Window(r.End)
	var after Window
	found := false
	for _, w := range r.Phases {
		if w.Name == PhaseWarmup || w.Name == PhaseBaseline || strings.HasPrefix(w.Name, FaultPrefix) {
			continue
		}
		if !w.Start.Before(fw.End) && (!found || w.End.After(after.End)) {
			after, found = w, true
		}
	}
	if !found {
		return back.inconclusive("no per-second series recorded and no phase after the fault to compare with the baseline")
	}
	var rate, baseRate float64
	var ops int64
	for _, w := range clients {
		s, ok1 := r.stat(after.Name, w, "", 0)
		bs, ok2 := r.stat(PhaseBaseline, w, "", 0)
		if ok1 && ok2 {
			rate += s.Rate
			baseRate += bs.Rate
			ops += bs.Count
		}
	}
	if ops < minOps {
		return back.inconclusive("too few samples: %d baseline operations (fewer than %d)", ops, minOps)
	}
	back.Evidence = append(back.Evidence, evidence("", "", 0, after, fmt.Sprintf("%.0f ops/s against the baseline's %.0f", rate, baseRate)))
	if rate >= (1-backTolerance)*baseRate {
		back.Verdict = Pass
		back.Reason = fmt.Sprintf("no per-second series recorded: judged on phase %s as a whole (%.0f ops/s against %.0f); the time to recover is not measured", after.Name, rate, baseRate)
		return back
	}
	back.Verdict = Fail
	back.Value = r.End.Sub(f.Effective).Seconds()
	back.Reason = fmt.Sprintf("throughput not back within %.0f%% of the baseline by the run's end: phase %s %.0f ops/s against %.0f", backTolerance*100, after.Name, rate, baseRate)
	return back
}
