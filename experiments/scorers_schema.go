package experiments

import (
	"cmp"
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
// window without a successful write on a writing stream while the ALTER ran
// (from the stream gaps, and from the per-second write counts, which reads
// cannot hide), held to write-stall (add-nullable) or write-stall-rebuild
// (other variants; unset by default: reported only).
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
	for _, s := range r.Phase {
		if s.Phase == PhaseBaseline && s.Node == 0 && isWrite(s.Op) {
			baseWrites += s.Count
			if !slices.Contains(writers, s.Workload) {
				writers = append(writers, s.Workload)
			}
		}
	}
	if len(writers) == 0 {
		return fd.inconclusive("no workload wrote in the baseline: no write stall to measure")
	}
	if baseWrites < minOps {
		return fd.inconclusive("too few samples: %d baseline writes (fewer than %d)", baseWrites, minOps)
	}

	var value float64
	measured := false
	var where string
	// Stream gaps: no success of any op on a writing stream.
	if r.Summary != nil {
		var streams [][]results.Gap
		for _, sg := range r.Summary.Gaps {
			if !slices.Contains(writers, sg.Workload) {
				continue
			}
			measured = true
			streams = append(streams, sg.Gaps)
			g := longestOverlap(sg.Gaps, span)
			if g.Duration == 0 {
				continue
			}
			detail := fmt.Sprintf("no success for %.2f s from %s, %d failed, %d late inside", g.Duration, r.at(g.Start), g.Failed, g.Late)
			fd.Evidence = append(fd.Evidence, evidence(sg.Workload, "", sg.Node, Window{Name: span.Name, Start: g.Start, End: g.End}, detail))
			if g.Duration > value {
				value, where = g.Duration, fmt.Sprintf("%s on node %d, %s", sg.Workload, sg.Node, detail)
			}
		}
		if c, ok := commonStall(streams, span); ok {
			fd.note("cluster-wide: no writing stream had a success for %.2f s from %s", c.Duration().Seconds(), r.at(c.Start))
		} else if measured {
			fd.note("cluster-wide: no window in which every writing stream stalled")
		}
	}
	// Per-second write counts: a second with no successful write, even when
	// reads went on.
	if len(r.Seconds) > 0 {
		base, _ := r.phase(PhaseBaseline)
		type stream struct {
			w string
			n int
		}
		var keys []stream
		for _, l := range r.Seconds {
			if k := (stream{l.Workload, l.Node}); slices.Contains(writers, l.Workload) && isWrite(l.Op) && !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		slices.SortFunc(keys, func(a, b stream) int { return cmp.Or(cmp.Compare(a.w, b.w), cmp.Compare(a.n, b.n)) })
		for _, k := range keys {
			w, n := k.w, k.n
			s := r.perSecond(func(l results.IntervalLine) bool { return l.Workload == w && l.Node == n && isWrite(l.Op) })
			var bc []float64
			for _, x := range r.binsIn(s, base) {
				bc = append(bc, float64(x.count))
			}
			if median(bc) < 2 {
				continue // too few writes a second for an empty second to mean a stall
			}
			measured = true
			run, longest, at := 0, 0, 0
			lo, hi := r.binRange(len(s), span)
			for i := lo; i <= hi; i++ {
				x := s[i]
				if x.count == 0 {
					run++
					if run > longest {
						longest, at = run, i-run+1
					}
				} else {
					run = 0
				}
			}
			if longest == 0 {
				continue
			}
			from := r.binTime(at - 1) // the start of the first empty second
			detail := fmt.Sprintf("%d s without a successful write from %s (per-second counts)", longest, r.at(from))
			fd.Evidence = append(fd.Evidence, evidence(w, "", n, Window{Name: span.Name, Start: from, End: from.Add(time.Duration(longest) * time.Second)}, detail))
			if float64(longest) > value {
				value, where = float64(longest), fmt.Sprintf("%s on node %d, %s", w, n, detail)
			}
		}
	}
	if !measured {
		return fd.inconclusive("no stream gaps and no per-second write counts recorded")
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
		if s, ok := r.tally(alter, func(l results.IntervalLine) bool { return l.Workload == w && isWrite(l.Op) }); ok {
			wf = addStats(wf, s)
			got = true
			continue
		}
		for _, op := range writeOps {
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

// commonStall finds the longest window, overlapping w, in which every stream
// was inside one of its gaps.
func commonStall(streams [][]results.Gap, w Window) (Window, bool) {
	if len(streams) == 0 {
		return Window{}, false
	}
	type edge struct {
		t time.Time
		d int
	}
	var edges []edge
	for _, gaps := range streams {
		for _, g := range gaps {
			edges = append(edges, edge{g.Start, 1}, edge{g.End, -1})
		}
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.t.Compare(b.t); c != 0 {
			return c
		}
		return a.d - b.d // ends before starts: touching gaps do not overlap
	})
	var best, cur Window
	found := false
	n := 0
	for _, e := range edges {
		n += e.d
		switch {
		case e.d > 0 && n == len(streams):
			cur.Start = e.t
		case e.d < 0 && n == len(streams)-1:
			cur.End = e.t
			if cur.Start.Before(w.End) && cur.End.After(w.Start) && cur.Duration() > best.Duration() {
				best, found = cur, true
			}
		}
	}
	best.Name = w.Name
	return best, found
}
