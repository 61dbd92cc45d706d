package faults

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
)

// Measurements of node-restart.
const (
	MeasureStop             = "stop"               // s, from the stop (or kill) until the process was down
	MeasureDownUntilServing = "down until serving" // s, from the stop until the node served again
)

func builtin() []*Kind {
	kinds := []*Kind{
		{
			Name:        "node-kill",
			Description: "SIGKILL the node's server; on recover, start it and wait until it has rejoined",
			Class:       ClassFailover,
			StopsServer: true,
			Needs:       needs[Killer, Starter](),
			New:         func(Params) Fault { return &nodeKill{} },
		},
		{
			Name:        "node-stop",
			Description: "stop the node's server gracefully (SIGTERM, shutdown); on recover, start it and wait until it has rejoined",
			Class:       ClassFailover,
			StopsServer: true,
			Params:      []ParamSpec{{Name: "grace", Type: Duration, Default: "30s", Help: "time to shut down before SIGKILL"}},
			Needs:       needs[Stopper, Starter](),
			New:         func(p Params) Fault { return &nodeStop{grace: p.Duration("grace")} },
		},
		{
			Name:        "node-restart",
			Description: "restart the node's server (graceful stop, or SIGKILL with signal=kill) and wait until it has rejoined",
			Class:       ClassFailover,
			Measures:    []string{MeasureStop, MeasureDownUntilServing},
			StopsServer: true,
			Params: []ParamSpec{
				{Name: "grace", Type: Duration, Default: "30s", Help: "time to shut down before SIGKILL"},
				{Name: "signal", Type: String, Default: "term", Help: "term (graceful) or kill"},
			},
			Needs:    needsAll(capability[Stopper](), capability[Killer](), capability[Starter]()),
			Validate: func(p Params) error { return oneOf("signal", p["signal"], "term", "kill") },
			New:      func(p Params) Fault { return &nodeRestart{grace: p.Duration("grace"), kill: p["signal"] == "kill"} },
		},
		{
			Name:        "pause",
			Description: "freeze every process of the node (a stalled VM, a long GC pause); thaw on recover",
			Class:       ClassFailover,
			Needs:       needs[Pauser, Readier](),
			New:         func(Params) Fault { return &pause{} },
		},
		{
			Name:        "cpu-hog",
			Description: "run stress-ng CPU workers inside the node, beside the database; stop them on recover",
			Class:       ClassSlowdown,
			Params:      []ParamSpec{{Name: "workers", Type: Int, Default: "2", Help: "stress-ng --cpu workers"}},
			Needs:       needs[Execer, Readier](),
			New:         func(p Params) Fault { return &cpuHog{workers: max(p.Int("workers"), 1)} },
		},
		{
			Name:        "partition",
			Description: "cut the node off its peers (clients still reach it); heal on recover",
			Class:       ClassFailover,
			Needs:       needs[Partitioner, Readier](),
			New:         func(Params) Fault { return &partition{} },
		},
	}
	for _, more := range [][]*Kind{networkKinds(), memoryKinds(), schemaKinds(), spikeKinds()} {
		kinds = append(kinds, more...)
	}
	return kinds
}

// oneOf checks that a string parameter takes one of the allowed values.
func oneOf(name, v string, allowed ...string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	return usageErr("--param", "%s=%s: want one of %s", name, v, strings.Join(allowed, ", "))
}

