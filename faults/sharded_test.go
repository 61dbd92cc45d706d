package faults_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/loadgen"
	htc "github.com/htapchaos/htapchaos/testcontainers"
	"github.com/htapchaos/htapchaos/testcontainers/faulttarget"
)

// Faults on one sharded cluster (1 aggregator over 2 leaves, a leaf proxy).
func TestShardedFaults(t *testing.T) {
	hc := htc.StartForTest(t, htc.Config{Topology: htc.Sharded, Aggregators: 1, Leaves: 2, PartitionsPerLeaf: 1, LeafProxy: true,
		Memory: 512 << 20, Labels: testLabels})
	if hc.Proxy == nil || len(hc.Proxy.Listen) != 2 {
		t.Fatalf("leaf proxy %+v", hc.Proxy)
	}
	ctx := context.Background()
	s := layoutOf(t, hc, loadgen.Sharded{PartitionsPerLeaf: 1})
	agg := s.Aggregators[0]
	if _, err := loadgen.SetupSharded(ctx, s, loadgen.Data{Users: 200, Orders: 2000, Merchants: 20}); err != nil {
		t.Fatal(err)
	}
	// A user on each leaf (partition p1 is leaf1's, p2 leaf2's).
	users := make([]int64, 2)
	for i, l := range s.Leaves {
		if err := l.DB.QueryRowContext(ctx, fmt.Sprintf("SELECT MIN(user_id) FROM users_p%d", i+1)).Scan(&users[i]); err != nil {
			t.Fatal(err)
		}
	}
	// The median of 5 single-shard reads through the aggregator.
	timed := func(user int64) time.Duration {
		var ds []time.Duration
		for range 5 {
			start := time.Now()
			var n int
			if err := agg.QueryRowContext(ctx, "SELECT COUNT(*) FROM orders WHERE user_id = ?", user).Scan(&n); err != nil {
				t.Fatal(err)
			}
			ds = append(ds, time.Since(start))
		}
		return median(ds)
	}
	t.Run("schema-change", func(t *testing.T) { shardedSchemaChange(t, hc, s, users) })
	// The container faults work on a leaf as on any node: each takes effect and
	// recovers, and the leaf serves its partition through the aggregator after.
	for _, kind := range []string{"node-stop", "node-restart", "partition", "network-bandwidth", "slow-node", "cpu-hog", "memory-fill"} {
		t.Run(kind, func(t *testing.T) {
			start := time.Now()
			_, done := startWith(t, ctx, faulttarget.Cluster(hc), kind, "leaf2", time.Second, nil)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			var n int
			if err := agg.QueryRowContext(ctx, "SELECT COUNT(*) FROM orders WHERE user_id = ?", users[1]).Scan(&n); err != nil {
				t.Errorf("leaf2's partition through the aggregator after %s: %v", kind, err)
			}
			t.Logf("%s on leaf2: %v", kind, time.Since(start).Round(time.Millisecond))
		})
	}
	// network-latency on a leaf of a sharded cluster with a leaf proxy slows the
	// aggregator's queries that need that leaf by the delay, and no other:
	// measured by the test on a single-shard query to each leaf, through the
	// aggregator.
	before := []time.Duration{timed(users[0]), timed(users[1])}
	const delay = 300 * time.Millisecond
	r, done := startWith(t, ctx, faulttarget.Cluster(hc), "network-latency", "leaf1", 6*time.Second, map[string]string{"delay": delay.String()})
	during := []time.Duration{timed(users[0]), timed(users[1])}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	after := timed(users[0])
	t.Logf("single-shard read through the aggregator: leaf1 %v -> %v -> %v, leaf2 %v -> %v (delay %v on leaf1's path); fault measured %+v",
		before[0], during[0], after, before[1], during[1], delay, r.Measurements())
	if during[0]-before[0] < delay*9/10 {
		t.Errorf("leaf1's read took %v with the delay, %v before: want at least %v more", during[0], before[0], delay*9/10)
	}
	if during[1] > before[1]+delay/3 {
		t.Errorf("leaf2's read took %v with leaf1 delayed, %v before", during[1], before[1])
	}
	if after > before[0]+delay/3 {
		t.Errorf("leaf1's read still takes %v after the recovery (%v before)", after, before[0])
	}
}

