package experiments

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/results"
)

// builtinScorers returns one scorer per failure mode, in catalog order, each
// with what it claims: the fault classes whose faults it judges (and selects
// its faults by), and the fault measurements it reads. TestTraits holds them to
// the fault registry: every kind is claimed or declared unscored, and every
// measurement read is one a kind makes.
func builtinScorers() []Scorer {
	return []Scorer{
		claim(memoryHeadroomScorer(), memoryClasses, faults.MeasureTableSize),
		claim(dataMovementScorer(), spikeClasses, faults.MeasureSpikeOps), // the bytes moved in each spike's window
		claim(htapContentionScorer(), spikeClasses),
		claim(schemaChangeScorer(), []faults.Class{faults.ClassSchema}, faults.MeasureAlterStart, faults.MeasureAlterEnd, faults.MeasureAlterDuration),
		claim(failoverScorer(), failoverClasses),
		claim(failSidewaysScorer(), sidewaysClasses),
		durabilityScorer(),
		freshnessScorer(),
	}
}

// FaultClaimer is a Scorer that says which faults it judges and what of them it
// reads: the fault classes (faults.Kind.Class) it selects its faults by, and the
// names of the fault measurements (faults.Kind.Measures) it reads. A scorer
// that judges no fault need not implement it.
type FaultClaimer interface {
	Claims() []faults.Class
	Reads() []string
}

// Units of Finding.Value (and Budget).
const (
	UnitSeconds  = "s"
	UnitRatio    = "x"
	UnitFraction = "fraction" // 0.001 = 0.1%: how percent budgets are held; show as a percentage
	UnitCount    = "count"
)

// minOps is the fewest operations a window needs for its latency or error
// rate to be scored; fewer make the finding inconclusive.
const minOps = 20

// scorer is a Scorer made of its parts.
type scorer struct {
	mode    string
	budgets []BudgetSpec
	score   func(r *Recorded, b Budgets) []Finding
	claims  []faults.Class // FaultClaimer
	reads   []string
}

func (s scorer) Mode() string           { return s.mode }
func (s scorer) Budgets() []BudgetSpec  { return slices.Clone(s.budgets) }
func (s scorer) Claims() []faults.Class { return slices.Clone(s.claims) }
func (s scorer) Reads() []string        { return slices.Clone(s.reads) }
func (s scorer) Score(r *Recorded, b Budgets) []Finding {
	return s.score(r, b)
}

// judge holds value to budget (value <= budget passes). A budget of 0 with
// optional set is unset: the value is reported and passes; key is the budget
// unset, "" for a figure no budget applies to.
func (f *Finding) judge(value, budget float64, optional bool, key string) {
	f.Value, f.Budget = value, budget
	if optional && budget == 0 {
		f.Verdict = Pass
		f.Reason = fmt.Sprintf("reported only: no budget set (budgets.%s.%s)", f.Mode, key)
		if key == "" { // a figure no budget applies to
			f.Reason = "reported only: a figure, not judged"
		}
		return
	}
	f.Op = "<="
	if value <= budget {
		f.Verdict = Pass
		return
	}
	f.Verdict = Fail
}

// inconclusive makes f inconclusive for reason.
func (f Finding) inconclusive(format string, args ...any) Finding {
	f.Verdict = Inconclusive
	f.Reason = fmt.Sprintf(format, args...)
	return f
}

// note appends a note.
func (f *Finding) note(format string, args ...any) {
	f.Notes = append(f.Notes, fmt.Sprintf(format, args...))
}

