package experiments

import (
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// fd is a finding of mode "m" named name, held to budget by op.
func fd(name, op string, budget float64, v Verdict, value float64) Finding {
	return Finding{Mode: "m", Name: name, Op: op, Budget: budget, Verdict: v, Value: value, Unit: "s",
		Reason: string(v) + " reason", Evidence: []Evidence{{Detail: "value " + ftoa(value)}}}
}

func ftoa(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in  []float64
		med float64
	}{{[]float64{5}, 5}, {[]float64{3, 1, 2}, 2}, {[]float64{10, 1, 3, 2}, 2.5}, {[]float64{4, 4}, 4}} {
		in := append([]float64{}, tc.in...)
		if got := Median(tc.in); got != tc.med {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.med)
		}
		if !reflect.DeepEqual(in, tc.in) {
			t.Errorf("Median changed its input: %v", tc.in)
		}
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median of nothing is not NaN")
	}
}

func TestAggregateFindings(t *testing.T) {
	const gap = "gap"
	one := func(fs ...Finding) []Finding { return fs }
	type want struct {
		median, min, max float64 // NaN: no median
		verdict          Verdict
		unstable         bool
		n, runs          int
		counts           string
		reason           string // a part of the reason; "" not checked
		evidence         string // the median run's evidence; "" not checked
	}
	nan := math.NaN()
	for _, tc := range []struct {
		name string
		runs [][]Finding
		want want
	}{
		{"all pass: median, min, max, stable",
			[][]Finding{one(fd(gap, "<=", 5, Pass, 2)), one(fd(gap, "<=", 5, Pass, 4)), one(fd(gap, "<=", 5, Pass, 3))},
			want{3, 2, 4, Pass, false, 3, 3, "pass 3", "pass reason", "value 3"}},
		{"a failing run among passes: the verdict is the median's, unstable",
			[][]Finding{one(fd(gap, "<=", 5, Pass, 1)), one(fd(gap, "<=", 5, Fail, 8)), one(fd(gap, "<=", 5, Pass, 3))},
			want{3, 1, 8, Pass, true, 3, 3, "pass 2, fail 1", "", "value 3"}},
		{"the median fails: fail, unstable",
			[][]Finding{one(fd(gap, "<=", 5, Fail, 6.2)), one(fd(gap, "<=", 5, Pass, 1.9)), one(fd(gap, "<=", 5, Fail, 7))},
			want{6.2, 1.9, 7, Fail, true, 3, 3, "fail 2, pass 1", "fail reason", "value 6.2"}},
		{"even count, middle runs disagree: the median held to the budget passes",
			[][]Finding{one(fd(gap, "<=", 5, Pass, 4)), one(fd(gap, "<=", 5, Fail, 6))},
			want{5, 4, 6, Pass, true, 2, 2, "fail 1, pass 1", "the median 5 s held to the budget <= 5", ""}},
		{"even count, middle runs disagree: the median held to the budget fails",
			[][]Finding{one(fd(gap, "<=", 5, Pass, 4)), one(fd(gap, "<=", 5, Fail, 8))},
			want{6, 4, 8, Fail, true, 2, 2, "fail 1, pass 1", "held to the budget", ""}},
		{"even count, middle runs agree: their verdict",
			[][]Finding{one(fd(gap, "<=", 5, Fail, 9)), one(fd(gap, "<=", 5, Pass, 1)), one(fd(gap, "<=", 5, Fail, 6)), one(fd(gap, "<=", 5, Fail, 7))},
			want{6.5, 1, 9, Fail, true, 4, 4, "fail 3, pass 1", "fail reason", "value 6"}},
		{"higher is better",
			[][]Finding{one(fd(gap, ">=", 0.9, Fail, 0.8)), one(fd(gap, ">=", 0.9, Pass, 0.95)), one(fd(gap, ">=", 0.9, Pass, 0.99))},
			want{0.95, 0.8, 0.99, Pass, true, 3, 3, "pass 2, fail 1", "", ""}},
		{"no budget, odd count: the median run's verdict",
			[][]Finding{one(fd(gap, "", 0, Pass, 10)), one(fd(gap, "", 0, Fail, 60)), one(fd(gap, "", 0, Pass, 12))},
			want{12, 10, 60, Pass, true, 3, 3, "pass 2, fail 1", "", ""}},
		{"no budget, even count, middle runs disagree: the worse",
			[][]Finding{one(fd(gap, "", 0, Pass, 10)), one(fd(gap, "", 0, Fail, 60))},
			want{35, 10, 60, Fail, true, 2, 2, "fail 1, pass 1", "no budget", ""}},
		{"inconclusive values are no measurement; judged in fewer than half: inconclusive",
			[][]Finding{one(fd(gap, "<=", 5, Inconclusive, 0)), one(fd(gap, "<=", 5, Fail, 8)), one(fd(gap, "<=", 5, Inconclusive, 0))},
			want{8, 8, 8, Inconclusive, true, 1, 3, "inconclusive 2, fail 1", "judged in 1 of 3 runs: fewer than half", ""}},
		{"judged in half: the judged runs decide",
			[][]Finding{one(fd(gap, "<=", 5, Inconclusive, 0)), one(fd(gap, "<=", 5, Fail, 8))},
			want{8, 8, 8, Fail, true, 1, 2, "fail 1, inconclusive 1", "", ""}},
		{"inconclusive in every run: inconclusive, stable, no median",
			[][]Finding{one(fd(gap, "<=", 5, Inconclusive, 0)), one(fd(gap, "<=", 5, Inconclusive, 0))},
			want{nan, 0, 0, Inconclusive, false, 0, 2, "inconclusive 2", "inconclusive reason", ""}},
		{"not reported by a run: disagrees, counts as not judged",
			[][]Finding{one(fd(gap, "<=", 5, Pass, 1)), one(fd("other", "<=", 5, Pass, 1))},
			want{1, 1, 1, Pass, true, 1, 2, "pass 1, not reported 1", "", ""}},
		{"runs not counted (nil) are left out",
			[][]Finding{nil, one(fd(gap, "<=", 5, Pass, 2)), one(fd(gap, "<=", 5, Pass, 4))},
			want{3, 2, 4, Pass, false, 2, 2, "pass 2", "", ""}},
		{"one run",
			[][]Finding{one(fd(gap, "<=", 5, Fail, 7))},
			want{7, 7, 7, Fail, false, 1, 1, "fail 1", "fail reason", "value 7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			agg := AggregateFindings(tc.runs)
			var f *RepeatFinding
			for i := range agg {
				if agg[i].Name == gap {
					f = &agg[i]
				}
			}
			if f == nil {
				t.Fatalf("no aggregate of %q: %+v", gap, agg)
			}
			w := tc.want
			if math.IsNaN(w.median) {
				if f.Median != nil || f.Min != nil || f.Max != nil {
					t.Errorf("median %v min %v max %v, want none", f.Median, f.Min, f.Max)
				}
			} else if f.Median == nil || *f.Median != w.median || *f.Min != w.min || *f.Max != w.max {
				t.Errorf("median/min/max %v, want %v %v %v", []*float64{f.Median, f.Min, f.Max}, w.median, w.min, w.max)
			}
			if f.Verdict != w.verdict || f.Unstable != w.unstable || f.N != w.n || f.Runs != w.runs {
				t.Errorf("verdict %s unstable %t n %d runs %d; want %s %t %d %d", f.Verdict, f.Unstable, f.N, f.Runs, w.verdict, w.unstable, w.n, w.runs)
			}
			if got := f.CountsText(); got != w.counts {
				t.Errorf("counts %q, want %q", got, w.counts)
			}
			if !strings.Contains(f.Reason, w.reason) {
				t.Errorf("reason %q, want it to hold %q", f.Reason, w.reason)
			}
			if w.evidence != "" && (len(f.Evidence) != 1 || f.Evidence[0].Detail != w.evidence) {
				t.Errorf("evidence %+v, want the median run's (%q)", f.Evidence, w.evidence)
			}
			if len(f.Values) != len(tc.runs) || len(f.Verdicts) != len(tc.runs) {
				t.Errorf("%d values and %d verdicts for %d runs", len(f.Values), len(f.Verdicts), len(tc.runs))
			}
			for i, fs := range tc.runs {
				for _, x := range fs {
					if x.Name != gap {
						continue
					}
					if f.Verdicts[i] != x.Verdict {
						t.Errorf("run %d: verdict %q, want %q", i, f.Verdicts[i], x.Verdict)
					}
					judged := x.Verdict == Pass || x.Verdict == Fail
					if judged != (f.Values[i] != nil) || (judged && *f.Values[i] != x.Value) {
						t.Errorf("run %d: value %v, finding %+v", i, f.Values[i], x)
					}
				}
			}
			// The finding a JUnit report and the verdict table show.
			g := f.Finding()
			if g.Verdict != f.Verdict || (f.Median != nil && g.Value != *f.Median) || !strings.Contains(strings.Join(g.Notes, "\n"), f.CountsText()) ||
				strings.Contains(strings.Join(g.Notes, "\n"), "unstable") != f.Unstable {
				t.Errorf("as a finding: %+v", g)
			}
		})
	}
}

