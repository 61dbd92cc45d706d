package faults

import "context"

// partitionKind declares partition.
func partitionKind() *Kind {
	return &Kind{
		Name:        "partition",
		Description: "cut the node off its peers (clients still reach it); heal on recover",
		Class:       ClassFailover,
		Needs:       needs[Partitioner, Readier](),
		New:         func(Params) Fault { return &partition{} },
	}
}

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