// needsAll combines capability checks (capability[T]).
func needsAll(checks ...func(Node) error) func(Node) error {
	return func(n Node) error {
		var errs []error
		for _, c := range checks {
			if err := c(n); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}

// capability checks that a node has capability T, and where the node's controller
// can lack one it has the methods of (an exec target without the command), that it
// does not lack it.
func capability[T any]() func(Node) error {
	return func(n Node) error {
		typ := reflect.TypeFor[T]()
		if _, ok := n.(T); !ok {
			return fmt.Errorf("its controller cannot do %s", typ.Name())
		}
		if l, ok := n.(lacker); ok {
			if err := l.Lacks(typ); err != nil {
				return fmt.Errorf("its controller cannot do %s: %w", typ.Name(), err)
			}
		}
		return nil
	}
}

// lacker is a node that has a capability's methods but may not be able to use them.
type lacker interface {
	Lacks(capability reflect.Type) error
}

// needs checks that a node has capabilities A and B.
func needs[A, B any]() func(Node) error { return needsAll(capability[A](), capability[B]()) }

// each runs f on every target and joins the errors.
func each(env *Env, f func(Node) error) error {
	var errs []error
	for _, n := range env.Targets {
		if err := f(n); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Label(), err))
		}
	}
	return errors.Join(errs...)
}

// poll calls f every 200 ms until it holds or ctx ends; what says what was waited for.
func poll(ctx context.Context, what string, f func() (bool, error)) error {
	var last error
	for {
		ok, err := f()
		if ok {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%s: %w (last: %v)", what, context.Cause(ctx), last)
			}
			return fmt.Errorf("%s: %w", what, context.Cause(ctx))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

type noSetup struct{}

func (noSetup) Setup(context.Context, *Env) error   { return nil }
func (noSetup) Cleanup(context.Context, *Env) error { return nil }

func waitReady(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error { return n.(Readier).WaitReady(ctx) })
}

// stopped waits until the node's process is down (or frozen), where the node can tell.
func processState(ctx context.Context, env *Env, what string, want func(running, paused bool) bool) error {
	return each(env, func(n Node) error {
		s, ok := n.(Stater)
		if !ok {
			return nil // a node that cannot tell: trust the command's success
		}
		return poll(ctx, what, func() (bool, error) {
			running, paused, err := s.Running(ctx)
			return err == nil && want(running, paused), err
		})
	})
}

// downUntilStarted is the part that node-kill and node-stop share: the process is
// down until Recover starts it, and recovered once the node has rejoined.
type downUntilStarted struct{ noSetup }

func (downUntilStarted) WaitForEffect(ctx context.Context, env *Env) error {
	return processState(ctx, env, "server still running", func(running, _ bool) bool { return !running })
}

// Recover starts the node and waits until it has rejoined (Start waits).
func (downUntilStarted) Recover(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error { return n.(Starter).Start(ctx) })
}

func (downUntilStarted) WaitForRecovery(ctx context.Context, env *Env) error {
	return waitReady(ctx, env)
}

type nodeKill struct{ downUntilStarted }

func (*nodeKill) Inject(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error { return n.(Killer).Kill(ctx) })
}

type nodeStop struct {
	downUntilStarted
	grace time.Duration
}

func (f *nodeStop) Inject(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error { return n.(Stopper).Stop(ctx, f.grace) })
}

// nodeRestart is down for as long as a restart takes: Inject stops the server and
// starts it again, and the effect is that the node came back as a new process. The
// hold is spent with the node serving again; Recover has nothing to undo.
type nodeRestart struct {
	noSetup
	grace time.Duration
	kill  bool

	mu       sync.Mutex
	measured []Measurement
}

func (f *nodeRestart) Inject(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error {
		start := time.Now()
		var err error
		if f.kill {
			err = n.(Killer).Kill(ctx)
		} else {
			err = n.(Stopper).Stop(ctx, f.grace)
		}
		if err != nil {
			return err
		}
		stopped := time.Now()
		if err := n.(Starter).Start(ctx); err != nil {
			return err
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.measured = append(f.measured,
			Measurement{Name: MeasureStop, Node: n.Label(), Value: stopped.Sub(start).Seconds(), Unit: "s"},
			Measurement{Name: MeasureDownUntilServing, Node: n.Label(), Value: time.Since(start).Seconds(), Unit: "s"})
		return nil
	})
}

// WaitForEffect: Start returned once the node served again.
func (*nodeRestart) WaitForEffect(ctx context.Context, env *Env) error { return waitReady(ctx, env) }

