package testcontainers

import (
	"context"
	"fmt"
	"time"

	"github.com/htapchaos/htapchaos/faults"
)

// FaultTarget is the cluster as package faults acts on it: each node offers the
// capabilities (faults.Killer, faults.Pauser, faults.CPULimiter, ...) a container
// has. faults knows nothing of containers; this is the one place that joins them.
func (c *Cluster) FaultTarget() faults.Cluster { return faultCluster{c} }

type faultCluster struct{ c *Cluster }

func (fc faultCluster) Name() string { return fc.c.Name }

func (fc faultCluster) Nodes() []faults.Node {
	out := make([]faults.Node, len(fc.c.Nodes))
	for i, n := range fc.c.Nodes {
		out[i] = faultNode{n}
	}
	return out
}

// faultNode is a node as faults sees it: *Node's fields Index, Name and Role are
// methods here, and results are in faults' terms.
type faultNode struct{ n *Node }

func (fn faultNode) Index() int    { return fn.n.Index }
func (fn faultNode) Label() string { return fn.n.Name }
func (fn faultNode) LeafProxy() (api, name, listen string, ok bool) {
	return fn.n.LeafProxy()
}
func (fn faultNode) Owned() bool                          { return true }
func (fn faultNode) Role() string                         { return string(fn.n.Role) }
func (fn faultNode) Kill(ctx context.Context) error       { return fn.n.Kill(ctx) }
func (fn faultNode) Start(ctx context.Context) error      { return fn.n.Start(ctx) }
func (fn faultNode) Pause(ctx context.Context) error      { return fn.n.Pause(ctx) }
func (fn faultNode) Unpause(ctx context.Context) error    { return fn.n.Unpause(ctx) }
func (fn faultNode) Disconnect(ctx context.Context) error { return fn.n.Disconnect(ctx) }
func (fn faultNode) Reconnect(ctx context.Context) error  { return fn.n.Reconnect(ctx) }
func (fn faultNode) WaitReady(ctx context.Context) error  { return fn.n.WaitReady(ctx) }
func (fn faultNode) Exec(ctx context.Context, cmd ...string) (int, string, error) {
	r, err := fn.n.Exec(ctx, cmd...)
	return r.ExitCode, r.Stdout + r.Stderr, err
}
func (fn faultNode) DSN() string         { return fn.n.DSN() }
func (fn faultNode) ClusterHost() string { return fn.n.Alias }
func (fn faultNode) Addr() string        { return fn.n.Addr() }
func (fn faultNode) OnClusterNet(ctx context.Context) (bool, error) {
	return fn.n.OnClusterNet(ctx)
}
func (fn faultNode) CPULimits(ctx context.Context) (faults.CPULimits, error) {
	return fn.n.CPULimits(ctx)
}
func (fn faultNode) RestoreCPU(ctx context.Context, l faults.CPULimits) error {
	return fn.n.RestoreCPU(ctx, l)
}
func (fn faultNode) LimitCPU(ctx context.Context, cores float64) (func(context.Context) error, error) {
	return fn.n.LimitCPU(ctx, cores)
}
func (fn faultNode) Memory(ctx context.Context) (uint64, uint64, error) {
	m, err := fn.n.MemoryStats(ctx)
	return m.Usage, m.Limit, err
}
func (fn faultNode) Stop(ctx context.Context, grace time.Duration) error {
	return fn.n.Stop(ctx, grace)
}
func (fn faultNode) Running(ctx context.Context) (bool, bool, error) {
	st, err := fn.n.State(ctx)
	return st.Running, st.Paused, err
}

// Membership is only meaningful on Galera nodes.
func (fn faultNode) Membership(ctx context.Context) (int, bool, error) {
	if fn.n.Role != RoleGalera {
		return 0, false, fmt.Errorf("%s is not a Galera node", fn.n.Name)
	}
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	g, err := fn.n.GaleraStatus(qctx)
	return g.Size, g.ClusterStatus == "Primary", err
}
