package experiments

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/htapchaos/htapchaos/results"
	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// Failures only a sharded cluster has. A lost leaf holds its partitions: a
// query that needs every leaf (a scatter query) waits for it or fails, while a
// query whose shard key names another leaf goes on. Gaps per client stream hide
// this (the stream's other ops keep succeeding), so a fault on a leaf is scored
// per op class: the longest span without a success of that op, and the share of
// its attempts that failed (the blast radius).

const nameOpGap = "longest gap per op, leaf lost"

// opSpan is one op class's figures over a fault's span.
type opSpan struct {
	workload, op     string
	gap              time.Duration // longest run of whole seconds without a success
	gapFrom          time.Time
	attempts, failed int64
	p99              float64 // the largest per-second p99, ms
}

// spanOf sums per-second bins over w: attempts, failures, the largest p99, and
// the longest run of seconds without a success.
func (r *Recorded) spanOf(bins []second, w Window) opSpan {
	var s opSpan
	lo, hi := r.binRange(len(bins), w)
	run, tried := 0, false
	for i := lo; i <= hi; i++ {
		b := bins[i]
		s.attempts += b.count + b.errors
		s.failed += b.errors
		s.p99 = max(s.p99, b.p99)
		if b.count > 0 {
			run, tried = 0, false
			continue
		}
		// A second without a success is part of a gap; the gap counts once an
		// attempt in it failed or was dropped (a stall ends in timeouts), so an
		// op that was not asked for has none.
		run++
		tried = tried || b.errors+b.dropped > 0
		if d := time.Duration(run) * time.Second; tried && d > s.gap {
			s.gap, s.gapFrom = d, r.binTime(i-run)
		}
	}
	return s
}

// opSpans bins each (workload, op) of the OLTP workloads by second over w.
func (r *Recorded) opSpans(w Window) []opSpan {
	var out []opSpan
	for _, wl := range r.workloadsOfKind("oltp") {
		if !r.activeIn(wl, w) {
			continue
		}
		var ops []string
		for _, l := range r.Seconds {
			if l.Workload == wl && l.Op != "" && !slices.Contains(ops, l.Op) {
				ops = append(ops, l.Op)
			}
		}
		slices.Sort(ops)
		for _, op := range ops {
			bins := r.perSecond(func(l results.IntervalLine) bool { return l.Workload == wl && l.Op == op })
			s := r.spanOf(bins, w)
			s.workload, s.op = wl, op
			if s.attempts > 0 || s.gap > 0 {
				out = append(out, s)
			}
		}
	}
	return out
}

// scoreLeafFault scores a failover-class fault on leaves: per op class, its
// longest gap (judged against the failover gap budget: a scatter query held by
// one leaf fails it, a single-shard query to the other leaves passes) and its
// blast radius (reported). The partitions the leaves held say what share of a
// single-shard op was bound to fail.
func scoreLeafFault(r *Recorded, b Budgets, f FaultRecord, tag string) []Finding {
	span := r.failoverSpan(f)
	leaves := strings.Join(f.NodeLabels, ",")
	var held []string
	var heldRows, allRows int64
	for _, s := range r.Shards {
		if s.Table != "orders" {
			continue
		}
		allRows += s.Rows
		for _, l := range f.NodeLabels {
			if strings.HasSuffix(l, "-"+s.Leaf) || l == s.Leaf {
				held = append(held, fmt.Sprintf("p%d", s.Partition))
				heldRows += s.Rows
			}
		}
	}
	var out []Finding
	budget, _ := gapBudget(b, results.Read)
	for _, s := range r.opSpans(span) {
		access := results.Read
		if slices.Contains(r.opsOf(s.workload, results.Write), s.op) {
			access = results.Write
		}
		budget, key := gapBudget(b, access)
		fd := Finding{Mode: ModeFailover, Name: named(nameOpGap, s.op, ifMany(len(r.workloadsOfKind("oltp")), s.workload), tag),
			Unit: UnitSeconds, Budget: budget, Reference: refFailoverGap}
		fd.judge(s.gap.Seconds(), budget, false, key)
		detail := fmt.Sprintf("%d of %d attempts failed (%s)", s.failed, s.attempts, pct(ratio(float64(s.failed), float64(s.attempts))))
		fd.Evidence = append(fd.Evidence, evidence(s.workload, s.op, 0, Window{Name: span.Name, Start: s.gapFrom, End: s.gapFrom.Add(s.gap)}, detail))
		fd.note("blast radius: %s of %s's attempts failed from the loss of %s until %v after it was back (to the second)", pct(ratio(float64(s.failed), float64(s.attempts))), s.op, leaves, failoverSlack)
		if fd.Verdict == Fail {
			fd.Reason = fmt.Sprintf("%s had no success for %v while %s was lost, over the %s budget of %v", s.op, s.gap, leaves, access, time.Duration(budget*float64(time.Second)))
		}
		out = append(out, fd)
	}
	if len(out) == 0 {
		return []Finding{Finding{Mode: ModeFailover, Name: named(nameOpGap, tag), Unit: UnitSeconds, Budget: budget,
			Reference: refFailoverGap}.inconclusive("no per-second figures per op over %s", span.Name)}
	}
	if allRows > 0 {
		out[0].note("%s held partitions %s of orders: %s of its rows, the share of single-shard operations bound to fail",
			leaves, strings.Join(held, ","), pct(float64(heldRows)/float64(allRows)))
	}
	return out
}

