package faults

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// fakeFault records the steps it was asked to take.
type fakeFault struct {
	steps   []string
	failAt  string
	blockAt string // WaitForEffect blocks until ctx ends
}

func (f *fakeFault) do(step string, ctx context.Context) error {
	f.steps = append(f.steps, step)
	if f.blockAt == step {
		<-ctx.Done()
		return ctx.Err()
	}
	if f.failAt == step {
		return errors.New(step + " broke")
	}
	return nil
}
func (f *fakeFault) Setup(ctx context.Context, _ *Env) error         { return f.do("setup", ctx) }
func (f *fakeFault) Inject(ctx context.Context, _ *Env) error        { return f.do("inject", ctx) }
func (f *fakeFault) WaitForEffect(ctx context.Context, _ *Env) error { return f.do("effect", ctx) }
func (f *fakeFault) Recover(ctx context.Context, _ *Env) error       { return f.do("recover", ctx) }
func (f *fakeFault) WaitForRecovery(ctx context.Context, _ *Env) error {
	return f.do("recovered", ctx)
}
func (f *fakeFault) Cleanup(ctx context.Context, _ *Env) error { return f.do("cleanup", ctx) }

func TestRunnerAlwaysRecovers(t *testing.T) {
	cases := []struct {
		name      string
		f         *fakeFault
		cancelAt  time.Duration
		wantSteps string
		wantErr   string
		wantState State
	}{
		{"clean run", &fakeFault{}, 0, "setup inject effect recover recovered cleanup", "", StateCleaned},
		{"setup fails: nothing injected", &fakeFault{failAt: "setup"}, 0, "setup cleanup", "setup broke", StateCleaned},
		{"inject fails: still recovered", &fakeFault{failAt: "inject"}, 0, "setup inject recover recovered cleanup", "inject broke", StateCleaned},
		{"no effect: recovered", &fakeFault{failAt: "effect"}, 0, "setup inject effect recover recovered cleanup", "effect broke", StateCleaned},
		{"recover fails: cleaned, error says so", &fakeFault{failAt: "recover"}, 0, "setup inject effect recover cleanup", "recover broke", StateCleaned},
		{"cancel while waiting for the effect: recovered", &fakeFault{blockAt: "effect"}, 50 * time.Millisecond, "setup inject effect recover recovered cleanup", "context canceled", StateCleaned},
		{"cancel during the hold: recovered, no error", &fakeFault{}, 50 * time.Millisecond, "setup inject effect recover recovered cleanup", "", StateCleaned},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelAt > 0 {
				time.AfterFunc(tc.cancelAt, cancel)
			}
			ev := NewEvents(nil)
			r := NewRunner("fake", tc.f, &Env{Events: ev})
			hold := 10 * time.Millisecond
			if tc.cancelAt > 0 {
				hold = time.Hour // only the cancel ends it
			}
			start := time.Now()
			err := r.Run(ctx, hold, 5*time.Second)
			if tc.cancelAt > 0 && time.Since(start) > 2*time.Second {
				t.Errorf("a cancel took %v to end the fault", time.Since(start))
			}
			if got := strings.Join(tc.f.steps, " "); got != tc.wantSteps {
				t.Errorf("steps %q, want %q", got, tc.wantSteps)
			}
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
			if r.State() != tc.wantState {
				t.Errorf("state %s, want %s", r.State(), tc.wantState)
			}
			if len(ev.List()) < len(tc.f.steps) {
				t.Errorf("%d events for %d steps", len(ev.List()), len(tc.f.steps))
			}
		})
	}
}

func TestStateMachineRefusesIllegalMoves(t *testing.T) {
	r := NewRunner("fake", &fakeFault{}, &Env{})
	for _, to := range []State{StateInjected, StateEffective, StateRecovered, StateHealthy} {
		if err := r.move(to); !errors.Is(err, ErrIllegalMove) {
			t.Errorf("new -> %s allowed", to)
		}
	}
	if err := r.move(StateReady); err != nil {
		t.Fatal(err)
	}
	if err := r.move(StateEffective); !errors.Is(err, ErrIllegalMove) {
		t.Error("ready -> effective (no inject) allowed")
	}
	if err := r.move(StateInjected); err != nil {
		t.Fatal(err)
	}
	if err := r.move(StateCleaned); !errors.Is(err, ErrIllegalMove) {
		t.Error("injected -> cleaned (no recover) allowed")
	}
}