// named suffixes a finding name with what tells several apart.
func named(name string, parts ...string) string {
	var ps []string
	for _, p := range parts {
		if p != "" {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return name
	}
	return name + " (" + strings.Join(ps, ", ") + ")"
}

// ifMany returns s when n > 1: a name part needed only to tell several apart.
func ifMany(n int, s string) string {
	if n > 1 {
		return s
	}
	return ""
}

// evidence of a window.
func evidence(workload, op string, node int, w Window, detail string) Evidence {
	return Evidence{Workload: workload, Op: op, Node: node, Phase: w.Name, From: w.Start, To: w.End, Detail: detail}
}

// notEffective is the reason a fault that never took effect gives.
func notEffective(r *Recorded, f FaultRecord) string {
	why := "the fault " + f.Name + " never took effect"
	if fs, ok := r.faultSpec(f.Name); ok && fs.Expect == "no-effect" {
		why += " (as the spec expects: no-effect)"
	}
	if f.State != "" {
		why += "; state " + f.State
	}
	if f.Error != "" {
		why += ": " + f.Error
	}
	return why
}

// faultSpec finds a fault of the spec by name.
func (r *Recorded) faultSpec(name string) (FaultSpec, bool) {
	if r.Spec == nil {
		return FaultSpec{}, false
	}
	for _, f := range r.Spec.Faults {
		if f.Name == name {
			return f, true
		}
	}
	return FaultSpec{}, false
}

// phase finds a window of the run by name.
func (r *Recorded) phase(name string) (Window, bool) {
	for _, w := range r.Phases {
		if w.Name == name {
			return w, true
		}
	}
	return Window{}, false
}

// stat finds a phase x workload x op x node's figures.
func (r *Recorded) stat(phase, workload, op string, node int) (PhaseStats, bool) {
	for _, s := range r.Phase {
		if s.Window == phase && s.Workload == workload && s.Op == op && s.Node == node {
			return s, true
		}
	}
	return PhaseStats{}, false
}

// faultStat finds a workload's figures over a fault's window ("fault:<name>"),
// or, when the run has none, over the phase the fault starts in. It returns
// the window the figures are of.
func (r *Recorded) faultStat(f FaultRecord, workload, op string, node int) (PhaseStats, Window, bool) {
	w := f.Window(r.End)
	if s, ok := r.stat(w.Name, workload, op, node); ok {
		if pw, ok := r.phase(w.Name); ok {
			w = pw
		}
		return s, w, true
	}
	if fs, ok := r.faultSpec(f.Name); ok {
		if s, ok := r.stat(fs.Phase, workload, op, node); ok {
			pw, _ := r.phase(fs.Phase)
			return s, pw, true
		}
	}
	return PhaseStats{}, w, false
}

// claim declares what a builtin scorer judges: the fault classes it selects its
// faults by, and the fault measurements it reads.
func claim(s Scorer, classes []faults.Class, reads ...string) Scorer {
	sc := s.(scorer)
	sc.claims, sc.reads = classes, reads
	return sc
}

// faultsOfClass returns the run's faults whose kind is of one of the classes.
func (r *Recorded) faultsOfClass(classes ...faults.Class) []FaultRecord {
	return r.faultsWhere(func(k *faults.Kind) bool { return slices.Contains(classes, k.Class) })
}

// faultsWhere returns the run's faults whose kind has a trait: the traits the
// run recorded with each fault (FaultRecord.traits), so a kind a user registered
// is selected like a builtin one.
func (r *Recorded) faultsWhere(trait func(k *faults.Kind) bool) []FaultRecord {
	var out []FaultRecord
	for _, f := range r.Faults {
		if k, ok := f.traits(); ok && trait(k) {
			out = append(out, f)
		}
	}
	return out
}

// workloadsOfKind returns the names of the spec's workloads of a kind (oltp,
// analytics, batch: their class as the spec resolved it, else that of their
// kind, loadgen.ClassOf). Without a spec, every workload the run recorded counts as
// oltp.
func (r *Recorded) workloadsOfKind(kind string) []string {
	var out []string
	if r.Spec == nil {
		if kind != "oltp" {
			return nil
		}
		for _, s := range r.Phase {
			if !slices.Contains(out, s.Workload) {
				out = append(out, s.Workload)
			}
		}
		if r.Summary != nil {
			for _, g := range r.Summary.Gaps {
				if !slices.Contains(out, g.Workload) {
					out = append(out, g.Workload)
				}
			}
		}
		slices.Sort(out)
		return out
	}
	for _, w := range r.Spec.Workloads {
		if cmp.Or(w.Class, loadgen.ClassOf(w.Kind)) == kind {
			out = append(out, w.Name)
		}
	}
	return out
}

// workloadSpec finds a workload of the spec by name.
func (r *Recorded) workloadSpec(name string) (WorkloadSpec, bool) {
	if r.Spec == nil {
		return WorkloadSpec{}, false
	}
	for _, w := range r.Spec.Workloads {
		if w.Name == name {
			return w, true
		}
	}
	return WorkloadSpec{}, false
}

// activeIn says whether a workload runs during (part of) w: it has no During
// list, or one of its During phases overlaps w.
func (r *Recorded) activeIn(workload string, w Window) bool {
	ws, ok := r.workloadSpec(workload)
	if !ok || len(ws.During) == 0 {
		return true
	}
	for _, p := range ws.During {
		if pw, ok := r.phase(p); ok && pw.Start.Before(w.End) && pw.End.After(w.Start) {
			return true
		}
	}
	return false
}

// nodes lists the run's nodes, 1-based.
func (r *Recorded) nodes() []int {
	var out []int
	for n := 1; n <= r.Nodes; n++ {
		out = append(out, n)
	}
	if len(out) == 0 && r.Summary != nil {
		for _, g := range r.Summary.Gaps {
			if g.Node != 0 && !slices.Contains(out, g.Node) {
				out = append(out, g.Node)
			}
		}
		slices.Sort(out)
	}
	return out
}

// at formats t as seconds since the run's start.
func (r *Recorded) at(t time.Time) string {
	return fmt.Sprintf("+%.1f s", t.Sub(r.Start).Seconds())
}

// errorRate is errors over attempts (successes and errors).
func errorRate(s PhaseStats) float64 {
	if s.Count+s.Errors == 0 {
		return 0
	}
	return float64(s.Errors) / float64(s.Count+s.Errors)
}

// ratio is a/b, 0 when b is 0 (never NaN or Inf: findings are JSON).
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// classes formats errors by class, largest first.
func classes(m map[results.Class]int64) string {
	type kv struct {
		c results.Class
		n int64
	}
	var l []kv
	for c, n := range m {
		if n != 0 {
			l = append(l, kv{c, n})
		}
	}
	slices.SortFunc(l, func(a, b kv) int { return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.c, b.c)) })
	var parts []string
	for _, e := range l {
		parts = append(parts, fmt.Sprintf("%d %s", e.n, e.c))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// pct formats a fraction as a percentage.
func pct(f float64) string { return fmt.Sprintf("%.3g%%", f*100) }

// bytesStr formats a byte count.
func bytesStr(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

// countStr formats a large count: 2250000 -> 2.25M.
func countStr(n float64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.3gM", n/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%.3gK", n/1e3)
	}
	return fmt.Sprintf("%.0f", n)
}

