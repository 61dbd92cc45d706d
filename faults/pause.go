package faults

import "context"

// pauseKind declares pause.
func pauseKind() *Kind {
	return &Kind{
		Name:        "pause",
		Description: "freeze every process of the node (a stalled VM, a long GC pause); thaw on recover",
		Class:       ClassFailover,
		Needs:       needs[Pauser, Readier](),
		New:         func(Params) Fault { return &pause{} },
	}
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
