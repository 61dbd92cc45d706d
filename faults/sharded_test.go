package faults

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/loadgen"
	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// network-latency on a leaf of a sharded cluster with a leaf proxy slows the
// aggregator's queries that need that leaf by the delay, and no other: measured
// by the test on a single-shard query to each leaf, through the aggregator.
func TestNetworkLatencyOnALeafPath(t *testing.T) {
	hc := htc.StartForTest(t, htc.Config{Topology: htc.Sharded, Aggregators: 1, Leaves: 2, PartitionsPerLeaf: 1, LeafProxy: true,
		Memory: 512 << 20, Labels: testLabels})
	if hc.Proxy == nil || len(hc.Proxy.Listen) != 2 {
		t.Fatalf("leaf proxy %+v", hc.Proxy)
	}
	ctx := context.Background()
	s := loadgen.Sharded{PartitionsPerLeaf: 1}
	agg, err := hc.Aggregators()[0].DB()
	if err != nil {
		t.Fatal(err)
	}
	s.Aggregators = append(s.Aggregators, agg)
	for _, l := range hc.Leaves() {
		db, err := l.DB()
		if err != nil {
			t.Fatal(err)
		}
		s.Leaves = append(s.Leaves, loadgen.Leaf{Server: l.Alias, DB: db})
	}
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
	before := []time.Duration{timed(users[0]), timed(users[1])}
	const delay = 300 * time.Millisecond
	r, done := startWith(t, ctx, Containers(hc), "network-latency", "leaf1", 6*time.Second, map[string]string{"delay": delay.String()})
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

func median(ds []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(ds))
	return s[len(s)/2]
}