// quantile is the nearest-rank q-quantile (0 < q <= 1) of xs; 0 when empty.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// median is Median (the package's one median: the mean of the two middles of
// an even count), except that it is 0 for none instead of NaN: the scorers put
// it in findings, which are JSON (see ratio).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return Median(xs)
}

// meanSD returns the mean and (population) standard deviation of xs.
func meanSD(xs []float64) (float64, float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	mean := sum / float64(len(xs))
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(xs)))
}

// second is one second of a per-second series built from Recorded.Seconds.
type second struct {
	count, errors, late, dropped int64
	p99                          float64 // the largest per-key p99 of the second, ms (0: no success)
}

// perSecond bins the lines of Recorded.Seconds that keep accepts by second:
// bin i holds the interval that ends nearest Start + i s (ticks are a second
// apart). Per-key p99s cannot be merged: a bin's p99 is the largest of its
// keys' (the same rule for the baseline and the window compared to it). nil
// when the run recorded no per-second lines.
func (r *Recorded) perSecond(keep func(l results.IntervalLine) bool) []second {
	if len(r.Seconds) == 0 {
		return nil
	}
	n := int(math.Round(r.End.Sub(r.Start).Seconds())) + 1
	out := make([]second, max(n, 1))
	for _, l := range r.Seconds {
		if !keep(l) {
			continue
		}
		i := int(math.Round(l.Time().Sub(r.Start).Seconds()))
		if i < 0 || i >= len(out) {
			continue
		}
		b := &out[i]
		b.count += l.Count
		b.errors += l.ErrorsTotal()
		b.late += l.Late
		b.dropped += l.Dropped
		if l.Count > 0 {
			b.p99 = max(b.p99, l.P99Ms)
		}
	}
	return out
}

// bin is the first bin of perSecond whose interval ends at or after t.
func (r *Recorded) bin(t time.Time) int {
	return max(0, int(math.Ceil(t.Sub(r.Start).Seconds()-1e-9)))
}

// binTime is the end of bin i.
func (r *Recorded) binTime(i int) time.Time { return r.Start.Add(time.Duration(i) * time.Second) }

// binsIn returns the bins of w: those whose intervals end in (Start, End].
func (r *Recorded) binsIn(s []second, w Window) []second {
	lo, hi := r.binRange(len(s), w)
	if lo > hi {
		return nil
	}
	return s[lo : hi+1]
}

