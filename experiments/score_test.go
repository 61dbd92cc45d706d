package experiments

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/results"
)

// The recorded runs below are built by hand on one clock: st0 is the run's
// start; at(s) is s seconds later.
var st0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return st0.Add(time.Duration(s * float64(time.Second))) }

// run returns a three-node Galera run of 90 s: baseline 0-30 s, the phase
// named middle 30-60 s, recovery 60-90 s; an oltp workload (route all) and the
// faults given, each starting with the middle phase.
func run(middle string, fs ...FaultSpec) *Recorded {
	spec := &Spec{
		Name:      "test",
		Workloads: []WorkloadSpec{{Name: "oltp", Kind: "oltp", Rate: 300, Route: "all"}},
		Faults:    fs,
	}
	return &Recorded{
		Spec: spec, Topology: "galera", Nodes: 3, Start: at(0), End: at(90),
		Phases: []Window{
			{Name: PhaseBaseline, Start: at(0), End: at(30)},
			{Name: middle, Start: at(30), End: at(60)},
			{Name: PhaseRecovery, Start: at(60), End: at(90)},
		},
		Summary: &results.Summary{Start: at(0), End: at(90), Workloads: []results.OpSummary{
			{Workload: "oltp", Op: "point-read", Access: results.Read},
			{Workload: "oltp", Op: "insert", Access: results.Write},
		}},
	}
}

// stat adds a phase x workload x op x node's figures: count successes of p99
// (p99.9 at 1.5 p99, mean at p99/2), errors timeouts.
func (r *Recorded) addStat(phase, workload, op string, node int, count, errors int64, p99 float64) {
	w, _ := r.phase(phase)
	s := PhaseStats{Window: phase, Workload: workload, Op: op, Node: node, Seconds: w.Duration().Seconds(), Count: count, Errors: errors,
		Latency: results.Percentiles{P50: p99 / 3, P99: p99, P999: 1.5 * p99, Max: 2 * p99, Mean: p99 / 2}}
	s.Rate = ratio(float64(count), s.Seconds)
	if errors > 0 {
		s.ByClass = map[results.Class]int64{results.ClassTimeout: errors}
	}
	r.Phase = append(r.Phase, s)
}

// addSeconds adds per-second lines for the intervals ending in (from, to]
// seconds: count successes of p99 each.
func (r *Recorded) addSeconds(workload, op string, node, from, to int, count int64, p99 float64) {
	for i := from + 1; i <= to; i++ {
		r.Seconds = append(r.Seconds, results.IntervalLine{T: at(float64(i)).UnixMilli(), Workload: workload, Op: op, Node: node,
			Count: count, Errors: map[results.Class]int64{}, P99Ms: p99})
	}
}

// addGaps adds a stream's gaps.
func (r *Recorded) addGaps(workload string, node int, a results.Access, gaps ...results.Gap) {
	sg := results.StreamGaps{Workload: workload, Node: node, Access: a, Gaps: gaps}
	for _, g := range gaps {
		sg.Longest = max(sg.Longest, g.Duration)
	}
	r.Summary.Gaps = append(r.Summary.Gaps, sg)
}

// setCluster sets the cluster-wide stream of an access kind.
func (r *Recorded) setCluster(a results.Access, gaps ...results.Gap) {
	r.Summary.Cluster = slices.DeleteFunc(r.Summary.Cluster, func(sg results.StreamGaps) bool { return sg.Access == a })
	sg := results.StreamGaps{Access: a, Gaps: gaps}
	for _, g := range gaps {
		sg.Longest = max(sg.Longest, g.Duration)
	}
	r.Summary.Cluster = append(r.Summary.Cluster, sg)
}

func gap(from, to float64, ongoing bool) results.Gap {
	return results.Gap{Start: at(from), End: at(to), Duration: to - from, Failed: 7, Late: 2, Ongoing: ongoing}
}

// sample adds one indicator sample.
func (r *Recorded) sample(node int, t float64, set func(s *Sample)) {
	s := Sample{T: at(t), Node: node, Up: true, Running: true, ClusterSize: 3, Primary: true, Ready: true}
	if set != nil {
		set(&s)
	}
	r.Indicators = append(r.Indicators, s)
}

// score scores r's mode with the default budgets and the overrides.
func score(t *testing.T, mode string, r *Recorded, overrides BudgetSet) []Finding {
	t.Helper()
	reg := NewScorers()
	s, ok := reg.Get(mode)
	if !ok {
		t.Fatalf("no scorer for %s", mode)
	}
	b, err := reg.Budgets(mode, overrides)
	if err != nil {
		t.Fatal(err)
	}
	fs := s.Score(r, b)
	for _, f := range fs {
		if f.Mode != mode || f.Name == "" || f.Verdict == "" || f.Reference == "" {
			t.Errorf("incomplete finding %+v", f)
		}
		if f.Verdict == Inconclusive && f.Reason == "" {
			t.Errorf("%s: inconclusive without a reason", f.Name)
		}
		if _, err := json.Marshal(f); err != nil {
			t.Errorf("%s: %v", f.Name, err)
		}
	}
	return fs
}

// want finds the finding named name and checks its verdict and (unless
// value < 0) its value within 1e-6; then that every note fragment is there.
func want(t *testing.T, fs []Finding, name string, v Verdict, value float64, fragments ...string) Finding {
	t.Helper()
	i := slices.IndexFunc(fs, func(f Finding) bool { return f.Name == name })
	if i < 0 {
		var names []string
		for _, f := range fs {
			names = append(names, f.Name)
		}
		t.Fatalf("no finding %q in %q", name, names)
	}
	f := fs[i]
	if f.Verdict != v || value >= 0 && (f.Value-value > 1e-6 || value-f.Value > 1e-6) {
		t.Errorf("%s: %s %g (reason %q), want %s %g", name, f.Verdict, f.Value, f.Reason, v, value)
	}
	text := f.Reason + "\n" + strings.Join(f.Notes, "\n")
	for _, fr := range fragments {
		if !strings.Contains(text, fr) {
			t.Errorf("%s: no %q in\n%s", name, fr, text)
		}
	}
	return f
}

func TestScorerRegistry(t *testing.T) {
	reg := NewScorers()
	for _, m := range Modes {
		s, ok := reg.Get(m)
		if !ok || s.Mode() != m {
			t.Fatalf("no scorer for %s", m)
		}
		if _, err := reg.Budgets(m, nil); err != nil {
			t.Errorf("%s defaults: %v", m, err)
		}
	}
	defaults := map[string]map[string]float64{
		ModeFailover:       {"gap": 5},
		ModeHTAPContention: {"p99-inflation": 3, "error-rate": 0.001},
		ModeSchemaChange:   {"write-stall": 1, "write-stall-rebuild": 0},
		ModeFailSideways:   {"p99-inflation": 3},
		ModeFreshness:      {"staleness-p99": 0},
		ModeMemoryHeadroom: {"oltp-error-rate": 0.001},
		ModeDataMovement:   {"movement-ratio": 1000},
	}
	for m, kv := range defaults {
		b, _ := reg.Budgets(m, nil)
		for k, v := range kv {
			if got, ok := b[k]; !ok || got != v {
				t.Errorf("%s.%s = %g (%v), want %g", m, k, got, ok, v)
			}
		}
	}
	b, err := reg.Budgets(ModeFailover, BudgetSet{"gap": "2s"})
	if err != nil || b.Get("gap") != 2 {
		t.Errorf("override: %v %v", b, err)
	}
	if _, err := reg.Budgets(ModeFailover, BudgetSet{"gapp": "2s"}); err == nil || !strings.Contains(err.Error(), "gap") {
		t.Errorf("unknown key: %v", err)
	}
	// Score runs durability always.
	r := run("fault")
	r.Spec.Modes = []string{ModeFreshness}
	fs := reg.Score(r)
	if len(fs) != 2 || fs[0].Mode != ModeFreshness || fs[1].Mode != ModeDurability {
		t.Errorf("Score: %+v", fs)
	}
}

