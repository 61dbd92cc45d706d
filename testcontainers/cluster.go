package testcontainers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	tc "github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
)

// ErrImageMissing means the node image is not in the engine. The CLI maps it to exit 3.
var ErrImageMissing = errors.New("node image not found")

// Cluster is a running set of database nodes (and an optional load balancer) in
// containers, on a private cluster network.
type Cluster struct {
	Name     string
	Topology Topology
	Nodes    []*Node // database nodes, Nodes[0] is node 1
	LB       *Node   // HAProxy in front of the nodes, or nil
	// PartitionsPerLeaf is, on the sharded topology, how many partitions of each
	// sharded table every leaf holds; 0 on the others.
	PartitionsPerLeaf int
	// Proxy is the sharded topology's leaf proxy (Config.LeafProxy), or nil.
	Proxy *LeafProxy

	engine      *Engine
	password    string
	vitessInfra map[string]*Node // vitess: etcd and vtctld, by alias
	clusterNet  string           // network ID
	cfg         Config
}

// Engine returns the engine the cluster runs on.
func (c *Cluster) Engine() *Engine { return c.engine }

// Node returns node i (1-based).
func (c *Cluster) Node(i int) (*Node, error) {
	if i < 1 || i > len(c.Nodes) {
		return nil, &ConfigError{Field: "--node", Msg: fmt.Sprintf("%d: out of range 1-%d for cluster %s", i, len(c.Nodes), c.Name)}
	}
	return c.Nodes[i-1], nil
}

// NodeInfo describes one node for people and other tools.
type NodeInfo struct {
	Name        string `json:"name"`
	Role        Role   `json:"role"`
	DSN         string `json:"dsn"`
	Host        string `json:"host"`
	Port        int    `json:"port"`
	ContainerID string `json:"container_id"`
}

// Info describes a cluster: `cluster up --json` prints it.
type Info struct {
	Name              string     `json:"name"`
	Topology          Topology   `json:"topology"`
	Nodes             []NodeInfo `json:"nodes"`
	LB                *NodeInfo  `json:"lb,omitempty"`
	PartitionsPerLeaf int        `json:"partitions_per_leaf,omitempty"`
}

func (n *Node) info() NodeInfo {
	return NodeInfo{Name: n.Name, Role: n.Role, DSN: n.DSN(), Host: n.Host(), Port: n.Port(), ContainerID: n.ID}
}

// Info describes the cluster.
func (c *Cluster) Info() Info {
	in := Info{Name: c.Name, Topology: c.Topology, PartitionsPerLeaf: c.PartitionsPerLeaf}
	for _, n := range c.Nodes {
		in.Nodes = append(in.Nodes, n.info())
	}
	if c.LB != nil {
		li := c.LB.info()
		in.LB = &li
	}
	return in
}

