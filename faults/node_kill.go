package faults

import "context"

// nodeKillKind declares node-kill.
func nodeKillKind() *Kind {
	return &Kind{
		Name:        "node-kill",
		Description: "SIGKILL the node's server; on recover, start it and wait until it has rejoined",
		Class:       ClassFailover,
		StopsServer: true,
		Needs:       needs[Killer, Starter](),
		New:         func(Params) Fault { return &nodeKill{} },
	}
}

type nodeKill struct{ downUntilStarted }

func (*nodeKill) Inject(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error { return n.(Killer).Kill(ctx) })
}