// Recover starts the node: a no-op after a whole restart, and what brings it back
// after a restart cut short between stop and start (a cancel, an error).
func (*nodeRestart) Recover(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error { return n.(Starter).Start(ctx) })
}

func (*nodeRestart) WaitForRecovery(ctx context.Context, env *Env) error { return waitReady(ctx, env) }

func (f *nodeRestart) Measurements() []Measurement {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.measured)
}

type pause struct{ noSetup }

func (*pause) Inject(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error { return n.(Pauser).Pause(ctx) })
}

func (*pause) WaitForEffect(ctx context.Context, env *Env) error {
	return processState(ctx, env, "node not frozen", func(_, paused bool) bool { return paused })
}

func (*pause) Recover(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error { return n.(Pauser).Unpause(ctx) })
}

func (*pause) WaitForRecovery(ctx context.Context, env *Env) error { return waitReady(ctx, env) }

type partition struct{ noSetup }

func (*partition) Inject(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error { return n.(Partitioner).Disconnect(ctx) })
}

// WaitForEffect: a Galera node cut off loses the primary component; other nodes give
// no sign, and the cut is trusted.
func (*partition) WaitForEffect(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error {
		m, ok := n.(Membership)
		if !ok || n.Role() != "galera" {
			return nil
		}
		return poll(ctx, "node still in the primary component", func() (bool, error) {
			_, primary, err := m.Membership(ctx)
			return err == nil && !primary, err
		})
	})
}

func (*partition) Recover(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error { return n.(Partitioner).Reconnect(ctx) })
}

func (*partition) WaitForRecovery(ctx context.Context, env *Env) error { return waitReady(ctx, env) }

// cpuHog runs stress-ng inside the node. Its own timeout (an hour) is a backstop:
// Recover stops it, and a cancelled run recovers too.
type cpuHog struct {
	noSetup
	workers int
}

func (f *cpuHog) Inject(ctx context.Context, env *Env) error {
	cmd := fmt.Sprintf("nohup stress-ng --cpu %d --timeout 3600s >/dev/null 2>&1 &", f.workers)
	return each(env, func(n Node) error { return execOK(ctx, n, "sh", "-c", cmd) })
}

func (*cpuHog) WaitForEffect(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error {
		return poll(ctx, "stress-ng not running", func() (bool, error) { return hogs(ctx, n) })
	})
}

func (*cpuHog) Recover(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error {
		code, out, err := n.(Execer).Exec(ctx, "pkill", "stress-ng") // the parent and its stress-ng-cpu workers
		if err == nil && code > 1 {                                  // 1: nothing to stop
			err = fmt.Errorf("pkill exited %d: %s", code, out)
		}
		return err
	})
}

func (*cpuHog) WaitForRecovery(ctx context.Context, env *Env) error {
	if err := each(env, func(n Node) error {
		return poll(ctx, "stress-ng still running", func() (bool, error) {
			running, err := hogs(ctx, n)
			return err == nil && !running, err
		})
	}); err != nil {
		return err
	}
	return waitReady(ctx, env)
}

// hogCheck counts live stress-ng processes. Zombies do not count: the node's first
// process is the database server, which never reaps the processes exec leaves
// behind, so a stopped hog lingers in the process table as a zombie.
const hogCheck = `ps -eo stat=,comm= | awk '$1 !~ /^Z/ && $2 ~ /^stress-ng/ {n++} END {print n+0}'`

// hogs reports whether stress-ng runs on the node.
func hogs(ctx context.Context, n Node) (bool, error) {
	code, out, err := n.(Execer).Exec(ctx, "sh", "-c", hogCheck)
	if err != nil {
		return false, err
	}
	if code != 0 {
		return false, fmt.Errorf("ps exited %d: %s", code, out)
	}
	return strings.TrimSpace(out) != "0", nil
}

func execOK(ctx context.Context, n Node, cmd ...string) error {
	code, out, err := n.(Execer).Exec(ctx, cmd...)
	if err == nil && code != 0 {
		err = fmt.Errorf("%v exited %d: %s", cmd, code, out)
	}
	return err
}