// A strict finding (one that tolerates no failure, as lost acknowledged writes)
// fails the aggregate when any run failed, and is inconclusive when none failed
// but one could not judge it; the median, min and max are reported all the same.
// The same runs, not strict, keep the verdict on the median.
func TestAggregateStrict(t *testing.T) {
	const lost = "lost"
	strict := func(v Verdict, value float64) Finding {
		f := fd(lost, "<=", 0, v, value)
		f.Strict = true
		return f
	}
	one := func(fs ...Finding) []Finding { return fs }
	for _, tc := range []struct {
		name             string
		runs             [][]Finding
		median, min, max float64 // NaN: no median
		verdict, lenient Verdict // strict, and the same runs not strict
		reason, evidence string  // parts of the reason; the evidence's detail ("" not checked)
	}{
		{"1 of 3 runs lost rows: the median is 0, the verdict fail",
			[][]Finding{one(strict(Pass, 0)), one(strict(Fail, 3)), one(strict(Pass, 0))},
			0, 0, 3, Fail, Pass, "1 of 3 runs failed and the finding tolerates no failure; run 2: fail reason", "value 3"},
		{"every run passed",
			[][]Finding{one(strict(Pass, 0)), one(strict(Pass, 0)), one(strict(Pass, 0))},
			0, 0, 0, Pass, Pass, "pass reason", "value 0"},
		{"several failed: the worst run's evidence",
			[][]Finding{one(strict(Pass, 0)), one(strict(Fail, 2)), one(strict(Pass, 0)), one(strict(Fail, 5)), one(strict(Pass, 0))},
			0, 0, 5, Fail, Pass, "2 of 5 runs failed", "value 5"},
		{"the median fails already",
			[][]Finding{one(strict(Fail, 4)), one(strict(Fail, 1)), one(strict(Pass, 0))},
			1, 0, 4, Fail, Fail, "fail reason", "value 1"},
		{"none failed, one could not judge it: inconclusive",
			[][]Finding{one(strict(Pass, 0)), one(strict(Inconclusive, 0)), one(strict(Pass, 0))},
			0, 0, 0, Inconclusive, Pass, "1 of 3 runs could not judge it", ""},
		{"none failed, one did not report it: inconclusive",
			[][]Finding{one(strict(Pass, 0)), one(fd("other", "<=", 0, Pass, 0)), one(strict(Pass, 0))},
			0, 0, 0, Inconclusive, Pass, "run 2: it did not report the finding", ""},
		{"judged in fewer than half, one failed: fail",
			[][]Finding{one(strict(Inconclusive, 0)), one(strict(Fail, 7)), one(strict(Inconclusive, 0))},
			7, 7, 7, Fail, Inconclusive, "1 of 3 runs failed", "value 7"},
		{"runs not counted (nil) do not count",
			[][]Finding{one(strict(Pass, 0)), nil, one(strict(Pass, 0))},
			0, 0, 0, Pass, Pass, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			agg := AggregateFindings(tc.runs)
			f := agg[slices.IndexFunc(agg, func(f RepeatFinding) bool { return f.Name == lost })]
			if f.Verdict != tc.verdict || !f.Strict {
				t.Errorf("verdict %s (strict %v), want %s: %s", f.Verdict, f.Strict, tc.verdict, f.Reason)
			}
			if f.Median == nil || *f.Median != tc.median || *f.Min != tc.min || *f.Max != tc.max {
				t.Errorf("median/min/max %v, want %v %v %v", []*float64{f.Median, f.Min, f.Max}, tc.median, tc.min, tc.max)
			}
			if !strings.Contains(f.Reason, tc.reason) {
				t.Errorf("reason %q, want it to hold %q", f.Reason, tc.reason)
			}
			if tc.evidence != "" && (len(f.Evidence) != 1 || f.Evidence[0].Detail != tc.evidence) {
				t.Errorf("evidence %+v, want %q", f.Evidence, tc.evidence)
			}
			unstable := slices.ContainsFunc(f.Verdicts, func(v Verdict) bool { return v != f.Verdicts[0] && v != "" }) ||
				(tc.runs[1] != nil && f.Verdicts[1] == "")
			if f.Unstable != unstable {
				t.Errorf("unstable %v, want %v (verdicts %v)", f.Unstable, unstable, f.Verdicts)
			}
			g := f.Finding()
			if g.Verdict != f.Verdict || !g.Strict || g.Value != *f.Median || !strings.Contains(strings.Join(g.Notes, "\n"), "strict") {
				t.Errorf("as a finding: %+v", g)
			}

			// The same runs, the finding not strict: the verdict on the median.
			lenient := make([][]Finding, len(tc.runs))
			for i, fs := range tc.runs {
				for _, x := range fs {
					x.Strict = false
					lenient[i] = append(lenient[i], x)
				}
			}
			agg = AggregateFindings(lenient)
			l := agg[slices.IndexFunc(agg, func(f RepeatFinding) bool { return f.Name == lost })]
			if l.Verdict != tc.lenient || l.Strict {
				t.Errorf("not strict: verdict %s (strict %v), want %s", l.Verdict, l.Strict, tc.lenient)
			}
		})
	}
}

