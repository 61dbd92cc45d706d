package experiments

// Aggregation of runs of one configuration: what makes a configuration (Settings),
// the median and spread of a finding over the runs, the verdict on the median and
// whether the runs agreed. Repeat and the compare package both use these, so a
// repeat directory and a comparison of the same runs give the same figures.

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Median of vs (the mean of the two middle values for an even count); vs is not
// changed. NaN for none. It is the package's one median: the scorers' (median,
// of per-second series) is it too, with 0 for none.
func Median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// RepeatFinding is one finding aggregated over the runs of one configuration.
type RepeatFinding struct {
	Mode   string  `json:"mode"`
	Name   string  `json:"name"`
	Unit   string  `json:"unit,omitempty"`
	Op     string  `json:"op"` // "<=", ">=", or "" (reported, or judged by a rule of its own)
	Budget float64 `json:"budget"`
	// Verdict is taken on the median, or for a Strict finding is the worst of the
	// runs' (see AggregateFindings).
	Verdict Verdict `json:"verdict"`
	// Strict: the finding tolerates no failure (Finding.Strict): any failing run
	// fails the aggregate.
	Strict bool `json:"strict,omitempty"`
	// Unstable: the runs did not all give the same verdict (an inconclusive run, or
	// one that did not report the finding, disagrees with one that judged it).
	Unstable bool `json:"unstable,omitempty"`
	// Median, Min and Max of the values of the runs that judged the finding (pass
	// or fail; an inconclusive value is no measurement); nil when none did.
	Median *float64 `json:"median"`
	Min    *float64 `json:"min,omitempty"`
	Max    *float64 `json:"max,omitempty"`
	// N is the number of runs that judged the finding, Runs the number aggregated.
	N    int `json:"n"`
	Runs int `json:"runs"`
	// Values and Verdicts are each run's, in the order of the runs given: a nil
	// value where the run did not judge the finding, verdict "" where it did not
	// report it (or was not aggregated).
	Values   []*float64 `json:"values"`
	Verdicts []Verdict  `json:"verdicts"`
	// Reason: why the verdict is what it is when a rule decided it (too few runs
	// judged it, the two middle runs disagreed, a strict finding's worst run),
	// else the median run's.
	Reason string `json:"reason,omitempty"`
	// MedianRun is the index of the run whose value is nearest the median (-1:
	// none); Evidence and Reference are that run's, or, when a strict finding's
	// verdict comes from a worse run, that run's.
	MedianRun int        `json:"median_run"`
	Evidence  []Evidence `json:"evidence,omitempty"`
	Reference string     `json:"reference,omitempty"`
}

// Counts are the runs per verdict, those that did not report the finding left out.
func (f RepeatFinding) Counts() map[Verdict]int {
	out := map[Verdict]int{}
	for _, v := range f.Verdicts {
		if v != "" {
			out[v]++
		}
	}
	return out
}

// CountsText is "pass 2, fail 1" (most first; a finding every run judged alike: "pass 3").
func (f RepeatFinding) CountsText() string {
	c := f.Counts()
	vs := make([]Verdict, 0, len(c))
	for v := range c {
		vs = append(vs, v)
	}
	slices.SortFunc(vs, func(a, b Verdict) int { return cmp.Or(cmp.Compare(c[b], c[a]), cmp.Compare(a, b)) })
	var parts []string
	reported := 0
	for _, v := range vs {
		parts = append(parts, fmt.Sprintf("%s %d", v, c[v]))
		reported += c[v]
	}
	if missing := f.Runs - reported; missing > 0 {
		parts = append(parts, fmt.Sprintf("not reported %d", missing))
	}
	return strings.Join(parts, ", ")
}

// SpreadText is "1.2 (0.9..1.4)": the median, with min..max when several runs
// judged the finding; "-" when none did.
func (f RepeatFinding) SpreadText() string {
	if f.Median == nil {
		return "-"
	}
	s := strconv.FormatFloat(*f.Median, 'g', 4, 64)
	if f.N >= 2 {
		s += " (" + strconv.FormatFloat(*f.Min, 'g', 4, 64) + ".." + strconv.FormatFloat(*f.Max, 'g', 4, 64) + ")"
	}
	return s
}

