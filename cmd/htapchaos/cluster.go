package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/testcontainers"
	"github.com/htapchaos/htapchaos/units"
)

func (a *app) clusterCmd() *cobra.Command {
	return group("cluster", "Start, list and remove database clusters in containers",
		a.clusterUpCmd(), a.clusterLsCmd(), a.clusterDownCmd(), a.clusterStatusCmd())
}

func (a *app) clusterUpCmd() *cobra.Command {
	var (
		cfg      testcontainers.Config
		topology string
		memory   string
		sets     []string
		asJSON   bool
		data     loadgen.Data
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a cluster and print each node's DSN",
		Long: `Start a cluster in containers, each node on its own loopback port, and wait until
it has formed (Galera: every node Primary, ready and Synced with the full size).
The cluster keeps running after the command returns; remove it with
"htapchaos cluster down NAME". On error or Ctrl-C nothing is left behind.

--set applies a server setting to every node (key=value) or to one node
(N:key=value), e.g. --set innodb_buffer_pool_size=256M --set 2:wsrep_slave_threads=4.

The sharded topology is aggregators (agg1, ...) over leaves (leaf1, ...) with
MariaDB's Spider engine. It comes up with the sharded schema on both sides and
seeded (--users, --orders; 500 merchants), and prints the rows of every partition
on its leaf: the skew.

The vitess topology is vtgates (agg1, ...) over MariaDB shards (leaf1, ...), one
tablet per shard, with etcd and vtctld beside them; --aggregators sets the vtgates
(default 2), --leaves the shards (default 2). It needs the Vitess image
("htapchaos image build --vitess"). It comes up with the same schema under a
VSchema: users and orders sharded on user_id with a hash vindex, merchants on
merchant_id, merchants_ref a reference table. MariaDB is outside what Vitess
supports; see the README.`,
		Example: `  htapchaos cluster up --topology galera --nodes 3 --name demo
  htapchaos cluster up --topology sharded --aggregators 2 --leaves 3 --json
  htapchaos cluster up --topology vitess --aggregators 2 --leaves 2
  htapchaos cluster up --topology primary-replica --memory 512MiB --json
  htapchaos cluster up --topology galera --lb --set innodb_flush_log_at_trx_commit=2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Topology = testcontainers.Topology(topology)
			m, err := units.ParseSize(memory)
			if err != nil {
				return usagef("--memory: %v", err)
			}
			cfg.Memory = m
			var errs []error
			for _, s := range sets {
				errs = append(errs, cfg.AddSetting(s))
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			if cfg.Topology == testcontainers.Vitess {
				// The flags' defaults are the Spider topology's: let the vitess
				// topology's own apply unless given.
				for name, v := range map[string]*int{"aggregators": &cfg.Aggregators, "leaves": &cfg.Leaves, "partitions-per-leaf": &cfg.PartitionsPerLeaf} {
					if !cmd.Flags().Changed(name) {
						*v = 0
					}
				}
				if !cmd.Flags().Changed("image") {
					cfg.Image = ""
				}
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			if cfg.Topology != testcontainers.Sharded && cfg.Topology != testcontainers.Vitess {
				for _, name := range []string{"aggregators", "leaves", "partitions-per-leaf", "leaf-proxy", "users", "orders"} {
					if cmd.Flags().Changed(name) {
						return usagef("--%s: only the sharded and vitess topologies take it (--topology sharded|vitess)", name)
					}
				}
			}
			// 0 means "the default" in a Config: an explicit 0 here is a mistake.
			for _, fl := range []struct {
				name string
				v    int
			}{{"aggregators", cfg.Aggregators}, {"leaves", cfg.Leaves}, {"partitions-per-leaf", cfg.PartitionsPerLeaf}} {
				if cmd.Flags().Changed(fl.name) && fl.v < 1 {
					errs = append(errs, usagef("--%s: %d: want at least 1", fl.name, fl.v))
				}
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			if data.Users < 1 || data.Orders < 1 {
				return usagef("--users and --orders: want at least 1 each (got %d and %d)", data.Users, data.Orders)
			}
			cfg.Progress = a.progress
			return a.clusterUp(cmd.Context(), cfg, data, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVar(&topology, "topology", string(testcontainers.Galera), "galera, primary-replica, sharded, single or vitess")
	f.IntVar(&cfg.Nodes, "nodes", testcontainers.DefaultGaleraNodes, "galera node count")
	f.IntVar(&cfg.Aggregators, "aggregators", testcontainers.DefaultAggregators, "sharded: aggregator count (at least 1); vitess: vtgates")
	f.IntVar(&cfg.Leaves, "leaves", testcontainers.DefaultLeaves, "sharded: leaf count (at least 2); vitess: shards (default 2)")
	f.IntVar(&cfg.PartitionsPerLeaf, "partitions-per-leaf", testcontainers.DefaultPartitionsPerLeaf, "sharded: partitions of each sharded table per leaf")
	f.BoolVar(&cfg.LeafProxy, "leaf-proxy", false, "sharded: put a Toxiproxy container between the aggregators and the leaves (network-latency on a leaf then slows the aggregator -> leaf path)")
	f.Int64Var(&data.Users, "users", 5000, "sharded, vitess: users seeded")
	f.Int64Var(&data.Orders, "orders", 50000, "sharded, vitess: orders seeded")
	f.BoolVar(&cfg.Force, "force", false, "allow an even galera node count")
	f.StringVar(&memory, "memory", "1GiB", "memory limit per node, no swap (at least 256MiB; as docker run --memory: 512MB = 512M = 512MiB)")
	f.Float64Var(&cfg.CPUs, "cpus", 0, "CPU limit per node (0: none)")
	f.StringArrayVar(&sets, "set", nil, "server setting key=value for every node, or N:key=value for node N (repeatable)")
	f.BoolVar(&cfg.LB, "lb", false, "put an HAProxy load balancer in front of the nodes")
	f.StringVar(&cfg.PublishAddress, "publish-address", "", "with a remote engine (DOCKER_HOST=tcp://...): the address its published ports bind to (a local engine publishes on loopback only)")
	f.StringVar(&cfg.Name, "name", "", "cluster name (default: random)")
	f.StringVar(&cfg.Image, "image", testcontainers.DefaultImage, "node image (a MariaDB image that ships Galera and rsync)")
	f.DurationVar(&cfg.ReadyTimeout, "timeout", 3*time.Minute, "how long to wait for the cluster to form")
	f.BoolVar(&asJSON, "json", false, "print {name, topology, nodes: [{name, dsn, host, port, container_id}]}")
	return cmd
}

// upInfo is what `cluster up --json` prints: the cluster, and on the sharded
// topology the rows of every partition and the skew per table.
type upInfo struct {
	testcontainers.Info
	Shards []loadgen.PartitionRows `json:"shards,omitempty"`
	Skew   map[string]float64      `json:"skew,omitempty"`
}

func (a *app) clusterUp(ctx context.Context, cfg testcontainers.Config, data loadgen.Data, asJSON bool) error {
	c, err := testcontainers.Run(ctx, cfg)
	var out upInfo
	if err == nil && (c.Topology == testcontainers.Sharded || c.Topology == testcontainers.Vitess) {
		out.Shards, err = seedSharded(ctx, c, data, a.progress)
		out.Skew = loadgen.Skew(out.Shards)
	}
	if err != nil {
		if c != nil {
			if ctx.Err() != nil {
				a.progress("interrupted: removing cluster %s", c.Name)
			} else {
				a.progress("removing the partly built cluster %s", c.Name)
			}
			cctx, cancel := cleanupContext(ctx)
			defer cancel()
			if terr := c.Terminate(cctx); terr != nil {
				err = errors.Join(err, fmt.Errorf("cleanup: %w", terr))
			}
		}
		return err
	}
	info := c.Info()
	out.Info = info
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tADDRESS\tDSN")
	rows := info.Nodes
	if info.LB != nil {
		rows = append(rows, *info.LB)
	}
	for _, n := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s:%d\t%s\n", n.Name, n.Role, n.Host, n.Port, n.DSN)
	}
	tw.Flush()
	if len(out.Shards) > 0 {
		fmt.Fprintln(a.stdout)
		printShards(a.stdout, out.Shards)
	}
	fmt.Fprintf(a.stdout, "\ncluster %s is running; remove it with: htapchaos cluster down %s\n", info.Name, info.Name)
	return nil
}

// seedSharded creates the sharded schema on a sharded cluster's both sides, seeds
// it and counts the rows of every partition.
func seedSharded(ctx context.Context, c *testcontainers.Cluster, data loadgen.Data, progress func(string, ...any)) ([]loadgen.PartitionRows, error) {
	s, err := experiments.ShardedLayout(c)
	if err != nil {
		return nil, err
	}
	progress("cluster %s: creating the sharded schema and seeding %d users and %d orders", c.Name, data.Users, data.Orders)
	rep, err := loadgen.SetupSharded(ctx, s, data)
	if err != nil {
		return nil, fmt.Errorf("seed the sharded schema: %w", err)
	}
	progress("cluster %s: seeded in %.1fs (%.0f rows/s)", c.Name, rep.Elapsed.Seconds(), rep.RowsPerSecond())
	return loadgen.ShardRows(ctx, s)
}

// printShards prints the rows of every partition on its leaf, and each table's
// skew (largest partition over the mean).
func printShards(w io.Writer, rows []loadgen.PartitionRows) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "TABLE\tPARTITION\tLEAF\tROWS\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\tp%d\t%s\t%d\t\n", r.Table, r.Partition, r.Leaf, r.Rows)
	}
	tw.Flush()
	skew := loadgen.Skew(rows)
	for _, t := range slices.Sorted(maps.Keys(skew)) {
		fmt.Fprintf(w, "skew of %s: largest partition %.2fx the mean\n", t, skew[t])
	}
}

func (a *app) clusterLsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the clusters htapchaos started",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			eng, err := testcontainers.Connect(cmd.Context())
			if err != nil {
				return err
			}
			list, err := testcontainers.List(cmd.Context(), eng)
			if err != nil {
				return err
			}
			if asJSON {
				if list == nil {
					list = []testcontainers.Summary{}
				}
				return json.NewEncoder(a.stdout).Encode(list)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tTOPOLOGY\tNODES\tRUNNING\tLB\tCREATED")
			for _, s := range list {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%t\t%s\n", s.Name, s.Topology, s.Nodes, s.Running, s.LB, s.Created.Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) clusterDownCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "down NAME... | --all",
		Short: "Remove clusters: their containers and networks, found by label",
		Long: `Remove clusters by name, or every cluster htapchaos started with --all. Works from
labels alone, so it also removes what a crashed or killed run left behind.`,
		RunE: func(cmd *cobra.Command, names []string) error {
			if all == (len(names) > 0) {
				return usagef("name one or more clusters, or pass --all (not both)")
			}
			eng, err := testcontainers.Connect(cmd.Context())
			if err != nil {
				return err
			}
			start := time.Now()
			var total testcontainers.RemoveResult
			var errs []error
			if all {
				total, err = testcontainers.RemoveAll(cmd.Context(), eng, nil)
				errs = append(errs, err)
			}
			for _, n := range names {
				r, err := testcontainers.Remove(cmd.Context(), eng, n)
				errs = append(errs, err)
				if r.Containers+r.Networks == 0 && err == nil {
					fmt.Fprintf(a.stderr, "no cluster named %s\n", n)
				}
				total.Clusters = append(total.Clusters, r.Clusters...)
				total.Containers += r.Containers
				total.Networks += r.Networks
			}
			// A removed cluster's fault journal goes with it: a new cluster of the
			// same name must not inherit its faults (nor heal them on itself).
			for _, n := range append(slices.Clone(total.Clusters), names...) {
				if p, err := faults.JournalPath(faults.JournalKey{Cluster: n}); err == nil {
					if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
						errs = append(errs, fmt.Errorf("fault journal of %s: %w", n, err))
					}
				}
			}
			fmt.Fprintf(a.stdout, "removed %d container(s) and %d network(s) in %.1fs", total.Containers, total.Networks, time.Since(start).Seconds())
			if len(total.Clusters) > 0 {
				fmt.Fprintf(a.stdout, ": %s", strings.Join(total.Clusters, ", "))
			}
			fmt.Fprintln(a.stdout)
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "remove every cluster htapchaos started")
	return cmd
}

func (a *app) clusterStatusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Show each node's container state, memory and membership",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := testcontainers.Attach(ctx, args[0])
			if err != nil {
				return err
			}
			type row struct {
				testcontainers.NodeInfo
				State  testcontainers.State         `json:"state"`
				Memory testcontainers.MemoryStats   `json:"memory"`
				Galera *testcontainers.GaleraStatus `json:"galera,omitempty"`
				// Sharded: the aggregators' Spider counters, every node's bytes on
				// the cluster network, and the rows of each partition a leaf holds.
				Spider     map[string]string           `json:"spider,omitempty"`
				ClusterNet *testcontainers.NetCounters `json:"cluster_net,omitempty"`
				Partitions []loadgen.PartitionRows     `json:"partitions,omitempty"`
				Error      string                      `json:"error,omitempty"`
			}
			var rows []row
			info := c.Info()
			sharded := c.Topology == testcontainers.Sharded || c.Topology == testcontainers.Vitess
			for _, n := range c.Nodes {
				r := row{NodeInfo: info.Nodes[n.Index-1]}
				var errs []error
				r.State, err = n.State(ctx)
				errs = append(errs, err)
				if r.State.Running && !r.State.Paused {
					r.Memory, err = n.MemoryStats(ctx)
					errs = append(errs, err)
					qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
					if n.Role == testcontainers.RoleGalera {
						g, err := n.GaleraStatus(qctx)
						if err == nil {
							r.Galera = &g
						}
						errs = append(errs, err)
					}
					if sharded {
						nc, err := n.ClusterNetCounters(qctx, true)
						if err == nil {
							r.ClusterNet = &nc
						}
						errs = append(errs, err)
					}
					if n.Role == testcontainers.RoleAggregator && c.Topology == testcontainers.Sharded {
						// A vtgate passes SHOW STATUS to a shard: nothing of its own.
						r.Spider, err = n.Status(qctx, "Spider_direct%")
						errs = append(errs, err)
					}
					cancel()
				}
				if err := errors.Join(errs...); err != nil {
					r.Error = err.Error()
				}
				rows = append(rows, r)
			}
			var parts []loadgen.PartitionRows
			if sharded {
				s, err := experiments.ShardedLayout(c)
				if err == nil {
					qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					parts, err = loadgen.ShardRows(qctx, s)
					cancel()
				}
				if err != nil {
					fmt.Fprintf(a.stderr, "rows per partition: %v\n", err)
				}
				for i := range rows {
					for _, p := range parts {
						if p.Leaf == c.Nodes[i].Alias {
							rows[i].Partitions = append(rows[i].Partitions, p)
						}
					}
				}
			}
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(rows)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			head := "NODE\tROLE\tSTATE\tMEMORY\tMEMBERSHIP\tERROR"
			if sharded {
				head = "NODE\tROLE\tSTATE\tMEMORY\tCLUSTER NET RX/TX\tSPIDER\tERROR"
			}
			fmt.Fprintln(tw, head)
			for _, r := range rows {
				mem, member := "-", "-"
				if r.Memory.Limit > 0 {
					mem = fmt.Sprintf("%s/%s (%.0f%%)", testcontainers.FormatBytes(int64(r.Memory.Usage)), testcontainers.FormatBytes(int64(r.Memory.Limit)), r.Memory.Percent)
				}
				if r.Galera != nil {
					member = r.Galera.String()
				}
				if !sharded {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Role, r.State.Status, mem, member, r.Error)
					continue
				}
				netStr, spider := "-", "-"
				if r.ClusterNet != nil {
					netStr = testcontainers.FormatBytes(r.ClusterNet.RxBytes) + "/" + testcontainers.FormatBytes(r.ClusterNet.TxBytes)
				}
				if len(r.Spider) > 0 {
					var kv []string
					for _, k := range slices.Sorted(maps.Keys(r.Spider)) {
						kv = append(kv, strings.TrimPrefix(k, "spider_")+"="+r.Spider[k])
					}
					spider = strings.Join(kv, " ")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Role, r.State.Status, mem, netStr, spider, r.Error)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(parts) > 0 {
				fmt.Fprintln(a.stdout)
				printShards(a.stdout, parts)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
