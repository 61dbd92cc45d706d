package faults

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Cluster is what faults act on. Faults only talk to this interface and to the
// optional node capabilities below, found by type assertion, so a fault works on
// any cluster whose nodes can do what it needs, and says clearly where they cannot.
type Cluster interface {
	Name() string
	Nodes() []Node
}

// Node is one database node.
type Node interface {
	Index() int    // 1-based
	Label() string // for people: container or host name
	Role() string  // galera, primary, replica, single
}

// Capabilities a node may have.
type (
	Killer interface {
		Kill(ctx context.Context) error
	}
	Stopper interface {
		// Stop shuts the server down gracefully, killing it after grace.
		Stop(ctx context.Context, grace time.Duration) error
	}
	Starter interface {
		// Start starts a stopped node and waits until it serves again.
		Start(ctx context.Context) error
	}
	Pauser interface {
		Pause(ctx context.Context) error
		Unpause(ctx context.Context) error
	}
	Partitioner interface {
		Disconnect(ctx context.Context) error
		Reconnect(ctx context.Context) error
	}
	// Stater reports the node's process state (containers).
	Stater interface {
		Running(ctx context.Context) (running, paused bool, err error)
	}
	// Membership reports a Galera node's view of the cluster.
	Membership interface {
		Membership(ctx context.Context) (size int, primary bool, err error)
	}
	// Execer runs a command on the node.
	Execer interface {
		Exec(ctx context.Context, cmd ...string) (exitCode int, output string, err error)
	}
	// Readier waits until the node serves again.
	Readier interface {
		WaitReady(ctx context.Context) error
	}
	// MemoryReader reads the node's memory use as `docker stats` computes it.
	MemoryReader interface {
		Memory(ctx context.Context) (used, limit uint64, err error)
	}
	// SQLNode gives a client DSN for the node. The DSN holds a password: never print
	// it (loadgen.Redact).
	SQLNode interface {
		DSN() string
	}
	// Addresser gives the host:port clients use to reach the node.
	Addresser interface {
		Addr() string
	}
	// PeerProxied nodes are reached by their peers through a proxy whose
	// delays htapchaos controls (a sharded cluster's leaf proxy): api is its
	// Toxiproxy API, name the node's proxy there, listen where that proxy's
	// listener is published for probes. ok is false when there is none.
	PeerProxied interface {
		LeafProxy() (api, name, listen string, ok bool)
	}
	// ClusterHoster gives the host name the node's peers reach it by (its alias on
	// the cluster network).
	ClusterHoster interface {
		ClusterHost() string
	}
	// CPULimiter caps the node's CPU at a number of cores until restore is called.
	// It refuses a cap at or above the node's own limit; restore may come back with
	// an error, when the cap may or may not be in force.
	CPULimiter interface {
		LimitCPU(ctx context.Context, cores float64) (restore func(context.Context) error, err error)
	}
	// LagReader reads a replica's lag behind its primary (ok false: not a
	// replica, or the lag is unknown).
	LagReader interface {
		ReplicaLag(ctx context.Context) (seconds int, ok bool, err error)
	}
	// NetChecker says whether a node is on its cluster network.
	NetChecker interface {
		OnClusterNet(ctx context.Context) (bool, error)
	}
	// Owned marks a node htapchaos started itself (a container): heal's health
	// check runs probes of its own inside it, which it never does on a node whose
	// commands are the user's (an exec target).
	Owned interface {
		Owned() bool
	}
	// CPURestorer reads a node's CPU limits and puts them back (heal's undo of
	// slow-node, from the journal alone). The limits are the node's own, as JSON:
	// faults keeps them in the journal as they are and hands them back.
	CPURestorer interface {
		CPULimits(ctx context.Context) (json.RawMessage, error)
		RestoreCPU(ctx context.Context, limits json.RawMessage) error
	}
)

// Resolve turns a --node value into nodes: an index ("2"), a name ("n2", "leaf1"
// or the container name), "random" (seeded), "all-but-one" (every node but the last), or
// "primary" (primary-replica). Several values may be joined by commas.
func Resolve(c Cluster, spec string, seed uint64) ([]Node, error) {
	nodes := c.Nodes()
	var out []Node
	seen := map[int]bool{}
	add := func(n Node) {
		if !seen[n.Index()] {
			seen[n.Index()] = true
			out = append(out, n)
		}
	}
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		switch part {
		case "":
			return nil, usageErr("--node", "no node given (an index, a name, random, all-but-one or primary)")
		case "random":
			add(nodes[rand.New(rand.NewPCG(seed, 0)).IntN(len(nodes))])
		case "all-but-one":
			for _, n := range nodes[:len(nodes)-1] {
				add(n)
			}
		case "primary":
			found := false
			for _, n := range nodes {
				if n.Role() == "primary" {
					add(n)
					found = true
				}
			}
			if !found {
				return nil, usageErr("--node", "primary: cluster %s has no primary (only primary-replica clusters do)", c.Name())
			}
		default:
			n, err := byIndexOrName(nodes, part)
			if err != nil {
				return nil, err
			}
			add(n)
		}
	}
	if len(out) == 0 {
		return nil, usageErr("--node", "%s selects no node of cluster %s (%d node(s))", spec, c.Name(), len(nodes))
	}
	return out, nil
}

// byIndexOrName finds a node by its exact name first (its label, or the name its
// peers reach it by, ClusterHoster: a container's alias, leaf1 for CLUSTER-leaf1),
// then by its index (2 or n2). A value that names one node and is the index of
// another is refused: on a target whose nodes are named in another order than they
// are listed, reading it as an index would hurt the wrong node.
func byIndexOrName(nodes []Node, s string) (Node, error) {
	var named, indexed Node
	for _, n := range nodes {
		if n.Label() == s {
			named = n
			break
		}
		if h, ok := n.(ClusterHoster); ok && h.ClusterHost() == s {
			named = n
			break
		}
	}
	i, err := strconv.Atoi(strings.TrimPrefix(s, "n"))
	isIndex := err == nil
	if isIndex {
		for _, n := range nodes {
			if n.Index() == i {
				indexed = n
			}
		}
	}
	switch {
	case named != nil && indexed != nil && named.Index() != indexed.Index():
		return nil, usageErr("--node", "%q is the name of node %d (%s) and the index of node %d (%s): give the other node's name, or rename the nodes",
			s, named.Index(), named.Label(), indexed.Index(), indexed.Label())
	case named != nil:
		return named, nil
	case indexed != nil:
		return indexed, nil
	case isIndex:
		return nil, usageErr("--node", "%s: out of range 1-%d", s, len(nodes))
	}
	return nil, usageErr("--node", "%q: no such node (use 1-%d or a node name)", s, len(nodes))
}
