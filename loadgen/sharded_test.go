package loadgen

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	htc "github.com/htapchaos/htapchaos/testcontainers"
)

func TestShardedDDL(t *testing.T) {
	s := Sharded{Leaves: []Leaf{{Server: "leaf1"}, {Server: "leaf2"}, {Server: "leaf3"}}, PartitionsPerLeaf: 2}
	if s.Partitions() != 6 {
		t.Fatalf("partitions %d, want 6", s.Partitions())
	}
	// Round the leaves: leaf1 holds p1 and p4.
	leaf1 := strings.Join(s.LeafDDL(0), "\n")
	for _, want := range []string{"orders_p1 (", "orders_p4 (", "users_p1 (", "merchants_p4 (", "TABLE IF NOT EXISTS merchants_ref ("} {
		if !strings.Contains(leaf1, want) {
			t.Errorf("leaf1 DDL lacks %q:\n%s", want, leaf1)
		}
	}
	if strings.Contains(leaf1, "orders_p2 ") || strings.Contains(leaf1, "ENGINE=SPIDER") {
		t.Errorf("leaf1 DDL holds another leaf's partition or a Spider table:\n%s", leaf1)
	}
	agg := strings.Join(s.AggregatorDDL(), "\n")
	for _, want := range []string{
		`PARTITION p5 COMMENT='srv "leaf2", table "orders_p5"'`,
		"PARTITION BY KEY (user_id)", "PARTITION BY KEY (merchant_id)",
		`srv "leaf1", table "merchants_ref"`, "PRIMARY KEY (order_id, user_id)",
	} {
		if !strings.Contains(agg, want) {
			t.Errorf("aggregator DDL lacks %q:\n%s", want, agg)
		}
	}
}

func TestShardedOrderOwnerIsStable(t *testing.T) {
	seen := map[int64]int{}
	for id := int64(1); id <= 10000; id++ {
		u := ShardedOrderUser(id, 100)
		if u < 1 || u > 100 || u != ShardedOrderUser(id, 100) {
			t.Fatalf("order %d: user %d", id, u)
		}
		seen[u]++
	}
	// Spread evenly: no user owns more than twice its share.
	for u, n := range seen {
		if n > 200 {
			t.Errorf("user %d owns %d of 10000 orders", u, n)
		}
	}
}

// shardedForTest is a sharded cluster (1 aggregator, 2 leaves, 2 partitions per
// leaf) shared by this package's tests, with the sharded schema seeded.
func shardedForTest(t *testing.T) (*htc.Cluster, Sharded) {
	t.Helper()
	c := htc.SharedForTest(t, "sharded", htc.Config{Topology: htc.Sharded, Aggregators: 1, Leaves: 2, Labels: testLabels})
	s := Sharded{PartitionsPerLeaf: c.PartitionsPerLeaf}
	for _, n := range c.Aggregators() {
		db, err := n.DB()
		if err != nil {
			t.Fatal(err)
		}
		s.Aggregators = append(s.Aggregators, db)
	}
	for _, n := range c.Leaves() {
		db, err := n.DB()
		if err != nil {
			t.Fatal(err)
		}
		s.Leaves = append(s.Leaves, Leaf{Server: n.Alias, DB: db})
	}
	return c, s
}

// The rows land on the leaves the partitioning says, each exactly once, and the
// aggregator reads them all back.
func TestSetupShardedSpreadsRowsOverTheLeaves(t *testing.T) {
	_, s := shardedForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	data := Data{Users: 2000, Orders: 20000, Merchants: 100}
	rep, err := SetupSharded(ctx, s, data)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %d users, %d orders in %v (%.0f rows/s)", rep.UsersAdded, rep.OrdersAdded, rep.Elapsed.Round(time.Millisecond), rep.RowsPerSecond())
	rows, err := ShardRows(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]int64{}
	for _, r := range rows {
		t.Logf("%s p%d on %s: %d rows", r.Table, r.Partition, r.Leaf, r.Rows)
		sums[r.Table] += r.Rows
		if r.Rows == 0 {
			t.Errorf("%s p%d on %s is empty", r.Table, r.Partition, r.Leaf)
		}
	}
	if sums["users"] != 2000 || sums["orders"] != 20000 || sums["merchants"] != 100 {
		t.Errorf("rows over the partitions: %v; want users 2000, orders 20000, merchants 100", sums)
	}
	t.Logf("skew: %v", Skew(rows))

	head := s.Aggregators[0]
	var n int64
	if err := head.QueryRowContext(ctx, "SELECT COUNT(*) FROM orders").Scan(&n); err != nil || n != 20000 {
		t.Fatalf("orders through the aggregator: %d (%v), want 20000", n, err)
	}
	// Every order's rows sit with its user's: the partition of the user in users
	// and of the order in orders is the same, so the join on user_id is co-located.
	var misplaced int64
	for p := 1; p <= s.Partitions(); p++ {
		l := s.Leaves[s.PartitionLeaf(p)].DB
		var users int64
		q := fmt.Sprintf("SELECT COUNT(*) FROM orders_p%d o LEFT JOIN users_p%d u ON u.user_id = o.user_id WHERE u.user_id IS NULL", p, p)
		if err := l.QueryRowContext(ctx, q).Scan(&users); err != nil {
			t.Fatal(err)
		}
		misplaced += users
	}
	if misplaced != 0 {
		t.Errorf("%d orders sit on another partition than their user", misplaced)
	}
	// The reference table is whole on every leaf.
	for _, l := range s.Leaves {
		if err := l.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM merchants_ref").Scan(&n); err != nil || n != 100 {
			t.Errorf("merchants_ref on %s: %d rows (%v), want 100", l.Server, n, err)
		}
	}
	// Seeding again adds nothing.
	rep, err = SetupSharded(ctx, s, data)
	if err != nil || rep.UsersAdded+rep.OrdersAdded != 0 {
		t.Errorf("second setup added %d users, %d orders (%v)", rep.UsersAdded, rep.OrdersAdded, err)
	}
	// A seeded order is where ShardedOrderUser says.
	var user int64
	if err := head.QueryRowContext(ctx, "SELECT user_id FROM orders WHERE order_id = 777").Scan(&user); err != nil {
		t.Fatal(err)
	}
	if want := ShardedOrderUser(777, 2000); user != want {
		t.Errorf("order 777 belongs to user %d, want %d", user, want)
	}
}

