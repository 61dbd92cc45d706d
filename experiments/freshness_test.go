package experiments

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/results"
	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// primaryReplicaConfig is the tests' primary-replica cluster: 1 primary and 2
// async GTID replicas of 512 MiB, the cluster the quick replica-lag asks for.
func primaryReplicaConfig() htc.Config {
	return htc.Config{Topology: htc.PrimaryReplica, Nodes: 3, Memory: 512 << 20}
}

// sharedPrimaryReplica is the primary-replica cluster of primaryReplicaConfig,
// shared by the package's tests (started once, removed after the last test).
// Tests that stop replication on it start it again before they end.
func sharedPrimaryReplica(t testing.TB) *htc.Cluster {
	t.Helper()
	cfg := primaryReplicaConfig()
	cfg.Labels = testLabels
	return htc.SharedForTest(t, "primary-replica-quick", cfg)
}

// replicaLagRun: a primary-replica run of 90 s (baseline 0-30 s, spike 30-60 s,
// recovery 60-90 s), the heartbeat written on node 1, OLTP on node 1 and
// dashboards (analytics) on nodes 2 and 3. Staleness each second: node 2 is
// 100 ms but for the spike, where it grows 1 s a second from 1 s (its SQL
// thread stopped at 29 s); node 3 stays at 100 ms; node 1, the writer, shows
// 50 s, which no scorer may judge (the sampler never reads it there). The
// dashboards finish 2 queries a second on each replica (5 on the primary) with
// a median latency of 500 ms, so each second's queries started a second before
// its end: on the sample of that second.
func replicaLagRun() *Recorded {
	r := run("spike")
	r.Spec.Heartbeat = &HeartbeatSpec{Node: 1, Every: Dur(100 * time.Millisecond)}
	r.Spec.Workloads = append(r.Spec.Workloads, WorkloadSpec{Name: "dashboards", Kind: "analytics", Rate: 4, Route: "nodes=2,3"})
	for s := 1; s < 90; s++ {
		for n := 1; n <= 3; n++ {
			v := 100.0
			switch {
			case n == 1:
				v = 50000
			case n == 2 && s >= 30 && s < 60:
				v = float64(s-29) * 1000
			}
			r.sample(n, float64(s), func(x *Sample) { x.StalenessMs = &v })
		}
	}
	for i := 1; i <= 90; i++ {
		for n, c := range map[int]int64{1: 5, 2: 2, 3: 2} {
			r.Seconds = append(r.Seconds, results.IntervalLine{T: at(float64(i)).UnixMilli(), Workload: "dashboards", Op: "dashboard", Node: n,
				Count: c, Errors: map[results.Class]int64{}, P50Ms: 500, P99Ms: 900})
		}
	}
	return r
}

