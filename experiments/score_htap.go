package experiments

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/results"
)

// spikeClasses are the faults htap-contention scores (and claims): analytics or
// batch work loaded on the nodes. data-movement claims them too: it reports the
// bytes the nodes moved in each spike's window.
var spikeClasses = []faults.Class{faults.ClassSpike}

// sidewaysClasses are the faults fail-sideways scores (and claims): a spike, or a
// node slowed (CPU, network), which on Galera slows the others' writes too (a
// node at 3% of a core cut n1's inserts from 1,900/s to 100/s).
var sidewaysClasses = []faults.Class{faults.ClassSpike, faults.ClassSlowdown}

const (
	refHTAPp99 = "the article: write p99 5 ms -> 50 ms (10x) under a fraud dashboard scanning 500M rows every 30 s, " +
		"at 50K writes/s with CPU at 95%"
	refHTAPErrors = "the article: timeouts and an exhausted connection pool took the API down for 22 minutes"
	refSideways   = "the article: a batch job on leaf 1 slowed replication; leaf 3 caught up, its disk saturated, " +
		"queries slowed and the application alerted; the root cause was found 2 hours later"
)

func htapContentionScorer() Scorer {
	return scorer{
		mode: ModeHTAPContention,
		budgets: []BudgetSpec{
			{Key: "p99-inflation", Type: BudgetRatio, Default: "3", Help: "OLTP p99 in the spike window over the baseline's"},
			{Key: "error-rate", Type: BudgetPercent, Default: "0.1%", Help: "OLTP errors over OLTP operations in the spike window"},
		},
		score: scoreHTAP,
	}
}

// stressWindow is a window whose OLTP figures are compared to the baseline's:
// a fault's, or a phase's.
type stressWindow struct {
	name  string
	fault *FaultRecord // nil: a phase
	w     Window
}

// stat returns a workload's figures over the window.
func (sw stressWindow) stat(r *Recorded, workload, op string, node int) (PhaseStats, Window, bool) {
	if sw.fault != nil {
		return r.faultStat(*sw.fault, workload, op, node)
	}
	s, ok := r.stat(sw.w.Name, workload, op, node)
	return s, sw.w, ok
}

// spikeWindows are the windows htap-contention scores: the spike faults' (any
// fault's when there is no spike), or else the phases in which an analytics or
// batch workload runs that does not run in the baseline.
func (r *Recorded) spikeWindows() []stressWindow {
	fs := r.faultsOfClass(spikeClasses...)
	if len(fs) == 0 {
		fs = r.Faults
	}
	var out []stressWindow
	for i := range fs {
		f := fs[i]
		out = append(out, stressWindow{name: f.Name, fault: &f, w: f.Window(r.End)})
	}
	if len(out) > 0 {
		return out
	}
	base, _ := r.phase(PhaseBaseline)
	var extra []string
	for _, k := range []string{"analytics", "batch"} {
		extra = append(extra, r.workloadsOfKind(k)...)
	}
	for _, p := range r.Phases {
		switch {
		case p.Name == PhaseWarmup || p.Name == PhaseBaseline || p.Name == PhaseRecovery || p.Name == PhaseAfter,
			strings.HasPrefix(p.Name, FaultPrefix):
			continue
		}
		for _, w := range extra {
			if r.activeIn(w, p) && !r.activeIn(w, base) {
				out = append(out, stressWindow{name: p.Name, w: p})
				break
			}
		}
	}
	return out
}