// failoverRun: node 2 killed at 30 s, recovered at 45 s, serving again at 50 s;
// each node serves 100 ops/s, node 2 none from 30 to 50 s (10 errors a second
// to 45 s; the fault phase's figures say 150 errors too); the streams of
// nodes 1 and 3 see gaps of n1 and n3 s at 30 s (reads and writes alike),
// node 2's a 20 s gap; no write succeeded anywhere for min(n1, n3) s from 30.2 s.
func failoverRun(n1, n3 float64) *Recorded {
	r := run("fault", FaultSpec{Name: "node-kill", Kind: "node-kill", Phase: "fault", Node: "2"})
	r.Faults = []FaultRecord{{Name: "node-kill", Kind: "node-kill", Nodes: []int{2}, Injected: at(29.9), Effective: at(30),
		Recovered: at(45), Healthy: at(50), State: "recovered"}}
	for n := 1; n <= 3; n++ {
		r.addStat(PhaseBaseline, "oltp", "", n, 3000, 0, 5)
		r.addStat(PhaseBaseline, "oltp", "point-read", n, 2400, 0, 5)
		r.addStat(PhaseBaseline, "oltp", "insert", n, 600, 0, 5)
		r.addStat("fault", "oltp", "", n, 3000, 0, 6)
		if n == 2 {
			r.addSeconds("oltp", "point-read", n, 0, 30, 100, 5)
			r.addSeconds("oltp", "point-read", n, 50, 90, 100, 5)
			for i := 31; i <= 45; i++ { // 150 failed
				r.Seconds = append(r.Seconds, results.IntervalLine{T: at(float64(i)).UnixMilli(), Workload: "oltp", Op: "point-read", Node: 2,
					Errors: map[results.Class]int64{results.ClassConnection: 10}})
			}
		} else {
			r.addSeconds("oltp", "point-read", n, 0, 90, 100, 5)
		}
	}
	r.addStat(PhaseBaseline, "oltp", "", 0, 9000, 0, 5)
	r.addStat(PhaseBaseline, "oltp", "insert", 0, 1800, 0, 5)
	r.addStat("fault", "oltp", "", 0, 7000, 150, 6)
	for _, a := range results.Accesses {
		r.addGaps("oltp", 1, a, gap(30, 30+n1, false))
		r.addGaps("oltp", 2, a, gap(29.9, 50, false))
		r.addGaps("oltp", 3, a, gap(30.2, 30.2+n3, false))
	}
	if c := min(30+n1, 30.2+n3); c > 30.2 {
		r.setCluster(results.Write, gap(30.2, c, false))
	} else {
		r.setCluster(results.Write)
	}
	r.setCluster(results.Read)
	for n := 1; n <= 3; n++ {
		for s := 1; s < 90; s++ {
			size := 3
			if s >= 33 && s < 50 {
				size = 2
			}
			up := n != 2 || s < 30 || s >= 50
			r.sample(n, float64(s), func(x *Sample) { x.ClusterSize, x.Up = size, up })
		}
	}
	return r
}

func TestScoreFailover(t *testing.T) {
	t.Run("pass", func(t *testing.T) {
		fs := score(t, ModeFailover, failoverRun(0.8, 1.2), nil)
		f := want(t, fs, "longest write gap, surviving nodes", Pass, 1.2,
			"oltp writes on node 2 (faulted): gap 20.10 s", "reported, not judged")
		if f.Budget != 5 || f.Op != "<=" || f.Unit != UnitSeconds {
			t.Errorf("budget %g %q %q", f.Budget, f.Op, f.Unit)
		}
		if len(f.Evidence) != 3 || f.Evidence[0].Access != "write" || !strings.Contains(f.Evidence[0].Text(st0), "oltp writes n1") {
			t.Errorf("evidence %+v", f.Evidence)
		}
		want(t, fs, "longest read gap, surviving nodes", Pass, 1.2, "oltp reads on node 3: gap 1.20 s")
		// 150 failed at the baseline's 300 ops/s: 25,000 at 50K TPS.
		want(t, fs, "cluster-wide write gap", Pass, 0.6, "150 (0 late, 0 dropped)", "25K failed",
			"the cluster noticed 3.0 s after the effect: node 1 saw cluster size 3 -> 2",
			"rejoin: the faulted node served again 5.0 s after the fault was recovered")
		// Throughput is 2/3 until node 2 serves again at 50 s: 20 s after the effect.
		want(t, fs, "throughput back to baseline", Pass, 20, "throughput back 5 s after the fault was recovered")
	})
	t.Run("fail", func(t *testing.T) {
		fs := score(t, ModeFailover, failoverRun(0.8, 7), nil)
		want(t, fs, "longest write gap, surviving nodes", Fail, 7, "oltp on node 3 had no successful write for 7.0 s")
		want(t, fs, "longest read gap, surviving nodes", Fail, 7, "oltp on node 3 had no successful read for 7.0 s")
	})
	t.Run("writes stall behind reads", func(t *testing.T) {
		// The Galera pause: reads go on everywhere, no write succeeds on any
		// node for 6 s.
		r := failoverRun(0.8, 1.2)
		for i, sg := range r.Summary.Gaps {
			if sg.Access == results.Write && sg.Node != 2 {
				r.Summary.Gaps[i].Gaps = []results.Gap{gap(30.1, 36.1, false)}
			}
		}
		r.setCluster(results.Write, gap(30.1, 36.1, false))
		fs := score(t, ModeFailover, r, nil)
		want(t, fs, "longest write gap, surviving nodes", Fail, 6, "no successful write for 6.0 s from +30.1 s (budget 5.0 s)",
			"every stream of writes routed to a surviving node stalled")
		want(t, fs, "longest read gap, surviving nodes", Pass, 1.2)
		c := want(t, fs, "cluster-wide write gap", Fail, 6, "could not write at all for 6.0 s from +30.1 s")
		if len(c.Evidence) != 1 || !strings.Contains(c.Evidence[0].Text(st0), "writes in fault:node-kill 30.1s-36.1s: no write succeeded on any node for 6.00 s") {
			t.Errorf("cluster-wide evidence %+v", c.Evidence)
		}
		// Budgets per access kind.
		fs = score(t, ModeFailover, r, BudgetSet{"write-gap": "10s", "read-gap": "1s"})
		want(t, fs, "longest write gap, surviving nodes", Pass, 6)
		want(t, fs, "cluster-wide write gap", Pass, 6)
		want(t, fs, "longest read gap, surviving nodes", Fail, 1.2)
	})
	t.Run("budget overridden", func(t *testing.T) {
		fs := score(t, ModeFailover, failoverRun(0.8, 7), BudgetSet{"gap": "10s"})
		want(t, fs, "longest write gap, surviving nodes", Pass, 7)
		want(t, fs, "longest read gap, surviving nodes", Pass, 7)
	})
	t.Run("quorum lost", func(t *testing.T) {
		r := failoverRun(0, 0)
		r.Faults[0].Nodes, r.Faults[0].Healthy = []int{2, 3}, time.Time{}
		r.Summary.Gaps = nil
		for _, a := range results.Accesses {
			for n := 1; n <= 3; n++ {
				r.addGaps("oltp", n, a, gap(30, 90, true))
			}
		}
		r.setCluster(results.Write, gap(30, 90, true))
		r.Seconds = nil
		for n := 1; n <= 3; n++ {
			r.addSeconds("oltp", "point-read", n, 0, 30, 100, 5)
		}
		r.sample(1, 40.5, func(s *Sample) { s.ClusterSize, s.Primary = 1, false })
		fs := score(t, ModeFailover, r, nil)
		want(t, fs, "longest write gap, surviving nodes", Fail, 60, "never had a successful write again", "lost quorum", "node 1 reported non-Primary")
		want(t, fs, "longest read gap, surviving nodes", Fail, 60, "never had a successful read again")
		want(t, fs, "cluster-wide write gap", Fail, 60, "none did again")
		want(t, fs, "throughput back to baseline", Fail, 60, "not back")
	})
	t.Run("never took effect", func(t *testing.T) {
		r := failoverRun(0.8, 1.2)
		r.Faults[0].Effective, r.Faults[0].Error = time.Time{}, "container already stopped"
		r.Spec.Faults[0].Expect = "no-effect"
		fs := score(t, ModeFailover, r, nil)
		for _, name := range []string{"longest write gap, surviving nodes", "longest read gap, surviving nodes", "cluster-wide write gap"} {
			want(t, fs, name, Inconclusive, -1, "never took effect", "expect", "container already stopped")
		}
		want(t, fs, "throughput back to baseline", Inconclusive, -1, "never took effect")
	})
	t.Run("too few samples", func(t *testing.T) {
		r := failoverRun(0.8, 1.2)
		r.Phase = nil
		for n := 1; n <= 3; n++ {
			r.addStat(PhaseBaseline, "oltp", "", n, 5, 0, 5)
			r.addStat(PhaseBaseline, "oltp", "insert", n, 1, 0, 5)
		}
		r.Seconds = nil
		fs := score(t, ModeFailover, r, nil)
		want(t, fs, "longest write gap, surviving nodes", Inconclusive, -1, "too few samples: 2 baseline writes")
		want(t, fs, "longest read gap, surviving nodes", Inconclusive, -1, "too few samples: 0 baseline reads")
		want(t, fs, "cluster-wide write gap", Inconclusive, -1, "too few samples")
		want(t, fs, "throughput back to baseline", Inconclusive, -1, "too few samples")
	})
	t.Run("a summary from before access kinds", func(t *testing.T) {
		r := failoverRun(0.8, 1.2)
		for i := range r.Summary.Gaps {
			r.Summary.Gaps[i].Access = ""
		}
		r.Summary.Cluster, r.Summary.Workloads = nil, nil
		fs := score(t, ModeFailover, r, nil)
		want(t, fs, "longest write gap, surviving nodes", Inconclusive, -1, "predates access kinds")
		want(t, fs, "cluster-wide write gap", Inconclusive, -1, "predates access kinds")
	})
	t.Run("throughput never back", func(t *testing.T) {
		r := failoverRun(0.8, 1.2)
		r.Faults[0].Healthy = time.Time{}
		r.Seconds = slices.DeleteFunc(r.Seconds, func(l results.IntervalLine) bool { return l.Node == 2 && l.T > at(30).UnixMilli() })
		fs := score(t, ModeFailover, r, nil)
		want(t, fs, "cluster-wide write gap", Pass, 0.6, "did not serve again")
		want(t, fs, "throughput back to baseline", Fail, 60, "last 5 s median 200 ops/s, baseline 300")
	})
	t.Run("fault held to the end", func(t *testing.T) {
		r := failoverRun(0.8, 1.2)
		r.Faults[0].Recovered, r.Faults[0].Healthy = time.Time{}, time.Time{}
		r.Seconds = slices.DeleteFunc(r.Seconds, func(l results.IntervalLine) bool { return l.Node == 2 && l.T > at(30).UnixMilli() })
		fs := score(t, ModeFailover, r, nil)
		want(t, fs, "cluster-wide write gap", Pass, 0.6, "the fault was not recovered before the run's end")
		want(t, fs, "throughput back to baseline", Inconclusive, -1, "held until the run's end")
	})
	t.Run("no per-second series", func(t *testing.T) {
		r := failoverRun(0.8, 1.2)
		r.Seconds = nil
		r.addStat(PhaseRecovery, "oltp", "", 0, 9000, 0, 5)
		fs := score(t, ModeFailover, r, nil)
		want(t, fs, "throughput back to baseline", Pass, 0, "judged on phase recovery as a whole")
	})
	t.Run("no fault", func(t *testing.T) {
		r := failoverRun(0.8, 1.2)
		r.Faults = nil
		fs := score(t, ModeFailover, r, nil)
		want(t, fs, "longest write gap, surviving nodes", Inconclusive, -1, "no fault")
	})
}

