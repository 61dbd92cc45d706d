package experiments

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// An experiment's error does not stop the suite: every experiment is tried, each
// in its own directory, between the hooks, and the errors come back joined with
// what ran. No cluster is needed: these experiments name none.
func TestSuiteGoesOnAfterAnError(t *testing.T) {
	var specs []*Spec
	for _, n := range []string{"one", "two"} {
		s, err := ParseSpec(n+".yaml", []byte("name: "+n+"\nmodes: [durability]\nphases: [{name: baseline, duration: 1s}]\nworkloads: [{kind: oltp, rate: 10}]\n"), ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, s)
	}
	for _, repeat := range []int{1, 3} {
		out := filepath.Join(t.TempDir(), "suite")
		var started, done, repeats []string
		res, err := Suite(context.Background(), specs, SuiteOptions{Options: Options{Out: out, Seed: 9}, Repeat: repeat, Hooks: Hooks{
			Start:      func(s *Spec, o *Options) func() { started = append(started, o.Out); return nil },
			Done:       func(s *Spec, o Options, _ *Result, _ error) { done = append(done, s.Name) },
			RepeatDone: func(s *Spec, _ *RepeatResult, _ error) { repeats = append(repeats, s.Name) },
		}})
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "one: ") || !strings.Contains(err.Error(), "two: ") {
			t.Errorf("repeat %d: %v, want both experiments' errors", repeat, err)
		}
		if res == nil || len(res.Runs) != 2 || res.Runs[0].Dir != filepath.Join(out, "one") || res.Runs[1].Seed != 9 || res.Runs[1].Err == nil {
			t.Fatalf("repeat %d: result %+v", repeat, res)
		}
		if len(res.Failed()) != 0 || res.Runs[0].Verdict() != "" {
			t.Errorf("repeat %d: failed %v, verdict %q: nothing was measured", repeat, res.Failed(), res.Runs[0].Verdict())
		}
		if !slices.Equal(done, []string{"one", "two"}) {
			t.Errorf("repeat %d: done %v", repeat, done)
		}
		junit := res.JUnit()
		if len(junit) != 2 || junit[1].Experiment != "two" || junit[1].Err == nil {
			t.Errorf("repeat %d: junit %+v", repeat, junit)
		}
		if repeat > 1 {
			// Each experiment's directory is a repeat directory; its first run failed,
			// so it stopped there.
			want := []string{filepath.Join(out, "one", "r1"), filepath.Join(out, "two", "r1")}
			if !slices.Equal(started, want) || !slices.Equal(repeats, []string{"one", "two"}) || !IsRepeatDir(filepath.Join(out, "two")) {
				t.Errorf("repeat %d: started %v, repeats done %v", repeat, started, repeats)
			}
			if res.Runs[0].Repeat == nil || junit[0].Repeats != repeat {
				t.Errorf("repeat %d: %+v", repeat, junit[0])
			}
		} else if !slices.Equal(started, []string{filepath.Join(out, "one"), filepath.Join(out, "two")}) || len(repeats) != 0 {
			t.Errorf("repeat %d: started %v, repeats done %v", repeat, started, repeats)
		}
	}

	// Bad options: refused before anything runs. A repeat count below 1 is
	// refused as Repeat and the CLI refuse it (CheckRepeat), 0 too.
	for _, o := range []SuiteOptions{
		{Repeat: 1},
		{Options: Options{Out: filepath.Join(t.TempDir(), "never")}, Repeat: -1},
		{Options: Options{Out: filepath.Join(t.TempDir(), "never")}},
	} {
		res, err := Suite(context.Background(), specs, o)
		var ue *UsageError
		if !errors.As(err, &ue) || res == nil || len(res.Runs) != 0 {
			t.Errorf("%+v: %v", o, err)
		}
		if o.Out != "" && (ue == nil || ue.Field != "--repeat" || !strings.Contains(err.Error(), "want 1 or more runs")) {
			t.Errorf("repeat %d: %v, want the usage error of --repeat", o.Repeat, err)
		}
		if o.Out != "" {
			if _, err := os.Stat(o.Out); err == nil {
				t.Error("a refused suite made its directory")
			}
		}
	}
}

