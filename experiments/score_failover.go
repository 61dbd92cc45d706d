package experiments

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/results"
	htc "github.com/htapchaos/htapchaos/testcontainers"
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
		budgets: []BudgetSpec{
			{Key: "gap", Type: BudgetDuration, Default: "5s",
				Help: "longest unavailability gap of a client stream routed to a surviving node, for writes and for reads (streams pinned to the faulted node are reported, not judged), and of writes cluster-wide"},
			{Key: "write-gap", Type: BudgetDuration, Default: "0s", Help: "the budget of write gaps, when it differs from gap; 0: gap"},
			{Key: "read-gap", Type: BudgetDuration, Default: "0s", Help: "the budget of read gaps, when it differs from gap; 0: gap"},
		},
		score: scoreFailover,
	}
}

// Finding names of the failover mode.
const (
	nameWriteGap   = "longest write gap, surviving nodes"
	nameReadGap    = "longest read gap, surviving nodes"
	nameClusterGap = "cluster-wide write gap"
	nameBack       = "throughput back to baseline"
)

// gapBudget is the budget of an access kind's gaps: write-gap or read-gap when
// set, else gap.
func gapBudget(b Budgets, a results.Access) (float64, string) {
	key := string(a) + "-gap"
	if v := b.Get(key); v > 0 {
		return v, key
	}
	return b.Get("gap"), "gap"
}

// scoreFailover: per fault, "longest write gap, surviving nodes" and "longest
// read gap, surviving nodes" (the longest window without a successful write, or
// read, on a client stream routed to a node the fault did not hit, each held
// to its budget), "cluster-wide write gap" (the longest window in which no
// write succeeded on any node: what the application saw), and "throughput back
// to baseline" (seconds from the effect until the OLTP throughput is back
// within 10% of the baseline and stays; fails when it is not back by the run's
// end). Writes are judged apart from reads: on Galera a frozen member holds
// every commit of the cluster while reads go on.
func scoreFailover(r *Recorded, b Budgets) []Finding {
	fs := r.faultsOfClass(failoverClasses...)
	if len(fs) == 0 {
		fs = r.Faults
	}
	if len(fs) == 0 {
		wb, _ := gapBudget(b, results.Write)
		return []Finding{Finding{Mode: ModeFailover, Name: nameWriteGap, Unit: UnitSeconds,
			Budget: wb, Reference: refFailoverGap}.inconclusive("the run has no fault: nothing to fail over")}
	}
	var out []Finding
	for _, f := range fs {
		out = append(out, failoverFault(r, b, f, ifMany(len(fs), f.Name))...)
		switch {
		case !f.TookEffect():
		case r.onlyOn(f, htc.RoleLeaf):
			out = append(out, scoreLeafFault(r, b, f, ifMany(len(fs), f.Name))...)
		case r.onlyOn(f, htc.RoleAggregator):
			out = append(out, scoreAggregatorFault(r, b, f, ifMany(len(fs), f.Name))...)
		}
	}
	return out
}

// failoverSpan is the span a gap counts in for fault f: from the injection to a
// little after the recovery or the rejoin, whichever is later.
func (r *Recorded) failoverSpan(f FaultRecord) Window {
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
	return Window{Name: f.Window(r.End).Name, Start: from, End: to}
}