// htapRun: an analytics spike on every node from 30 to 60 s; OLTP p99 5 ms in
// the baseline and spikeP99 in the spike, with errs errors in the spike.
func htapRun(spikeP99 float64, errs int64) *Recorded {
	r := run("spike", FaultSpec{Name: "analytics-spike", Kind: "analytics-spike", Phase: "spike", Node: "1,2,3"})
	r.Faults = []FaultRecord{{Name: "analytics-spike", Kind: "analytics-spike", Nodes: []int{1, 2, 3}, Injected: at(30), Effective: at(30), Recovered: at(60), Healthy: at(60)}}
	r.addStat(PhaseBaseline, "oltp", "", 0, 9000, 0, 5)
	r.addStat("spike", "oltp", "", 0, 9000, errs, spikeP99)
	r.addStat(PhaseBaseline, "oltp", "insert", 0, 1800, 0, 6)
	r.addStat("spike", "oltp", "insert", 0, 1800, 0, spikeP99*1.2)
	for n := 1; n <= 3; n++ {
		r.addStat(PhaseBaseline, "oltp", "", n, 3000, 0, 5)
		r.addStat("spike", "oltp", "", n, 3000, 0, spikeP99)
	}
	return r
}

func TestScoreHTAP(t *testing.T) {
	t.Run("pass", func(t *testing.T) {
		fs := score(t, ModeHTAPContention, htapRun(10, 5), nil)
		want(t, fs, "oltp p99 inflation", Pass, 2, "p99 5.00 -> 10.00 ms (2.0x)", "write p99 (insert): 6.00 -> 12.00 ms", "node 1 2.0x")
		want(t, fs, "oltp error rate", Pass, 5.0/9005, "5 timeout")
	})
	t.Run("CPU and threads per node as evidence", func(t *testing.T) {
		r := htapRun(50, 0)
		for s := 0; s < 60; s++ {
			cpu, threads := 20.0, int64(2)
			if s >= 30 {
				cpu, threads = 20+float64(s-30)*5, 9 // up to 165% in the spike
			}
			if s == 0 {
				cpu = 0 // the first sample has no CPU reading: not a zero in the mean
			}
			r.sample(2, float64(s), func(x *Sample) { x.CPUPct, x.ThreadsRunning = cpu, threads })
		}
		fs := score(t, ModeHTAPContention, r, nil)
		want(t, fs, "oltp p99 inflation", Fail, 10,
			"CPU (% of one core) (baseline mean -> max in the window): node 2 20.0 -> max 165",
			"threads running (baseline mean -> max in the window): node 2 2.0 -> max 9")
	})
	t.Run("fail", func(t *testing.T) {
		fs := score(t, ModeHTAPContention, htapRun(50, 20), nil)
		f := want(t, fs, "oltp p99 inflation", Fail, 10)
		if !strings.Contains(f.Reference, "5 ms -> 50 ms (10x)") {
			t.Errorf("reference %q", f.Reference)
		}
		want(t, fs, "oltp error rate", Fail, 20.0/9020)
	})
	t.Run("budgets overridden", func(t *testing.T) {
		fs := score(t, ModeHTAPContention, htapRun(50, 20), BudgetSet{"p99-inflation": "12", "error-rate": "1%"})
		want(t, fs, "oltp p99 inflation", Pass, 10)
		want(t, fs, "oltp error rate", Pass, 20.0/9020)
	})
	t.Run("never took effect", func(t *testing.T) {
		r := htapRun(50, 20)
		r.Faults[0].Effective = time.Time{}
		fs := score(t, ModeHTAPContention, r, nil)
		want(t, fs, "oltp p99 inflation", Inconclusive, -1, "never took effect")
		want(t, fs, "oltp error rate", Inconclusive, -1, "never took effect")
	})
	t.Run("too few samples", func(t *testing.T) {
		r := htapRun(50, 0)
		r.Phase = nil
		r.addStat(PhaseBaseline, "oltp", "", 0, 9000, 0, 5)
		r.addStat("spike", "oltp", "", 0, 10, 0, 50)
		fs := score(t, ModeHTAPContention, r, nil)
		want(t, fs, "oltp p99 inflation", Inconclusive, -1, "too few samples")
	})
	t.Run("spike as a phase", func(t *testing.T) {
		r := htapRun(20, 0)
		r.Faults, r.Spec.Faults = nil, nil
		r.Spec.Workloads = append(r.Spec.Workloads, WorkloadSpec{Name: "scans", Kind: "analytics", Concurrency: 4, During: []string{"spike"}})
		fs := score(t, ModeHTAPContention, r, nil)
		want(t, fs, "oltp p99 inflation", Fail, 4)
	})
}