// Run provisions a cluster and waits until it has formed. On error it returns the
// partly built cluster with the error: call Terminate on it (Terminate also removes
// what was created but not yet returned, by label).
func Run(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.Name == "" {
		cfg.Name = randomName()
	}
	if !localEngine() && cfg.PublishAddress == "" {
		return nil, &ConfigError{Field: "--publish-address", Msg: fmt.Sprintf("the engine at DOCKER_HOST=%s is remote: name the address its published ports bind to (--publish-address); htapchaos never publishes on every interface by default", os.Getenv("DOCKER_HOST"))}
	}
	eng, err := Connect(ctx)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Name: cfg.Name, Topology: cfg.Topology, engine: eng, password: cfg.Password, cfg: cfg}
	if cfg.Topology == Sharded || cfg.Topology == Vitess {
		c.PartitionsPerLeaf = cfg.PartitionsPerLeaf
	}
	if ok, err := eng.ImageExists(ctx, cfg.Image); err != nil {
		return nil, err
	} else if !ok && cfg.Topology == Vitess {
		return nil, fmt.Errorf("%w: %s is not in the engine; build it with `htapchaos image build --vitess` (the first build compiles Vitess: about 11 minutes on 2 cores)", ErrImageMissing, cfg.Image)
	} else if !ok {
		return nil, fmt.Errorf("%w: %s is not in the engine; build it with `htapchaos image build`, or pass --image with a MariaDB image that ships Galera and rsync", ErrImageMissing, cfg.Image)
	}
	if cfg.LB && cfg.LBImage != cfg.Image {
		if ok, err := eng.ImageExists(ctx, cfg.LBImage); err != nil {
			return nil, err
		} else if !ok {
			return nil, fmt.Errorf("%w: load balancer image %s is not in the engine", ErrImageMissing, cfg.LBImage)
		}
	}
	existing, err := listContainers(ctx, eng, map[string]string{LabelCluster: cfg.Name})
	if err != nil {
		return nil, err
	}
	if len(existing) > 0 {
		return nil, &ConfigError{Field: "--name", Msg: fmt.Sprintf("cluster %q already exists (%d containers); remove it with `htapchaos cluster down %s`", cfg.Name, len(existing), cfg.Name)}
	}

	start := time.Now()
	cfg.Progress("cluster %s: creating %s topology with %d node(s), image %s", c.Name, c.Topology, cfg.Nodes, cfg.Image)
	net, err := c.newNetwork(ctx, kindClusterNet, "")
	if err != nil {
		return c, err
	}
	c.clusterNet = net.ID

	aliases := make([]string, cfg.Nodes)
	for i := range aliases {
		aliases[i] = "n" + strconv.Itoa(i+1)
		role := map[Topology]Role{Single: RoleSingle, Galera: RoleGalera, PrimaryReplica: RoleReplica}[cfg.Topology]
		switch {
		case cfg.Topology == PrimaryReplica && i == 0:
			role = RolePrimary
		case (cfg.Topology == Sharded || cfg.Topology == Vitess) && i < cfg.Aggregators:
			role, aliases[i] = RoleAggregator, "agg"+strconv.Itoa(i+1)
		case cfg.Topology == Sharded || cfg.Topology == Vitess:
			role, aliases[i] = RoleLeaf, "leaf"+strconv.Itoa(i+1-cfg.Aggregators)
		}
		c.Nodes = append(c.Nodes, &Node{Index: i + 1, Name: c.Name + "-" + aliases[i], Alias: aliases[i], Role: role, c: c})
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.ReadyTimeout)
	defer cancel()
	switch cfg.Topology {
	case Galera:
		// Node 1 bootstraps the cluster; joiners start once it is Primary and Synced.
		if err := c.startNode(ctx, c.Nodes[0], galeraArgs(c.Name, aliases[0], aliases), true); err != nil {
			return c, err
		}
		if err := c.Nodes[0].WaitReady(ctx); err != nil {
			return c, fmt.Errorf("bootstrap node 1: %w", err)
		}
		cfg.Progress("cluster %s: node 1 bootstrapped (%.1fs), starting %d joiner(s)", c.Name, time.Since(start).Seconds(), cfg.Nodes-1)
		if err := c.each(c.Nodes[1:], func(n *Node) error {
			return c.startNode(ctx, n, galeraArgs(c.Name, n.Alias, aliases), false)
		}); err != nil {
			return c, err
		}
	case PrimaryReplica:
		if err := c.each(c.Nodes, func(n *Node) error {
			args := primaryArgs()
			if n.Role == RoleReplica {
				args = replicaArgs(n.Index)
			}
			return c.startNode(ctx, n, args, false)
		}); err != nil {
			return c, err
		}
		if err := c.Nodes[0].WaitReady(ctx); err != nil {
			return c, err
		}
		if err := c.each(c.Nodes[1:], func(n *Node) error { return c.startReplication(ctx, n) }); err != nil {
			return c, err
		}
	case Sharded:
		// Every node starts at once; the aggregators load Spider, and once the
		// leaves answer each aggregator gets a server entry per leaf.
		if err := c.each(c.Nodes, func(n *Node) error {
			var args []string
			if n.Role == RoleAggregator {
				args = aggregatorArgs()
			}
			return c.startNode(ctx, n, args, false)
		}); err != nil {
			return c, err
		}
		if cfg.LeafProxy {
			if err := c.startLeafProxy(ctx); err != nil {
				return c, err
			}
			cfg.Progress("cluster %s: leaf proxy up: aggregators reach the leaves through %s", c.Name, proxyAlias)
		}
		if err := c.each(c.Aggregators(), func(n *Node) error { return c.addLeafServers(ctx, n) }); err != nil {
			return c, err
		}
	case Vitess:
		if err := c.startVitess(ctx, start); err != nil {
			return c, err
		}
	case Single:
		if err := c.startNode(ctx, c.Nodes[0], nil, false); err != nil {
			return c, err
		}
	}
	if err := c.WaitReady(ctx); err != nil {
		return c, err
	}
	cfg.Progress("cluster %s: %d node(s) ready in %.1fs", c.Name, cfg.Nodes, time.Since(start).Seconds())
	if cfg.LB {
		if err := c.startLB(ctx, aliases); err != nil {
			return c, err
		}
		cfg.Progress("cluster %s: load balancer ready on %s", c.Name, c.LB.Addr())
	}
	return c, nil
}

