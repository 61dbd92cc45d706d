package experiments

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/htapchaos/htapchaos/loadgen"
	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// ShardedLayout is the sharded schema's layout on a sharded cluster htapchaos
// started: its aggregators, its leaves under the aggregators' server names (the
// leaves' aliases) and its partitions per leaf. The pools are the nodes' own
// control pools (Node.DB): do not close them.
func ShardedLayout(c *htc.Cluster) (loadgen.Sharded, error) {
	if c.Topology != htc.Sharded && c.Topology != htc.Vitess {
		return loadgen.Sharded{}, fmt.Errorf("cluster %s is %s, not sharded", c.Name, c.Topology)
	}
	s := loadgen.Sharded{PartitionsPerLeaf: c.PartitionsPerLeaf}
	if c.Topology == htc.Vitess {
		s.Engine, s.PartitionsPerLeaf, s.ApplyVSchema = loadgen.VitessEngine, 1, c.ApplyVSchema
	}
	for _, n := range c.Aggregators() {
		db, err := n.DB()
		if err != nil {
			return s, err
		}
		s.Aggregators = append(s.Aggregators, db)
	}
	for _, n := range c.Leaves() {
		db, err := n.DB()
		if err != nil {
			return s, err
		}
		s.Leaves = append(s.Leaves, loadgen.Leaf{Server: n.Alias, DB: db})
	}
	if s.PartitionsPerLeaf == 0 {
		s.PartitionsPerLeaf = htc.DefaultPartitionsPerLeaf
	}
	return s, nil
}

// SpiderSettings are the Spider timeouts an aggregator runs with: how long a
// query waits for a leaf that does not answer (recorded in run.json).
func SpiderSettings(ctx context.Context, db *sql.DB) (map[string]string, error) {
	return showMap(ctx, db, "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('spider_connect_timeout', 'spider_net_read_timeout', 'spider_net_write_timeout')")
}

// shardedLayoutOf is the sharded schema's layout on the run's nodes, nil when no
// node is an aggregator. On a cluster htapchaos started the layout is the
// cluster's; on a target the leaves are known to the aggregators by their names in
// the target file (the server entries must be named so), with the default
// partitions per leaf. close releases the pools opened for a target.
func shardedLayoutOf(nodes []nodeRef, hc *htc.Cluster) (layout *loadgen.Sharded, close func(), err error) {
	close = func() {}
	if len(aggregators(nodes)) == 0 {
		return nil, close, nil
	}
	if hc != nil {
		s, err := ShardedLayout(hc)
		return &s, close, err
	}
	s := loadgen.Sharded{PartitionsPerLeaf: htc.DefaultPartitionsPerLeaf}
	var dbs []*sql.DB
	closeAll := func() {
		for _, db := range dbs {
			db.Close()
		}
	}
	for _, n := range nodes {
		if n.role != string(htc.RoleAggregator) && n.role != string(htc.RoleLeaf) {
			continue
		}
		db, err := sql.Open("mysql", n.dsn)
		if err != nil {
			closeAll()
			return nil, func() {}, err
		}
		dbs = append(dbs, db)
		if n.role == string(htc.RoleAggregator) {
			s.Aggregators = append(s.Aggregators, db)
		} else {
			s.Leaves = append(s.Leaves, loadgen.Leaf{Server: n.alias, DB: db})
		}
	}
	// Aggregators that are vtgates: the Vitess layout, whose VSchema the operator
	// sets (htapchaos sets it only on a cluster it started).
	if gate, err := loadgen.IsVtgate(context.Background(), s.Aggregators[0]); err != nil {
		closeAll()
		return nil, func() {}, fmt.Errorf("aggregator: %w", err)
	} else if gate {
		s.Engine, s.PartitionsPerLeaf = loadgen.VitessEngine, 1
	}
	return &s, closeAll, nil
}

// shardEngine is the layout's engine, "" when the cluster is not sharded.
func shardEngine(layout *loadgen.Sharded) loadgen.ShardEngine {
	if layout == nil {
		return ""
	}
	if layout.Engine == "" {
		return loadgen.Spider
	}
	return layout.Engine
}

// aggregators are the aggregator nodes (none when the cluster is not sharded).
func aggregators(nodes []nodeRef) []nodeRef {
	var out []nodeRef
	for _, n := range nodes {
		if n.role == string(htc.RoleAggregator) {
			out = append(out, n)
		}
	}
	return out
}

// aggregatorIndexes are the aggregators' indexes.
func aggregatorIndexes(nodes []nodeRef) []int {
	var out []int
	for _, n := range aggregators(nodes) {
		out = append(out, n.index)
	}
	return out
}

// auditedNodes are the nodes the durability audit reads: every node, or on a
// sharded cluster the aggregators (a leaf holds only its partitions; reading
// through every aggregator checks each sees every leaf).
func auditedNodes(nodes []nodeRef) []nodeRef {
	if aggs := aggregators(nodes); len(aggs) > 0 {
		return aggs
	}
	return nodes
}

// skewText prints each table's skew (largest partition over the mean).
func skewText(skew map[string]float64) string {
	var parts []string
	for _, t := range slices.Sorted(maps.Keys(skew)) {
		parts = append(parts, fmt.Sprintf("%s %.2fx", t, skew[t]))
	}
	return strings.Join(parts, ", ")
}