// scoreHTAP: per spike window and OLTP workload, "oltp p99 inflation" (p99 in
// the window over the baseline's, held to p99-inflation) and "oltp error rate"
// (errors over operations in the window, held to error-rate).
func scoreHTAP(r *Recorded, b Budgets) []Finding {
	infl0 := Finding{Mode: ModeHTAPContention, Name: "oltp p99 inflation", Unit: UnitRatio, Budget: b.Get("p99-inflation"), Reference: refHTAPp99}
	errs0 := Finding{Mode: ModeHTAPContention, Name: "oltp error rate", Unit: UnitFraction, Budget: b.Get("error-rate"), Reference: refHTAPErrors}
	both := func(infl, errs Finding, format string, args ...any) []Finding {
		return []Finding{infl.inconclusive(format, args...), errs.inconclusive(format, args...)}
	}
	sws := r.spikeWindows()
	oltp := r.workloadsOfKind("oltp")
	base, ok := r.phase(PhaseBaseline)
	switch {
	case len(sws) == 0:
		return both(infl0, errs0, "the run has no analytics or batch spike: no spike fault and no phase with extra analytics")
	case !ok:
		return both(infl0, errs0, "the run has no %s phase to compare with", PhaseBaseline)
	case len(oltp) == 0:
		return both(infl0, errs0, "the run has no OLTP workload")
	}
	var out []Finding
	for _, sw := range sws {
		for _, w := range oltp {
			infl, errs := infl0, errs0
			tag := []string{ifMany(len(sws), sw.name), ifMany(len(oltp), w)}
			infl.Name, errs.Name = named(infl.Name, tag...), named(errs.Name, tag...)
			out = append(out, r.htapWindow(infl, errs, sw, w, base)...)
		}
	}
	return out
}

func (r *Recorded) htapWindow(infl, errs Finding, sw stressWindow, w string, base Window) []Finding {
	both := func(format string, args ...any) []Finding {
		return []Finding{infl.inconclusive(format, args...), errs.inconclusive(format, args...)}
	}
	if sw.fault != nil && !sw.fault.TookEffect() {
		return both("%s", notEffective(r, *sw.fault))
	}
	bs, ok1 := r.stat(PhaseBaseline, w, "", 0)
	ss, win, ok2 := sw.stat(r, w, "", 0)
	switch {
	case !ok1 || !ok2:
		return both("no figures for %s in the baseline or in %s", w, sw.w.Name)
	case bs.Count < minOps:
		return both("too few samples: %d %s operations in the baseline (fewer than %d)", bs.Count, w, minOps)
	case ss.Count+ss.Errors < minOps:
		return both("too few samples: %d %s operations in %s (fewer than %d)", ss.Count+ss.Errors, w, win.Name, minOps)
	}
	// The nodes the OLTP ran on; evidence names the node when there is one (a
	// primary taking every write).
	var on []int
	for _, n := range r.nodes() {
		if s, ok := r.stat(PhaseBaseline, w, "", n); ok && s.Count > 0 {
			on = append(on, n)
		}
	}
	evNode := 0
	if len(on) == 1 {
		evNode = on[0]
	}
	ev := []Evidence{
		evidence(w, "", evNode, base, fmt.Sprintf("baseline: %d ops, p99 %.2f ms, p99.9 %.2f ms", bs.Count, bs.Latency.P99, bs.Latency.P999)),
		evidence(w, "", evNode, win, fmt.Sprintf("spike: %d ops, p99 %.2f ms, p99.9 %.2f ms", ss.Count, ss.Latency.P99, ss.Latency.P999)),
	}

	infl.Evidence = ev
	infl.judge(ratio(ss.Latency.P99, bs.Latency.P99), infl.Budget, false, "p99-inflation")
	infl.note("p99 %.2f -> %.2f ms (%.1fx); p99.9 %.2f -> %.2f ms (%.1fx)", bs.Latency.P99, ss.Latency.P99, infl.Value,
		bs.Latency.P999, ss.Latency.P999, ratio(ss.Latency.P999, bs.Latency.P999))
	if sw.fault != nil && len(sw.fault.Nodes) > 0 && len(on) > 0 {
		shared := slices.DeleteFunc(slices.Clone(on), func(n int) bool { return !slices.Contains(sw.fault.Nodes, n) })
		infl.note("%s on node %s; %s on node %s (shared: %s)", sw.fault.Kind, nodeList(sw.fault.Nodes), w, nodeList(on), cmp.Or(nodeList(shared), "none"))
	}
	for _, op := range r.opsOf(w, results.Write) {
		bo, ok1 := r.stat(PhaseBaseline, w, op, 0)
		so, _, ok2 := sw.stat(r, w, op, 0)
		if ok1 && ok2 && bo.Count >= minOps && so.Count > 0 {
			infl.note("write p99 (%s): %.2f -> %.2f ms (%.1fx; the article's figure is a write p99)", op, bo.Latency.P99, so.Latency.P99, ratio(so.Latency.P99, bo.Latency.P99))
		}
	}
	var per []string
	for _, n := range r.nodes() {
		bn, ok1 := r.stat(PhaseBaseline, w, "", n)
		sn, _, ok2 := sw.stat(r, w, "", n)
		if ok1 && ok2 && bn.Count >= minOps && sn.Count > 0 {
			per = append(per, fmt.Sprintf("node %d %.1fx", n, ratio(sn.Latency.P99, bn.Latency.P99)))
		}
	}
	if len(per) > 0 {
		infl.note("p99 inflation per node: %s", strings.Join(per, ", "))
	}
	// CPU 0 is no reading (the first of each node, or stale statistics).
	if n := r.indicatorNote(base, win, "CPU (% of one core)", func(s Sample) (float64, bool) { return s.CPUPct, s.CPUPct > 0 }); n != "" {
		infl.note("%s", n)
	}
	if n := r.indicatorNote(base, win, "threads running", func(s Sample) (float64, bool) { return float64(s.ThreadsRunning), true }); n != "" {
		infl.note("%s", n)
	}

	errs.Evidence = ev
	errs.judge(errorRate(ss), errs.Budget, false, "error-rate")
	errs.note("%d errors in %d operations (%s): %s; baseline %s", ss.Errors, ss.Count+ss.Errors, win.Name, classes(ss.ByClass), pct(errorRate(bs)))
	if ss.Late > 0 || ss.Dropped > 0 {
		errs.note("%d late and %d dropped operations: the open-loop schedule fell behind (the article's connection pool exhaustion); baseline %d late, %d dropped",
			ss.Late, ss.Dropped, bs.Late, bs.Dropped)
	}
	return []Finding{infl, errs}
}