// layoutOf fills s with the cluster's aggregators and leaves (their control pools).
func layoutOf(t *testing.T, hc *htc.Cluster, s loadgen.Sharded) loadgen.Sharded {
	t.Helper()
	for _, n := range hc.Aggregators() {
		db, err := n.DB()
		if err != nil {
			t.Fatal(err)
		}
		s.Aggregators = append(s.Aggregators, db)
	}
	for _, l := range hc.Leaves() {
		db, err := l.DB()
		if err != nil {
			t.Fatal(err)
		}
		s.Leaves = append(s.Leaves, loadgen.Leaf{Server: l.Alias, DB: db})
	}
	return s
}

func median(ds []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(ds))
	return s[len(s)/2]
}

// hasColumn says whether a table on a node has schema-change's column.
func hasColumn(t *testing.T, db *sql.DB, table string) bool {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?", table, SchemaColumn).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// schema-change targeted at the aggregator alters every leaf's partition tables,
// then the aggregator's definition, and a read of every column through the
// aggregator works throughout; on recovery the column is gone everywhere.
func shardedSchemaChange(t *testing.T, hc *htc.Cluster, s loadgen.Sharded, users []int64) {
	ctx := context.Background()
	c := faulttarget.Cluster(hc)
	// A leaf alone is refused.
	k, _ := NewRegistry().Get("schema-change")
	leaf, _ := Resolve(c, "leaf1", 1)
	p, _ := k.Parse(nil)
	if err := k.New(p).Setup(ctx, &Env{Targets: leaf, Cluster: c, Events: NewEvents(nil), Params: p}); err == nil || !strings.Contains(err.Error(), "target an aggregator") {
		t.Errorf("schema-change on a leaf: %v", err)
	}
	agg := s.Aggregators[0]
	readAll := func() error {
		rows, err := agg.QueryContext(ctx, "SELECT * FROM orders WHERE user_id IN (?, ?)", users[0], users[1])
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
		}
		return rows.Err()
	}
	r, done := startWith(t, ctx, c, "schema-change", "agg1", 4*time.Second, map[string]string{"variant": "add-not-null-default"})
	eventually(t, "the aggregator has the column", 30*time.Second, func() bool { return hasColumn(t, agg, "orders") })
	for i, l := range s.Leaves {
		if !hasColumn(t, l.DB, fmt.Sprintf("orders_p%d", i+1)) {
			t.Errorf("%s: orders_p%d lacks the column while the aggregator has it", l.Server, i+1)
		}
	}
	if err := readAll(); err != nil {
		t.Errorf("every column through the aggregator, after the change: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if hasColumn(t, agg, "orders") {
		t.Error("the aggregator still has the column after the recovery")
	}
	for i, l := range s.Leaves {
		if hasColumn(t, l.DB, fmt.Sprintf("orders_p%d", i+1)) {
			t.Errorf("%s: orders_p%d still has the column after the recovery", l.Server, i+1)
		}
	}
	if err := readAll(); err != nil {
		t.Errorf("every column through the aggregator, after the recovery: %v", err)
	}
	var dur Measurement
	for _, m := range r.Measurements() {
		if m.Name == MeasureAlterDuration {
			dur = m
		}
	}
	t.Logf("alter duration %.3f s: %s", dur.Value, dur.Note)
	if dur.Value <= 0 || !strings.Contains(dur.Note, "every leaf, then every aggregator") || strings.Count(dur.Note, "orders") < 3 {
		t.Errorf("alter duration %+v: want the whole, with each of the 3 ALTERs in the note", dur)
	}

	// add-index: the same order, and nothing left.
	_, done = startWith(t, ctx, c, "schema-change", "agg1", time.Second, map[string]string{"variant": "add-index"})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, db := range append([]*sql.DB{agg}, s.Leaves[0].DB, s.Leaves[1].DB) {
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND INDEX_NAME = ?", SchemaIndex).Scan(&n); err != nil || n != 0 {
			t.Errorf("index left after add-index: %d (%v)", n, err)
		}
	}
	if err := readAll(); err != nil {
		t.Errorf("every column through the aggregator, after add-index: %v", err)
	}
}
