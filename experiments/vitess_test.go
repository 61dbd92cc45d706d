package experiments

import (
	"context"
	"testing"

	"github.com/htapchaos/htapchaos/loadgen"
	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// vitessSet puts a sharded builtin on the vitess topology: 2 vtgates over 2 shards.
var vitessSet = []string{"cluster.topology=vitess", "cluster.leaves=2"}

// The sharded builtins on one vitess cluster, in turn.
func TestVitessBuiltins(t *testing.T) {
	spec, err := Builtin("data-movement", ParseOptions{Quick: true, Set: vitessSet})
	if err != nil {
		t.Fatal(err)
	}
	cfg := spec.ClusterConfig()
	cfg.Labels = testLabels
	c := htc.SharedForTest(t, "vitess-quick", cfg)
	if c.Topology != htc.Vitess || len(c.Leaves()) != 2 || len(c.Aggregators()) != 2 {
		t.Fatalf("cluster %s: %s, %d vtgates, %d shards", c.Name, c.Topology, len(c.Aggregators()), len(c.Leaves()))
	}
	ctx := context.Background()
	run := func(t *testing.T, name string) *Result { return runShardedBuiltin(t, c, "vitess", name, vitessSet) }

	t.Run("data-movement", func(t *testing.T) {
		res := run(t, "data-movement")
		rec := res.Recorded
		if rec.ShardEngine != loadgen.VitessEngine || len(rec.Shards) != 6 {
			t.Errorf("engine %q, %d shard counts (want vitess, 3 tables x 2 shards)", rec.ShardEngine, len(rec.Shards))
		}
		// vtgate's own plans: the join on the shard key and the one against the
		// reference table run on the shards, the one on merchant_id at vtgate,
		// which looks each merchant up on its shard.
		for op, want := range map[string]string{
			"colocated-join": loadgen.ShapePushedDown, "reference-join": loadgen.ShapePushedDown,
			"noncolocated-join": loadgen.ShapeJoinAtGate, "pushed-aggregate": loadgen.ShapePushedDown,
		} {
			if got := rec.Plans[op].Shape; got != want {
				t.Errorf("%s: vtgate plan %q, want %q", op, got, want)
			}
		}
		if rec.Plans["noncolocated-join"].Routes["EqualUnique"] != 1 || rec.Plans["colocated-join"].Routes["Scatter"] != 1 {
			t.Errorf("routes: non-co-located %v, co-located %v", rec.Plans["noncolocated-join"].Routes, rec.Plans["colocated-join"].Routes)
		}
		classes, mixed := rec.movementClasses(rec.nodesWithRole(htc.RoleLeaf))
		if len(mixed) > 0 {
			t.Errorf("mixed classes: %v", mixed)
		}
		per := map[string]movementClass{}
		for _, mc := range classes {
			per[mc.op] = mc
			t.Logf("%s: %d queries, moved %.0f B per query, %.1f shard selects per query, p50 %v", mc.op, mc.queries, mc.moved/float64(max(mc.queries, 1)), mc.selects/float64(max(mc.queries, 1)), mc.p50)
		}
		// Against the shards' own counters for one query run alone, after the run.
		alone := map[string]int64{}
		for _, op := range []string{"colocated-join", "noncolocated-join", "reference-join"} {
			b, s := measureAlone(t, ctx, c, loadgen.ShardedQueryOn(loadgen.VitessEngine, op))
			alone[op] = b
			t.Logf("%s alone: the shards sent %d B in %d selects", op, b, s)
		}
		got := per["noncolocated-join"].moved / float64(max(per["noncolocated-join"].queries, 1))
		if a := float64(alone["noncolocated-join"]); got < a/2 || got > a*2 {
			t.Errorf("non-co-located join: the tool measured %.0f B per query, the shards counted %.0f B for one alone", got, a)
		}
		if alone["noncolocated-join"] < 50*alone["colocated-join"] {
			t.Errorf("the shards' own count: non-co-located %d B, co-located %d B: want at least 50x", alone["noncolocated-join"], alone["colocated-join"])
		}
		co := findingOf(t, res.Findings, "co-location: bytes moved non-co-located / co-located join", Pass)
		if co.Value < 50 {
			t.Errorf("the tool measured the non-co-located join moving %.1fx the co-located one's bytes, want at least 50x", co.Value)
		}
		ref := findingOf(t, res.Findings, "co-location: bytes moved reference-table / co-located join", Pass)
		if ref.Value > 3 || ref.Value*20 > co.Value {
			t.Errorf("the reference-table join moved %.1fx the co-located one's bytes (the non-co-located %.1fx): want about as little as the co-located", ref.Value, co.Value)
		}
		if p := per["noncolocated-join"].p50; p < 2*per["colocated-join"].p50 {
			t.Errorf("p50: non-co-located %v, co-located %v", p, per["colocated-join"].p50)
		}
	})

	t.Run("leaf-failure", func(t *testing.T) { checkLeafFailure(t, run(t, "leaf-failure"), vitessSet) })

	t.Run("aggregator-failover", func(t *testing.T) {
		res := run(t, "aggregator-failover")
		with := findingOf(t, res.Findings, named(nameClientGap, "with-retries"), Pass)
		without := findingOf(t, res.Findings, named(nameClientGap, "no-retries"), Pass)
		if len(with.Evidence) == 0 || len(without.Evidence) == 0 {
			t.Fatalf("client gap findings without evidence: %+v %+v", with, without)
		}
		t.Logf("with retries: %s; without: %s", with.Evidence[0].Detail, without.Evidence[0].Detail)
		if d := with.Evidence[0].Detail; len(d) < 5 || d[:5] != "0 of " {
			t.Errorf("with retries to the other vtgate: %s; want none failed", d)
		}
		if d := without.Evidence[0].Detail; len(d) >= 5 && d[:5] == "0 of " {
			t.Errorf("without retries no request failed: %s", d)
		}
	})
}