// indicatorNote compares an indicator per node (CPU, threads running) in w with the
// baseline: the baseline's mean against the window's maximum.
func (r *Recorded) indicatorNote(base, w Window, what string, val func(Sample) (float64, bool)) string {
	var parts []string
	for _, n := range r.nodes() {
		var bx, wx []float64
		for _, s := range r.samplesOf(n, base) {
			if v, ok := val(s); ok && s.Up {
				bx = append(bx, v)
			}
		}
		for _, s := range r.samplesOf(n, w) {
			if v, ok := val(s); ok && s.Up {
				wx = append(wx, v)
			}
		}
		if len(bx) == 0 || len(wx) == 0 || slices.Max(wx) == 0 {
			continue
		}
		m, _ := meanSD(bx)
		parts = append(parts, fmt.Sprintf("node %d %.1f -> max %.0f", n, m, slices.Max(wx)))
	}
	if len(parts) == 0 {
		return ""
	}
	return what + " (baseline mean -> max in the window): " + strings.Join(parts, ", ")
}

func failSidewaysScorer() Scorer {
	return scorer{
		mode: ModeFailSideways,
		budgets: []BudgetSpec{
			{Key: "p99-inflation", Type: BudgetRatio, Default: "3", Help: "OLTP p99 on the nodes the spike (or slowed node) did not target, over their baseline's"},
		},
		score: scoreSideways,
	}
}

// scoreSideways: per spike or slowdown aimed at some nodes (any fault aimed at
// some when there is none), "p99 inflation, other nodes" (the largest OLTP p99
// inflation on a node the fault did not target, held to p99-inflation), with
// the chain in the notes: the cause node, the first leading indicator to move
// on any node, the symptom node and the lead times.
func scoreSideways(r *Recorded, b Budgets) []Finding {
	fd := Finding{Mode: ModeFailSideways, Name: "p99 inflation, other nodes", Unit: UnitRatio, Budget: b.Get("p99-inflation"), Reference: refSideways}
	fs := r.faultsOfClass(sidewaysClasses...)
	if len(fs) == 0 {
		for _, f := range r.Faults {
			if len(f.Nodes) > 0 {
				fs = append(fs, f)
			}
		}
	}
	if len(fs) == 0 {
		return []Finding{fd.inconclusive("the run has no spike or slowdown aimed at a node")}
	}
	var out []Finding
	for _, f := range fs {
		g := fd
		g.Name = named(g.Name, ifMany(len(fs), f.Name))
		out = append(out, r.sideways(g, f))
	}
	return out
}