// schemaRun: an ALTER (variant) from 40 to 40+alter s, writes (insert) and
// reads on every node; the stream of node 1 stalls for stall s at 40 s.
func schemaRun(variant string, alter, stall float64) *Recorded {
	r := run("alter", FaultSpec{Name: "alter", Kind: "schema-change", Phase: "alter", Node: "1", Params: map[string]string{"variant": variant}})
	r.Faults = []FaultRecord{{Name: "alter", Kind: "schema-change", Nodes: []int{1}, Params: map[string]string{"variant": variant},
		Injected: at(40), Effective: at(40), Recovered: at(40 + alter + 0.5), Healthy: at(40 + alter + 0.5),
		Measurements: []faults.Measurement{
			{Name: faults.MeasureTableSize, Value: 50 << 20, Unit: "bytes"},
			{Name: faults.MeasureAlterStart, Value: float64(at(40).UnixNano()) / 1e9, Unit: "unix-s"},
			{Name: faults.MeasureAlterEnd, Value: float64(at(40+alter).UnixNano()) / 1e9, Unit: "unix-s"},
			{Name: faults.MeasureAlterDuration, Value: alter, Unit: "s", Note: "variant=" + variant},
		}}}
	r.addStat(PhaseBaseline, "oltp", "", 0, 9000, 0, 5)
	r.addStat(PhaseBaseline, "oltp", "insert", 0, 4500, 0, 5)
	r.addStat("alter", "oltp", "", 0, 9000, 0, 9)
	r.addStat("alter", "oltp", "insert", 0, 4400, 12, 12)
	for n := 1; n <= 3; n++ {
		r.addGaps("oltp", n, results.Read)
	}
	r.addGaps("oltp", 1, results.Write)
	if stall > 0 {
		r.Summary.Gaps[3].Gaps = []results.Gap{gap(40, 40+stall, false)}
	}
	r.addGaps("oltp", 2, results.Write, gap(40.2, 40.2+stall/2, false))
	r.addGaps("oltp", 3, results.Write)
	r.setCluster(results.Write)
	return r
}

func TestScoreSchemaChange(t *testing.T) {
	t.Run("pass", func(t *testing.T) {
		fs := score(t, ModeSchemaChange, schemaRun("add-nullable", 0.3, 0.6), nil)
		want(t, fs, "longest write stall", Pass, 0.6, "ALTER ran 0.30 s (variant=add-nullable)", "cluster-wide: some node had a write succeed throughout",
			"oltp p99 5.00 ms in the baseline, 9.00 ms in alter (1.8x)")
	})
	t.Run("fail", func(t *testing.T) {
		fs := score(t, ModeSchemaChange, schemaRun("add-nullable", 2, 3), nil)
		want(t, fs, "longest write stall", Fail, 3, "writes stalled 3.00 s during the add-nullable ALTER", "oltp on node 1")
	})
	t.Run("rebuild reported only", func(t *testing.T) {
		fs := score(t, ModeSchemaChange, schemaRun("add-not-null-default", 12, 12), nil)
		f := want(t, fs, "longest write stall", Pass, 12, "reported only")
		if f.Op != "" || f.Budget != 0 {
			t.Errorf("unset budget held: %q %g", f.Op, f.Budget)
		}
	})
	t.Run("rebuild budget set", func(t *testing.T) {
		fs := score(t, ModeSchemaChange, schemaRun("add-not-null-default", 12, 12), BudgetSet{"write-stall-rebuild": "5s"})
		want(t, fs, "longest write stall", Fail, 12)
	})
	t.Run("reads hide the stall", func(t *testing.T) {
		// Reads went on everywhere; no write succeeded on node 2 from 40 to 44 s.
		r := schemaRun("add-nullable", 5, 0)
		r.Summary.Gaps[4].Gaps = []results.Gap{gap(40, 44, false)}
		fs := score(t, ModeSchemaChange, r, nil)
		f := want(t, fs, "longest write stall", Fail, 4, "oltp on node 2, no successful write for 4.00 s from +40.0 s")
		if len(f.Evidence) != 1 || f.Evidence[0].Access != "write" || f.Evidence[0].Node != 2 {
			t.Errorf("evidence %+v", f.Evidence)
		}
	})
	t.Run("cluster-wide", func(t *testing.T) {
		r := schemaRun("add-nullable", 2, 3)
		r.setCluster(results.Write, gap(40.5, 41.5, false))
		fs := score(t, ModeSchemaChange, r, nil)
		want(t, fs, "longest write stall", Fail, 3, "cluster-wide: no write succeeded on any node for 1.00 s from +40.5 s")
	})
	t.Run("a summary from before access kinds", func(t *testing.T) {
		r := schemaRun("add-nullable", 2, 3)
		r.Summary.Workloads = nil
		fs := score(t, ModeSchemaChange, r, nil)
		want(t, fs, "longest write stall", Inconclusive, -1, "no workload wrote")
	})
	t.Run("never took effect", func(t *testing.T) {
		r := schemaRun("add-nullable", 2, 3)
		r.Faults[0].Effective = time.Time{}
		fs := score(t, ModeSchemaChange, r, nil)
		want(t, fs, "longest write stall", Inconclusive, -1, "never took effect")
	})
	t.Run("no writes", func(t *testing.T) {
		r := schemaRun("add-nullable", 2, 3)
		r.Phase = slices.DeleteFunc(r.Phase, func(s PhaseStats) bool { return s.Op == "insert" })
		fs := score(t, ModeSchemaChange, r, nil)
		want(t, fs, "longest write stall", Inconclusive, -1, "no workload wrote")
	})
}

// sidewaysRun: a batch spike on node 1 from 30 to 60 s; OLTP p99 5 ms
// everywhere in the baseline, 30 ms on node 1, 6 on node 2 and n3 ms on node 3
// in the spike (from 36 s on, per second). Node 2's receive queue grows at 33 s.
func sidewaysRun(n3 float64) *Recorded {
	r := run("spike", FaultSpec{Name: "batch-spike", Kind: "batch-spike", Phase: "spike", Node: "1"})
	r.Faults = []FaultRecord{{Name: "batch-spike", Kind: "batch-spike", Nodes: []int{1}, Injected: at(30), Effective: at(30), Recovered: at(60), Healthy: at(60)}}
	spike := map[int]float64{1: 30, 2: 6, 3: n3}
	for n := 1; n <= 3; n++ {
		r.addStat(PhaseBaseline, "oltp", "", n, 3000, 0, 5)
		r.addStat("spike", "oltp", "", n, 3000, 0, spike[n])
		r.addSeconds("oltp", "point-read", n, 0, 36, 100, 5)
		r.addSeconds("oltp", "point-read", n, 36, 60, 100, spike[n])
		r.addSeconds("oltp", "point-read", n, 60, 90, 100, 5)
		for s := 1; s < 90; s++ {
			q := int64(s % 2) // 0, 1, 0, 1: noise
			if n == 2 && s >= 33 && s < 60 {
				q = 40
			}
			threads := int64(2)
			if n == 1 && s >= 35 && s < 60 {
				threads = 30
			}
			r.sample(n, float64(s), func(x *Sample) { x.RecvQueue, x.ThreadsRunning = q, threads })
		}
	}
	return r
}

func TestScoreFailSideways(t *testing.T) {
	t.Run("fail with a chain", func(t *testing.T) {
		fs := score(t, ModeFailSideways, sidewaysRun(20), nil)
		want(t, fs, "p99 inflation, other nodes", Fail, 4,
			"oltp on node 1 (target): p99 5.00 -> 30.00 ms (6.0x)",
			"cause: batch-spike on node 1 at +30.0 s",
			"first indicator to move: recv_queue on node 2 at +33.0 s",
			"symptom: p99 on node 3 above 3.0x its baseline at +36.0 s, 6.0 s after the cause, 3.0 s after the first indicator")
	})
	t.Run("pass", func(t *testing.T) {
		fs := score(t, ModeFailSideways, sidewaysRun(8), nil)
		want(t, fs, "p99 inflation, other nodes", Pass, 1.6, "no symptom", "first indicator to move: recv_queue on node 2")
	})
	t.Run("budget overridden", func(t *testing.T) {
		fs := score(t, ModeFailSideways, sidewaysRun(20), BudgetSet{"p99-inflation": "5"})
		want(t, fs, "p99 inflation, other nodes", Pass, 4)
	})
	t.Run("no per-second series", func(t *testing.T) {
		r := sidewaysRun(20)
		r.Seconds = nil
		fs := score(t, ModeFailSideways, r, nil)
		want(t, fs, "p99 inflation, other nodes", Fail, 4, "symptom: p99 on node 3 above 3.0x its baseline over the spike", "lead time not measured")
	})
	t.Run("spike on every node", func(t *testing.T) {
		r := sidewaysRun(20)
		r.Faults[0].Nodes = []int{1, 2, 3}
		fs := score(t, ModeFailSideways, r, nil)
		want(t, fs, "p99 inflation, other nodes", Inconclusive, -1, "hit every node")
	})
	t.Run("never took effect", func(t *testing.T) {
		r := sidewaysRun(20)
		r.Faults[0].Effective = time.Time{}
		fs := score(t, ModeFailSideways, r, nil)
		want(t, fs, "p99 inflation, other nodes", Inconclusive, -1, "never took effect")
	})
}

