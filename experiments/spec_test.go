package experiments

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

const goodSpec = `name: demo
description: a demo
modes: [failover, durability]
cluster: {topology: galera, nodes: 3, memory: 512MiB, settings: {innodb_buffer_pool_size: 128M}}
data: {users: 100, orders: 1000}
phases:
  - {name: baseline, duration: 10s}
  - {name: fault, duration: 20s}
  - {name: recovery, duration: 30s}
workloads:
  - {kind: oltp, rate: 100, mix: {point-read: 3, insert: 1}, route: all, timeout: 2s}
  - {name: scans, kind: analytics, concurrency: 2, during: [fault], phase_rates: {fault: 4}}
faults:
  - {kind: node-kill, phase: fault, offset: 2s, node: "2"}
heartbeat: {node: 1}
quick:
  phases.baseline.duration: 3s
  workloads.oltp.rate: "50"
`

func TestParseSpecGood(t *testing.T) {
	s, err := ParseSpec("demo.yaml", []byte(goodSpec), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Cluster.Memory != 512<<20 || s.Nodes() != 3 || s.Total() != time.Minute {
		t.Errorf("memory %d nodes %d total %v", s.Cluster.Memory, s.Nodes(), s.Total())
	}
	if s.Workloads[0].Name != "oltp" || s.Faults[0].Name != "node-kill" || s.Heartbeat.Every.D() != 100*time.Millisecond {
		t.Errorf("defaults: %+v %+v %+v", s.Workloads[0], s.Faults[0], s.Heartbeat)
	}
	if start, dur := s.PhaseStart("fault"); start != 10*time.Second || dur != 20*time.Second {
		t.Errorf("fault phase at %v for %v", start, dur)
	}
	q, err := ParseSpec("demo.yaml", []byte(goodSpec), ParseOptions{Quick: true, Set: []string{"workloads.scans.concurrency=3", "cluster.nodes=5", "budgets.failover.gap=2s"}})
	if err != nil {
		t.Fatal(err)
	}
	if q.Phases[0].Duration.D() != 3*time.Second || q.Workloads[0].Rate != 50 || q.Workloads[1].Concurrency != 3 || q.Nodes() != 5 || q.Budgets["failover"]["gap"] != "2s" {
		t.Errorf("quick and --set not applied: %+v %+v %d %v", q.Phases[0], q.Workloads, q.Nodes(), q.Budgets)
	}
}

// Every problem at once, each with the file and line.
func TestParseSpecBad(t *testing.T) {
	cases := []struct {
		name string
		src  string
		set  []string
		want []string
	}{
		{"syntax", "name: [", nil, []string{"x.yaml: line 1"}},
		{"unknown keys and bad units", `name: x
modes: [failover]
colour: blue
cluster: {topology: galera, memory: lots}
phases:
  - {name: a, duration: soon}
`, nil, []string{"x.yaml: line 3: field colour not found", `x.yaml: line 4: "lots": want a size`, `x.yaml: line 6: "soon": want a duration`}},
		{"meaning", `name: x
modes: [failover, wishful-thinking]
cluster: {topology: ring, nodes: 3}
phases:
  - {name: a, duration: 10s}
  - {name: a, duration: 0s}
workloads:
  - {kind: oltp}
  - {kind: olap, rate: 5}
  - {name: w3, kind: oltp, rate: 1, concurrency: 2, route: node=9, during: [nope], mix: {teleport: 1}}
faults:
  - {kind: meteor, phase: a, node: "1"}
  - {name: k, kind: node-kill, phase: zz, node: "7"}
  - {name: p, kind: pause, phase: a, offset: 20s}
  - {name: m, kind: memory-fill, phase: a, node: "1", params: {percent: "100"}}
  - {name: long, kind: pause, phase: a, node: "1", for: 1h}
  - {name: prim, kind: pause, phase: a, node: primary}
budgets: {nonsense: {x: "1"}}
`, nil, []string{
			`x.yaml:2: unknown failure mode "wishful-thinking"`,
			`x.yaml:3: `, // topology ring
			`x.yaml:6: phase "a" twice`,
			`x.yaml:6: phase "a": duration must be positive`,
			`x.yaml:8: oltp: give a rate (ops/s) or a concurrency`,
			`x.yaml:9: unknown workload "olap"`,
			`x.yaml:10: w3: give a rate (open loop) or a concurrency (closed loop), not both`,
			`w3: no phase "nope"`,
			`teleport`,
			`x.yaml:12: unknown fault "meteor"`,
			`x.yaml:13: k: no phase "zz"`,
			`k: node 7: out of range 1-3`,
			`x.yaml:14: p: offset 20s is past the end of phase a`,
			`x.yaml:14: p: no node`,
			`m: percent=100: want a percentage from 1 to 99`,
			`long: holds 1h0m0s from 0s, past the end of the timeline`,
			`prim: node primary: a ring cluster has no primary`,
			`unknown failure mode "nonsense"`,
		}},
		{"sharded", `name: x
modes: [failover, freshness]
cluster: {topology: sharded, aggregators: 1, leaves: 1}
phases:
  - {name: a, duration: 10s}
workloads:
  - {kind: oltp, rate: 5}
faults:
  - {kind: node-kill, phase: a, node: leaf2}
  - {name: k2, kind: node-kill, phase: a, node: "4"}
`, nil, []string{
			`x.yaml:2: freshness does not apply to the sharded topology: each row has one copy`,
			`x.yaml:3: cluster.leaves: 1: a sharded cluster needs at least 2 leaves`,
			`k2: node 4: out of range 1-2`,
		}},
		{"sharded keys on galera", `name: x
modes: [failover]
cluster: {topology: galera, leaves: 3, leaf_proxy: true}
data: {merchants: -1}
phases:
  - {name: a, duration: 10s}
workloads:
  - {kind: oltp, rate: 5}
`, nil, []string{
			`x.yaml:3: cluster.leaves: only the sharded and vitess topologies take it (topology galera)`,
			`x.yaml:3: cluster.leaf_proxy: only the sharded (Spider) topology has a leaf proxy`,
			`x.yaml:4: data.merchants: -1: must not be negative`,
		}},
		{"numbers that cannot be meant", `name: x
modes: [failover]
phases:
  - {name: a, duration: 10s}
workloads:
  - {name: w1, kind: oltp, rate: .inf}
  - {name: w2, kind: oltp, rate: .nan}
  - {name: w3, kind: oltp, concurrency: 100000}
  - {name: w4, kind: oltp, rate: 5, retries: 1000}
`, nil, []string{
			`x.yaml:6: w1: rate +Inf: want a number of ops/s`,
			`x.yaml:7: w2: rate NaN: want a number of ops/s`,
			`x.yaml:8: w3: concurrency 100000: at most 4096`,
			`x.yaml:9: w4: retries at most 100`,
		}},
		{"abort conditions", `name: x
modes: [failover]
abort:
  - errors > 5% for 10s
  - latency > 5
phases:
  - {name: a, duration: 10s}
workloads:
  - {kind: oltp, rate: 5}
`, nil, []string{`x.yaml:5: abort[1]: "latency > 5": unknown metric "latency"`}},
		{"modes a vitess cluster cannot show", `name: x
modes: [memory-headroom, freshness]
cluster: {topology: vitess, leaves: 9, partitions_per_leaf: 2}
phases:
  - {name: a, duration: 10s}
workloads:
  - {kind: oltp, rate: 5}
`, nil, []string{
			`x.yaml:2: memory-headroom does not apply to the vitess topology: a vtgate streams rows`,
			`x.yaml:2: freshness does not apply to the vitess topology`,
			`cluster.leaves: 9: a vitess cluster needs 2-8 shards`,
			`cluster.partitions_per_leaf: 2: a vitess shard is one partition`,
		}},
		{"bad set", goodSpec, []string{"workloads.nope.rate=5", "novalue", "cluster.colour=blue"}, []string{
			`--set: workloads.nope.rate=5: no list item named "nope"`, `"novalue": want path=value`,
		}},
		{"set to an unknown key", goodSpec, []string{"cluster.colour=blue"}, []string{"(after --quick and --set): line", "field colour not found"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSpec("x.yaml", []byte(tc.src), ParseOptions{Set: tc.set})
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// Every builtin parses, with and without the quick profile, and the quick profile
// is shorter.
func TestBuiltinsParse(t *testing.T) {
	names := BuiltinNames()
	for _, want := range []string{"memory-headroom", "htap-contention", "schema-change", "failover-kill", "failover-pause", "partition", "fail-sideways", "replica-lag"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("no builtin %s (have %v)", want, names)
		}
	}
	for _, n := range names {
		full, err := Builtin(n, ParseOptions{})
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		quick, err := Builtin(n, ParseOptions{Quick: true})
		if err != nil {
			t.Fatalf("%s --quick: %v", n, err)
		}
		if quick.Total() >= full.Total() || quick.Total() > 75*time.Second {
			t.Errorf("%s: quick %v, full %v", n, quick.Total(), full.Total())
		}
		if full.Description == "" || len(full.Modes) == 0 {
			t.Errorf("%s: no description or modes", n)
		}
	}
}

func FuzzParseSpec(f *testing.F) {
	f.Add([]byte(goodSpec))
	f.Add([]byte("name: x\nphases: [{name: a, duration: 1s}]\n"))
	f.Add([]byte("{"))
	for _, n := range BuiltinNames() {
		b, _ := BuiltinSource(n)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSpec("fuzz.yaml", b, ParseOptions{Quick: true})
		if err == nil && (s.Name == "" || len(s.Phases) == 0 || len(s.Workloads) == 0 || s.Total() <= 0) {
			t.Errorf("accepted an incomplete spec: %+v", s)
		}
		// Refused: as bad input (exit 2), naming the file.
		var ue *UsageError
		if err != nil && (!errors.As(err, &ue) || !strings.Contains(err.Error(), "fuzz.yaml")) {
			t.Errorf("refused without a usage error naming the file: %v", err)
		}
	})
}

// --set values: whatever they say, a spec is accepted whole or refused as bad input.
func FuzzParseSpecSet(f *testing.F) {
	for _, s := range []string{"workloads.oltp.rate=1000", "phases.a.duration=1s", "cluster.nodes=5", "novalue", "faults.0.node=2", "abort.0=errors > 5%", "x=y=z", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, set string) {
		s, err := ParseSpec("x.yaml", []byte(goodSpec), ParseOptions{Set: []string{set}})
		var ue *UsageError
		switch {
		case err != nil && !errors.As(err, &ue):
			t.Errorf("--set %q refused without a usage error: %v", set, err)
		case err == nil && (len(s.Phases) == 0 || s.Total() <= 0):
			t.Errorf("--set %q gave an incomplete spec", set)
		}
	})
}

// Abort conditions: what parses reads back the same from its own text.
func FuzzParseAbortCondition(f *testing.F) {
	for _, s := range []string{"errors > 5% for 10s", "write_gap > 30s", "nodes_down >= 2", "memory > 97%", "p99 > 500ms", "p99>1s", "x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseAbortCondition(s)
		if err != nil {
			return
		}
		back, err := ParseAbortCondition(c.Text)
		if err != nil || back != c {
			t.Errorf("%q parsed to %+v, its text to %+v (%v)", s, c, back, err)
		}
		if _, ok := abortUnits[c.Metric]; !ok || c.For < 0 || c.Value < 0 {
			t.Errorf("%q: %+v", s, c)
		}
	})
}

// run.json holds the spec: it must read back as it was written.
func TestSpecJSONRoundTrip(t *testing.T) {
	s, err := ParseSpec("demo.yaml", []byte(goodSpec), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back Spec
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Total() != s.Total() || back.Cluster.Memory != s.Cluster.Memory || back.Faults[0].Offset != s.Faults[0].Offset {
		t.Errorf("round trip: %+v", back)
	}
}

func TestSpecProcs(t *testing.T) {
	for _, tc := range []struct {
		name string
		want int
	}{
		{"failover-kill", 2},   // OLTP only: the least for an experiment
		{"htap-contention", 3}, // an analytics spike: one more
		{"fail-sideways", 3},   // a batch spike
	} {
		s, err := Builtin(tc.name, ParseOptions{Quick: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Procs(8); got != tc.want {
			t.Errorf("%s: Procs = %d, want %d", tc.name, got, tc.want)
		}
		if got := s.Procs(1); got != 1 {
			t.Errorf("%s: Procs with a limit of 1 = %d", tc.name, got)
		}
	}
	s := &Spec{Phases: []PhaseSpec{{Name: "base"}, {Name: "peak"}}, Workloads: []WorkloadSpec{{Kind: "oltp", Rate: 2000, PhaseRates: map[string]float64{"peak": 25000}}, {Kind: "oltp", Concurrency: 40}}}
	if got := s.Procs(8); got != 3+2+1 {
		t.Errorf("a 25K ops/s phase and 40 workers: Procs = %d, want 6", got)
	}
}