func (r *Recorded) sideways(fd Finding, f FaultRecord) Finding {
	if !f.TookEffect() {
		return fd.inconclusive("%s", notEffective(r, f))
	}
	base, ok := r.phase(PhaseBaseline)
	if !ok {
		return fd.inconclusive("the run has no %s phase to compare with", PhaseBaseline)
	}
	var others []int
	for _, n := range r.nodes() {
		if !slices.Contains(f.Nodes, n) {
			others = append(others, n)
		}
	}
	if len(others) == 0 {
		return fd.inconclusive("the fault %s hit every node (%v): there is no other node to see a symptom on", f.Name, f.Nodes)
	}
	oltp := r.workloadsOfKind("oltp")
	if len(oltp) == 0 {
		return fd.inconclusive("the run has no OLTP workload")
	}

	type nodeInfl struct {
		node  int
		infl  float64
		baseP float64
	}
	var measured []nodeInfl
	for _, w := range oltp {
		for _, n := range append(slices.Clone(f.Nodes), others...) {
			bs, ok1 := r.stat(PhaseBaseline, w, "", n)
			ss, win, ok2 := r.faultStat(f, w, "", n)
			target := slices.Contains(f.Nodes, n)
			role := "other"
			if target {
				role = "target"
			}
			if !ok1 || !ok2 || bs.Count < minOps || ss.Count < minOps {
				fd.note("%s on node %d (%s): too few samples (%d baseline, %d in the fault)", w, n, role, bs.Count, ss.Count)
				continue
			}
			x := ratio(ss.Latency.P99, bs.Latency.P99)
			fd.note("%s on node %d (%s): p99 %.2f -> %.2f ms (%.1fx)", w, n, role, bs.Latency.P99, ss.Latency.P99, x)
			if target {
				continue
			}
			measured = append(measured, nodeInfl{n, x, bs.Latency.P99})
			fd.Evidence = append(fd.Evidence, evidence(w, "", n, win, fmt.Sprintf("p99 %.2f -> %.2f ms (%.1fx)", bs.Latency.P99, ss.Latency.P99, x)))
		}
	}
	if len(measured) == 0 {
		return fd.inconclusive("too few samples on the nodes the fault did not target (%v)", others)
	}
	worst := slices.MaxFunc(measured, func(a, b nodeInfl) int {
		switch {
		case a.infl < b.infl:
			return -1
		case a.infl > b.infl:
			return 1
		}
		return 0
	})
	fd.judge(worst.infl, fd.Budget, false, "p99-inflation")
	if fd.Verdict == Fail {
		fd.Reason = fmt.Sprintf("p99 on node %d, which the fault did not target, rose %.1fx (budget %.1fx)", worst.node, worst.infl, fd.Budget)
	}

	// The chain.
	cause := fmt.Sprintf("cause: %s on node %s at %s", f.Kind, nodeList(f.Nodes), r.at(f.Effective))
	chain := []string{cause}
	mv, moved := r.firstMove(f, base)
	if moved {
		chain = append(chain, fmt.Sprintf("first indicator to move: %s on node %d at %s (%.4g against a baseline mean of %.4g), %.1f s after the cause",
			mv.name, mv.node, r.at(mv.t), mv.value, mv.mean, mv.t.Sub(f.Effective).Seconds()))
	} else {
		chain = append(chain, "no leading indicator moved above its baseline mean + 3 sigma")
	}
	baseP99 := map[int]float64{}
	for _, m := range measured {
		baseP99[m.node] = max(baseP99[m.node], m.baseP)
	}
	sy, breached := r.firstBreach(f, others, oltp, baseP99, fd.Budget)
	switch {
	case breached && !sy.t.IsZero():
		s := fmt.Sprintf("symptom: p99 on node %d above %.1fx its baseline at %s, %.1f s after the cause", sy.node, fd.Budget, r.at(sy.t), sy.t.Sub(f.Effective).Seconds())
		if moved {
			s += fmt.Sprintf(", %.1f s after the first indicator", sy.t.Sub(mv.t).Seconds())
		}
		chain = append(chain, s)
	case breached:
		chain = append(chain, fmt.Sprintf("symptom: p99 on node %d above %.1fx its baseline over the spike (no two seconds in a row breached, or no per-second series: lead time not measured)", sy.node, fd.Budget))
	default:
		chain = append(chain, "no symptom: no other node's p99 breached the budget")
	}
	fd.note("chain: %s", strings.Join(chain, "; "))
	return fd
}

