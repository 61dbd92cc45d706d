package testcontainers

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/moby/moby/client"
)

func open(t *testing.T, n *Node) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", n.DSN())
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(2)
	t.Cleanup(func() { db.Close() })
	return db
}

func within(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// insert writes one row through a fresh connection (a node's old pooled connections
// may be dead after a fault) and returns the error the server gave.
func insert(ctx context.Context, n *Node, id int, note string) error {
	db, err := sql.Open("mysql", n.DSN())
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = db.ExecContext(ctx, "INSERT INTO t (id, note) VALUES (?, ?)", id, note)
	return err
}

func readNote(ctx context.Context, t *testing.T, n *Node, id int) string {
	t.Helper()
	var note string
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := open(t, n).QueryRowContext(ctx, "SELECT note FROM t WHERE id = ?", id).Scan(&note); err != nil {
		t.Fatalf("read id %d on %s: %v", id, n.Name, err)
	}
	return note
}

// waitGalera polls a node until its status satisfies ok.
func waitGalera(ctx context.Context, t *testing.T, n *Node, what string, ok func(GaleraStatus) bool) GaleraStatus {
	t.Helper()
	var last GaleraStatus
	var lastErr error
	for {
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		g, err := n.GaleraStatus(qctx)
		cancel()
		if err == nil && ok(g) {
			return g
		}
		last, lastErr = g, err
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %s never became %s; last %v (err %v)", t.Name(), n.Name, what, last, lastErr)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func mysqlErrNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// TestGalera forms one 3-node cluster with a load balancer and takes it through the
// faults every experiment builds on, checking each effect on the cluster itself.
func TestGalera(t *testing.T) {
	const mem = 768 << 20
	c := StartForTest(t, Config{Topology: Galera, Nodes: 3, Memory: mem, LB: true, Labels: testLabels,
		NodeSettings: map[int]map[string]string{2: {"max_connections": "321"}}})
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	ctx := within(t, 10*time.Minute)

	t.Run("forms-and-replicates", func(t *testing.T) {
		for _, n := range c.Nodes {
			g, err := n.GaleraStatus(ctx)
			if err != nil || !g.Synced() || g.Size != 3 {
				t.Fatalf("%s: %v (err %v), want size 3 Primary Synced", n.Name, g, err)
			}
		}
		if _, err := open(t, n1).ExecContext(ctx, "CREATE TABLE t (id INT PRIMARY KEY, note VARCHAR(64))"); err != nil {
			t.Fatal(err)
		}
		if err := insert(ctx, n1, 1, "written on n1"); err != nil {
			t.Fatal(err)
		}
		if got := readNote(ctx, t, n3, 1); got != "written on n1" {
			t.Fatalf("n3 read %q", got)
		}
	})

	t.Run("per-node-settings", func(t *testing.T) {
		for _, n := range c.Nodes {
			var v int
			if err := open(t, n).QueryRowContext(ctx, "SELECT @@max_connections").Scan(&v); err != nil {
				t.Fatal(err)
			}
			want := 1000
			if n.Index == 2 {
				want = 321
			}
			if v != want {
				t.Errorf("%s: max_connections %d, want %d", n.Name, v, want)
			}
		}
	})

	t.Run("memory-limit", func(t *testing.T) {
		ms, err := n1.MemoryStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ms.Limit != mem {
			t.Errorf("limit %d, want %d", ms.Limit, mem)
		}
		// A running MariaDB with a 128 MiB buffer pool uses tens of MiB at least.
		if ms.Usage < 20<<20 || ms.Usage >= ms.Limit {
			t.Errorf("usage %d bytes out of the plausible range", ms.Usage)
		}
		if want := float64(ms.Usage) / float64(ms.Limit) * 100; ms.Percent != want {
			t.Errorf("percent %v, want %v", ms.Percent, want)
		}
	})

	t.Run("load-balancer-round-robin", func(t *testing.T) {
		seen := map[string]bool{}
		for range 6 {
			db, err := sql.Open("mysql", c.LB.DSN())
			if err != nil {
				t.Fatal(err)
			}
			var name string
			err = db.QueryRowContext(ctx, "SELECT @@wsrep_node_name").Scan(&name)
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
			seen[name] = true
		}
		if len(seen) != 3 {
			t.Errorf("6 connections through the load balancer reached %v, want all 3 nodes", seen)
		}
	})

	t.Run("kill-and-restart", func(t *testing.T) {
		if err := n2.Kill(ctx); err != nil {
			t.Fatal(err)
		}
		st, err := n2.State(ctx)
		if err != nil || st.Running || st.ExitCode != 137 {
			t.Fatalf("after kill: %+v (err %v), want stopped with exit 137", st, err)
		}
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		waitGalera(wctx, t, n1, "size 2", func(g GaleraStatus) bool { return g.Size == 2 && g.Synced() })
		waitGalera(wctx, t, n3, "size 2", func(g GaleraStatus) bool { return g.Size == 2 && g.Synced() })
		if err := insert(ctx, n1, 2, "while n2 dead, on n1"); err != nil {
			t.Fatalf("write on n1 with n2 dead: %v", err)
		}
		if err := insert(ctx, n3, 3, "while n2 dead, on n3"); err != nil {
			t.Fatalf("write on n3 with n2 dead: %v", err)
		}
		oldPort := n2.Port()
		if err := n2.Start(ctx); err != nil {
			t.Fatal(err)
		}
		g := waitGalera(wctx, t, n2, "Synced with size 3", func(g GaleraStatus) bool { return g.Size == 3 && g.Synced() })
		t.Logf("n2 rejoined: %v", g)
		if n2.Port() != oldPort {
			t.Errorf("port changed across the restart (%d -> %d): DSNs handed out earlier are dead", oldPort, n2.Port())
		}
		if got := readNote(ctx, t, n2, 3); got != "while n2 dead, on n3" {
			t.Fatalf("rejoined n2 read %q", got)
		}
	})

	t.Run("two-paused-survivor-non-primary", func(t *testing.T) {
		for _, n := range []*Node{n2, n3} {
			if err := n.Pause(ctx); err != nil {
				t.Fatal(err)
			}
		}
		unpause := func() {
			for _, n := range []*Node{n2, n3} {
				_ = n.Unpause(context.WithoutCancel(ctx))
			}
		}
		defer unpause()
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		waitGalera(wctx, t, n1, "non-Primary", func(g GaleraStatus) bool { return g.ClusterStatus == "non-Primary" })
		err := insert(ctx, n1, 4, "must be refused")
		if mysqlErrNumber(err) != 1047 {
			t.Fatalf("write on the non-Primary survivor: %v, want error 1047", err)
		}
		unpause()
		if err := c.WaitReady(wctx); err != nil {
			t.Fatalf("after unpause: %v", err)
		}
		if err := insert(ctx, n1, 5, "after recovery"); err != nil {
			t.Fatalf("write after recovery: %v", err)
		}
	})

	t.Run("cut-off-node-keeps-its-client-path", func(t *testing.T) {
		// Published ports ride on each node's own client network, whatever the
		// engine's choice of gateway: a partition must not also cut clients off.
		for _, n := range c.Nodes {
			if err := n.Disconnect(ctx); err != nil {
				t.Fatal(err)
			}
			ok, seen, _ := n.answers(ctx)
			if err := n.Reconnect(ctx); err != nil {
				t.Fatal(err)
			}
			if !ok {
				t.Errorf("%s cut off the cluster network does not answer its clients: %s", n.Name, seen)
			}
		}
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := c.WaitReady(wctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("partition-one-node", func(t *testing.T) {
		if err := n3.Disconnect(ctx); err != nil {
			t.Fatal(err)
		}
		reconnected := false
		defer func() {
			if !reconnected {
				_ = n3.Reconnect(context.WithoutCancel(ctx))
			}
		}()
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		// Clients still reach the cut-off node on its own network, and it refuses work.
		waitGalera(wctx, t, n3, "non-Primary", func(g GaleraStatus) bool { return g.ClusterStatus == "non-Primary" })
		waitGalera(wctx, t, n1, "Primary with size 2", func(g GaleraStatus) bool { return g.Size == 2 && g.Synced() })
		if err := insert(ctx, n3, 6, "must be refused"); mysqlErrNumber(err) != 1047 {
			t.Fatalf("write on the cut-off node: %v, want error 1047", err)
		}
		if err := insert(ctx, n2, 7, "majority side"); err != nil {
			t.Fatalf("write on the majority: %v", err)
		}
		if err := n3.Reconnect(ctx); err != nil {
			t.Fatal(err)
		}
		reconnected = true
		if err := c.WaitReady(wctx); err != nil {
			t.Fatalf("after heal: %v", err)
		}
		if got := readNote(ctx, t, n3, 7); got != "majority side" {
			t.Fatalf("healed n3 read %q", got)
		}
	})

	t.Run("stop-gracefully", func(t *testing.T) {
		if err := n3.Stop(ctx, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		st, err := n3.State(ctx)
		if err != nil || st.Running || st.ExitCode != 0 {
			t.Fatalf("after graceful stop: %+v (err %v), want exit 0", st, err)
		}
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		// A graceful leave shrinks the cluster without a suspect timeout.
		waitGalera(wctx, t, n1, "size 2", func(g GaleraStatus) bool { return g.Size == 2 && g.Synced() })
		if err := n3.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitReady(wctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("exec", func(t *testing.T) {
		res, err := n1.Exec(ctx, "sh", "-c", "echo out; echo err >&2; exit 3")
		if err != nil {
			t.Fatal(err)
		}
		if res.ExitCode != 3 || res.Stdout != "out\n" || res.Stderr != "err\n" {
			t.Fatalf("exec: %+v", res)
		}
	})

	t.Run("attach-by-name", func(t *testing.T) {
		a, err := Attach(ctx, c.Name)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Nodes) != 3 || a.LB == nil || a.Topology != Galera {
			t.Fatalf("attached %d nodes, lb %v, topology %s", len(a.Nodes), a.LB != nil, a.Topology)
		}
		for i, n := range a.Nodes {
			if n.DSN() != c.Nodes[i].DSN() || n.Role != RoleGalera {
				t.Errorf("node %d: dsn %s role %s, want %s", i+1, n.DSN(), n.Role, c.Nodes[i].DSN())
			}
		}
		if g, err := a.Nodes[2].GaleraStatus(ctx); err != nil || g.Size != 3 {
			t.Fatalf("attached n3 status %v err %v", g, err)
		}
	})
}

func TestPrimaryReplica(t *testing.T) {
	c := StartForTest(t, Config{Topology: PrimaryReplica, Memory: 512 << 20, CPUs: 1.5, Labels: testLabels})
	ctx := within(t, 3*time.Minute)
	if len(c.Nodes) != 3 || c.Nodes[0].Role != RolePrimary || c.Nodes[1].Role != RoleReplica || c.Nodes[2].Role != RoleReplica {
		t.Fatalf("roles: %v %v %v", c.Nodes[0].Role, c.Nodes[1].Role, c.Nodes[2].Role)
	}
	for _, n := range c.Nodes {
		res, err := c.engine.Client.ContainerInspect(ctx, n.ID, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		hc := res.Container.HostConfig
		if hc.NanoCPUs != 1.5e9 || hc.Memory != 512<<20 || hc.MemorySwap != hc.Memory {
			t.Errorf("%s: cpus %d, memory %d, memory+swap %d; want 1.5 CPUs, 512MiB, no swap", n.Name, hc.NanoCPUs, hc.Memory, hc.MemorySwap)
		}
		for _, b := range hc.PortBindings[mysqlPort] {
			if b.HostIP.String() != "127.0.0.1" {
				t.Errorf("%s: port published on %v, want loopback only", n.Name, b.HostIP)
			}
		}
	}
	p := c.Nodes[0]
	if _, err := open(t, p).ExecContext(ctx, "CREATE TABLE t (id INT PRIMARY KEY, note VARCHAR(64))"); err != nil {
		t.Fatal(err)
	}
	if err := insert(ctx, p, 1, "on the primary"); err != nil {
		t.Fatal(err)
	}
	for _, r := range c.Nodes[1:] {
		var note string
		for {
			err := open(t, r).QueryRowContext(ctx, "SELECT note FROM t WHERE id = 1").Scan(&note)
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				rs, _ := r.ReplicaStatus(context.Background())
				t.Fatalf("%s never saw the row: %v (replica %+v)", r.Name, err, rs)
			case <-time.After(100 * time.Millisecond):
			}
		}
		if note != "on the primary" {
			t.Fatalf("%s read %q", r.Name, note)
		}
		rs, err := r.ReplicaStatus(ctx)
		if err != nil || !rs.IORunning || !rs.SQLRunning {
			t.Fatalf("%s replica status %+v err %v", r.Name, rs, err)
		}
	}
}

// A server that cannot start fails Run quickly with its log, and Terminate leaves nothing.
func TestBrokenSettingFailsFastAndCleansUp(t *testing.T) {
	ctx := within(t, 2*time.Minute)
	name := fmt.Sprintf("broken-%d", time.Now().UnixNano()%1e6)
	start := time.Now()
	c, err := Run(ctx, Config{Name: name, Topology: Single, Labels: testLabels, Settings: map[string]string{"no_such_server_setting": "1"}})
	if c != nil {
		defer c.Terminate(context.Background())
	}
	if errors.Is(err, ErrEngineUnavailable) || errors.Is(err, ErrImageMissing) {
		StartForTest(t, Config{Topology: Single, Labels: testLabels}) // skips or fails with the reason
	}
	if err == nil {
		t.Fatal("a server with an unknown setting started")
	}
	if time.Since(start) > 60*time.Second {
		t.Errorf("took %v to notice the server exited", time.Since(start))
	}
	t.Logf("error (as a user sees it): %v", err)
	if c == nil {
		t.Fatal("Run returned no partial cluster to clean up")
	}
	if err := c.Terminate(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := countLabelled(ctx, c.engine, map[string]string{LabelCluster: name}); err != nil || n != 0 {
		t.Fatalf("%d resources left (err %v)", n, err)
	}
}
