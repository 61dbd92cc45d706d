package experiments

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/htapchaos/htapchaos/loadgen"
	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// ShardedLayout is the sharded schema's layout on a sharded cluster htapchaos
// started: its aggregators, its leaves under the aggregators' server names (the
// leaves' aliases) and its partitions per leaf. The pools are the nodes' own
// control pools (Node.DB): do not close them.
func ShardedLayout(c *htc.Cluster) (loadgen.Sharded, error) {
	if c.Topology != htc.Sharded {
		return loadgen.Sharded{}, fmt.Errorf("cluster %s is %s, not sharded", c.Name, c.Topology)
	}
	s := loadgen.Sharded{PartitionsPerLeaf: c.PartitionsPerLeaf}
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
	rows, err := db.QueryContext(ctx, "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('spider_connect_timeout', 'spider_net_read_timeout', 'spider_net_write_timeout')")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[strings.ToLower(k)] = v
	}
	return out, rows.Err()
}
