package testcontainers

import (
	"errors"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/htapchaos/htapchaos/internal/usage"
	"github.com/htapchaos/htapchaos/units"
)

// Topology names a cluster shape.
type Topology string

const (
	// Single is one standalone node.
	Single Topology = "single"
	// Galera is a multi-primary MariaDB Galera cluster.
	Galera Topology = "galera"
	// PrimaryReplica is one primary with asynchronous GTID replicas (a passive standby).
	PrimaryReplica Topology = "primary-replica"
	// Sharded is aggregators over leaves, with MariaDB's Spider engine: the
	// aggregators hold Spider tables whose partitions live on the leaves, as
	// SingleStore's aggregators plan over its leaves.
	Sharded Topology = "sharded"
	// Vitess is vtgates (the aggregators) over MariaDB shards, each a tablet
	// (mysqld and vttablet) in a container: a hash vindex places rows by key, so a
	// join on the shard key runs on the shards and one on another key at vtgate.
	// MariaDB is outside Vitess's support (see vitess.go and the README).
	Vitess Topology = "vitess"
)

// Topologies lists the topologies in a stable order, for flags and help.
var Topologies = []Topology{Galera, PrimaryReplica, Sharded, Single, Vitess}

// Defaults.
const (
	DefaultImage             = "htapchaos/node:r2"
	DefaultMemory      int64 = 1 << 30
	MinMemory          int64 = 256 << 20
	DefaultPassword          = "htapchaos"
	DefaultDatabase          = "htapchaos"
	DefaultGaleraNodes       = 3
	replicaCount             = 2
	// The sharded topology's defaults and minimums.
	DefaultAggregators       = 2
	DefaultLeaves            = 3
	DefaultPartitionsPerLeaf = 2
	// The vitess topology's defaults: vtgates and shards.
	DefaultVitessGates  = 2
	DefaultVitessShards = 2
	maxVitessShards     = 8
	maxNodes            = 9 // on one machine
)

// ConfigError is bad input: a topology, count, size or setting that cannot be used.
// The CLI maps it to exit code 2.
type ConfigError = usage.Error

var configErr = usage.Errorf

// Config describes a cluster to provision.
type Config struct {
	// Name identifies the cluster; containers are named Name-n1, Name-n2, ...
	// Empty: a random name.
	Name     string
	Topology Topology
	// Nodes is the node count for galera (default 3). Ignored for single (1),
	// primary-replica (3), sharded and vitess (Aggregators + Leaves).
	Nodes int
	// Aggregators and Leaves size the sharded topology (defaults 2 and 3, at least
	// 1 and 2); PartitionsPerLeaf is how many partitions of each sharded table a
	// leaf holds (default 2). On vitess they are the vtgates and the shards
	// (defaults 2 and 2), one tablet per shard, one partition per shard.
	Aggregators, Leaves, PartitionsPerLeaf int
	// LeafProxy puts a Toxiproxy container between the aggregators and the
	// leaves (sharded only), so that network-latency on a leaf slows the
	// aggregator -> leaf path.
	LeafProxy bool
	// Force allows an even Galera node count (split-brain prone: a 50/50 split loses quorum).
	Force bool
	// Image is the node image (default DefaultImage, built by BuildImage). Any MariaDB
	// image that ships mariadbd, mariadb-install-db, Galera and rsync works.
	Image string
	// LBImage runs HAProxy for LB; default the node image.
	LBImage string
	// Memory is the per-node memory limit in bytes, with no swap (default 1 GiB).
	Memory int64
	// CPUs is an optional per-node CPU limit (0: none).
	CPUs float64
	// Settings are server settings for every node (mariadbd --key=value).
	Settings map[string]string
	// NodeSettings are server settings for one node, by 1-based index; they win over Settings.
	NodeSettings map[int]map[string]string
	// LB puts an HAProxy container in front of the nodes.
	LB bool
	// Password of the root@'%' account (default DefaultPassword).
	Password string
	// ReadyTimeout bounds waiting for the cluster to form (default 3 minutes).
	ReadyTimeout time.Duration
	// PublishAddress is the host address a remote engine (DOCKER_HOST=tcp://...)
	// publishes the nodes' ports on. It must be given for a remote engine: ports
	// are never published on every interface by default. A local engine publishes
	// on loopback only.
	PublishAddress string
	// Labels are extra labels on every container and network.
	Labels map[string]string
	// Progress, when set, receives one line per provisioning step.
	Progress func(format string, args ...any)
}

