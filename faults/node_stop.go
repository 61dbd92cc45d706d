package faults

import (
	"context"
	"time"
)

// nodeStopKind declares node-stop.
func nodeStopKind() *Kind {
	return &Kind{
		Name:        "node-stop",
		Description: "stop the node's server gracefully (SIGTERM, shutdown); on recover, start it and wait until it has rejoined",
		Class:       ClassFailover,
		StopsServer: true,
		Params:      []ParamSpec{{Name: "grace", Type: Duration, Default: "30s", Help: "time to shut down before SIGKILL"}},
		Needs:       needs[Stopper, Starter](),
		New:         func(p Params) Fault { return &nodeStop{grace: p.Duration("grace")} },
	}
}

type nodeStop struct {
	downUntilStarted
	grace time.Duration
}

func (f *nodeStop) Inject(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error { return n.(Stopper).Stop(ctx, f.grace) })
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