// Finding is the aggregate as a finding: the median as its value, the verdict on
// the median, the median run's evidence, and notes that give the spread, each
// run's verdict and whether the runs disagreed. JUnit and the verdict tables show
// a repeated experiment through it.
func (f RepeatFinding) Finding() Finding {
	out := Finding{Mode: f.Mode, Name: f.Name, Verdict: f.Verdict, Unit: f.Unit, Budget: f.Budget, Op: f.Op,
		Reason: f.Reason, Evidence: f.Evidence, Reference: f.Reference, Strict: f.Strict}
	if f.Median != nil {
		out.Value = *f.Median
	}
	out.Notes = append(out.Notes, fmt.Sprintf("median of %d run(s) that judged it, of %d: %s; verdicts: %s", f.N, f.Runs, f.SpreadText(), f.CountsText()))
	if f.Unstable {
		out.Notes = append(out.Notes, "unstable: the runs disagree, so one run's verdict is not to be relied on")
	}
	if f.Strict {
		out.Notes = append(out.Notes, "strict: the finding tolerates no failure, so the worst run's verdict is the aggregate's")
	}
	return out
}

// AggregateFindings aggregates the findings of runs of one configuration (runs[i]
// is run i's findings; nil: run i is not counted, as a run that measured nothing
// or was interrupted). Findings are matched by mode and name and kept in order of
// first appearance. For each:
//
//   - the median, min and max are over the values of the runs that judged it (pass
//     or fail);
//   - the verdict is taken on the median: when fewer than half of the counted runs
//     judged it, inconclusive; else the verdict of the run whose value is the
//     median; with an even count whose two middle runs disagree, the median held to
//     the budget (fail when the finding has no budget to hold it to);
//   - it is unstable when the counted runs did not all give the same verdict
//     (inconclusive, and not reported, count as verdicts here);
//   - a strict finding (Finding.Strict: one that tolerates no failure, as lost
//     acknowledged writes) takes the worst verdict of the counted runs when it is
//     worse than the median's: fail when any run failed, else inconclusive when
//     any run could not judge it (or did not report it), as a failure may hide
//     there. The median, min and max are reported all the same.
func AggregateFindings(runs [][]Finding) []RepeatFinding {
	type key struct{ mode, name string }
	type entry struct {
		f    RepeatFinding
		runs []*Finding // per run; nil: not reported
	}
	counted := 0
	for _, fs := range runs {
		if fs != nil {
			counted++
		}
	}
	var order []key
	byKey := map[key]*entry{}
	for i, fs := range runs {
		if fs == nil {
			continue
		}
		for j := range fs {
			f := &fs[j]
			k := key{f.Mode, f.Name}
			e, ok := byKey[k]
			if !ok {
				e = &entry{f: RepeatFinding{Mode: f.Mode, Name: f.Name, Unit: f.Unit, Runs: counted, MedianRun: -1}, runs: make([]*Finding, len(runs))}
				byKey[k] = e
				order = append(order, k)
			}
			if e.runs[i] == nil { // a finding reported twice in one run: the first
				e.runs[i] = f
			}
		}
	}
	out := make([]RepeatFinding, 0, len(order))
	for _, k := range order {
		e := byKey[k]
		out = append(out, aggregateOne(e.f, e.runs, runs))
	}
	return out
}

// aggregateOne fills f from each run's finding (nil: not reported; runs[i] nil:
// run i not counted).
func aggregateOne(f RepeatFinding, per []*Finding, runs [][]Finding) RepeatFinding {
	f = aggregateMedian(f, per, runs)
	if f.Strict {
		f = strictVerdict(f, per, runs)
	}
	return f
}