func failoverFault(r *Recorded, b Budgets, f FaultRecord, tag string) []Finding {
	wb, _ := gapBudget(b, results.Write)
	rb, _ := gapBudget(b, results.Read)
	wgap := Finding{Mode: ModeFailover, Name: named(nameWriteGap, tag), Unit: UnitSeconds, Budget: wb, Reference: refFailoverGap}
	rgap := Finding{Mode: ModeFailover, Name: named(nameReadGap, tag), Unit: UnitSeconds, Budget: rb, Reference: refFailoverGap}
	cgap := Finding{Mode: ModeFailover, Name: named(nameClusterGap, tag), Unit: UnitSeconds, Budget: wb, Reference: refFailoverGap}
	back := Finding{Mode: ModeFailover, Name: named(nameBack, tag), Unit: UnitSeconds, Reference: refFailoverBack}
	all := func(format string, args ...any) []Finding {
		return []Finding{wgap.inconclusive(format, args...), rgap.inconclusive(format, args...),
			cgap.inconclusive(format, args...), back.inconclusive(format, args...)}
	}
	if !f.TookEffect() {
		return all("%s", notEffective(r, f))
	}
	base, ok := r.phase(PhaseBaseline)
	if !ok {
		return all("the run has no %s phase to compare with", PhaseBaseline)
	}
	if r.Summary == nil {
		return all("the run has no summary: no client stream gaps were recorded")
	}
	fw := f.Window(r.End)
	var clients []string
	for _, w := range r.workloadsOfKind("oltp") {
		if r.activeIn(w, fw) {
			clients = append(clients, w)
		}
	}
	if len(clients) == 0 {
		return all("no OLTP workload ran while the fault held: no client stream to measure")
	}
	span := r.failoverSpan(f)

	wgap = r.survivorGap(wgap, f, span, clients, results.Write, b)
	rgap = r.survivorGap(rgap, f, span, clients, results.Read, b)
	cgap = r.clusterGap(cgap, span, clients, b)

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
		cgap.note("failed requests %s: %d (%d late, %d dropped); at the baseline's %.0f ops/s that is %s failed at the article's 50K TPS (the article: 2.25M)",
			window, failed, late, dropped, baseRate, countStr(float64(failed)/baseRate*articleTPS))
	}
	if cgap.Value > 0 {
		cgap.note("%.1f s without a successful write anywhere is %s writes refused at 50K TPS", cgap.Value, countStr(cgap.Value*articleTPS))
	}
	cgap.note("%s", r.noticed(f, base))
	switch {
	case f.Recovered.IsZero():
		cgap.note("the fault was not recovered before the run's end")
	case f.Healthy.IsZero():
		cgap.note("rejoin: the faulted node did not serve again before the run's end")
	default:
		cgap.note("rejoin: the faulted node served again %.1f s after the fault was recovered (%s)", f.Healthy.Sub(f.Recovered).Seconds(), r.at(f.Healthy))
	}

	return []Finding{wgap, rgap, cgap, r.throughputBack(back, f, base, clients)}
}

