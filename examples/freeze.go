package examples

import (
	"context"
	"fmt"
	"time"

	"github.com/htapchaos/htapchaos/faults"
)

// FreezeKind is a fault kind of our own: it freezes a node's processes (the
// node must be able to pause, faults.Pauser) and checks, through the node's
// process state, that it froze and thawed.
func FreezeKind() *faults.Kind {
	return &faults.Kind{
		Name:        "freeze",
		Description: "freeze a node's processes (example of a fault kind from another module)",
		Class:       faults.ClassFailover,
		Needs: func(n faults.Node) error {
			_, p := n.(faults.Pauser)
			_, s := n.(faults.Stater)
			if !p || !s {
				return fmt.Errorf("node %s cannot be paused", n.Label())
			}
			return nil
		},
		New: func(faults.Params) faults.Fault { return &freeze{} },
	}
}

type freeze struct{}

func (*freeze) Setup(context.Context, *faults.Env) error { return nil }

func (*freeze) Inject(ctx context.Context, env *faults.Env) error {
	for _, n := range env.Targets {
		if err := n.(faults.Pauser).Pause(ctx); err != nil {
			return err
		}
	}
	return nil
}

// WaitForEffect returns once every target's processes are paused.
func (*freeze) WaitForEffect(ctx context.Context, env *faults.Env) error {
	return waitState(ctx, env, true)
}

func (*freeze) Recover(ctx context.Context, env *faults.Env) error {
	for _, n := range env.Targets {
		if err := n.(faults.Pauser).Unpause(ctx); err != nil {
			return err
		}
	}
	return nil
}

// WaitForRecovery returns once no target is paused.
func (*freeze) WaitForRecovery(ctx context.Context, env *faults.Env) error {
	return waitState(ctx, env, false)
}

func (*freeze) Cleanup(context.Context, *faults.Env) error { return nil }

// waitState polls the targets' process state until each is paused (or not).
func waitState(ctx context.Context, env *faults.Env, paused bool) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		done := true
		for _, n := range env.Targets {
			_, p, err := n.(faults.Stater).Running(ctx)
			if err != nil {
				return err
			}
			done = done && p == paused
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
