package experiments

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// finding returns the findings of a mode.
func findings(r *Result, mode string) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Mode == mode {
			out = append(out, f)
		}
	}
	return out
}

// The quick suite, end to end, through the Go API a user's own test would use: one
// 3-node Galera cluster in containers, every builtin experiment that asks for that
// cluster on it in turn, each producing a finding for each of its failure modes and
// a readable run.json, with no acknowledged write lost. A builtin that asks for
// another cluster (replica-lag: primary-replica) is run by a test on that cluster.
// ownClusterTests are the builtins on a cluster other than the shared
// Galera's, each run by a test of its own: replica-lag by
// TestReplicaLagQuick (freshness_test.go), the sharded ones by TestShardedBuiltins
// (sharded_test.go).
var ownClusterTests = []string{"replica-lag", "data-movement", "leaf-failure", "aggregator-memory", "aggregator-failover"}

func TestQuickSuiteOnGalera(t *testing.T) {
	c := sharedGalera(t)
	ctx := context.Background()
	galera, err := Builtin("failover-kill", ParseOptions{Quick: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range BuiltinNames() {
		spec, err := Builtin(name, ParseOptions{Quick: true})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(spec.ClusterConfig(), galera.ClusterConfig()) {
			// A builtin on another cluster must have a test of its own, named
			// here; one that is not would run nowhere.
			if !slices.Contains(ownClusterTests, name) {
				t.Errorf("%s asks for another cluster (%s) and no test runs it: give it one and add it to ownClusterTests", name, spec.Cluster.Topology)
			}
			continue
		}
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), name)
			res, err := Run(ctx, spec, Options{Cluster: c, Out: dir, Seed: 1, Log: t.Logf})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range res.Findings {
				t.Logf("%s %s: %s %.4g %s (budget %s %.4g) %s %v", f.Mode, f.Name, f.Verdict, f.Value, f.Unit, f.Op, f.Budget, f.Reason, f.Notes)
			}
			for _, m := range append(slices.Clone(spec.Modes), ModeDurability) {
				if len(findings(res, m)) == 0 {
					t.Errorf("no finding for %s", m)
				}
			}
			for _, f := range res.Recorded.Faults {
				if !f.TookEffect() {
					t.Errorf("fault %s never took effect: %s %s", f.Name, f.State, f.Error)
				}
			}
			for _, f := range findings(res, ModeDurability) {
				if f.Verdict != Pass {
					t.Errorf("durability: %+v", f)
				}
			}
			var rf RunFile
			b, err := os.ReadFile(filepath.Join(dir, "run.json"))
			if err == nil {
				err = json.Unmarshal(b, &rf)
			}
			if err != nil || rf.Version != 1 || len(rf.Findings) != len(res.Findings) || len(rf.PhaseStats) == 0 {
				t.Errorf("run.json: version %d, %d findings, %d phase stats: %v", rf.Version, len(rf.Findings), len(rf.PhaseStats), err)
			}
			for _, f := range []string{"summary.json", "indicators.jsonl", "events.jsonl", "intervals.jsonl"} {
				if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
					t.Errorf("%s: %v", f, err)
				}
			}
		})
	}

	// Built to fail: two of three nodes frozen, the third loses quorum and its
	// clients stall for the whole fault: failover must fail.
	t.Run("quorum-lost-fails-failover", func(t *testing.T) {
		spec, err := ParseSpec("quorum.yaml", []byte(`name: quorum-lost
modes: [failover]
phases:
  - {name: baseline, duration: 6s}
  - {name: fault, duration: 12s}
  - {name: recovery, duration: 20s}
workloads:
  - {kind: oltp, rate: 150, route: all, timeout: 2s}
faults:
  - {kind: pause, phase: fault, node: all-but-one}
`), ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := Run(ctx, spec, Options{Cluster: c, Out: t.TempDir(), Seed: 1, Log: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		// The survivor kept answering until it noticed it was alone (Galera's suspect
		// timeout), then refused reads and writes until the others thawed.
		for _, name := range []string{nameWriteGap, nameReadGap, nameClusterGap} {
			var gap *Finding
			for _, f := range findings(res, ModeFailover) {
				if f.Name == name {
					t.Logf("%s: %s %.3g %s %s %v", f.Name, f.Verdict, f.Value, f.Unit, f.Reason, f.Notes)
					gap = &f
				}
			}
			if gap == nil || gap.Verdict != Fail || gap.Value <= gap.Budget {
				t.Errorf("failover with quorum lost: %s %+v, want fail with a gap over the budget", name, gap)
			}
		}
	})
}

// A fault that cannot take effect scores inconclusive, never pass: the node already
// uses more memory than the fill is asked to reach, so the fill refuses to start.
func TestFaultWithoutEffectIsInconclusive(t *testing.T) {
	spec, err := ParseSpec("noeffect.yaml", []byte(`name: no-effect
modes: [memory-headroom]
cluster: {topology: single, memory: 512MiB}
data: {users: 100, orders: 1000}
phases:
  - {name: baseline, duration: 4s}
  - {name: fill, duration: 4s}
  - {name: recovery, duration: 4s}
workloads:
  - {kind: oltp, rate: 100, timeout: 2s}
faults:
  - {kind: memory-fill, phase: fill, node: "1", params: {percent: "2"}}
`), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), spec, Options{Out: t.TempDir(), Seed: 1, Labels: testLabels, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if f := res.Recorded.Faults[0]; f.TookEffect() || f.Error == "" {
		t.Fatalf("the fill took effect: %+v", f)
	}
	fs := findings(res, ModeMemoryHeadroom)
	if len(fs) == 0 {
		t.Fatal("no memory-headroom finding")
	}
	for _, f := range fs {
		t.Logf("%s: %s %s", f.Name, f.Verdict, f.Reason)
		if f.Verdict != Inconclusive {
			t.Errorf("%s: %s, want inconclusive: the fill never took effect", f.Name, f.Verdict)
		}
	}
	if res.Verdict() == Pass {
		t.Error("the run passed")
	}
}

// Where a workload that names no route sends its operations: on primary-replica
// only to the primary (writes on a replica would fork its data), on a sharded
// cluster to the aggregators, elsewhere to every node; a route the spec names
// is kept.
func TestRouteByTopology(t *testing.T) {
	spec, err := ParseSpec("route.yaml", []byte(`name: route
modes: [durability]
phases: [{name: baseline, duration: 1s}]
workloads:
  - {kind: oltp, rate: 10}
  - {name: reads, kind: oltp, rate: 10, route: "nodes=2,3", mix: {point-read: 1}}
  - {name: every, kind: oltp, rate: 10, route: all, mix: {point-read: 1}}
`), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nodes := func(roles ...string) []nodeRef {
		var out []nodeRef
		for i, r := range roles {
			out = append(out, nodeRef{index: i + 1, role: r})
		}
		return out
	}
	for _, c := range []struct {
		name  string
		nodes []nodeRef
		want  [3][]int
	}{
		{"primary-replica", nodes("primary", "replica", "replica"), [3][]int{{1}, {2, 3}, {1, 2, 3}}},
		{"galera", nodes("galera", "galera", "galera"), [3][]int{{1, 2, 3}, {2, 3}, {1, 2, 3}}},
		{"sharded", nodes("aggregator", "aggregator", "leaf", "leaf"), [3][]int{{1, 2}, {2, 3}, {1, 2}}},
	} {
		r := &runState{spec: spec, nodes: c.nodes, logf: t.Logf}
		for i, want := range c.want {
			if got := r.route(i).Nodes; !slices.Equal(got, want) {
				t.Errorf("%s: workload %s goes to %v, want %v", c.name, spec.Workloads[i].Name, got, want)
			}
		}
	}
}