var (
	nameRE       = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)
	settingKeyRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]*$`)
	// The password goes into SQL and a shell here-document: keep it to safe characters.
	passwordRE = regexp.MustCompile(`^[A-Za-z0-9_.+-]{1,64}$`)
)

// ShardedDefaults fills the sizes a sharded or vitess cluster leaves at 0 with
// the topology's defaults (Spider: 2 aggregators, 3 leaves, 2 partitions per
// leaf; Vitess: 2 vtgates, 2 shards, 1 partition per shard).
func ShardedDefaults(t Topology, aggregators, leaves, partitionsPerLeaf int) (int, int, int) {
	aggs, lvs, ppl := DefaultAggregators, DefaultLeaves, DefaultPartitionsPerLeaf
	if t == Vitess {
		aggs, lvs, ppl = DefaultVitessGates, DefaultVitessShards, 1
	}
	if aggregators == 0 {
		aggregators = aggs
	}
	if leaves == 0 {
		leaves = lvs
	}
	if partitionsPerLeaf == 0 {
		partitionsPerLeaf = ppl
	}
	return aggregators, leaves, partitionsPerLeaf
}

// withDefaults returns a copy with defaults filled in.
func (c Config) withDefaults() Config {
	if c.Topology == "" {
		c.Topology = Galera
	}
	switch c.Topology {
	case Single:
		c.Nodes = 1
	case PrimaryReplica:
		c.Nodes = 1 + replicaCount
	case Galera:
		if c.Nodes == 0 {
			c.Nodes = DefaultGaleraNodes
		}
	case Sharded, Vitess:
		c.Aggregators, c.Leaves, c.PartitionsPerLeaf = ShardedDefaults(c.Topology, c.Aggregators, c.Leaves, c.PartitionsPerLeaf)
		c.Nodes = c.Aggregators + c.Leaves
	}
	if c.Image == "" {
		c.Image = DefaultImage
		if c.Topology == Vitess {
			c.Image = DefaultVitessImage
		}
	}
	if c.LBImage == "" {
		c.LBImage = c.Image
	}
	if c.Memory == 0 {
		c.Memory = DefaultMemory
	}
	if c.Password == "" {
		c.Password = DefaultPassword
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 3 * time.Minute
	}
	if c.Progress == nil {
		c.Progress = func(string, ...any) {}
	}
	return c
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Name != "" && !nameRE.MatchString(c.Name) {
		errs = append(errs, configErr("--name", "%q: use 1-40 lower-case letters, digits and dashes, starting with a letter or digit", c.Name))
	}
	switch c.Topology {
	case Single, PrimaryReplica:
	case Galera:
		switch {
		case c.Nodes < 1:
			errs = append(errs, configErr("--nodes", "%d: a galera cluster needs at least 1 node", c.Nodes))
		case c.Nodes > maxNodes:
			errs = append(errs, configErr("--nodes", "%d: at most %d nodes on one machine", c.Nodes, maxNodes))
		case c.Nodes%2 == 0 && !c.Force:
			errs = append(errs, configErr("--nodes", "%d: an even galera node count loses quorum on a 50/50 split; use an odd count or add --force", c.Nodes))
		}
	case Sharded:
		if c.Aggregators < 1 {
			errs = append(errs, configErr("--aggregators", "%d: a sharded cluster needs at least 1 aggregator", c.Aggregators))
		}
		if c.Leaves < 2 {
			errs = append(errs, configErr("--leaves", "%d: a sharded cluster needs at least 2 leaves", c.Leaves))
		}
		if c.Aggregators >= 1 && c.Leaves >= 2 && c.Nodes > maxNodes {
			errs = append(errs, configErr("--leaves", "%d aggregators and %d leaves: at most %d nodes on one machine", c.Aggregators, c.Leaves, maxNodes))
		}
		if c.PartitionsPerLeaf < 1 || c.PartitionsPerLeaf > 16 {
			errs = append(errs, configErr("--partitions-per-leaf", "%d: use 1-16", c.PartitionsPerLeaf))
		}
	case Vitess:
		if c.Aggregators < 1 {
			errs = append(errs, configErr("--aggregators", "%d: a vitess cluster needs at least 1 vtgate", c.Aggregators))
		}
		if c.Leaves < 2 || c.Leaves > maxVitessShards {
			errs = append(errs, configErr("--leaves", "%d: a vitess cluster needs 2-%d shards", c.Leaves, maxVitessShards))
		} else if c.Aggregators >= 1 && c.Nodes > maxNodes {
			errs = append(errs, configErr("--leaves", "%d vtgates and %d shards: at most %d nodes on one machine", c.Aggregators, c.Leaves, maxNodes))
		}
		if c.PartitionsPerLeaf != 1 {
			errs = append(errs, configErr("--partitions-per-leaf", "%d: a vitess shard is one partition", c.PartitionsPerLeaf))
		}
		if c.LB {
			errs = append(errs, configErr("--lb", "the vtgates are the vitess cluster's entry points; no load balancer goes in front"))
		}
	default:
		errs = append(errs, configErr("--topology", "unknown topology %q (known: %s)", c.Topology, joinTopologies()))
	}
	if c.LeafProxy && c.Topology != Sharded {
		errs = append(errs, configErr("--leaf-proxy", "only the sharded (Spider) topology has a leaf proxy"))
	}
	if c.PublishAddress != "" {
		if _, err := netip.ParseAddr(c.PublishAddress); err != nil {
			errs = append(errs, configErr("--publish-address", "%q: not an IP address", c.PublishAddress))
		}
	}
	if c.Memory < MinMemory {
		errs = append(errs, configErr("--memory", "%s is under the minimum of 256MiB", FormatBytes(c.Memory)))
	}
	if c.CPUs < 0 {
		errs = append(errs, configErr("--cpus", "%g: must not be negative", c.CPUs))
	}
	for _, k := range slices.Sorted(maps.Keys(c.Settings)) {
		if !settingKeyRE.MatchString(k) {
			errs = append(errs, configErr("--set", "%q: not a server setting name", k))
		}
	}
	for _, i := range slices.Sorted(maps.Keys(c.NodeSettings)) {
		if i < 1 || i > c.Nodes {
			errs = append(errs, configErr("--set", "node %d: out of range 1-%d", i, c.Nodes))
		}
		for k := range c.NodeSettings[i] {
			if !settingKeyRE.MatchString(k) {
				errs = append(errs, configErr("--set", "%q: not a server setting name", k))
			}
		}
	}
	if !passwordRE.MatchString(c.Password) {
		errs = append(errs, configErr("password", "use 1-64 letters, digits and _ . + -"))
	}
	if c.ReadyTimeout < 0 {
		errs = append(errs, configErr("ReadyTimeout", "must not be negative"))
	}
	return errors.Join(errs...)
}

func joinTopologies() string {
	s := make([]string, len(Topologies))
	for i, t := range Topologies {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// ParseSetting parses one --set value: "key=value" for every node, or "N:key=value"
// for node N (1-based). It returns node 0 for a cluster-wide setting.
func ParseSetting(s string) (node int, key, value string, err error) {
	spec := s
	if i := strings.IndexByte(spec, ':'); i > 0 && !strings.Contains(spec[:i], "=") {
		n, perr := strconv.Atoi(spec[:i])
		if perr != nil || n < 1 {
			return 0, "", "", configErr("--set", "%q: node before ':' must be a number from 1", s)
		}
		node, spec = n, spec[i+1:]
	}
	key, value, ok := strings.Cut(spec, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return 0, "", "", configErr("--set", "%q: want key=value or N:key=value", s)
	}
	if !settingKeyRE.MatchString(key) {
		return 0, "", "", configErr("--set", "%q: %q is not a server setting name", s, key)
	}
	if strings.ContainsAny(value, "\n\x00") {
		return 0, "", "", configErr("--set", "%q: value holds a newline or NUL", s)
	}
	return node, key, value, nil
}

// AddSetting parses one --set value into the configuration.
func (c *Config) AddSetting(s string) error {
	node, k, v, err := ParseSetting(s)
	if err != nil {
		return err
	}
	if node == 0 {
		if c.Settings == nil {
			c.Settings = map[string]string{}
		}
		c.Settings[k] = v
		return nil
	}
	if c.NodeSettings == nil {
		c.NodeSettings = map[int]map[string]string{}
	}
	if c.NodeSettings[node] == nil {
		c.NodeSettings[node] = map[string]string{}
	}
	c.NodeSettings[node][k] = v
	return nil
}

// settingsFor merges cluster-wide and per-node settings for node i (1-based).
func (c Config) settingsFor(i int) map[string]string {
	m := maps.Clone(c.Settings)
	if m == nil {
		m = map[string]string{}
	}
	maps.Copy(m, c.NodeSettings[i])
	return m
}

// ParseBytes parses a size such as 1GiB, 512MiB, 512M, 512MB, 2g or a plain byte
// count: units.ParseSize, docker run --memory's meaning (every suffix binary).
func ParseBytes(s string) (int64, error) { return units.ParseSize(s) }

// FormatBytes prints a byte count in binary units (units.FormatSize).
func FormatBytes(n int64) string { return units.FormatSize(n) }