// each runs f on the nodes concurrently and joins the errors.
func (c *Cluster) each(nodes []*Node, f func(*Node) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		wg.Go(func() { errs[i] = f(n) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// WaitReady waits until every node is ready; for Galera, until every node reports the
// full cluster size, wsrep_ready=ON, Primary and Synced; for Vitess, until every
// vtgate sees every shard's primary serving.
func (c *Cluster) WaitReady(ctx context.Context) error {
	size := 0
	switch c.Topology {
	case Galera:
		size = len(c.Nodes)
	case Vitess:
		size = len(c.Leaves()) // every vtgate sees every shard's primary
	}
	return c.each(c.Nodes, func(n *Node) error {
		err := n.waitFor(ctx, func(ctx context.Context) (bool, string, error) { return n.ready(ctx, size) })
		if err == nil && c.cfg.Progress != nil {
			c.cfg.Progress("cluster %s: %s ready", c.Name, n.Name)
		}
		return err
	})
}

func (c *Cluster) labels(kind string) map[string]string {
	l := maps.Clone(c.cfg.Labels)
	if l == nil {
		l = map[string]string{}
	}
	maps.Copy(l, map[string]string{
		LabelTool:     toolName,
		LabelCluster:  c.Name,
		LabelTopology: string(c.Topology),
		LabelKind:     kind,
		LabelSize:     strconv.Itoa(len(c.Nodes)),
		LabelPassword: c.password,
	})
	return l
}

func (c *Cluster) newNetwork(ctx context.Context, kind, node string) (*tc.DockerNetwork, error) {
	l := c.labels(kind)
	if node != "" {
		l[LabelAlias] = node
	}
	opts := []tcnetwork.NetworkCustomizer{tcnetwork.WithLabels(l)}
	if kind == kindClusterNet {
		// Internal: peers reach each other, nothing is routed out, and the engine never
		// picks it as a container's gateway. A container's published ports ride on its
		// gateway network, and between two ordinary bridges the engine picks by
		// network name, which is random here: then cutting a node off the cluster
		// network could also cut its clients off.
		opts = append(opts, tcnetwork.WithInternal())
	}
	n, err := tcnetwork.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("create %s network: %w", kind, err)
	}
	return n, nil
}

// startNode creates and starts one database node container. Each node gets a private
// client network of its own, which carries its published port, and joins the shared
// cluster network under its alias; peers only ever talk over the cluster network.
func (c *Cluster) startNode(ctx context.Context, n *Node, roleArgs []string, bootstrap bool) error {
	settings := c.cfg.settingsFor(n.Index)
	args := slices.Concat(baseArgs(), roleArgs, settingArgs(settings))
	initUsers := "1"
	if n.Role == RoleGalera && !bootstrap {
		initUsers = "0" // joiners receive the users with the state transfer
	}
	env := map[string]string{
		"HC_INIT_USERS": initUsers,
		"HC_PASSWORD":   c.password,
		"HC_DATABASE":   DefaultDatabase,
		"HC_BOOTSTRAP":  map[bool]string{true: "1", false: "0"}[bootstrap],
	}
	return c.startContainer(ctx, n, c.cfg.Image, slices.Concat([]string{"/bin/sh", "-c", nodeScript, "htapchaos-node"}), args, env, c.nodeLabels(n, settings))
}

// nodeLabels are the labels of database node n's container.
func (c *Cluster) nodeLabels(n *Node, settings map[string]string) map[string]string {
	labels := c.labels(kindNode)
	labels[LabelNode] = strconv.Itoa(n.Index)
	labels[LabelRole] = string(n.Role)
	labels[LabelAlias] = n.Alias
	if c.PartitionsPerLeaf > 0 {
		labels[LabelPartitions] = strconv.Itoa(c.PartitionsPerLeaf)
	}
	if b, err := json.Marshal(settings); err == nil && settings != nil {
		labels[LabelSettings] = string(b)
	}
	return labels
}

func (c *Cluster) startContainer(ctx context.Context, n *Node, image string, entrypoint, cmd []string, env, labels map[string]string) error {
	clientNet, err := c.newNetwork(ctx, kindClientNet, n.Alias)
	if err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	clusterNetName, err := c.networkName(ctx)
	if err != nil {
		return err
	}
	cfg := c.cfg
	hostIP := c.publishIP()
	// A host port of our choosing, not an ephemeral one: the engine keeps it across
	// restarts, so DSNs handed out earlier (to a running load generator, to a user)
	// still reach the node after Kill and Start.
	hostPort := "0"
	if c.engine.local {
		p, err := freeLoopbackPort()
		if err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
		hostPort = strconv.Itoa(p)
	}
	req := tc.ContainerRequest{
		Image:          image,
		Name:           n.Name,
		Entrypoint:     entrypoint,
		Cmd:            cmd,
		Env:            env,
		Labels:         labels,
		ExposedPorts:   []string{"3306/tcp"},
		Networks:       []string{clientNet.Name, clusterNetName},
		NetworkAliases: map[string][]string{clusterNetName: {n.Alias}},
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.Memory = cfg.Memory
			hc.MemorySwap = cfg.Memory // equal to Memory: no swap
			if cfg.CPUs > 0 {
				hc.NanoCPUs = int64(cfg.CPUs * 1e9)
			}
			hc.CapAdd = []string{"NET_ADMIN"} // tc qdiscs for bandwidth faults
			hc.PortBindings = network.PortMap{mysqlPort: {{HostIP: hostIP, HostPort: hostPort}}}
		},
	}
	ctr, err := tc.GenericContainer(ctx, tc.GenericContainerRequest{ContainerRequest: req, Started: true, Logger: tclog.NewNoopLogger()})
	if ctr != nil {
		n.ID = ctr.GetContainerID()
	}
	if err != nil {
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	return n.refreshPort(ctx)
}

func (c *Cluster) networkName(ctx context.Context) (string, error) {
	res, err := c.engine.Client.NetworkInspect(ctx, c.clusterNet, client.NetworkInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("inspect cluster network: %w", err)
	}
	return res.Network.Name, nil
}

// startReplication points a replica at the primary with GTID positions.
func (c *Cluster) startReplication(ctx context.Context, n *Node) error {
	db, err := n.answeringDB(ctx)
	if err != nil {
		return err
	}
	primary := c.Nodes[0]
	stmt := fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1", primary.Alias, c.password)
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("%s: configure replication: %w", n.Name, err)
	}
	if _, err := db.ExecContext(ctx, "START SLAVE"); err != nil {
		return fmt.Errorf("%s: start replication: %w", n.Name, err)
	}
	return nil
}

// Aggregators are the sharded topology's aggregator nodes (none on the others).
func (c *Cluster) Aggregators() []*Node { return c.withRole(RoleAggregator) }

// Leaves are the sharded topology's leaf nodes (none on the others).
func (c *Cluster) Leaves() []*Node { return c.withRole(RoleLeaf) }

func (c *Cluster) withRole(r Role) []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if n.Role == r {
			out = append(out, n)
		}
	}
	return out
}

