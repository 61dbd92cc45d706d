package faults_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/loadgen"
	htc "github.com/htapchaos/htapchaos/testcontainers"
	"github.com/htapchaos/htapchaos/testcontainers/faulttarget"
)

// Faults on one vitess cluster (2 vtgates over 2 shards): every container fault
// takes effect on a shard and on a vtgate and recovers, and the shard then
// serves through the vtgate again; a killed shard stays down for the fault's
// hold (mysqld_safe does not bring it back behind the fault's back); a schema
// change through a vtgate alters every shard.
func TestVitessFaults(t *testing.T) {
	hc := htc.StartForTest(t, htc.Config{Topology: htc.Vitess, Memory: 512 << 20, Labels: testLabels})
	ctx := context.Background()
	s := layoutOf(t, hc, loadgen.Sharded{Engine: loadgen.VitessEngine, PartitionsPerLeaf: 1, ApplyVSchema: hc.ApplyVSchema})
	if _, err := loadgen.SetupSharded(ctx, s, loadgen.Data{Users: 200, Orders: 2000, Merchants: 20}); err != nil {
		t.Fatal(err)
	}
	// A user on each shard, as the shards themselves hold them.
	users := make([]int64, 2)
	for i, l := range s.Leaves {
		if err := l.DB.QueryRowContext(ctx, "SELECT MIN(user_id) FROM users").Scan(&users[i]); err != nil {
			t.Fatal(err)
		}
	}
	// A text statement, as the load generator sends (it interpolates): a
	// prepared one is prepared on one shard vtgate picks, which fails while that
	// shard is down even when the statement's own shard serves.
	read := func(gate *sql.DB, user int64) error {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var n int
		return gate.QueryRowContext(qctx, fmt.Sprintf("SELECT COUNT(*) FROM orders WHERE user_id = %d", user)).Scan(&n)
	}
	// Shard 2 as its own mysqld sees it (not through Vitess).
	leaf2Answers := func() bool {
		db, err := sql.Open("mysql", hc.Leaves()[1].DSN()+"&timeout=1s")
		if err != nil {
			return false
		}
		defer db.Close()
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return db.PingContext(qctx) == nil
	}

	t.Run("node-kill stays down", func(t *testing.T) {
		const hold = 5 * time.Second
		_, done := startWith(t, ctx, faulttarget.Cluster(hc), "node-kill", "leaf2", hold, nil)
		time.Sleep(3 * time.Second) // mysqld_safe restarts a dead mysqld after about 1 s
		if leaf2Answers() {
			t.Error("leaf2's mysqld answers 3 s into a kill: something restarted it behind the fault")
		}
		if err := read(s.Aggregators[0], users[1]); err == nil {
			t.Error("leaf2's shard served through the vtgate while killed")
		}
		if err := read(s.Aggregators[0], users[0]); err != nil {
			t.Errorf("leaf1's shard through the vtgate while leaf2 is killed: %v", err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := read(s.Aggregators[0], users[1]); err != nil {
			t.Errorf("leaf2's shard through the vtgate after the recovery: %v", err)
		}
	})

	for _, tc := range []struct{ kind, node string }{
		{"node-stop", "leaf2"}, {"node-restart", "leaf2"}, {"pause", "leaf2"}, {"partition", "leaf2"},
		{"network-bandwidth", "leaf2"}, {"slow-node", "leaf2"}, {"cpu-hog", "leaf2"}, {"memory-fill", "leaf2"},
		{"node-kill", "agg2"}, {"node-stop", "agg2"}, {"node-restart", "agg2"}, {"pause", "agg2"}, {"partition", "agg2"},
		{"network-bandwidth", "agg2"}, {"slow-node", "agg2"}, {"memory-fill", "agg2"}, {"cpu-hog", "agg2"},
	} {
		t.Run(tc.kind+" on "+tc.node, func(t *testing.T) {
			start := time.Now()
			_, done := startWith(t, ctx, faulttarget.Cluster(hc), tc.kind, tc.node, time.Second, nil)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			for i, gate := range s.Aggregators {
				if err := read(gate, users[1]); err != nil {
					t.Errorf("leaf2's shard through agg%d after %s on %s: %v", i+1, tc.kind, tc.node, err)
				}
			}
			t.Logf("%s on %s: %v", tc.kind, tc.node, time.Since(start).Round(time.Millisecond))
		})
	}

	t.Run("schema-change", func(t *testing.T) {
		_, done := startWith(t, ctx, faulttarget.Cluster(hc), "schema-change", "agg1", 2*time.Second, map[string]string{"variant": "add-not-null-default"})
		for i, l := range s.Leaves {
			eventually(t, fmt.Sprintf("shard %d has the column", i+1), 30*time.Second, func() bool { return hasColumn(t, l.DB, "orders") })
		}
		rows, err := s.Aggregators[0].QueryContext(ctx, fmt.Sprintf("SELECT * FROM orders WHERE user_id IN (%d, %d)", users[0], users[1]))
		if err == nil {
			for rows.Next() {
			}
			err = rows.Err()
			rows.Close()
		}
		if err != nil {
			t.Errorf("every column through the vtgate during the change: %v", err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		for i, l := range s.Leaves {
			if hasColumn(t, l.DB, "orders") {
				t.Errorf("shard %d still has the column after the recovery", i+1)
			}
		}
	})
}