// memoryRun: memory filled to 90% at 20 s by a hog beside the server (method
// exec, 150 MiB), which holds the container's figure flat whatever the queries
// use; analytics at concurrency 1, 2, 4 in phases a1, a2, a4; OLTP errs errors
// over the run. The truth it arranges: each node's Memory_used is 300 MiB (plus
// 10 MiB x node) and 8 MiB more per concurrent query (the route spreads the
// queries over 3 nodes: 24 MiB a query), with jitter and outliers the medians
// must ignore; per-query peaks of at most 30 MiB (in a4); 40 MiB of data.
func memoryRun(errs int64) *Recorded {
	r := run("fill", FaultSpec{Name: "memory-fill", Kind: "memory-fill", Phase: "fill", Node: "1,2,3"})
	r.Spec.Cluster = &ClusterSpec{Topology: "galera", Nodes: 3, Memory: 512 << 20}
	r.Spec.Data = DataSpec{Users: 1000, Orders: 100000}
	r.Spec.Workloads = append(r.Spec.Workloads, WorkloadSpec{Name: "dashboards", Kind: "analytics", Concurrency: 1,
		During: []string{"a1", "a2", "a4"}, PhaseRates: map[string]float64{"a1": 1, "a2": 2, "a4": 4}})
	r.Phases = []Window{
		{Name: PhaseBaseline, Start: at(0), End: at(20)},
		{Name: "fill", Start: at(20), End: at(30)},
		{Name: "a1", Start: at(30), End: at(50)},
		{Name: "a2", Start: at(50), End: at(70)},
		{Name: "a4", Start: at(70), End: at(90)},
	}
	r.DataBytes = 40 << 20
	r.Faults = []FaultRecord{{Name: "memory-fill", Kind: "memory-fill", Nodes: []int{1, 2, 3}, Injected: at(20), Effective: at(22), Recovered: at(90)}}
	r.addStat(PhaseBaseline, "oltp", "", 0, 4000, 0, 5)
	for _, p := range []string{"fill", "a1", "a2", "a4"} {
		r.addStat(p, "oltp", "", 0, 4000, errs/4, 6)
	}
	for i, p := range []string{"a1", "a2", "a4"} {
		r.addStat(p, "dashboards", "", 0, 40, 0, 900)
		r.addStat(p, "dashboards", "dashboard", 0, 40, 0, 900)
		top := float64(25+i*2+(i/2)) * (1 << 20) // 25, 27, 30 MiB
		r.Phase[len(r.Phase)-1].Memory = &results.BytePercentiles{P50: 20 << 20, P99: top - (1 << 20), Max: top}
	}
	jitter := []float64{0, 1, -1, 0, 2, -2, 0, 40, -1, 1} // MiB, by second
	for n := 1; n <= 3; n++ {
		for s := 1; s < 90; s++ {
			t := float64(s)
			r.sample(n, t, func(x *Sample) {
				x.MemoryLimitBytes = 512 << 20
				x.MemoryPct = 40
				if t >= 22 {
					x.MemoryPct, x.HogBytes = 90, 150<<20
				}
				if t >= 75 {
					x.MemoryPct = 92
				}
				x.ServerMemoryBytes = int64((300 + 10*float64(n) + 8*memoryRunConc(t) + jitter[s%10]) * (1 << 20))
			})
		}
	}
	r.Summary.Workloads = []results.OpSummary{{Workload: "oltp", Op: "insert", Errors: map[results.Class]int64{results.ClassResource: 3}}}
	return r
}

// memoryRunConc is memoryRun's analytics concurrency at t seconds.
func memoryRunConc(t float64) float64 {
	switch {
	case t >= 70:
		return 4
	case t >= 50:
		return 2
	case t >= 30:
		return 1
	}
	return 0
}