// nodeList formats nodes as 1,2.
func nodeList(nodes []int) string {
	var s []string
	for _, n := range nodes {
		s = append(s, fmt.Sprint(n))
	}
	return strings.Join(s, ",")
}

// move is a leading indicator leaving its baseline.
type move struct {
	name        string
	node        int
	t           time.Time
	value, mean float64
}

// firstMove finds the first leading indicator, on any node, to leave its
// baseline after the fault took effect: the first sample above the baseline
// mean + 3 sigma, and at least the indicator's floor above the mean.
func (r *Recorded) firstMove(f FaultRecord, base Window) (move, bool) {
	end := f.Recovered
	if end.IsZero() {
		end = r.End
	}
	after := Window{Start: f.Effective, End: end.Add(time.Second)}
	var first move
	found := false
	for _, n := range r.nodes() {
		bs, as := r.samplesOf(n, base), r.samplesOf(n, after)
		for _, ind := range indicators {
			var xs []float64
			for _, s := range bs {
				if v, ok := ind.value(s); ok {
					xs = append(xs, v)
				}
			}
			if len(xs) < 3 {
				continue
			}
			mean, sd := meanSD(xs)
			thr := mean + max(3*sd, ind.floor)
			for _, s := range as {
				if v, ok := ind.value(s); ok && v > thr {
					if !found || s.T.Before(first.t) {
						first, found = move{ind.name, n, s.T, v, mean}, true
					}
					break
				}
			}
		}
	}
	return first, found
}

// breach is a node's p99 breaching its budget.
type breach struct {
	node int
	t    time.Time // zero: when is not known
}

// firstBreach finds the first node of others whose OLTP p99 breached budget
// times its baseline p99: from the per-second series, the first of two
// consecutive seconds above it; without one (or when no two seconds in a row
// breach), the node with the largest inflation over the whole window, if it
// breached, with no time.
func (r *Recorded) firstBreach(f FaultRecord, others []int, oltp []string, baseP99 map[int]float64, budget float64) (breach, bool) {
	end := f.Recovered
	if end.IsZero() {
		end = r.End
	}
	var first breach
	found := false
	if len(r.Seconds) > 0 {
		for _, n := range others {
			bp := baseP99[n]
			if bp == 0 {
				continue
			}
			s := r.perSecond(func(l results.IntervalLine) bool { return l.Node == n && slices.Contains(oltp, l.Workload) })
			hi := min(len(s)-2, r.bin(end))
			for i := r.bin(f.Effective); i <= hi; i++ {
				if s[i].count > 0 && s[i+1].count > 0 && s[i].p99 > budget*bp && s[i+1].p99 > budget*bp {
					t := r.binTime(i - 1)
					if t.Before(f.Effective) {
						t = f.Effective
					}
					if !found || t.Before(first.t) {
						first, found = breach{n, t}, true
					}
					break
				}
			}
		}
		if found {
			return first, found
		}
	}
	var worst float64
	for _, w := range oltp {
		for _, n := range others {
			bs, ok1 := r.stat(PhaseBaseline, w, "", n)
			ss, _, ok2 := r.faultStat(f, w, "", n)
			if !ok1 || !ok2 || bs.Count < minOps || ss.Count < minOps {
				continue
			}
			if x := ratio(ss.Latency.P99, bs.Latency.P99); x > budget && x > worst {
				worst, first, found = x, breach{node: n}, true
			}
		}
	}
	return first, found
}
