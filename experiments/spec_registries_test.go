package experiments

import (
	"context"
	"strings"
	"testing"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/loadgen"
	htc "github.com/htapchaos/htapchaos/testcontainers"
	"github.com/htapchaos/htapchaos/testcontainers/faulttarget"
)

// A spec naming the caller's own workload, fault kind and failure mode is read
// with the caller's registries, and refused, naming each, without them.
func TestSpecWithCallersRegistries(t *testing.T) {
	src := []byte(`name: custom
modes: [my-mode]
cluster: {topology: single}
phases: [{name: baseline, duration: 2s}, {name: hurt, duration: 2s}]
workloads: [{kind: my-load, rate: 10}]
faults: [{kind: my-fault, phase: hurt, node: "1", params: {wait: 1s}}]
budgets: {my-mode: {limit: "3"}}
`)
	_, err := ParseSpec("custom.yaml", src, ParseOptions{})
	for _, want := range []string{`custom.yaml:2: unknown failure mode "my-mode"`, `custom.yaml:5: unknown workload "my-load"`, `custom.yaml:6: unknown fault "my-fault"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("builtins only: %v, want %q", err, want)
		}
	}
	wr := loadgen.NewRegistry()
	wr.Register(&loadgen.Workload{Name: "my-load", NoDB: true, Ops: []loadgen.Op{{Name: "nothing", Weight: 1,
		Run: func(context.Context, loadgen.Querier, *loadgen.Worker) error { return nil }}}})
	fr := faults.NewRegistry()
	fr.Register(&faults.Kind{Name: "my-fault", Class: faults.ClassSlowdown, Params: []faults.ParamSpec{{Name: "wait", Type: faults.Duration, Default: "1s"}},
		New: func(faults.Params) faults.Fault { return nil }})
	sr := NewScorers()
	sr.Register(scorer{mode: "my-mode", budgets: []BudgetSpec{{Key: "limit", Type: BudgetRatio, Default: "2"}},
		score: func(*Recorded, Budgets) []Finding { return []Finding{{Mode: "my-mode", Name: "mine", Verdict: Pass}} }})
	spec, err := ParseSpec("custom.yaml", src, ParseOptions{Workloads: wr, Faults: fr, Scorers: sr})
	if err != nil {
		t.Fatal(err)
	}
	if spec.registries().workloads != wr || spec.registries().faults != fr || spec.registries().scorers != sr {
		t.Error("the spec does not keep the registries it was read with")
	}
	// A run given other registries checks the spec against them first.
	_, err = Run(context.Background(), spec, Options{Out: t.TempDir(), Workloads: loadgen.NewRegistry()})
	if err == nil || !strings.Contains(err.Error(), `unknown workload "my-load"`) {
		t.Errorf("run with the builtin workloads: %v, want the unknown workload refused", err)
	}
	if got := sr.Modes(); got[len(got)-1] != "my-mode" {
		t.Errorf("modes %v: want the catalog's, then my-mode", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("a mode registered twice did not panic")
		}
	}()
	sr.Register(scorer{mode: ModeFailover})
}

// fakeCluster is a faults.Cluster of the caller's own with nodes of no DSN.
type fakeCluster struct{}

type fakeNode struct{}

func (fakeCluster) Name() string         { return "mine" }
func (fakeCluster) Nodes() []faults.Node { return []faults.Node{fakeNode{}} }
func (fakeNode) Index() int              { return 1 }
func (fakeNode) Label() string           { return "db1" }
func (fakeNode) Role() string            { return "single" }

// Options.On takes any faults.Cluster: the run needs the consent to write, and
// a DSN on every node.
func TestRunOnACallersCluster(t *testing.T) {
	spec, err := ParseSpec("on.yaml", []byte("name: on\nmodes: [durability]\nphases: [{name: baseline, duration: 1s}]\nworkloads: [{kind: oltp, rate: 10}]\n"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{On: fakeCluster{}}, "on cluster mine creates and seeds its tables"},
		{Options{On: fakeCluster{}, AllowWrites: true}, "node db1 has no dsn"},
		{Options{On: fakeCluster{}, Target: &faults.ExecTarget{}}, "Options: give one of On, Cluster and Target, not On and Target"},
		{Options{On: fakeCluster{}, Cluster: &htc.Cluster{Name: "c"}}, "not On and Cluster"},
	} {
		c.o.Out = t.TempDir()
		if _, err := Run(context.Background(), spec, c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
	// A spec's own target gives way to On: it is not loaded (the file does not
	// exist), the consent asked is On's.
	spec, err = ParseSpec("on.yaml", []byte("name: on\nmodes: [durability]\ntarget: no-such-target.yaml\nphases: [{name: baseline, duration: 1s}]\nworkloads: [{kind: oltp, rate: 10}]\n"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), spec, Options{Out: t.TempDir(), On: fakeCluster{}}); err == nil || !strings.Contains(err.Error(), "on cluster mine creates and seeds its tables") {
		t.Errorf("spec's target with On: %v, want On's consent asked", err)
	}
}

// An On cluster htapchaos did not start gets the default abort guard, like a
// Target; one of containers does not, nor does one with NoAbortGuard.
func TestOnDefaultGuard(t *testing.T) {
	spec, err := ParseSpec("on.yaml", []byte("name: on\nmodes: [durability]\nphases: [{name: baseline, duration: 1s}]\nworkloads: [{kind: oltp, rate: 10}]\n"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		o     Options
		guard bool
	}{
		{Options{On: fakeCluster{}}, true},
		{Options{On: fakeCluster{}, NoAbortGuard: true}, false},
		{Options{On: faulttarget.Cluster(&htc.Cluster{Name: "c"})}, false},
		{Options{Target: &faults.ExecTarget{}}, true},
		{Options{}, false},
	} {
		r := &runState{spec: spec, o: c.o, logf: func(string, ...any) {}}
		r.startGuard()
		if got := r.guard != nil; got != c.guard {
			t.Errorf("%+v: guard %v, want %v", c.o, got, c.guard)
		}
	}
}

// A cluster of containers given as Options.On brings its container features:
// the adapter unwraps to the cluster.
func TestContainerAdapterIsContainerBacked(t *testing.T) {
	c := &htc.Cluster{Name: "c"}
	cb, ok := faulttarget.Cluster(c).(ContainerBacked)
	if !ok || cb.Containers() != c {
		t.Fatalf("faulttarget.Cluster does not unwrap to its cluster: %v", ok)
	}
}

// Suite and Repeat refuse options that say more than once where to run, before
// they start anything (a spec cluster beside On).
func TestSuiteAndRepeatRefuseTwoPlaces(t *testing.T) {
	spec, err := ParseSpec("two.yaml", []byte("name: two\nmodes: [durability]\ncluster: {topology: single}\nphases: [{name: baseline, duration: 1s}]\nworkloads: [{kind: oltp, rate: 10}]\n"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{On: fakeCluster{}, Target: &faults.ExecTarget{}}
	o.Out = t.TempDir() + "/suite"
	if _, err := Suite(context.Background(), []*Spec{spec}, SuiteOptions{Options: o, Repeat: 1}); err == nil || !strings.Contains(err.Error(), "give one of On, Cluster and Target") {
		t.Errorf("suite: %v", err)
	}
	o.Out = t.TempDir() + "/repeat"
	if _, err := Repeat(context.Background(), spec, 2, RepeatOptions{Options: o}); err == nil || !strings.Contains(err.Error(), "give one of On, Cluster and Target") {
		t.Errorf("repeat: %v", err)
	}
}