func TestScoreMemoryHeadroom(t *testing.T) {
	// The formula on the arranged figures: (40 MiB x 0.3 + 4 x 30 MiB + 16 MiB x 2) x 1.25.
	const sizing = (40*0.3 + 4*30 + 16*2) * 1.25
	t.Run("pass", func(t *testing.T) {
		fs := score(t, ModeMemoryHeadroom, memoryRun(4), nil)
		want(t, fs, "nodes killed or restarted", Pass, 0,
			"node 2: memory max 92.0% of its limit",
			"node 3: the server's own memory (Memory_used) max 402.0 MiB at +77.0 s",
			"node 1: the memory-fill hog held up to 150.0 MiB, beside the server (method=exec)")
		want(t, fs, "oltp error rate", Pass, 4.0/16004, "out-of-memory / resource errors over the run", "oltp 3, dashboards 0")
		want(t, fs, "memory per extra concurrent query", Pass, 24,
			"the server's own accounting (Memory_used), median per node, less the baseline's, summed over the nodes",
			"a1: 1 concurrent, +24.0 MiB (n1 +8.0 MiB, n2 +8.0 MiB, n3 +8.0 MiB)", "a4: 4 concurrent, +96.0 MiB",
			"baseline (baseline), median per node: n1 310.0 MiB, n2 320.0 MiB, n3 330.0 MiB",
			"method=exec): Memory_used does not count it")
		want(t, fs, "max query memory", Pass, 30,
			"per-query peak memory, dashboards dashboard: a1 p50 20.0 MiB, p99 24.0 MiB, max 25.0 MiB (40 queries)",
			"a4 p50 20.0 MiB, p99 29.0 MiB, max 30.0 MiB")
		want(t, fs, "sizing formula, per node", Pass, sizing,
			"data 40.0 MiB x 0.3 + analytics concurrency 4 x max query memory 30.0 MiB + write buffer 16.0 MiB x 2, + 25% safety = 205.0 MiB per node",
			"data 40.0 MiB: information_schema: data_length + index_length",
			"analytics concurrency 4 (for the article's peak query concurrency; configured or derived, not a count of queries in flight): "+
				"the highest over the phases, in a4: dashboards 4 (configured concurrency, closed loop)",
			"max query memory 30.0 MiB: the largest per-query peak: dashboards dashboard in a4",
			"write buffer 16.0 MiB: not measured: MariaDB's default innodb_log_buffer_size",
			"provisioned 512.0 MiB per node: 2.5x the formula's",
			"the servers' own memory in the baseline (Memory_used, median): n1 310.0 MiB, n2 320.0 MiB, n3 330.0 MiB; the formula has no term")
	})
	t.Run("hog inside the server", func(t *testing.T) {
		// method=sql: the hog's MEMORY tables count in Memory_used, and it gives
		// memory back as the queries take more (200, 180, 140 MiB): less them,
		// the same 24 MiB a query.
		r := memoryRun(4)
		for i := range r.Indicators {
			s := &r.Indicators[i]
			if s.HogBytes == 0 {
				continue
			}
			hog := int64(200 << 20)
			switch {
			case s.T.After(at(69)):
				hog = 140 << 20
			case s.T.After(at(49)):
				hog = 180 << 20
			}
			s.HogBytes, s.HogInServer = hog, true
			s.ServerMemoryBytes += hog
		}
		fs := score(t, ModeMemoryHeadroom, r, nil)
		want(t, fs, "memory per extra concurrent query", Pass, 24, "Memory_used, less the memory-fill hog's MEMORY tables")
		want(t, fs, "nodes killed or restarted", Pass, 0, "node 3: the server's own memory (Memory_used, less the hog's MEMORY tables) max 402.0 MiB at +77.0 s",
			"held up to 200.0 MiB, inside the server (method=sql)")

		// A hog still growing until 55 s, its held figure read after every
		// table it adds (faults/memory_fill.go): its samples count, and a1 and a2
		// still give 24 MiB a query.
		r.Faults[0].Effective = at(55)
		for i := range r.Indicators {
			if s := &r.Indicators[i]; s.T.After(at(20)) && s.T.Before(at(56)) {
				grow := int64(s.T.Sub(at(20))/time.Second) * 10 << 20
				s.HogBytes += grow
				s.ServerMemoryBytes += grow
			}
		}
		fs = score(t, ModeMemoryHeadroom, r, nil)
		f := want(t, fs, "memory per extra concurrent query", Pass, 24, "a1: 1 concurrent, +24.0 MiB", "a2: 2 concurrent, +48.0 MiB")
		if strings.Contains(strings.Join(f.Notes, "\n"), "left out") {
			t.Errorf("samples left out while the hog grew:\n%s", strings.Join(f.Notes, "\n"))
		}
	})
	t.Run("no Memory_used under a hog", func(t *testing.T) {
		r := memoryRun(4)
		for i := range r.Indicators {
			r.Indicators[i].ServerMemoryBytes = 0
		}
		fs := score(t, ModeMemoryHeadroom, r, nil)
		want(t, fs, "memory per extra concurrent query", Inconclusive, -1,
			"the target reports no Memory_used, and the container's total cannot stand in: the fault memory-fill (memory-fill) held it")
		want(t, fs, "sizing formula, per node", Pass, sizing)
	})
	t.Run("no Memory_used, no hog: the container's figure", func(t *testing.T) {
		r := memoryRun(4)
		r.Faults, r.Spec.Faults = nil, nil
		for i := range r.Indicators {
			s := &r.Indicators[i]
			s.ServerMemoryBytes, s.HogBytes = 0, 0
			// 8 MiB of the 512 MiB limit per concurrent query on each node.
			s.MemoryPct = 40 + 100*8*memoryRunConc(s.T.Sub(at(0)).Seconds())/512
		}
		fs := score(t, ModeMemoryHeadroom, r, nil)
		want(t, fs, "memory per extra concurrent query", Pass, 24, "the target reports no Memory_used",
			"the container's memory as the engine reports it (fallback: no Memory_used; no hog ran)")
	})
	t.Run("no per-query figures", func(t *testing.T) {
		r := memoryRun(4)
		for i := range r.Phase {
			r.Phase[i].Memory = nil
		}
		fs := score(t, ModeMemoryHeadroom, r, nil)
		want(t, fs, "max query memory", Inconclusive, -1, "the target reported no per-query memory for 120 analytics queries: an engine without")
		r.Summary.MemoryUnavailable = "the server does not report per-query memory (not MariaDB?)"
		fs = score(t, ModeMemoryHeadroom, r, nil)
		want(t, fs, "max query memory", Inconclusive, -1, "for 120 analytics queries: the server does not report per-query memory (not MariaDB?)")
		// The formula takes the memory per extra concurrent query instead.
		want(t, fs, "sizing formula, per node", Pass, (40*0.3+4*24+16*2)*1.25,
			"max query memory 24.0 MiB: no per-query figures: the memory per extra concurrent query, from the server's own accounting")
	})
	t.Run("data size not recorded", func(t *testing.T) {
		r := memoryRun(4)
		r.DataBytes = 0
		fs := score(t, ModeMemoryHeadroom, r, nil)
		want(t, fs, "sizing formula, per node", Inconclusive, -1, "the data size not measured: the formula needs every term",
			"data size: not measured (the run did not record the database's size)")
	})
	t.Run("node left out", func(t *testing.T) {
		// Node 3 gave no Memory_used in a2: the sum over nodes 1 and 2 is two
		// thirds of the cluster's. Route all: each node served a third of the
		// queries, so the slope over the two is scaled back to 24 MiB.
		r := memoryRun(4)
		r.Indicators = slices.DeleteFunc(r.Indicators, func(s Sample) bool { return s.Node == 3 && s.T.After(at(51)) && s.T.Before(at(70)) })
		fs := score(t, ModeMemoryHeadroom, r, nil)
		want(t, fs, "memory per extra concurrent query", Inconclusive, -1, "node 3 left out, and the analytics queries it served are not recorded per node",
			"node 3 left out: fewer than 3 samples in a2")
		for _, p := range []string{"a1", "a2", "a4"} {
			for n := 1; n <= 3; n++ {
				r.addStat(p, "dashboards", "", n, 20, 0, 900)
			}
		}
		fs = score(t, ModeMemoryHeadroom, r, nil)
		want(t, fs, "memory per extra concurrent query", Pass, 24, "node 3 left out: fewer than 3 samples in a2",
			"the nodes kept (1,2) served 120 of the 180 analytics queries of those phases: the slope is scaled by 1.5")
	})
	t.Run("node short of baseline samples only", func(t *testing.T) {
		// The baseline cancels in the slope: a node without it still counts.
		r := memoryRun(4)
		r.Indicators = slices.DeleteFunc(r.Indicators, func(s Sample) bool { return s.Node == 3 && s.T.Before(at(20)) })
		fs := score(t, ModeMemoryHeadroom, r, nil)
		f := want(t, fs, "memory per extra concurrent query", Pass, 24, "a1: 1 concurrent, 984.0 MiB (n1 318.0 MiB, n2 328.0 MiB, n3 338.0 MiB)")
		if strings.Contains(strings.Join(f.Notes, "\n"), "left out") {
			t.Errorf("a node left out:\n%s", strings.Join(f.Notes, "\n"))
		}
	})
	t.Run("node killed", func(t *testing.T) {
		r := memoryRun(4)
		for i := range r.Indicators {
			s := &r.Indicators[i]
			if s.Node == 2 && s.T.After(at(75)) {
				s.OOMKilled, s.Restarts = true, 1
			}
		}
		fs := score(t, ModeMemoryHeadroom, r, nil)
		want(t, fs, "nodes killed or restarted", Fail, 1, "node 2: OOM killed at +76.0 s")
	})
	t.Run("restart a fault asked for", func(t *testing.T) {
		r := memoryRun(4)
		r.Faults = append(r.Faults, FaultRecord{Name: "node-restart", Kind: "node-restart", Nodes: []int{3}, Injected: at(60), Effective: at(60), Recovered: at(62), Healthy: at(65)})
		for i := range r.Indicators {
			if s := &r.Indicators[i]; s.Node == 3 && s.T.After(at(62)) {
				s.Restarts = 1
			}
		}
		fs := score(t, ModeMemoryHeadroom, r, nil)
		want(t, fs, "nodes killed or restarted", Pass, 0)
	})
	t.Run("oltp errors", func(t *testing.T) {
		fs := score(t, ModeMemoryHeadroom, memoryRun(400), nil)
		want(t, fs, "oltp error rate", Fail, 400.0/16400)
		fs = score(t, ModeMemoryHeadroom, memoryRun(400), BudgetSet{"oltp-error-rate": "5%"})
		want(t, fs, "oltp error rate", Pass, 400.0/16400)
	})
	t.Run("fill never took effect", func(t *testing.T) {
		r := memoryRun(4)
		r.Faults[0].Effective = time.Time{}
		fs := score(t, ModeMemoryHeadroom, r, nil)
		for _, f := range fs {
			if f.Name == findMemQuery {
				// Each query's own peak: it needs no hog.
				want(t, fs, f.Name, Pass, 30, "per-query peak memory, dashboards dashboard")
				continue
			}
			want(t, fs, f.Name, Inconclusive, -1, "never took effect")
		}
		if len(fs) != 5 {
			t.Errorf("%d findings, want 5", len(fs))
		}
	})
	t.Run("no container indicators", func(t *testing.T) {
		r := memoryRun(4)
		r.Indicators = nil
		fs := score(t, ModeMemoryHeadroom, r, nil)
		want(t, fs, "nodes killed or restarted", Inconclusive, -1, "no container indicators")
	})
	t.Run("no rising concurrency", func(t *testing.T) {
		r := memoryRun(4)
		r.Spec.Workloads[1].PhaseRates = nil
		fs := score(t, ModeMemoryHeadroom, r, nil)
		want(t, fs, "memory per extra concurrent query", Inconclusive, -1, "no phases of rising analytics concurrency: every phase that runs analytics runs 1 at a time")
		r.Spec.Workloads = r.Spec.Workloads[:1]
		r.Phase = slices.DeleteFunc(r.Phase, func(s PhaseStats) bool { return s.Workload == "dashboards" })
		fs = score(t, ModeMemoryHeadroom, r, nil)
		want(t, fs, "memory per extra concurrent query", Inconclusive, -1, "no phase ran analytics queries")
		want(t, fs, "max query memory", Inconclusive, -1, "no analytics query succeeded")
		want(t, fs, "sizing formula, per node", Inconclusive, -1, "the query concurrency, the query memory not measured")
		r.DataBytes = 0
		fs = score(t, ModeMemoryHeadroom, r, nil)
		want(t, fs, "sizing formula, per node", Inconclusive, -1, "the data size, the query concurrency, the query memory not measured", "data size: not measured")
	})
	t.Run("a user's op that measures its memory", func(t *testing.T) {
		// Not an analytics workload: its op measures its memory (Op.Memory),
		// and its peaks count.
		r := memoryRun(4)
		r.addStat("a2", "exports", "export", 0, 10, 0, 2000)
		r.Phase[len(r.Phase)-1].Memory = &results.BytePercentiles{P50: 40 << 20, P99: 49 << 20, Max: 50 << 20}
		fs := score(t, ModeMemoryHeadroom, r, nil)
		want(t, fs, "max query memory", Pass, 50, "per-query peak memory, exports export: a2 p50 40.0 MiB, p99 49.0 MiB, max 50.0 MiB (10 queries)",
			"per-query peak memory, dashboards dashboard")
	})
	t.Run("open loop: the concurrency's label", func(t *testing.T) {
		r := memoryRun(4)
		r.Spec.Workloads[1].Concurrency, r.Spec.Workloads[1].Rate, r.Spec.Workloads[1].PhaseRates = 0, 2, nil
		fs := score(t, ModeMemoryHeadroom, r, nil)
		// 40 queries in 20 s (2/s) at a mean of 450 ms: 0.9 in flight.
		want(t, fs, "sizing formula, per node", Pass, (40*0.3+0.9*30+16*2)*1.25,
			"dashboards 0.9 (mean in flight from the rate and the mean latency, open loop: latency from the intended start, queueing included)")
	})
}

