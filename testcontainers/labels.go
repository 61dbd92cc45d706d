package testcontainers

// Labels on every container and network htapchaos creates. Cleanup, `cluster ls`
// and Attach find a cluster by them alone: nothing else remembers what was made.
const (
	LabelTool       = "org.htapchaos.tool"                // always "htapchaos"
	LabelCluster    = "org.htapchaos.cluster"             // cluster name
	LabelTopology   = "org.htapchaos.topology"            // topology
	LabelKind       = "org.htapchaos.kind"                // node, lb, cluster-net, client-net
	LabelNode       = "org.htapchaos.node"                // 1-based node index (0 for the load balancer)
	LabelRole       = "org.htapchaos.role"                // single, galera, primary, replica, aggregator, leaf, lb
	LabelAlias      = "org.htapchaos.alias"               // name on the cluster network
	LabelSize       = "org.htapchaos.size"                // node count of the cluster
	LabelPassword   = "org.htapchaos.password"            // root@'%' password of this throw-away cluster
	LabelSettings   = "org.htapchaos.settings"            // server settings of the node, JSON
	LabelPurpose    = "org.htapchaos.purpose"             // free text, e.g. "test"
	LabelPartitions = "org.htapchaos.partitions-per-leaf" // sharded: partitions of a table per leaf
	LabelShard      = "org.htapchaos.shard"               // vitess: the leaf's shard (key range)

	toolName = "htapchaos"

	kindNode        = "node"
	kindLB          = "lb"
	kindProxy       = "proxy"
	kindVitessInfra = "vitess-infra" // etcd and vtctld: not database nodes
	kindClusterNet  = "cluster-net"
	kindClientNet   = "client-net"
)