// Experiments share a suite's cluster when they ask for the same cluster and
// data.
func TestSuiteClusterKey(t *testing.T) {
	key := func(name string, o ParseOptions) string {
		s, err := Builtin(name, o)
		if err != nil {
			t.Fatal(err)
		}
		return SuiteClusterKey(s)
	}
	q := ParseOptions{Quick: true}
	if key("failover-kill", q) != key("failover-pause", q) {
		t.Error("failover-kill and failover-pause ask for the same cluster and data, yet do not share")
	}
	if key("failover-kill", q) == key("htap-contention", q) {
		t.Error("htap-contention seeds more orders, yet shares failover-kill's cluster")
	}
	if key("failover-kill", q) == key("failover-kill", ParseOptions{Quick: true, Set: []string{"cluster.memory=1GiB"}}) {
		t.Error("a cluster of other memory is shared")
	}
}

// Two experiments asking for the same one-node cluster: the suite starts it once,
// runs both on it, each in its directory, and removes it at the end.
func TestSuiteSharesACluster(t *testing.T) {
	var specs []*Spec
	for _, n := range []string{"first", "second"} {
		s, err := ParseSpec(n+".yaml", []byte("name: "+n+`
modes: [durability]
cluster: {topology: single, memory: 512MiB}
data: {users: 100, orders: 2000}
phases: [{name: baseline, duration: 2s}]
workloads: [{kind: oltp, rate: 50, timeout: 2s}]
`), ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, s)
	}
	out := filepath.Join(t.TempDir(), "suite")
	var lines []string
	var clusters []string
	res, err := Suite(context.Background(), specs, SuiteOptions{
		Options: Options{Out: out, Seed: 3, Labels: testLabels, Log: func(format string, args ...any) {
			lines = append(lines, fmt.Sprintf(format, args...))
		}},
		Repeat: 1,
		Hooks: Hooks{Done: func(_ *Spec, o Options, res *Result, _ error) {
			if res != nil && res.Recorded != nil {
				clusters = append(clusters, o.Cluster.Name)
			}
		}},
	})
	if err != nil {
		if errors.Is(err, htc.ErrEngineUnavailable) || errors.Is(err, htc.ErrImageMissing) {
			if os.Getenv("CI") == "" {
				t.Skipf("needs a container engine and the node image: %v", err)
			}
		}
		t.Fatalf("suite: %v\n%s", err, strings.Join(lines, "\n"))
	}
	started := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "suite: starting a single cluster") {
			started++
		}
	}
	if started != 1 || len(clusters) != 2 || clusters[0] != clusters[1] {
		t.Errorf("%d clusters started, runs on %v; want one, shared", started, clusters)
	}
	for i, s := range specs {
		rf, err := ReadRunFile(filepath.Join(out, s.Name, "run.json"))
		if err != nil || rf.Seed != 3 || res.Runs[i].Verdict() == "" {
			t.Errorf("%s: %v, seed %d, verdict %q", s.Name, err, rf.Seed, res.Runs[i].Verdict())
		}
	}
	eng, err := htc.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	list, err := htc.List(context.Background(), eng)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if len(clusters) > 0 && c.Name == clusters[0] {
			t.Errorf("the suite's cluster %s is left", c.Name)
		}
	}
}