func TestScoreDataMovement(t *testing.T) {
	r := memoryRun(0)
	for i := range r.Indicators {
		r.Indicators[i].NetRxBytes, r.Indicators[i].NetTxBytes = 1<<20, 1<<19
	}
	fs := score(t, ModeDataMovement, r, nil)
	f := want(t, fs, "bytes moved / bytes returned", Inconclusive, -1, "the target is not sharded (MariaDB/Galera replicate everything)",
		"a1: nodes received 60.0 MiB and sent 30.0 MiB (4.5 MiB/s), 40 analytical queries")
	if f.Budget != 1000 {
		t.Errorf("budget %g", f.Budget)
	}
	r.Topology = "singlestore"
	fs = score(t, ModeDataMovement, r, nil)
	want(t, fs, "bytes moved / bytes returned", Inconclusive, -1, "bytes returned")

	// Every spike's window (what data-movement claims, spikeClasses): the
	// analytics spike's per query, the batch spike's per operation, one that
	// never took effect named.
	r.Faults = append(r.Faults,
		FaultRecord{Name: "reports", Kind: "analytics-spike", Injected: at(50), Effective: at(50), Recovered: at(60),
			Measurements: []faults.Measurement{{Name: faults.MeasureSpikeOps, Value: 100}}},
		FaultRecord{Name: "loads", Kind: "batch-spike", Injected: at(70), Effective: at(70), Recovered: at(80),
			Measurements: []faults.Measurement{{Name: faults.MeasureSpikeOps, Value: 30}}},
		FaultRecord{Name: "refused", Kind: "analytics-spike", Injected: at(80), State: "failed", Error: "no"})
	fs = score(t, ModeDataMovement, r, nil)
	want(t, fs, "bytes moved / bytes returned", Inconclusive, -1,
		"fault:reports: nodes received 30.0 MiB and sent 15.0 MiB (4.5 MiB/s), 100 analytical queries: ~460.8 KiB per query",
		"fault:loads: nodes received 30.0 MiB and sent 15.0 MiB (4.5 MiB/s), 30 batch operations: ~1.5 MiB per operation",
		"the fault refused never took effect; state failed: no: its window is not measured")
}

// median is Median, the package's one, but 0 for none (findings are JSON).
func TestMedianOfSeries(t *testing.T) {
	for _, xs := range [][]float64{{5}, {3, 1, 2}, {10, 1, 3, 2}, {100, 90, 110, 95}} {
		if got, want := median(xs), Median(xs); got != want {
			t.Errorf("median(%v) = %v, Median %v: two definitions", xs, got, want)
		}
	}
	if got := median(nil); got != 0 {
		t.Errorf("median of nothing %v, want 0", got)
	}
}