// Freshness is judged on the nodes that read the heartbeat, per phase and node,
// and the analytics queries' data age is the staleness of their node at their
// start, weighted by the queries.
func TestScoreFreshnessReplicas(t *testing.T) {
	t.Run("staleness on the replicas", func(t *testing.T) {
		fs := score(t, ModeFreshness, replicaLagRun(), BudgetSet{"staleness-p99": "1s"})
		if len(fs) != 2 {
			t.Fatalf("%d findings, want staleness and data age", len(fs))
		}
		// Node 2 in the spike: 1..30 s, p99 (nearest rank of 30) 30 s. Node 1's
		// 50 s is the writer's and is not judged.
		f := want(t, fs, findStaleness, Fail, 30, "staleness p99 30.00 s on node 2 in spike", "judged on the nodes that read it: 2,3",
			"spike node 3: p50 100 ms, p99 100 ms", "baseline node 2: p50 100 ms")
		if f.Evidence[0].Node != 2 || f.Evidence[0].Phase != "spike" {
			t.Errorf("evidence %+v, want node 2 in spike", f.Evidence)
		}
		for _, n := range f.Notes {
			if strings.Contains(n, "node 1:") {
				t.Errorf("the writer is judged: %s", n)
			}
		}
	})
	t.Run("data age the dashboards saw", func(t *testing.T) {
		// The spike's queries started at 30..59 s: node 2's 60 saw 1..30 s (twice
		// each), node 3's 60 saw 100 ms. Of 120, rank 60 is 100 ms, rank 119 30 s.
		fs := score(t, ModeFreshness, replicaLagRun(), nil)
		f := want(t, fs, findDataAge, Pass, 30, "reported only",
			"spike: data age p50 100 ms, p99 30000 ms, max 30000 ms over 120 analytics queries (node 2 p99 30000 ms over 60; node 3 p99 100 ms over 60)",
			"baseline: data age p50 100 ms, p99 100 ms, max 100 ms over 120",
			"recovery: data age p50 100 ms, p99 100 ms",
			"450 queries ran on the heartbeat's writer (node 1)")
		if f.Evidence[0].Phase != "spike" || f.Evidence[0].Workload != "dashboards" {
			t.Errorf("evidence %+v", f.Evidence)
		}
		fs = score(t, ModeFreshness, replicaLagRun(), BudgetSet{"data-age-p99": "5s"})
		want(t, fs, findDataAge, Fail, 30, "analytics queries read data 30.00 s old at p99 in spike (budget 5.00 s)")
	})
	t.Run("no sample near a query's start", func(t *testing.T) {
		r := replicaLagRun()
		// Node 3 does not answer from 62 s on: the queries that started then
		// borrow no figure from further than 1.5 s.
		r.Indicators = slices.DeleteFunc(r.Indicators, func(s Sample) bool { return s.Node == 3 && s.T.After(at(61.5)) })
		fs := score(t, ModeFreshness, r, nil)
		// Recovery: node 2's 30 queries (61..90 s, started 60..89 s) and node 3's
		// started at 60, 61 and 62 s (within 1.5 s of its 61 s sample); its 27
		// seconds after (54 queries) are left out.
		want(t, fs, findDataAge, Pass, 30, "recovery: data age p50 100 ms, p99 100 ms, max 100 ms over 66 analytics queries",
			"54 queries had no heartbeat sample of their node within 1.5s")
	})
	t.Run("no analytics workload: staleness only", func(t *testing.T) {
		r := replicaLagRun()
		r.Spec.Workloads = r.Spec.Workloads[:1]
		if fs := score(t, ModeFreshness, r, nil); len(fs) != 1 || fs[0].Name != findStaleness {
			t.Errorf("findings %+v", fs)
		}
	})
	t.Run("a replica down all run", func(t *testing.T) {
		// Node 3 gave no staleness figure: node 2 alone passes nothing.
		r := replicaLagRun()
		r.Indicators = slices.DeleteFunc(r.Indicators, func(s Sample) bool { return s.Node == 3 && s.StalenessMs != nil })
		want(t, score(t, ModeFreshness, r, BudgetSet{"staleness-p99": "1m"}), findStaleness, Inconclusive, -1,
			"no phase of node 3 has 5 heartbeat samples", "spike node 3: no heartbeat samples")
	})
	t.Run("no per-second figures", func(t *testing.T) {
		r := replicaLagRun()
		r.Seconds = nil
		want(t, score(t, ModeFreshness, r, nil), findDataAge, Inconclusive, -1, "no per-second figures of dashboards")
	})
}

func TestWeightedQuantile(t *testing.T) {
	xs := []weighted{{5, 1}, {1, 3}, {9, 1}}
	for _, tc := range []struct{ q, want float64 }{{0.2, 1}, {0.6, 1}, {0.7, 5}, {0.99, 9}, {1, 9}} {
		if got := weightedQuantile(xs, tc.q); got != tc.want {
			t.Errorf("q %g: %g, want %g", tc.q, got, tc.want)
		}
	}
	if got := weightedQuantile(nil, 0.5); got != 0 {
		t.Errorf("empty: %g", got)
	}
}