// survivorGap judges the longest gap of an access kind on the client streams
// routed to nodes the fault did not hit; streams pinned to a faulted node are
// reported, not judged.
func (r *Recorded) survivorGap(fd Finding, f FaultRecord, span Window, clients []string, a results.Access, b Budgets) Finding {
	_, key := gapBudget(b, a)
	kind := string(a) + "s" // reads, writes
	var (
		worst          results.Gap
		worstSG        results.StreamGaps
		survivors      int
		stalled        int
		baseOps        int64
		survivingNodes []int
	)
	for _, sg := range r.streamsOf(a) {
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
		e := evidence(sg.Workload, "", sg.Node, ew, detail)
		e.Access = string(a)
		if pinned {
			fd.note("%s %s on node %d (faulted): %s; pinned to the faulted node: reported, not judged", sg.Workload, kind, sg.Node, detail)
			e.Detail += "; pinned to the faulted node: reported, not judged"
			fd.Evidence = append(fd.Evidence, e)
			continue
		}
		fd.note("%s %s on node %d: %s", sg.Workload, kind, sg.Node, detail)
		fd.Evidence = append(fd.Evidence, e)
		survivors++
		if !slices.Contains(survivingNodes, sg.Node) {
			survivingNodes = append(survivingNodes, sg.Node)
		}
		baseOps += r.baseCount(sg.Workload, a, sg.Node)
		if g.Duration > fd.Budget {
			stalled++
		}
		if survivors == 1 || g.Duration > worst.Duration {
			worst, worstSG = g, sg
		}
	}
	switch {
	case survivors == 0 && len(r.streamsOf(a)) == 0:
		return fd.inconclusive("no client stream of %s was recorded (the workloads ran no op that %s, or the summary predates access kinds)", kind, map[results.Access]string{results.Read: "reads", results.Write: "changes data"}[a])
	case survivors == 0:
		return fd.inconclusive("every client stream of %s is pinned to a faulted node (%v): none is routed to a survivor", kind, f.Nodes)
	case baseOps < minOps:
		return fd.inconclusive("too few samples: %d baseline %s on the streams routed to surviving nodes (fewer than %d)", baseOps, kind, minOps)
	}
	fd.judge(worst.Duration, fd.Budget, false, key)
	switch {
	case worst.Ongoing:
		fd.Reason = fmt.Sprintf("%s on node %d never had a successful %s again after %s, %.1f s before the run's end", worstSG.Workload, worstSG.Node, a, r.at(worst.Start), worst.Duration)
	case fd.Verdict == Fail:
		fd.Reason = fmt.Sprintf("%s on node %d had no successful %s for %.1f s from %s (budget %.1f s)", worstSG.Workload, worstSG.Node, a, worst.Duration, r.at(worst.Start), fd.Budget)
	}
	if stalled == survivors && fd.Verdict == Fail {
		fd.note("every stream of %s routed to a surviving node stalled beyond the budget: the survivors stopped serving them (lost quorum, or a member holding every commit?)", kind)
	}
	if worst.Duration > 0 {
		fd.note("the longest %s gap on a surviving stream, %.1f s, is %s requests unserved at 50K TPS", a, worst.Duration, countStr(worst.Duration*articleTPS))
	}
	if s, ok := r.nonPrimary(survivingNodes, span); ok {
		fd.note("node %d reported non-Primary at %s (cluster size %d): the survivors lost quorum", s.Node, r.at(s.T), s.ClusterSize)
	}
	return fd
}

// clusterGap judges the cluster-wide write gap: the longest window, in span, in
// which no write succeeded on any node.
func (r *Recorded) clusterGap(fd Finding, span Window, clients []string, b Budgets) Finding {
	_, key := gapBudget(b, results.Write)
	cg, ok := r.Summary.ClusterGaps(results.Write)
	if !ok {
		return fd.inconclusive("no cluster-wide write stream was recorded (no op changed data, or the summary predates access kinds)")
	}
	var baseOps int64
	for _, w := range clients {
		baseOps += r.baseCount(w, results.Write, 0)
	}
	if baseOps < minOps {
		return fd.inconclusive("too few samples: %d baseline writes (fewer than %d)", baseOps, minOps)
	}
	g := longestOverlap(cg.Gaps, span)
	fd.judge(g.Duration, fd.Budget, false, key)
	if g.Duration == 0 {
		if t := r.Summary.GapThreshold; t > 0 {
			fd.note("some write succeeded somewhere at least every %.2g s (the recorder's gap threshold) while the fault held", t)
		} else {
			fd.note("no cluster-wide write gap over the recorder's threshold while the fault held")
		}
		fd.Evidence = append(fd.Evidence, Evidence{Access: string(results.Write), Phase: span.Name, From: span.Start, To: span.End, Detail: "no cluster-wide write gap"})
		return fd
	}
	detail := fmt.Sprintf("no write succeeded on any node for %.2f s from %s, %d failed, %d late inside", g.Duration, r.at(g.Start), g.Failed, g.Late)
	if g.Ongoing {
		detail += ", and none did again before the run's end"
	}
	fd.Evidence = append(fd.Evidence, Evidence{Access: string(results.Write), Phase: span.Name, From: g.Start, To: g.End, Detail: detail})
	switch {
	case g.Ongoing:
		fd.Reason = fmt.Sprintf("no write succeeded on any node from %s, and none did again before the run's end (%.1f s)", r.at(g.Start), g.Duration)
	case fd.Verdict == Fail:
		fd.Reason = fmt.Sprintf("the application could not write at all for %.1f s from %s (budget %.1f s)", g.Duration, r.at(g.Start), fd.Budget)
	}
	return fd
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