func TestKindParse(t *testing.T) {
	k := &Kind{Name: "x", Params: []ParamSpec{{Name: "percent", Type: Percent, Default: "90"}, {Name: "hold", Type: Duration}, {Name: "n", Type: Int}}}
	p, err := k.Parse(map[string]string{"hold": "5s"})
	if err != nil || p.Int("percent") != 90 || p.Duration("hold") != 5*time.Second {
		t.Fatalf("%v %v", p, err)
	}
	_, err = k.Parse(map[string]string{"percent": "100", "hold": "-1s", "n": "x", "bogus": "1"})
	for _, want := range []string{"percent=100: want a percentage from 1 to 99", "hold=-1s: want a positive duration", "n=x", `x has no parameter "bogus"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v misses %q", err, want)
		}
	}
	if _, err := NewRegistry().Get("meteor"); err == nil || !strings.Contains(err.Error(), `unknown fault "meteor"`) {
		t.Errorf("unknown fault: %v", err)
	}
}

type fakeNode struct {
	i    int
	role string
}

func (n fakeNode) Index() int                  { return n.i }
func (n fakeNode) Label() string               { return "c-n" + string(rune('0'+n.i)) }
func (n fakeNode) Role() string                { return n.role }
func (fakeNode) Pause(context.Context) error   { return nil }
func (fakeNode) Unpause(context.Context) error { return nil }

// namedNode is a node whose name says nothing of its index (a target's).
type namedNode struct {
	fakeNode
	name string
}

func (n namedNode) Label() string { return n.name }

type fakeCluster []Node

func (fakeCluster) Name() string    { return "c" }
func (c fakeCluster) Nodes() []Node { return c }

func TestResolve(t *testing.T) {
	c := fakeCluster{fakeNode{1, "primary"}, fakeNode{2, "replica"}, fakeNode{3, "replica"}}
	labels := func(ns []Node) string {
		var s []string
		for _, n := range ns {
			s = append(s, n.Label())
		}
		return strings.Join(s, ",")
	}
	for spec, want := range map[string]string{"2": "c-n2", "n3": "c-n3", "c-n1": "c-n1", "all-but-one": "c-n1,c-n2", "primary": "c-n1", "1,3,1": "c-n1,c-n3"} {
		got, err := Resolve(c, spec, 1)
		if err != nil || labels(got) != want {
			t.Errorf("%q: %s %v, want %s", spec, labels(got), err, want)
		}
	}
	a, _ := Resolve(c, "random", 7)
	b, _ := Resolve(c, "random", 7)
	if labels(a) != labels(b) {
		t.Error("random is not reproducible with one seed")
	}
	for _, bad := range []string{"4", "0", "n9", "leader", ""} {
		if _, err := Resolve(c, bad, 1); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// Names first: a target whose nodes are listed out of their names' order.
	odd := fakeCluster{namedNode{fakeNode{1, "galera"}, "n2"}, namedNode{fakeNode{2, "galera"}, "n1"}, namedNode{fakeNode{3, "galera"}, "db3"}}
	for spec, want := range map[string]string{"db3": "db3", "3": "db3"} {
		if got, err := Resolve(odd, spec, 1); err != nil || labels(got) != want {
			t.Errorf("%q on out-of-order names: %s %v, want %s", spec, labels(got), err, want)
		}
	}
	for _, spec := range []string{"n2", "n1"} {
		if got, err := Resolve(odd, spec, 1); err == nil || !strings.Contains(err.Error(), "is the name of node") {
			t.Errorf("%q names one node and is the index of another: %s %v", spec, labels(got), err)
		}
	}
	if _, err := Resolve(fakeCluster{fakeNode{1, "galera"}}, "primary", 1); err == nil {
		t.Error("primary on a cluster without one accepted")
	}
	// Nothing selected is an error, not a fault on no node that "took effect".
	if _, err := Resolve(fakeCluster{fakeNode{1, "single"}}, "all-but-one", 1); err == nil || !strings.Contains(err.Error(), "selects no node") {
		t.Errorf("all-but-one of one node: %v", err)
	}
	// A fault the node's controller cannot do is refused before anything runs.
	kill, _ := NewRegistry().Get("node-kill")
	if err := kill.Check(c); err == nil || !strings.Contains(err.Error(), "cannot take node-kill") {
		t.Errorf("check: %v", err)
	}
	p, _ := NewRegistry().Get("pause")
	if err := p.Check(c); err == nil {
		t.Error("pause needs Readier too; the fake has none")
	}
}