// Run, Repeat and Suite start a spec's cluster the same way (startSpecCluster):
// one that cannot start returns its error, each says what it starts, and
// nothing is left to remove (no panic on a cluster that never was). No engine
// is needed: the cluster's config is refused before any.
func TestStartSpecClusterRefused(t *testing.T) {
	spec, err := ParseSpec("bad.yaml", []byte("name: bad\nmodes: [durability]\ncluster: {topology: single, memory: 512MiB}\nphases: [{name: baseline, duration: 1s}]\nworkloads: [{kind: oltp, rate: 10}]\n"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec.Cluster.Topology = "no-such-topology" // past the spec's checks: the cluster's own refuses it
	ctx := context.Background()
	for _, c := range []struct {
		name string
		call func(o Options) error
		line string
	}{
		{"run", func(o Options) error { _, err := Run(ctx, spec, o); return err }, "starting a no-such-topology cluster"},
		{"repeat", func(o Options) error { _, err := Repeat(ctx, spec, 2, RepeatOptions{Options: o}); return err }, "bad: starting a no-such-topology cluster"},
		{"suite", func(o Options) error {
			_, err := Suite(ctx, []*Spec{spec}, SuiteOptions{Options: o, Repeat: 1})
			return err
		}, "suite: starting a no-such-topology cluster"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var lines []string
			o := Options{Out: filepath.Join(t.TempDir(), "out"), Log: func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }}
			err := c.call(o)
			if err == nil || !strings.Contains(err.Error(), "unknown topology") {
				t.Errorf("%v, want the cluster's config error", err)
			}
			if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, c.line) }) {
				t.Errorf("no line %q in %q", c.line, lines)
			}
		})
	}
	c, remove, err := startSpecCluster(ctx, spec, nil, func(string, ...any) {})
	if c != nil || err == nil || remove == nil || remove(ctx) != nil {
		t.Errorf("startSpecCluster: %v, %v; want no cluster, an error, and a remove that has nothing to do", c, err)
	}
}

// A suite's experiments are builtin names and spec files, mixed, in the order
// given; none is every builtin. Every bad argument is said at once.
func TestLoadSpecs(t *testing.T) {
	all, err := LoadSpecs(nil, ParseOptions{Quick: true})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range all {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, BuiltinNames()) || len(names) < 2 {
		t.Errorf("no arguments: %v, want every builtin %v", names, BuiltinNames())
	}

	dir := t.TempDir()
	mine := filepath.Join(dir, "mine.yaml")
	if err := os.WriteFile(mine, []byte("name: mine\nmodes: [durability]\nphases: [{name: baseline, duration: 1s}]\nworkloads: [{kind: oltp, rate: 10}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	first := BuiltinNames()[0]
	specs, err := LoadSpecs([]string{mine, first}, ParseOptions{Set: []string{"phases.baseline.duration=2s"}})
	if err != nil || len(specs) != 2 || specs[0].Name != "mine" || specs[1].Name != first {
		t.Fatalf("file and name: %v, %v", specs, err)
	}
	if d := specs[0].Phases[0].Duration.D(); d.Seconds() != 2 {
		t.Errorf("--set not applied to the file: baseline %v", d)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: bad\nphases: [{name: baseline, duration: soon}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadSpecs([]string{"no-such-experiment", bad, mine, filepath.Join(dir, "missing.yaml"), mine}, ParseOptions{})
	var ue *UsageError
	if !errors.As(err, &ue) {
		t.Fatalf("bad arguments: %v, want a usage error", err)
	}
	for _, want := range []string{"no builtin experiment no-such-experiment", `bad.yaml: line 2: "soon": want a duration`, "missing.yaml", `experiment "mine" is also ` + mine} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// The suite says "[i/N] name" as each experiment starts, before its cluster.
func TestSuiteCountsItsExperiments(t *testing.T) {
	var specs []*Spec
	for _, n := range []string{"a", "b", "c"} {
		s, err := ParseSpec(n+".yaml", []byte("name: "+n+"\nmodes: [durability]\nphases: [{name: baseline, duration: 1s}]\nworkloads: [{kind: oltp, rate: 10}]\n"), ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, s)
	}
	var lines []string
	_, _ = Suite(context.Background(), specs, SuiteOptions{Options: Options{Out: t.TempDir(), Log: func(f string, a ...any) {
		if l := fmt.Sprintf(f, a...); strings.HasPrefix(l, "[") {
			lines = append(lines, l)
		}
	}}, Repeat: 1})
	if want := []string{"[1/3] a", "[2/3] b", "[3/3] c"}; !slices.Equal(lines, want) {
		t.Errorf("lines %q, want %q", lines, want)
	}
	if SuiteProcs(specs, 8) < 1 {
		t.Error("SuiteProcs below 1")
	}
}