// A replica whose SQL thread is stopped for a known time while the heartbeat
// writes on the primary: the staleness the sampler reports on it grows with the
// stop and peaks at its length, within one sampling interval (1 s); the other
// replica stays fresh; the primary, the writer, is not read. The freshness
// scorer, given these samples, names that replica and that window.
func TestReplicaStalenessMatchesAStoppedSQLThread(t *testing.T) {
	c := sharedPrimaryReplica(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, s, stop := runHeartbeat(t, ctx, ContainerIndicatorNodes(c))
	defer stop()
	sleep := func(d time.Duration) {
		select {
		case <-ctx.Done():
			t.Fatal("test timed out")
		case <-time.After(d):
		}
	}
	db, err := sql.Open("mysql", c.Nodes[1].DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t.Cleanup(func() { _, _ = db.Exec("START SLAVE SQL_THREAD") })

	start := time.Now()
	sleep(4 * time.Second)
	if _, err := db.ExecContext(ctx, "STOP SLAVE SQL_THREAD"); err != nil {
		t.Fatal(err)
	}
	stopAt := time.Now()
	const stopFor = 5 * time.Second
	sleep(stopFor)
	if _, err := db.ExecContext(ctx, "START SLAVE SQL_THREAD"); err != nil {
		t.Fatal(err)
	}
	startAt := time.Now()
	sleep(4 * time.Second)
	err = stop()
	end := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	stopped := startAt.Sub(stopAt)
	samples := s.Samples()
	series := func(node int) (ts []time.Time, ms []float64) {
		for _, smp := range samples {
			if smp.Node == node && smp.StalenessMs != nil {
				ts, ms = append(ts, smp.T), append(ms, *smp.StalenessMs)
			}
		}
		return ts, ms
	}

	// n2, stopped: each sample in the stop shows the time since the stop; the
	// peak (the last sample before the restart, or the first after it, before
	// the replica applied what waited) is the stop's length.
	ts, ms := series(2)
	var during []string
	peak := 0.0
	for i, tt := range ts {
		if tt.Before(stopAt) || tt.After(startAt.Add(time.Second)) {
			continue
		}
		peak = max(peak, ms[i])
		during = append(during, fmt.Sprintf("+%.1fs %.0fms", tt.Sub(stopAt).Seconds(), ms[i]))
		if tt.Before(startAt) {
			if since := tt.Sub(stopAt).Seconds(); ms[i]/1000-since > 1 || since-ms[i]/1000 > 1 {
				t.Errorf("n2 %.1f s into the stop: staleness %.0f ms, want %.1f s within 1 s", since, ms[i], since)
			}
		}
	}
	t.Logf("n2 SQL thread stopped %v: staleness %s; peak %.0f ms", stopped.Round(time.Millisecond), strings.Join(during, ", "), peak)
	if len(during) < int(stopFor/time.Second)-1 {
		t.Fatalf("n2: %d staleness samples in a %v stop", len(during), stopFor)
	}
	if d := peak/1000 - stopped.Seconds(); d > 1 || d < -1 {
		t.Errorf("n2 peak staleness %.2f s, the SQL thread was stopped %.2f s: want within 1 s", peak/1000, stopped.Seconds())
	}
	if n := len(ms); n < 2 || ms[n-1] >= 1000 || ms[n-2] >= 1000 {
		t.Errorf("n2 not fresh again after the restart: %v", ms)
	}

	// n3 stays fresh; n1, the writer, is not read.
	_, ms3 := series(3)
	t.Logf("n3: %d samples, staleness p50 %.0f ms, p99 %.0f ms, max %.0f ms", len(ms3), quantile(ms3, 0.5), quantile(ms3, 0.99), quantile(ms3, 1))
	if len(ms3) < 10 || quantile(ms3, 0.99) >= 1000 {
		t.Errorf("n3: %d samples, p99 %.0f ms: want fresh (under 1 s)", len(ms3), quantile(ms3, 0.99))
	}
	if _, ms1 := series(1); len(ms1) != 0 {
		t.Errorf("staleness read on the writer: %v", ms1)
	}

	// The scorer on these samples: the worst p99 is n2's in the stop, held to 1 s.
	r := &Recorded{
		Spec:  &Spec{Name: "stop", Heartbeat: &HeartbeatSpec{Node: 1}},
		Nodes: 3, Start: start, End: end, Indicators: samples,
		Phases: []Window{{Name: PhaseBaseline, Start: start, End: stopAt}, {Name: "stopped", Start: stopAt, End: startAt},
			{Name: PhaseRecovery, Start: startAt, End: end}},
	}
	f := want(t, score(t, ModeFreshness, r, BudgetSet{"staleness-p99": "1s"}), findStaleness, Fail, -1, "on node 2 in stopped")
	t.Logf("%s: %s %.2f s: %s; %v", f.Name, f.Verdict, f.Value, f.Reason, f.Notes)
	if d := f.Value - stopped.Seconds(); d > 1 || d < -1 {
		t.Errorf("scored staleness p99 %.2f s, the stop was %.2f s", f.Value, stopped.Seconds())
	}
}

// The builtin replica-lag, quick, through the Go API on the shared
// primary-replica cluster: OLTP on the primary, dashboards on the replicas,
// a batch spike on the primary. Freshness is judged on the replicas, the
// dashboards' data age is measured, htap-contention judges the primary's OLTP
// under the spike, nothing acknowledged is lost.
func TestReplicaLagQuick(t *testing.T) {
	spec, err := Builtin("replica-lag", ParseOptions{Quick: true})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Out: filepath.Join(t.TempDir(), "replica-lag"), Seed: 1, Labels: testLabels, Log: t.Logf}
	if reflect.DeepEqual(spec.ClusterConfig(), primaryReplicaConfig()) {
		o.Cluster = sharedPrimaryReplica(t)
	} else {
		// The spec asks for another cluster: the run starts its own.
		t.Logf("replica-lag asks for %+v, not the shared %+v: on a cluster of its own", spec.ClusterConfig(), primaryReplicaConfig())
	}
	began := time.Now()
	res, err := Run(context.Background(), spec, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("replica-lag --quick took %v on the running cluster", time.Since(began).Round(time.Second))
	for _, f := range res.Findings {
		t.Logf("%s %s: %s %.4g %s (budget %s %.4g) %s %v %v", f.Mode, f.Name, f.Verdict, f.Value, f.Unit, f.Op, f.Budget, f.Reason, f.Evidence, f.Notes)
	}
	for _, m := range append(slices.Clone(spec.Modes), ModeDurability) {
		if len(findings(res, m)) == 0 {
			t.Errorf("no finding for %s", m)
		}
	}
	for _, f := range res.Recorded.Faults {
		if !f.TookEffect() || !slices.Equal(f.Nodes, []int{1}) {
			t.Errorf("fault %s on %v: took effect %v (%s %s)", f.Name, f.Nodes, f.TookEffect(), f.State, f.Error)
		}
		for _, m := range f.Measurements {
			t.Logf("%s: %s %v %s", f.Name, m.Name, m.Value, m.Note)
		}
	}
	for _, f := range findings(res, ModeDurability) {
		if f.Verdict != Pass {
			t.Errorf("durability: %+v", f)
		}
	}
	find := func(mode, name string) Finding {
		t.Helper()
		for _, f := range findings(res, mode) {
			if f.Name == name {
				return f
			}
		}
		t.Fatalf("no %s finding %q", mode, name)
		return Finding{}
	}

	// The replicas' staleness, judged against the spec's 1 s: the evidence is a
	// replica in a phase; the primary is never judged.
	st := find(ModeFreshness, findStaleness)
	if st.Verdict == Inconclusive || st.Budget != 1 || len(st.Evidence) != 1 || st.Evidence[0].Node < 2 || st.Evidence[0].Phase == "" {
		t.Errorf("staleness: %s %g (budget %g), evidence %+v: want judged on a replica in a phase", st.Verdict, st.Value, st.Budget, st.Evidence)
	}
	if want := map[bool]Verdict{true: Fail, false: Pass}[st.Value > 1]; st.Verdict != want {
		t.Errorf("staleness p99 %.2f s against 1 s: %s, want %s", st.Value, st.Verdict, want)
	}
	// The dashboards ran on the replicas only, and the data age they saw is
	// drawn from the replicas' samples: never above the largest of them.
	var maxStale float64
	for _, s := range res.Recorded.Indicators {
		if s.StalenessMs != nil {
			if s.Node == 1 {
				t.Errorf("staleness sampled on the primary: %+v", s)
			}
			maxStale = max(maxStale, *s.StalenessMs/1000)
		}
	}
	for _, l := range res.Recorded.Seconds {
		if l.Workload == "dashboards" && l.Node == 1 && l.Count > 0 {
			t.Errorf("dashboards on the primary: %+v", l)
		}
	}
	age := find(ModeFreshness, findDataAge)
	if age.Verdict == Inconclusive || age.Value > maxStale+1e-9 || age.Value <= 0 {
		t.Errorf("data age: %s %.3f s (replicas' largest staleness %.3f s): %s", age.Verdict, age.Value, maxStale, age.Reason)
	}
	if !slices.ContainsFunc(age.Notes, func(n string) bool { return strings.HasPrefix(n, "spike: data age p50") }) {
		t.Errorf("data age: no figure for the spike: %v", age.Notes)
	}

	// htap-contention: the batch spike on the primary, the OLTP on the primary.
	infl := find(ModeHTAPContention, "oltp p99 inflation")
	if infl.Verdict == Inconclusive || len(infl.Evidence) != 2 || infl.Evidence[1].Node != 1 || !strings.HasPrefix(infl.Evidence[1].Phase, FaultPrefix) {
		t.Errorf("oltp p99 inflation: %s %s, evidence %+v: want judged on node 1 in the spike's window", infl.Verdict, infl.Reason, infl.Evidence)
	}
	if !slices.Contains(infl.Notes, "batch-spike on node 1; oltp on node 1 (shared: 1)") {
		t.Errorf("oltp p99 inflation: notes %v", infl.Notes)
	}
}