// addLeafServers gives aggregator n a Spider server entry per leaf, named after the
// leaf's alias (leaf1, ...) and reaching it over the cluster network, through the
// leaf proxy when there is one.
func (c *Cluster) addLeafServers(ctx context.Context, n *Node) error {
	db, err := n.answeringDB(ctx)
	if err != nil {
		return err
	}
	for i, l := range c.Leaves() {
		host, port := c.leafServerAddr(i+1, l.Alias)
		stmt := fmt.Sprintf("CREATE OR REPLACE SERVER %s FOREIGN DATA WRAPPER mysql OPTIONS (HOST '%s', PORT %d, USER 'root', PASSWORD '%s', DATABASE '%s')", l.Alias, host, port, c.password, DefaultDatabase)
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%s: server entry for %s: %w", n.Name, l.Alias, err)
		}
	}
	return nil
}

func (c *Cluster) startLB(ctx context.Context, aliases []string) error {
	c.LB = &Node{Index: 0, Name: c.Name + "-lb", Alias: "lb", Role: RoleLB, c: c}
	labels := c.labels(kindLB)
	labels[LabelNode] = "0"
	labels[LabelRole] = string(RoleLB)
	labels[LabelAlias] = "lb"
	env := map[string]string{"HC_HAPROXY_CFG": haproxyConfig(aliases)}
	if err := c.startContainer(ctx, c.LB, c.cfg.LBImage, []string{"/bin/sh", "-c", lbScript, "htapchaos-lb"}, nil, env, labels); err != nil {
		return err
	}
	return c.LB.WaitReady(ctx)
}

// Terminate removes every container and network of the cluster, found by label, so
// it also removes what a failed Run created but did not return.
func (c *Cluster) Terminate(ctx context.Context) error {
	if c == nil {
		return nil
	}
	for _, n := range c.Nodes {
		n.close()
	}
	if c.LB != nil {
		c.LB.close()
	}
	_, err := Remove(ctx, c.engine, c.Name)
	return err
}

// publishIP is the host address published ports bind to: loopback with a local
// engine, else the address the user named (Config.PublishAddress).
func (c *Cluster) publishIP() netip.Addr {
	if c.engine.local {
		return loopback
	}
	a, _ := netip.ParseAddr(c.cfg.PublishAddress) // checked by Validate
	return a
}

// freeLoopbackPort asks the kernel for a free port on loopback.
func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomName() string {
	b := make([]byte, 3)
	rand.Read(b)
	return "hc-" + hex.EncodeToString(b)
}
