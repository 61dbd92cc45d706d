package faults

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Measurements of node-restart.
const (
	MeasureStop             = "stop"               // s, from the stop (or kill) until the process was down
	MeasureDownUntilServing = "down until serving" // s, from the stop until the node served again
)

// nodeRestartKind declares node-restart.
func nodeRestartKind() *Kind {
	return &Kind{
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
	}
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