// aggregateMedian is aggregateOne up to the verdict on the median.
func aggregateMedian(f RepeatFinding, per []*Finding, runs [][]Finding) RepeatFinding {
	f.Values = make([]*float64, len(per))
	f.Verdicts = make([]Verdict, len(per))
	var judged []int // run indexes
	first, seenAny := Verdict(""), false
	for i, rf := range per {
		if runs[i] == nil {
			continue
		}
		v := Verdict("")
		if rf != nil {
			v = rf.Verdict
			f.Verdicts[i] = v
			f.Strict = f.Strict || rf.Strict
			if f.Unit == "" {
				f.Unit = rf.Unit
			}
			if rf.Verdict == Pass || rf.Verdict == Fail {
				x := rf.Value
				f.Values[i] = &x
				judged = append(judged, i)
				if f.Op == "" && rf.Op != "" {
					f.Op, f.Budget = rf.Op, rf.Budget
				}
			}
		}
		if !seenAny {
			first, seenAny = v, true
		} else if v != first {
			f.Unstable = true
		}
	}
	for _, rf := range per { // no judged run had a budget: any run's says how it is held
		if f.Op == "" && rf != nil && rf.Op != "" {
			f.Op, f.Budget = rf.Op, rf.Budget
		}
	}
	if f.Op == "" && len(judged) > 0 {
		f.Budget = per[judged[0]].Budget
	}
	f.N = len(judged)
	// Why the runs that did not judge it could not.
	firstReason := func() string {
		for _, rf := range per {
			if rf != nil && rf.Verdict != Pass && rf.Verdict != Fail && rf.Reason != "" {
				return rf.Reason
			}
		}
		return ""
	}
	if f.N == 0 {
		f.Verdict = Inconclusive
		f.Reason = firstReason()
		if f.Reason == "" {
			f.Reason = "no run judged it"
		}
		for _, rf := range per {
			if rf != nil {
				f.Reference = rf.Reference
				break
			}
		}
		return f
	}
	// Median and spread.
	vals := make([]float64, len(judged))
	for i, r := range judged {
		vals[i] = *f.Values[r]
	}
	med, lo, hi := Median(vals), slices.Min(vals), slices.Max(vals)
	f.Median, f.Min, f.Max = &med, &lo, &hi
	// The runs in value order; the median run is the middle one (of an even count,
	// the lower middle).
	sorted := slices.Clone(judged)
	slices.SortStableFunc(sorted, func(a, b int) int { return cmp.Compare(*f.Values[a], *f.Values[b]) })
	n := len(sorted)
	mid := sorted[(n-1)/2]
	f.MedianRun = mid
	mf := per[mid]
	f.Evidence, f.Reference = mf.Evidence, mf.Reference
	switch {
	case 2*f.N < f.Runs:
		f.Verdict = Inconclusive
		f.Reason = fmt.Sprintf("judged in %d of %d runs: fewer than half", f.N, f.Runs)
		if r := firstReason(); r != "" {
			f.Reason += " (" + r + ")"
		}
	case n%2 == 1 || per[sorted[n/2-1]].Verdict == per[sorted[n/2]].Verdict:
		f.Verdict, f.Reason = mf.Verdict, mf.Reason
	default:
		// The two middle runs disagree: the median itself decides.
		f.Verdict = holdTo(med, f.Op, f.Budget)
		switch f.Op {
		case "<=", ">=":
			f.Reason = fmt.Sprintf("the two middle runs disagree: the median %.4g %s held to the budget %s %.4g", med, f.Unit, f.Op, f.Budget)
		default:
			f.Reason = "the two middle runs disagree and the finding has no budget to hold the median to: the worse verdict"
		}
	}
	return f
}

// strictVerdict gives a strict finding the worst verdict of the counted runs when
// it is worse than f's (see AggregateFindings), with that run's reason and
// evidence: of failing runs, the one with the largest value.
func strictVerdict(f RepeatFinding, per []*Finding, runs [][]Finding) RepeatFinding {
	// A run that did not judge the finding, or did not report it, counts as
	// inconclusive.
	judged := func(v Verdict) Verdict {
		if v != Pass && v != Fail {
			return Inconclusive
		}
		return v
	}
	rank := map[Verdict]int{Pass: 0, Inconclusive: 1, Fail: 2}
	worst, n := -1, 0 // the worst run; how many runs have its verdict
	for i := range per {
		if runs[i] == nil {
			continue
		}
		v := judged(f.Verdicts[i])
		switch {
		case worst < 0 || rank[v] > rank[judged(f.Verdicts[worst])]:
			worst, n = i, 1
		case v == judged(f.Verdicts[worst]):
			n++
			if v == Fail && per[i].Value > per[worst].Value {
				worst = i
			}
		}
	}
	if worst < 0 || rank[judged(f.Verdicts[worst])] <= rank[f.Verdict] {
		return f
	}
	v := judged(f.Verdicts[worst])
	why := "it did not report the finding"
	if rf := per[worst]; rf != nil {
		why = rf.Reason
		f.Evidence, f.Reference = rf.Evidence, rf.Reference
	}
	if v == Fail {
		f.Reason = fmt.Sprintf("%d of %d runs failed and the finding tolerates no failure; run %d: %s", n, f.Runs, worst+1, why)
	} else {
		f.Reason = fmt.Sprintf("%d of %d runs could not judge it and the finding tolerates no failure, which one of them may hide; run %d: %s", n, f.Runs, worst+1, why)
	}
	f.Verdict = v
	return f
}

