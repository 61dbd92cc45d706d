package experiments

import (
	"fmt"
	"slices"
	"time"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/results"
)

const refSchema = "the article: ALTER TABLE ADD COLUMN on a 1 TB table, expected instant, took a 6-hour cluster lock; " +
	"its advice: add nullable columns, backfill in batches, rehearse on a replica"

// schemaSlack is how long after the ALTER ends a write stall still counts as
// its own (the writes queued behind it drain).
const schemaSlack = 2 * time.Second

func schemaChangeScorer() Scorer {
	return scorer{
		mode: ModeSchemaChange,
		budgets: []BudgetSpec{
			{Key: "write-stall", Type: BudgetDuration, Default: "1s",
				Help: "longest window without a successful write while an add-nullable ALTER runs (the variant that should be online)"},
			{Key: "write-stall-rebuild", Type: BudgetDuration, Default: "0s",
				Help: "the same for add-not-null-default and add-index; 0: reported, not judged"},
		},
		score: scoreSchema,
	}
}

// scoreSchema: per schema-change fault, "longest write stall": the longest
// window without a successful write on a write stream (workload, node, writes:
// the recorder's gaps of the ops that change data, which reads cannot hide)
// while the ALTER ran, held to write-stall (add-nullable) or
// write-stall-rebuild (other variants; unset by default: reported only); the
// cluster-wide write gap in the notes.
func scoreSchema(r *Recorded, b Budgets) []Finding {
	fd := Finding{Mode: ModeSchemaChange, Name: "longest write stall", Unit: UnitSeconds, Budget: b.Get("write-stall"), Reference: refSchema}
	fs := r.faultsOfClass(faults.ClassSchema)
	if len(fs) == 0 {
		return []Finding{fd.inconclusive("the run has no schema-change fault")}
	}
	var out []Finding
	for _, f := range fs {
		g := fd
		g.Name = named(g.Name, ifMany(len(fs), f.Name))
		out = append(out, r.schemaStall(g, f, b))
	}
	return out
}

// measurement finds a fault's measurement by name.
func (f FaultRecord) measurement(name string) (float64, string, bool) {
	for _, m := range f.Measurements {
		if m.Name == name {
			return m.Value, m.Note, true
		}
	}
	return 0, "", false
}

func unixSeconds(v float64) time.Time { return time.Unix(0, int64(v*1e9)) }

