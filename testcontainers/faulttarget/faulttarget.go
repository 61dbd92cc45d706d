// Package faulttarget is a cluster in containers as package faults acts on it:
// the one place that joins faults and testcontainers. faults knows nothing of
// containers, and testcontainers nothing of faults (loadgen's tests start
// containers, and faults imports loadgen: an import either way would be a cycle).
package faulttarget

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/htapchaos/htapchaos/faults"
	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// Cluster adapts a cluster in containers: each node offers the capabilities
// (faults.Killer, faults.Pauser, faults.CPULimiter, ...) a container has.
func Cluster(c *htc.Cluster) faults.Cluster { return faultCluster{c} }

type faultCluster struct{ c *htc.Cluster }

func (fc faultCluster) Name() string { return fc.c.Name }

// Containers returns the cluster adapted: what only containers have (the
// topology, container indicators, the sharded layout) reaches a run given the
// adapter (experiments.ContainerBacked).
func (fc faultCluster) Containers() *htc.Cluster { return fc.c }

func (fc faultCluster) Nodes() []faults.Node {
	out := make([]faults.Node, len(fc.c.Nodes))
	for i, n := range fc.c.Nodes {
		out[i] = faultNode{n}
	}
	return out
}

// Every capability a container has, checked when this package builds: a faults
// capability whose signature changes, or a method dropped here, would otherwise
// only show as a fault refused at run time.
var _ interface {
	faults.Node
	faults.Killer
	faults.Stopper
	faults.Starter
	faults.Pauser
	faults.Partitioner
	faults.Stater
	faults.Membership
	faults.Execer
	faults.Readier
	faults.MemoryReader
	faults.SQLNode
	faults.Addresser
	faults.PeerProxied
	faults.ClusterHoster
	faults.CPULimiter
	faults.NetChecker
	faults.Owned
	faults.CPURestorer
} = faultNode{}

// faultNode is a node as faults sees it: htc.Node's fields Index, Name and Role are
// methods here, and results are in faults' terms.
type faultNode struct{ n *htc.Node }

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

// CPULimits are the container's CPU limits as JSON (htc.CPULimits): faults keeps
// them in its journal as they are and hands them back to RestoreCPU.
func (fn faultNode) CPULimits(ctx context.Context) (json.RawMessage, error) {
	l, err := fn.n.CPULimits(ctx)
	if err != nil {
		return nil, err
	}
	return json.Marshal(l)
}
func (fn faultNode) RestoreCPU(ctx context.Context, limits json.RawMessage) error {
	var l htc.CPULimits
	if err := json.Unmarshal(limits, &l); err != nil {
		return fmt.Errorf("the journal's CPU limits of %s: %w", fn.n.Name, err)
	}
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
	if fn.n.Role != htc.RoleGalera {
		return 0, false, fmt.Errorf("%s is not a Galera node", fn.n.Name)
	}
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	g, err := fn.n.GaleraStatus(qctx)
	return g.Size, g.ClusterStatus == "Primary", err
}