// binRange returns the first and last of n bins whose intervals end in w
// (lo > hi: none).
func (r *Recorded) binRange(n int, w Window) (lo, hi int) {
	lo = max(0, int(math.Floor(w.Start.Sub(r.Start).Seconds()+1e-9))+1)
	hi = min(n-1, int(math.Floor(w.End.Sub(r.Start).Seconds()+1e-9)))
	return lo, hi
}

// tally sums the per-second lines of keep over w (intervals ending in
// (Start, End]): counts and errors by class. ok is false without per-second
// lines.
func (r *Recorded) tally(w Window, keep func(l results.IntervalLine) bool) (s PhaseStats, ok bool) {
	if len(r.Seconds) == 0 {
		return s, false
	}
	s.Window, s.Seconds = w.Name, w.Duration().Seconds()
	for _, l := range r.Seconds {
		t := l.Time()
		if !t.After(w.Start) || t.After(w.End) || !keep(l) {
			continue
		}
		s.Count += l.Count
		s.Late += l.Late
		s.Dropped += l.Dropped
		s.Errors += results.AddCounts(&s.ByClass, l.Errors)
	}
	s.Rate = ratio(float64(s.Count), s.Seconds)
	return s, true
}

// opsOf lists a workload's ops of an access kind, as the summary records
// them: each op declares whether it changes data (loadgen.Op.ChangesData).
// A summary from before access kinds has none of either.
func (r *Recorded) opsOf(workload string, a results.Access) []string {
	var out []string
	if r.Summary == nil {
		return nil
	}
	for _, o := range r.Summary.Workloads {
		if o.Workload == workload && o.Access == a && !slices.Contains(out, o.Op) {
			out = append(out, o.Op)
		}
	}
	return out
}

// workloadsWithWrites lists the workloads with an op that changes data.
func (r *Recorded) workloadsWithWrites() []string {
	var out []string
	if r.Summary == nil {
		return nil
	}
	for _, o := range r.Summary.Workloads {
		if o.Access == results.Write && !slices.Contains(out, o.Workload) {
			out = append(out, o.Workload)
		}
	}
	return out
}

// streamsOf returns the summary's client streams of an access kind.
func (r *Recorded) streamsOf(a results.Access) []results.StreamGaps {
	if r.Summary == nil {
		return nil
	}
	var out []results.StreamGaps
	for _, sg := range r.Summary.Gaps {
		if sg.Access == a {
			out = append(out, sg)
		}
	}
	return out
}

// baseCount is the number of a workload's ops of an access kind that
// succeeded in the baseline on a node (0: every node).
func (r *Recorded) baseCount(workload string, a results.Access, node int) int64 {
	var n int64
	for _, op := range r.opsOf(workload, a) {
		if s, ok := r.stat(PhaseBaseline, workload, op, node); ok {
			n += s.Count
		}
	}
	return n
}

// indicator is one leading indicator of a Sample; value's ok is false when
// the sample does not have it.
type indicator struct {
	name  string
	floor float64 // the least rise above the baseline mean that counts as a move
	value func(s Sample) (float64, bool)
}

// indicators are the leading indicators a chain is looked for in.
var indicators = []indicator{
	// Galera's: a node that reports no cluster size has none (a sharded
	// cluster's aggregators and leaves, a replica).
	{"fc_paused_ms", 10, func(s Sample) (float64, bool) { return s.FCPausedMs, s.Up && s.ClusterSize > 0 }},
	{"recv_queue", 5, func(s Sample) (float64, bool) { return float64(s.RecvQueue), s.Up && s.ClusterSize > 0 }},
	{"send_queue", 5, func(s Sample) (float64, bool) { return float64(s.SendQueue), s.Up && s.ClusterSize > 0 }},
	{"replica_lag_s", 1, func(s Sample) (float64, bool) {
		if s.ReplicaLagS == nil {
			return 0, false
		}
		return *s.ReplicaLagS, true
	}},
	{"threads_running", 4, func(s Sample) (float64, bool) { return float64(s.ThreadsRunning), s.Up }},
	{"memory_pct", 5, func(s Sample) (float64, bool) { return s.MemoryPct, s.MemoryPct > 0 }},
}

// samplesOf returns a node's samples in w ([Start, End)), in time order.
func (r *Recorded) samplesOf(node int, w Window) []Sample {
	var out []Sample
	for _, s := range r.Indicators {
		if s.Node == node && w.Contains(s.T) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Sample) int { return a.T.Compare(b.T) })
	return out
}