// NetCounters are the testcontainers counters (the package under test cannot name
// them in its own test without the alias).
type NetCounters = htc.NetCounters

func len64[T any](s []T) int64 { return int64(len(s)) }

// leafCounters sums the leaves' Bytes_sent and Com_select.
func leafCounters(t *testing.T, ctx context.Context, s Sharded) (bytes, selects int64) {
	t.Helper()
	for _, l := range s.Leaves {
		var name string
		var v int64
		rows, err := l.DB.QueryContext(ctx, "SHOW GLOBAL STATUS WHERE Variable_name IN ('Bytes_sent', 'Com_select')")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			if err := rows.Scan(&name, &v); err != nil {
				t.Fatal(err)
			}
			if name == "Bytes_sent" {
				bytes += v
			} else {
				selects += v
			}
		}
		rows.Close()
	}
	return bytes, selects
}

// Each shape of the sharded analytics moves what its plan says between the
// aggregator and the leaves: measured here on the leaves' own counters, one query
// at a time.
func TestShardedAnalyticsShapes(t *testing.T) {
	c, s := shardedForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := SetupSharded(ctx, s, Data{Users: 2000, Orders: 20000, Merchants: 100}); err != nil {
		t.Fatal(err)
	}
	conn, err := s.Aggregators[0].Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	leaf1 := c.Leaves()[0]
	clusterNet := func() NetCounters {
		t.Helper()
		n, err := leaf1.ClusterNetCounters(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	moved := map[string]int64{}
	var net0 NetCounters
	for _, op := range ShardedAnalytics().Ops {
		if op.Name == "noncolocated-join" {
			net0 = clusterNet()
		}
		b0, s0 := leafCounters(t, ctx, s)
		start := time.Now()
		if err := op.Run(ctx, conn, &Worker{Params: &Params{Data: Data{Users: 2000, Orders: 20000}}}); err != nil {
			t.Fatalf("%s: %v", op.Name, err)
		}
		el := time.Since(start)
		b1, s1 := leafCounters(t, ctx, s)
		// The counters' own query adds to Bytes_sent and Com_select (SHOW STATUS
		// counts as neither a select: measured as the difference of two reads).
		moved[op.Name] = b1 - b0
		t.Logf("%-22s moved %8d B, %6d leaf selects, %v", op.Name, b1-b0, s1-s0, el.Round(time.Millisecond))
		if op.Name == "noncolocated-join" {
			// What leaf1 sent for the join went over the cluster network: its
			// counter there grew by at least leaf1's share of Bytes_sent.
			net1 := clusterNet()
			sent := net1.TxBytes - net0.TxBytes
			t.Logf("leaf1 sent %d B on the cluster network (%s) during the join", sent, net1.Interface)
			if sent < (b1-b0)/len64(s.Leaves)/2 {
				t.Errorf("leaf1 sent %d B on the cluster network for a join that moved %d B from %d leaves", sent, b1-b0, len(s.Leaves))
			}
		}
	}
	// A large answer leaf1 sends a client straight goes over the client network,
	// not the cluster network.
	n0 := clusterNet()
	var big string
	if err := s.Leaves[0].DB.QueryRowContext(ctx, "SELECT REPEAT('x', 2000000)").Scan(&big); err != nil {
		t.Fatal(err)
	}
	n1 := clusterNet()
	t.Logf("a 2 MB answer to a client: leaf1 sent %d B on the cluster network", n1.TxBytes-n0.TxBytes)
	if n1.TxBytes-n0.TxBytes > 200_000 {
		t.Errorf("a 2 MB answer to a client showed as %d B on the cluster network", n1.TxBytes-n0.TxBytes)
	}
	if moved["noncolocated-join"] < 10*moved["pushed-aggregate"] {
		t.Errorf("the non-co-located join moved %d B, the pushed-down aggregate %d B: want at least 10x", moved["noncolocated-join"], moved["pushed-aggregate"])
	}
	if moved["noncolocated-join"] < 3*moved["noncolocated-join-bka"] {
		t.Errorf("the join moved %d B unbatched, %d B batched: want at least 3x", moved["noncolocated-join"], moved["noncolocated-join-bka"])
	}
}