func (r *Recorded) schemaStall(fd Finding, f FaultRecord, b Budgets) Finding {
	variant := f.Params["variant"]
	if variant == "" {
		variant = "add-nullable"
	}
	key, optional := "write-stall", false
	if variant != "add-nullable" {
		key, optional = "write-stall-rebuild", true
	}
	fd.Budget = b.Get(key)
	if !f.TookEffect() {
		return fd.inconclusive("%s", notEffective(r, f))
	}

	// The ALTER's window: from its own measurements, else the fault's.
	alter := f.Window(r.End)
	if v, _, ok := f.measurement(faults.MeasureAlterStart); ok {
		alter.Start = unixSeconds(v)
	}
	if v, _, ok := f.measurement(faults.MeasureAlterEnd); ok {
		alter.End = unixSeconds(v)
	}
	if d, note, ok := f.measurement(faults.MeasureAlterDuration); ok {
		fd.note("ALTER ran %.2f s (%s)", d, note)
	} else {
		fd.note("no ALTER duration measured: the fault's window (%.1f s) stands for it", alter.Duration().Seconds())
	}
	span := Window{Name: alter.Name, Start: alter.Start, End: alter.End.Add(schemaSlack)}
	if span.End.After(r.End) {
		span.End = r.End
	}
	if span.End.Before(span.Start) {
		span.End = span.Start
	}

	// The writing workloads and their baseline writes.
	var writers []string
	var baseWrites int64
	for _, w := range r.workloadsWithWrites() {
		if n := r.baseCount(w, results.Write, 0); n > 0 {
			writers = append(writers, w)
			baseWrites += n
		}
	}
	if len(writers) == 0 {
		return fd.inconclusive("no workload wrote in the baseline: no write stall to measure")
	}
	if baseWrites < minOps {
		return fd.inconclusive("too few samples: %d baseline writes (fewer than %d)", baseWrites, minOps)
	}

	// The write streams' gaps (no successful write; reads cannot hide it), and
	// the cluster-wide one (no write succeeded anywhere).
	var value float64
	var where string
	measured := false
	for _, sg := range r.streamsOf(results.Write) {
		if !slices.Contains(writers, sg.Workload) {
			continue
		}
		measured = true
		g := longestOverlap(sg.Gaps, span)
		if g.Duration == 0 {
			continue
		}
		detail := fmt.Sprintf("no successful write for %.2f s from %s, %d failed, %d late inside", g.Duration, r.at(g.Start), g.Failed, g.Late)
		e := evidence(sg.Workload, "", sg.Node, Window{Name: span.Name, Start: g.Start, End: g.End}, detail)
		e.Access = string(results.Write)
		fd.Evidence = append(fd.Evidence, e)
		if g.Duration > value {
			value, where = g.Duration, fmt.Sprintf("%s on node %d, %s", sg.Workload, sg.Node, detail)
		}
	}
	if !measured {
		return fd.inconclusive("no write stream gaps recorded (the summary predates access kinds?)")
	}
	if cg, ok := r.Summary.ClusterGaps(results.Write); ok {
		if g := longestOverlap(cg.Gaps, span); g.Duration > 0 {
			fd.note("cluster-wide: no write succeeded on any node for %.2f s from %s", g.Duration, r.at(g.Start))
		} else {
			fd.note("cluster-wide: some node had a write succeed throughout")
		}
	}
	fd.judge(value, fd.Budget, optional, key)
	if fd.Verdict == Fail {
		fd.Reason = fmt.Sprintf("writes stalled %.2f s during the %s ALTER (budget %.2f s): %s", value, variant, fd.Budget, where)
	}
	if value == 0 {
		fd.note("no write stall over the recorder's gap threshold on any writing stream")
	}

	// Writes failed during the ALTER, and p99 against the baseline.
	var wf PhaseStats
	got := false
	for _, w := range writers {
		if s, ok := r.tally(alter, func(l results.IntervalLine) bool { return l.Workload == w && l.Access == results.Write }); ok {
			wf = addStats(wf, s)
			got = true
			continue
		}
		for _, op := range r.opsOf(w, results.Write) {
			if s, _, ok := r.faultStat(f, w, op, 0); ok {
				wf = addStats(wf, s)
				got = true
			}
		}
	}
	if got {
		fd.note("writes during the ALTER: %d succeeded, %d failed (%s), %d late, %d dropped", wf.Count, wf.Errors, classes(wf.ByClass), wf.Late, wf.Dropped)
		if n := wf.ByClass[results.ClassConflict]; n > 0 {
			fd.note("%d writes failed with conflicts (1213): transactions the ALTER rolled back", n)
		}
	}
	for _, w := range writers {
		bs, ok1 := r.stat(PhaseBaseline, w, "", 0)
		ss, win, ok2 := r.faultStat(f, w, "", 0)
		if ok1 && ok2 && bs.Count >= minOps && ss.Count > 0 {
			fd.note("%s p99 %.2f ms in the baseline, %.2f ms in %s (%.1fx)", w, bs.Latency.P99, ss.Latency.P99, win.Name, ratio(ss.Latency.P99, bs.Latency.P99))
		}
	}
	for _, n := range r.nodes() {
		var paused float64
		for _, s := range r.samplesOf(n, alter) {
			paused += s.FCPausedMs
		}
		if paused > 0 {
			fd.note("flow control paused node %d for %.0f ms of the ALTER's %.1f s", n, paused, alter.Duration().Seconds())
		}
	}
	return fd
}

// addStats adds the counts of b to a (latency is not summable: left alone).
func addStats(a, b PhaseStats) PhaseStats {
	a.Count += b.Count
	a.Errors += b.Errors
	a.Late += b.Late
	a.Dropped += b.Dropped
	for c, n := range b.ByClass {
		if a.ByClass == nil {
			a.ByClass = map[results.Class]int64{}
		}
		a.ByClass[c] += n
	}
	return a
}