func TestAggregateFindingsOrder(t *testing.T) {
	agg := AggregateFindings([][]Finding{
		{fd("b", "<=", 1, Pass, 0), fd("a", "<=", 1, Pass, 0)},
		{fd("c", "<=", 1, Pass, 0), fd("a", "<=", 1, Pass, 0)},
	})
	var names []string
	for _, f := range agg {
		names = append(names, f.Name)
	}
	if !reflect.DeepEqual(names, []string{"b", "a", "c"}) {
		t.Errorf("order %v, want first appearance: b a c", names)
	}
	if len(AggregateFindings(nil)) != 0 || len(AggregateFindings([][]Finding{nil, nil})) != 0 {
		t.Error("findings out of no run")
	}
}

func TestSettingsKeyIgnoresSeedAndDescription(t *testing.T) {
	spec := func(desc string, rate float64) *Spec {
		return &Spec{Name: "x", Description: desc, Workloads: []WorkloadSpec{{Name: "oltp", Kind: "oltp", Rate: rate}}}
	}
	a := SettingsKey(Settings(&RunFile{Spec: spec("one", 200), Seed: 1}))
	b := SettingsKey(Settings(&RunFile{Spec: spec("two", 200), Seed: 2}))
	c := SettingsKey(Settings(&RunFile{Spec: spec("one", 400), Seed: 1}))
	if a != b || a == c {
		t.Errorf("keys: same config %t (want true), other rate %t (want false)", a == b, a == c)
	}
}