// holdTo is the verdict of value against budget by op; fail when there is no op.
func holdTo(value float64, op string, budget float64) Verdict {
	switch {
	case op == "<=" && value <= budget, op == ">=" && value >= budget:
		return Pass
	}
	return Fail
}

// Settings flattens what makes a run's experiment and configuration to path ->
// value, with the paths --set takes (workloads.oltp.rate, phases.baseline.duration,
// cluster.settings.KEY); list items are keyed by their name. The spec's description
// and its quick profile (already applied) are left out; so are the seed, the times
// and where the run wrote. The cluster the run ran on adds cluster_used.topology,
// cluster_used.nodes and cluster_used.lb; an exec target adds target; the server's
// version adds server_version. Runs with equal Settings are runs of one
// configuration: Repeat's runs, and a group of compare's.
func Settings(rf *RunFile) map[string]string {
	out := map[string]string{}
	if rf.Spec != nil {
		b, err := json.Marshal(rf.Spec)
		if err == nil {
			var v map[string]any
			if json.Unmarshal(b, &v) == nil {
				delete(v, "description")
				delete(v, "quick")
				flatten("", v, out)
			}
		}
		if rf.Spec.Cluster != nil && rf.Spec.Cluster.Memory > 0 {
			out["cluster.memory"] = sizeText(int64(rf.Spec.Cluster.Memory))
		}
	}
	if ci := rf.Cluster; ci != nil {
		out["cluster_used.topology"] = string(ci.Topology)
		out["cluster_used.nodes"] = strconv.Itoa(len(ci.Nodes))
		if ci.LB != nil {
			out["cluster_used.lb"] = "true"
		}
	}
	if rf.Target != "" {
		out["target"] = rf.Target
	}
	if rf.ServerVersion != "" {
		out["server_version"] = rf.ServerVersion
	}
	return out
}

// SettingsKey is one string for a flattened configuration: equal for equal
// Settings.
func SettingsKey(flat map[string]string) string {
	keys := make([]string, 0, len(flat))
	for k := range flat {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(strconv.Quote(k))
		b.WriteByte('=')
		b.WriteString(strconv.Quote(flat[k]))
		b.WriteByte('\n')
	}
	return b.String()
}

func flatten(prefix string, v any, out map[string]string) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			flatten(join(k), e, out)
		}
	case []any:
		scalars := true
		for _, e := range x {
			switch e.(type) {
			case map[string]any, []any:
				scalars = false
			}
		}
		if scalars {
			parts := make([]string, len(x))
			for i, e := range x {
				parts[i] = scalarText(e)
			}
			out[prefix] = strings.Join(parts, ",")
			return
		}
		var names []string
		for i, e := range x {
			key := strconv.Itoa(i)
			if m, ok := e.(map[string]any); ok {
				if n, ok := m["name"].(string); ok && n != "" {
					key = n
				}
				delete(m, "name") // the key says it
			}
			names = append(names, key)
			flatten(join(key), e, out)
		}
		out[prefix] = strings.Join(names, ",") // the items and their order
	default:
		out[prefix] = scalarText(x)
	}
}

func scalarText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

// sizeText is a byte size as the spec takes it: 512MiB.
func sizeText(n int64) string {
	for _, u := range []struct {
		s string
		m int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.m && n%u.m == 0 {
			return strconv.FormatInt(n/u.m, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10)
}