// onlyOn says whether a fault hit nodes of one role only.
func (r *Recorded) onlyOn(f FaultRecord, role htc.Role) bool {
	if len(f.Nodes) == 0 {
		return false
	}
	for _, n := range f.Nodes {
		if r.Roles[n] != string(role) {
			return false
		}
	}
	return true
}

const nameClientGap = "client gap and failed requests, aggregator lost"

// scoreAggregatorFault scores a failover-class fault on aggregators: per OLTP
// workload (a client), the longest span without any success of it, to the
// second, judged against the failover gap budget, and the share of its requests
// that failed, with the retries it was configured with. A client routed
// round-robin over the aggregators that retries on the next one should see
// neither; one that does not retry loses the requests sent to the lost one.
func scoreAggregatorFault(r *Recorded, b Budgets, f FaultRecord, tag string) []Finding {
	budget, key := gapBudget(b, results.Write)
	span := r.failoverSpan(f)
	aggs := strings.Join(f.NodeLabels, ",")
	var out []Finding
	for _, wl := range r.workloadsOfKind("oltp") {
		bins := r.perSecond(func(l results.IntervalLine) bool { return l.Workload == wl })
		if bins == nil {
			continue
		}
		sp := r.spanOf(bins, span)
		attempts, failed, gap, from, p99 := sp.attempts, sp.failed, sp.gap, sp.gapFrom, sp.p99
		retries := 0
		if ws, ok := r.workloadSpec(wl); ok {
			retries = ws.Retries
		}
		fd := Finding{Mode: ModeFailover, Name: named(nameClientGap, wl, tag), Unit: UnitSeconds, Budget: budget, Reference: refFailoverGap}
		fd.judge(gap.Seconds(), budget, false, key)
		share := ratio(float64(failed), float64(attempts))
		fd.Evidence = append(fd.Evidence, evidence(wl, "", 0, Window{Name: span.Name, Start: from, End: from.Add(gap)},
			fmt.Sprintf("%d of %d requests failed (%s) with %d retries to the next aggregator; per-second p99 up to %s", failed, attempts, pct(share), retries, ms(p99).Round(time.Millisecond))))
		fd.note("%s: %s of its requests failed from the loss of %s until %v after it was back (%d retries configured); longest span without a success %v (to the second); per-second p99 up to %s",
			wl, pct(share), aggs, failoverSlack, retries, gap, ms(p99).Round(time.Millisecond))
		out = append(out, fd)
	}
	if len(out) == 0 {
		return []Finding{Finding{Mode: ModeFailover, Name: named(nameClientGap, tag), Unit: UnitSeconds, Budget: budget,
			Reference: refFailoverGap}.inconclusive("no per-second figures over %s", span.Name)}
	}
	return out
}
