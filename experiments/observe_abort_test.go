package experiments

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/results"
)

func TestParseAbortCondition(t *testing.T) {
	for in, want := range map[string]AbortCondition{
		"errors > 5% for 10s":  {Metric: AbortErrors, Op: ">", Value: 5, For: 10 * time.Second},
		"write_gap > 30s":      {Metric: AbortWriteGap, Op: ">", Value: 30},
		"read_gap>=1500ms":     {Metric: AbortReadGap, Op: ">=", Value: 1.5},
		"nodes_down >= 2":      {Metric: AbortNodesDown, Op: ">=", Value: 2},
		"memory > 97%":         {Metric: AbortMemory, Op: ">", Value: 97},
		"p99 > 0.5s for 3s":    {Metric: AbortP99, Op: ">", Value: 500, For: 3 * time.Second},
		"oltp: errors > 5%":    {Workload: "oltp", Metric: AbortErrors, Op: ">", Value: 5},
		"node 2: memory > 97%": {Node: 2, Metric: AbortMemory, Op: ">", Value: 97},
		"node 3: write_gap>2s": {Node: 3, Metric: AbortWriteGap, Op: ">", Value: 2},
	} {
		got, err := ParseAbortCondition(in)
		want.Text = in
		if err != nil || got != want {
			t.Errorf("%q: %+v %v, want %+v", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"latency > 5":           `unknown metric "latency"`,
		"errors > 5s":           "errors is in %, not s",
		"nodes_down > 2%":       "nodes_down is in a count, not %",
		"errors 5%":             "METRIC OP VALUE [for DURATION]",
		"oltp: memory > 5%":     "memory is the cluster's or a node's",
		"node 0: errors > 1%":   "want a node index from 1",
		"errors > 5% for never": `for "never": want a duration`,
		"":                      "METRIC OP VALUE [for DURATION]",
	} {
		if _, err := ParseAbortCondition(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want %q", in, err, msg)
		}
	}
}

// The guard trips once a condition has held for its time, not before; a
// condition that stops holding starts over; it cancels once, with an *Aborted.
func TestGuardTrips(t *testing.T) {
	now := time.Unix(1000, 0)
	var causes []error
	conds := []AbortCondition{
		{Metric: AbortErrors, Op: ">", Value: 5, For: 2 * time.Second, Text: "errors > 5% for 2s"},
		{Metric: AbortNodesDown, Op: ">=", Value: 2, Text: "nodes_down >= 2"},
	}
	g := NewGuard(conds, func(err error) { causes = append(causes, err) }, nil)
	g.now = func() time.Time { return now }
	second := func(ok, failed int64) {
		now = now.Add(time.Second)
		iv := results.KeyInterval{Count: ok}
		if failed > 0 {
			iv.Errors = map[results.Class]int64{"timeout": failed}
		}
		g.ObserveInterval([]results.KeyInterval{iv})
	}
	second(90, 10) // 10%: holds since now
	second(99, 1)  // 1%: starts over
	second(90, 10)
	second(90, 10) // held 1 s
	if len(causes) != 0 {
		t.Fatalf("tripped after 1 s of a condition asking for 2 s: %v", causes)
	}
	second(90, 10) // held 2 s
	var ab *Aborted
	if len(causes) != 1 || !errors.As(causes[0], &ab) || ab.Condition != "errors > 5% for 2s" || ab.Value != 10 || ab.Unit != "%" {
		t.Fatalf("causes %v", causes)
	}
	g.Samples([]Sample{{Up: false}, {Up: false}, {Up: true}})
	second(0, 100)
	if len(causes) != 1 || g.Tripped() != ab {
		t.Errorf("tripped again: %v", causes)
	}

	// nodes_down from the samples, at once.
	causes = nil
	g = NewGuard(conds, func(err error) { causes = append(causes, err) }, nil)
	g.Samples([]Sample{{Up: true}, {Up: false}, {Up: true}})
	if len(causes) != 0 {
		t.Fatal("one node down tripped nodes_down >= 2")
	}
	g.Samples([]Sample{{Up: false}, {Up: false}, {Up: true}})
	if len(causes) != 1 || !strings.Contains(causes[0].Error(), "aborted: nodes_down >= 2 (it was 2)") {
		t.Errorf("causes %v", causes)
	}
	// The cluster-wide write gap open now.
	causes = nil
	g = NewGuard([]AbortCondition{{Metric: AbortWriteGap, Op: ">", Value: 3, Text: "write_gap > 3s"}}, func(err error) { causes = append(causes, err) }, nil)
	g.ObserveStreams(now, []results.StreamState{{Workload: "oltp", Node: 1, Access: results.Write, SinceSuccess: 10 * time.Second},
		{Access: results.Write, SinceSuccess: 2 * time.Second}})
	if len(causes) != 0 {
		t.Fatal("a node's own write gap tripped the cluster-wide one")
	}
	g.ObserveStreams(now, []results.StreamState{{Access: results.Write, SinceSuccess: 4 * time.Second}})
	if len(causes) != 1 {
		t.Errorf("a 4 s cluster-wide write gap did not trip write_gap > 3s")
	}
}

// Scoped conditions read their workload's or node's figures only.
func TestGuardScopes(t *testing.T) {
	var causes []error
	parse := func(s string) AbortCondition { c, _ := ParseAbortCondition(s); return c }
	g := NewGuard([]AbortCondition{parse("batch: errors > 50%"), parse("node 2: memory > 90%"), parse("oltp: write_gap > 3s")},
		func(err error) { causes = append(causes, err) }, nil)
	// oltp fails half on node 1, batch is fine: the cluster is at 25%, batch at 0.
	g.ObserveInterval([]results.KeyInterval{
		{Key: results.Key{Workload: "oltp", Node: 1}, Count: 50, Errors: map[results.Class]int64{"timeout": 50}},
		{Key: results.Key{Workload: "batch", Node: 1}, Count: 100},
	})
	g.Samples([]Sample{{Node: 1, Up: true, MemoryPct: 99}, {Node: 2, Up: true, MemoryPct: 80}})
	// oltp's writes: node 1 has none for 10 s, node 2 succeeded 1 s ago.
	g.ObserveStreams(time.Now(), []results.StreamState{
		{Workload: "oltp", Node: 1, Access: results.Write, SinceSuccess: 10 * time.Second},
		{Workload: "oltp", Node: 2, Access: results.Write, SinceSuccess: time.Second},
	})
	if len(causes) != 0 {
		t.Fatalf("tripped on another scope's figures: %v", causes)
	}
	g.Samples([]Sample{{Node: 1, Up: true, MemoryPct: 50}, {Node: 2, Up: true, MemoryPct: 95}})
	if len(causes) != 1 || !strings.Contains(causes[0].Error(), "node 2: memory > 90%") {
		t.Errorf("node 2 at 95%%: %v", causes)
	}
}

func TestDefaultTargetGuard(t *testing.T) {
	spec, err := Builtin("failover-pause", ParseOptions{Quick: true})
	if err != nil {
		t.Fatal(err)
	}
	g := DefaultTargetGuard(spec)
	if len(g) != 2 || g[0].Metric != AbortNodesDown || g[0].Value != 1 || g[1].Metric != AbortWriteGap || g[1].Value != 50 {
		t.Errorf("default guard %+v", g)
	}
}

// On a real cluster: a run whose abort condition holds once its pause took
// effect stops there, recovers the fault, scores what it measured, says why in
// run.json, and the cluster serves. The breach-to-recovered time is measured.
func TestAbortGuardStopsARun(t *testing.T) {
	c := sharedGalera(t)
	spec, err := Builtin("failover-pause", ParseOptions{Quick: true})
	if err != nil {
		t.Fatal(err)
	}
	cond, _ := ParseAbortCondition("nodes_down >= 1 for 1s")
	start := time.Now()
	res, err := Run(context.Background(), spec, Options{Cluster: c, Out: filepath.Join(t.TempDir(), "run"), Seed: 1, Log: t.Logf, Abort: []AbortCondition{cond}})
	took := time.Since(start)
	var ab *Aborted
	if !errors.As(err, &ab) || res == nil || res.Aborted != ab {
		t.Fatalf("error %v, result %+v: want the run aborted", err, res)
	}
	t.Logf("%v at +%.1fs of the run; faults recovered %.2f s after the breach; the run took %v of its planned %v",
		ab, ab.At.Sub(start).Seconds(), ab.FaultsRecoveredIn, took.Round(time.Millisecond), spec.Total())
	if ab.Condition != "nodes_down >= 1 for 1s" || ab.Value != 1 {
		t.Errorf("aborted on %+v", ab)
	}
	// The pause starts after warmup and baseline (11 s): the breach comes a
	// second or two after, and nothing runs on to the end of the timeline.
	if took > spec.Total() {
		t.Errorf("the run took %v, its whole timeline %v: the abort did not stop it", took, spec.Total())
	}
	if ab.FaultsRecoveredIn <= 0 || ab.FaultsRecoveredIn > 10 {
		t.Errorf("faults recovered %.2f s after the breach", ab.FaultsRecoveredIn)
	}
	rf, err := ReadRunFile(filepath.Join(res.Dir, "run.json"))
	if err != nil || rf.Aborted == nil || rf.Aborted.Condition != ab.Condition || !strings.Contains(rf.Error, "aborted: nodes_down >= 1") || len(rf.Findings) == 0 {
		t.Errorf("run.json: aborted %+v, error %q, %d findings (%v)", rf.Aborted, rf.Error, len(rf.Findings), err)
	}
	for _, f := range rf.Faults {
		if f.Healthy.IsZero() {
			t.Errorf("fault %s not recovered after the abort", f.Name)
		}
	}
	if err := c.WaitReady(context.Background()); err != nil {
		t.Errorf("cluster after the abort: %v", err)
	}
}