func TestScoreDurability(t *testing.T) {
	// A 3-node audit: n1..n3 each read with every row, but for the changes made.
	three := func(change func(ns []NodeAudit)) *Audit {
		ns := []NodeAudit{{Node: 1, Label: "n1", Read: true, Rows: 5000}, {Node: 2, Label: "n2", Read: true, Rows: 5000}, {Node: 3, Label: "n3", Read: true, Rows: 5000}}
		change(ns)
		return &Audit{Acked: 5000, Nodes: ns, Settle: AuditSettle{Seconds: 0.1, Timeout: 60}}
	}
	labels := []string{1: "n1", 2: "n2", 3: "n3"}
	unread := func(i int, why string) func(ns []NodeAudit) {
		return func(ns []NodeAudit) { ns[i-1] = NodeAudit{Node: i, Label: labels[i], Skipped: why} }
	}
	down := func(i int) func(ns []NodeAudit) {
		return func(ns []NodeAudit) {
			ns[i-1] = NodeAudit{Node: i, Label: labels[i], Skipped: "did not answer: dial tcp: connection refused", Down: true}
		}
	}
	// n1 lacks 3 acknowledged rows the other nodes read have.
	n1Lacks := func(a *Audit) *Audit {
		a.DivergentAcked, a.Divergent, a.FirstDivergent = 3, 3, []int64{11, 12, 13}
		n := &a.Nodes[0]
		n.Lost, n.FirstLost, n.Lacks, n.LacksAcked, n.LacksAlone, n.FirstLacks = 3, []int64{11, 12, 13}, 3, 3, 3, []int64{11, 12, 13}
		return a
	}
	type check struct {
		name      string
		verdict   Verdict
		value     float64
		fragments []string
	}
	cases := []struct {
		name      string
		audit     *Audit
		verdict   Verdict
		value     float64
		fragments []string
		more      []check // the other findings
	}{
		{"no audit", nil, Inconclusive, -1, []string{"no durability audit"}, nil},
		{"audit failed", &Audit{Acked: 10, Error: "node 1 unreachable"}, Inconclusive, -1, []string{"node 1 unreachable"}, nil},
		{"nothing acknowledged", &Audit{}, Inconclusive, -1, []string{"no acknowledged write"}, nil},
		{"pass", &Audit{Acked: 5000, Unknown: 3, Unexpected: 2, FirstExtra: []int64{7, 9}, Node: 1}, Pass, 0,
			[]string{"2 writes present but never acknowledged", "7, 9"}, nil},
		{"lost", &Audit{Acked: 5000, Lost: 3, FirstLost: []int64{11, 12, 13}, Node: 2}, Fail, 3,
			[]string{"3 of 5000 acknowledged writes are missing", "first lost ids: 11, 12, 13"}, nil},
		{"every node read", three(func([]NodeAudit) {}), Pass, 0, []string{"read back on n1, n2, n3"},
			[]check{{findDiverge, Pass, 0, []string{"compared on n1, n2, n3"}}, {findUnsent, Pass, 0, nil}}},
		// A node that answered when the audit began and was not read: loss and
		// divergence are not judged, whatever the reason (each skip of observe_audit.go).
		{"a node whose read failed", three(unread(2, "read back failed: read back orders 1-9: invalid connection")), Inconclusive, 0,
			[]string{"n2 (read back failed: read back orders 1-9: invalid connection)", "cannot be judged", "n2 not read back"},
			[]check{{findDiverge, Inconclusive, -1, []string{"n2 (read back failed"}}, {findUnsent, Pass, 0, []string{"judged on the nodes read only (n1, n3)"}}}},
		{"a node whose wsrep status failed", three(unread(3, "wsrep status: Error 1927: Connection was killed")), Inconclusive, -1,
			[]string{"n3 (wsrep status: Error 1927"}, []check{{findDiverge, Inconclusive, -1, []string{"n3 (wsrep status"}}}},
		{"a source whose GTID position failed", three(unread(1, "GTID position: Error 1142")), Inconclusive, -1,
			[]string{"n1 (GTID position: Error 1142)"}, []check{{findDiverge, Inconclusive, -1, []string{"n1 (GTID position"}}}},
		{"a node that failed while settling", three(unread(2, "while waiting for it to apply: invalid connection")), Inconclusive, -1,
			[]string{"n2 (while waiting for it to apply: invalid connection)"}, []check{{findDiverge, Inconclusive, -1, []string{"n2 (while waiting"}}}},
		{"a node with a bad DSN", three(unread(2, "bad DSN: invalid DSN: missing the slash")), Inconclusive, -1,
			[]string{"n2 (bad DSN"}, []check{{findDiverge, Inconclusive, -1, nil}}},
		{"loss on the nodes read, one node unread", n1Lacks(three(unread(2, "read back failed: invalid connection"))), Inconclusive, 3,
			[]string{"n2 (read back failed", "on the nodes read (n1, n3): fail, 3", "n1 lacks 3 acknowledged rows that n3 has"},
			[]check{{findDiverge, Inconclusive, -1, []string{"on the nodes read (n1, n3): fail, 3"}}}},
		// Only a node that was down may be left out, and the notes say so.
		{"a node down", three(down(3)), Pass, 0, []string{"left out: n3, down", "n3 not read back: did not answer"},
			[]check{{findDiverge, Pass, 0, []string{"compared on n1, n2", "left out: n3, down"}}, {findUnsent, Pass, 0, []string{"left out: n3, down"}}}},
		{"loss with a node down", n1Lacks(three(down(3))), Fail, 3, []string{"n1 lacks 3 acknowledged rows that n2 has", "left out: n3, down"},
			[]check{{findDiverge, Fail, 3, nil}}},
		{"two nodes down: nothing to compare", three(func(ns []NodeAudit) { down(2)(ns); down(3)(ns) }), Pass, 0, []string{"left out: n2, n3, down"},
			[]check{{findDiverge, Inconclusive, -1, []string{"only 1 node(s) of 3"}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run("fault")
			r.Audit = c.audit
			fs := score(t, ModeDurability, r, nil)
			want(t, fs, findLost, c.verdict, c.value, c.fragments...)
			for _, m := range c.more {
				want(t, fs, m.name, m.verdict, m.value, m.fragments...)
			}
			for _, f := range fs {
				if !f.Strict {
					t.Errorf("%s: not strict; a durability finding tolerates no failing run", f.Name)
				}
			}
		})
	}
}

// freshRun: heartbeat staleness on nodes 2 and 3, 100 ms in the baseline and
// spike ms in the middle phase (every second).
func freshRun(spike float64) *Recorded {
	r := run("fault")
	r.Spec.Heartbeat = &HeartbeatSpec{Node: 1}
	for n := 2; n <= 3; n++ {
		for s := 1; s < 90; s++ {
			v := 100.0
			if s >= 30 && s < 60 {
				v = spike
			}
			r.sample(n, float64(s), func(x *Sample) { x.StalenessMs = &v })
		}
	}
	return r
}

func TestScoreFreshness(t *testing.T) {
	t.Run("no heartbeat", func(t *testing.T) {
		fs := score(t, ModeFreshness, run("fault"), nil)
		want(t, fs, "staleness p99", Inconclusive, -1, "no heartbeat samples")
	})
	t.Run("no budget: reported", func(t *testing.T) {
		fs := score(t, ModeFreshness, freshRun(1500), nil)
		f := want(t, fs, "staleness p99", Pass, 1.5, "reported only", "fault node 2: p50 1500 ms, p99 1500 ms")
		if f.Evidence[0].Phase != "fault" || f.Evidence[0].Node != 2 {
			t.Errorf("evidence %+v", f.Evidence)
		}
	})
	t.Run("budget set: fail", func(t *testing.T) {
		fs := score(t, ModeFreshness, freshRun(1500), BudgetSet{"staleness-p99": "1s"})
		want(t, fs, "staleness p99", Fail, 1.5, "staleness p99 1.50 s on node 2 in fault")
	})
	t.Run("budget set: pass", func(t *testing.T) {
		fs := score(t, ModeFreshness, freshRun(500), BudgetSet{"staleness-p99": "1s"})
		want(t, fs, "staleness p99", Pass, 0.5)
	})
	t.Run("a replica down in one phase: said", func(t *testing.T) {
		r := freshRun(500)
		r.Indicators = slices.DeleteFunc(r.Indicators, func(s Sample) bool { return s.Node == 3 && !s.T.Before(at(30)) && s.T.Before(at(60)) })
		fs := score(t, ModeFreshness, r, BudgetSet{"staleness-p99": "1s"})
		want(t, fs, "staleness p99", Pass, 0.5, "fault node 3: no heartbeat samples (the node was down or its heartbeat was not read)")
	})
	t.Run("a replica never read: inconclusive", func(t *testing.T) {
		r := freshRun(500)
		r.Indicators = slices.DeleteFunc(r.Indicators, func(s Sample) bool { return s.Node == 3 })
		fs := score(t, ModeFreshness, r, BudgetSet{"staleness-p99": "1s"})
		want(t, fs, "staleness p99", Inconclusive, -1, "no phase of node 3 has 5 heartbeat samples: the other readers alone cannot pass the cluster",
			"baseline node 3: no heartbeat samples")
		// The other reader over budget still fails the cluster.
		fs = score(t, ModeFreshness, r, BudgetSet{"staleness-p99": "100ms"})
		want(t, fs, "staleness p99", Fail, 0.5, "staleness p99 0.50 s on node 2 in fault")
	})
}

// A per-second series bins intervals by their end, to the nearest second.
func TestPerSecond(t *testing.T) {
	r := run("fault")
	r.Seconds = []results.IntervalLine{
		{T: at(1.003).UnixMilli(), Workload: "oltp", Op: "a", Node: 1, Count: 10, P99Ms: 4},
		{T: at(1.003).UnixMilli(), Workload: "oltp", Op: "b", Node: 2, Count: 5, P99Ms: 7, Errors: map[results.Class]int64{results.ClassTimeout: 2}},
		{T: at(1.998).UnixMilli(), Workload: "oltp", Op: "a", Node: 1, Count: 3, P99Ms: 9, Late: 1},
		{T: at(3).UnixMilli(), Workload: "other", Op: "a", Node: 1, Count: 99, P99Ms: 99},
	}
	s := r.perSecond(func(l results.IntervalLine) bool { return l.Workload == "oltp" })
	if len(s) != 91 || s[1] != (second{count: 15, errors: 2, p99: 7}) || s[2] != (second{count: 3, late: 1, p99: 9}) || s[3] != (second{}) {
		t.Errorf("bins %+v", s[:4])
	}
	if got := r.binsIn(s, Window{Start: at(1), End: at(2)}); len(got) != 1 || got[0].count != 3 {
		t.Errorf("binsIn (1 s, 2 s]: %+v", got)
	}
	if r.bin(at(30)) != 30 || r.bin(at(30.2)) != 31 {
		t.Errorf("bin: %d %d", r.bin(at(30)), r.bin(at(30.2)))
	}
	tl, ok := r.tally(Window{Start: at(0), End: at(1.5)}, func(l results.IntervalLine) bool { return l.Workload == "oltp" })
	if !ok || tl.Count != 15 || tl.Errors != 2 || tl.ByClass[results.ClassTimeout] != 2 {
		t.Errorf("tally %+v", tl)
	}
}
