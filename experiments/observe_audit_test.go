package experiments

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/results"
	htc "github.com/htapchaos/htapchaos/testcontainers"
	"github.com/htapchaos/htapchaos/testcontainers/faulttarget"
)

func rs(pairs ...int64) []results.Range {
	var out []results.Range
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, results.Range{Lo: pairs[i], Hi: pairs[i+1]})
	}
	return out
}

// walkOf merges present ids (per node, ascending) as the read-back does.
func walkOf(ranges []results.Range, unknown []int64, present ...[]int64) *Audit {
	w := (&auditPlan{acked: ranges, unknown: unknown}).walk(len(present))
	pos := make([]int, len(present))
	for {
		m, any := int64(0), false
		for k, ids := range present {
			if pos[k] < len(ids) && (!any || ids[pos[k]] < m) {
				m, any = ids[pos[k]], true
			}
		}
		if !any {
			break
		}
		for k, ids := range present {
			w.has[k] = pos[k] < len(ids) && ids[pos[k]] == m
			if w.has[k] {
				pos[k]++
			}
		}
		w.present(m, w.has)
	}
	w.finish()
	nodes := make([]AuditNode, len(present))
	for k := range nodes {
		nodes[k] = AuditNode{Index: k + 1, Label: fmt.Sprintf("n%d", k+1)}
	}
	var a Audit
	w.fill(&a, nodes)
	return &a
}

// One copy: the merge of present ids against acknowledged ranges.
func TestAuditWalk(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		ranges               []results.Range
		present              []int64
		lost, unexpected     int64
		firstLost, firstXtra []int64
	}{
		{name: "all there", ranges: rs(1, 3, 10, 11), present: []int64{1, 2, 3, 10, 11}},
		{name: "nothing acked", present: []int64{4, 5}, unexpected: 2, firstXtra: []int64{4, 5}},
		{name: "nothing there", ranges: rs(1, 3, 7, 7), lost: 4, firstLost: []int64{1, 2, 3, 7}},
		{name: "holes and extras", ranges: rs(5, 9, 20, 22), present: []int64{1, 5, 7, 9, 12, 21, 30},
			lost: 4, unexpected: 3, firstLost: []int64{6, 8, 20, 22}, firstXtra: []int64{1, 12, 30}},
		{name: "extra past the last range", ranges: rs(1, 2), present: []int64{1, 2, 3}, unexpected: 1, firstXtra: []int64{3}},
		{name: "range skipped whole", ranges: rs(1, 2, 4, 5, 8, 8), present: []int64{1, 2, 8}, lost: 2, firstLost: []int64{4, 5}},
		{name: "first ten only", ranges: rs(100, 199), present: []int64{150}, lost: 99,
			firstLost: []int64{100, 101, 102, 103, 104, 105, 106, 107, 108, 109}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := walkOf(tc.ranges, nil, tc.present)
			if a.Lost != tc.lost || a.Unexpected != tc.unexpected || !slices.Equal(a.FirstLost, tc.firstLost) || !slices.Equal(a.FirstExtra, tc.firstXtra) {
				t.Errorf("lost %d %v unexpected %d %v; want lost %d %v unexpected %d %v",
					a.Lost, a.FirstLost, a.Unexpected, a.FirstExtra, tc.lost, tc.firstLost, tc.unexpected, tc.firstXtra)
			}
			if n := a.Nodes[0]; n.Lost != tc.lost || n.Lacks != 0 || a.Divergent != 0 || n.Rows != int64(len(tc.present)) {
				t.Errorf("node: %+v, divergent %d; want lost %d, nothing lacked", n, a.Divergent, tc.lost)
			}
		})
	}
}

// Three copies: a row missing everywhere is lost; missing on some is divergence,
// per node; rows nobody acknowledged split into unknown outcome and unsent.
func TestAuditWalkNodes(t *testing.T) {
	// Acknowledged 1-10 and 20-21; unknown outcome: 15, 16, 30.
	a := walkOf(rs(1, 10, 20, 21), []int64{15, 16, 30},
		[]int64{1, 2, 3, 4, 5, 6, 7, 8, 10, 15, 20, 21, 40},  // n1: lacks 9 (lost everywhere)
		[]int64{1, 2, 5, 6, 7, 8, 10, 15, 20, 21, 30, 40},    // n2: lacks 3, 4 (others have them), 9
		[]int64{1, 2, 3, 5, 6, 7, 8, 10, 15, 16, 20, 21, 40}) // n3: lacks 4 (n1 has it), 9
	check := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %v, want %v", what, got, want)
		}
	}
	check("lost everywhere", []any{a.Lost, a.FirstLost}, []any{1, []int64{9}})
	check("divergent", []any{a.Divergent, a.DivergentAcked, a.FirstDivergent}, []any{4, 2, []int64{3, 4, 16, 30}})
	check("unexpected", []any{a.Unexpected, a.FromUnknown, a.Unsent, a.FirstUnsent}, []any{4, 3, 1, []int64{40}})
	n1, n2, n3 := a.Nodes[0], a.Nodes[1], a.Nodes[2]
	check("n1", []any{n1.Lost, n1.FirstLost, n1.Lacks, n1.LacksAcked, n1.LacksAlone, n1.FirstLacks}, []any{1, []int64{9}, 2, 0, 0, []int64{16, 30}})
	check("n2", []any{n2.Lost, n2.FirstLost, n2.Lacks, n2.LacksAcked, n2.LacksAlone, n2.FirstLacks}, []any{3, []int64{3, 4, 9}, 3, 2, 1, []int64{3, 4, 16}})
	check("n3", []any{n3.Lost, n3.FirstLost, n3.Lacks, n3.LacksAcked, n3.LacksAlone, n3.FirstLacks}, []any{2, []int64{4, 9}, 2, 1, 0, []int64{4, 30}})
	check("rows", []any{n1.Rows, n2.Rows, n3.Rows}, []any{13, 12, 13})
}

func TestAuditWindows(t *testing.T) {
	for _, tc := range []struct {
		ranges, spans, want []results.Range
	}{
		{rs(1, 5, 8, 30, 40, 41), rs(10, 20), rs(1, 5, 8, 9, 10, 20, 21, 30, 40, 41)},
		{rs(1, 5), nil, rs(1, 5)},
		{nil, rs(10, 20), rs(10, 20)},
		// Two sources' ranges (the load's and a spike's), acknowledged ids in both
		// and one straddling a gap.
		{rs(12, 14, 18, 33, 50, 50), rs(10, 20, 30, 40), rs(10, 20, 21, 29, 30, 40, 50, 50)},
	} {
		if got := auditWindows(tc.ranges, tc.spans); !slices.Equal(got, tc.want) {
			t.Errorf("windows of %v in %v: %v, want %v", tc.ranges, tc.spans, got, tc.want)
		}
	}
}

// The audit on a single server (AuditCluster with one node): two acknowledged rows
// deleted are lost, one row in the run's range nobody acknowledged is unexpected,
// rows outside the range are not counted; and a million acknowledged rows are read
// back quickly.
func TestAuditSingle(t *testing.T) {
	c := htc.StartForTest(t, htc.Config{Topology: htc.Single, Memory: 1 << 30, Labels: testLabels})
	db, err := sql.Open("mysql", c.Nodes[0].DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	node := []AuditNode{{Index: 1, Label: "n1", DSN: c.Nodes[0].DSN()}}
	audit := func(t *testing.T, ledger *results.Ledger, lo, hi int64) *Audit {
		t.Helper()
		a := AuditCluster(ctx, node, []AuditSource{{Name: "load", Ledger: ledger, Lo: lo, Hi: hi}}, 30*time.Second)
		if a.Error != "" || a.Settle.TimedOut || len(a.Nodes) != 1 || !a.Nodes[0].Read || a.Node != 1 {
			t.Fatalf("audit error %q, settle timed out %v, nodes %+v, node %d; want n1 read back", a.Error, a.Settle.TimedOut, a.Nodes, a.Node)
		}
		if n := a.Nodes[0]; n.Lost != a.Lost || n.Lacks != 0 || a.Divergent != 0 {
			t.Errorf("n1 lost %d (audit %d), lacks %d, divergent %d: one copy, nothing to compare", n.Lost, a.Lost, n.Lacks, a.Divergent)
		}
		return a
	}
	for _, stmt := range loadgen.DDL(loadgen.MariaDB) {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	insert := func(ids ...int64) {
		t.Helper()
		for _, id := range ids {
			if _, err := db.ExecContext(ctx, "INSERT INTO orders (order_id, user_id, amount, status, created_at) VALUES (?, 1, 1.00, 'paid', NOW(6))", id); err != nil {
				t.Fatal(err)
			}
		}
	}

	ids := loadgen.NewIDs(5)
	lo, hi := ids.Range()
	ledger := results.NewLedger()
	var all []int64
	for w := 1; w <= 2; w++ {
		for seq := range uint64(40) {
			id := ids.ID(w, seq)
			all = append(all, id)
			ledger.Ack(w, id)
		}
	}
	insert(all...)
	insert(7, hi+1) // a seeded row and another run's row: outside the range
	lost := []int64{ids.ID(1, 13), ids.ID(2, 0)}
	for _, id := range lost {
		if _, err := db.ExecContext(ctx, "DELETE FROM orders WHERE order_id = ?", id); err != nil {
			t.Fatal(err)
		}
	}
	extra := ids.ID(1, 100) // landed, never acknowledged
	insert(extra)
	ledger.Unknown(1, ids.ID(1, 101)) // outcome unknown, did not land

	a := audit(t, ledger, lo, hi)
	logAudit(t, a)
	if a.Acked != 80 || a.Unknown != 1 || a.Nodes[0].Rows != 79 || a.Lost != 2 || !slices.Equal(a.FirstLost, lost) || a.Unexpected != 1 || !slices.Equal(a.FirstExtra, []int64{extra}) ||
		a.Unsent != 1 || a.FromUnknown != 0 {
		t.Errorf("audit %+v; want acked 80, unknown 1, 79 rows, lost 2 %v, unexpected 1 [%d], which no writer sent", *a, lost, extra)
	}

	t.Run("a million rows", func(t *testing.T) {
		if testing.Short() {
			t.Skip("seeds a million rows")
		}
		ids := loadgen.NewIDs(9)
		lo, hi := ids.Range()
		const n = 1_000_000
		start := time.Now()
		// Four writers of 250k consecutive ids each, written by the server itself.
		for w := range 4 {
			q := fmt.Sprintf("INSERT INTO orders (order_id, user_id, amount, status, created_at) SELECT %d + seq, 1, 1.00, 'paid', NOW(6) FROM seq_0_to_%d",
				ids.ID(w, 0), n/4-1)
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		ledger := results.NewLedger()
		for w := range 4 {
			for seq := range uint64(n / 4) {
				ledger.Ack(w, ids.ID(w, seq))
			}
		}
		gone := []int64{ids.ID(0, 5), ids.ID(2, 123_456), ids.ID(3, n/4-1)}
		for _, id := range gone {
			if _, err := db.ExecContext(ctx, "DELETE FROM orders WHERE order_id = ?", id); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("seeded %d rows in %v", n, time.Since(start).Round(time.Millisecond))
		start = time.Now()
		a := audit(t, ledger, lo, hi)
		took := time.Since(start)
		t.Logf("audit of %d acknowledged rows took %v (settle %.3fs): lost %d %v", a.Acked, took.Round(time.Millisecond), a.Settle.Seconds, a.Lost, a.FirstLost)
		if a.Acked != n || a.Lost != 3 || !slices.Equal(a.FirstLost, gone) || a.Unexpected != 0 {
			t.Errorf("audit %+v; want acked %d, lost 3 %v, unexpected 0", *a, n, gone)
		}
		if took > 10*time.Second {
			t.Errorf("audit of a million rows took %v, want well under 10s", took)
		}
	})
}

// clusterUnderAudit is a test's handle on a cluster for audits.
type clusterUnderAudit struct {
	t     *testing.T
	ctx   context.Context
	c     *htc.Cluster
	dbs   []*sql.DB
	nodes []AuditNode
}

// newClusterUnderAudit opens a pool on every node of c, closed when the test
// ends, after the test's own cleanups, which use them.
func newClusterUnderAudit(t *testing.T, ctx context.Context, c *htc.Cluster) *clusterUnderAudit {
	t.Helper()
	g := &clusterUnderAudit{t: t, ctx: ctx, c: c}
	for _, n := range c.Nodes {
		db, err := sql.Open("mysql", n.DSN())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		g.dbs = append(g.dbs, db)
		g.nodes = append(g.nodes, AuditNode{Index: n.Index, Label: fmt.Sprintf("n%d", n.Index), DSN: n.DSN()})
	}
	return g
}

// exec runs statements on node i (1-based) in one session; local: with
// wsrep_on=OFF, so that they do not replicate.
func (g *clusterUnderAudit) exec(i int, local bool, stmts ...string) {
	g.t.Helper()
	conn, err := g.dbs[i-1].Conn(g.ctx)
	if err != nil {
		g.t.Fatal(err)
	}
	defer conn.Close()
	if local {
		stmts = append([]string{"SET SESSION wsrep_on = OFF"}, stmts...)
		defer conn.ExecContext(context.WithoutCancel(g.ctx), "SET SESSION wsrep_on = ON")
	}
	for _, s := range stmts {
		if _, err := conn.ExecContext(g.ctx, s); err != nil {
			g.t.Fatalf("n%d: %s: %v", i, s, err)
		}
	}
}

// insert writes n consecutive ids of writer w on node 1 in statements of batch
// rows, acknowledging them in ledger.
func (g *clusterUnderAudit) insert(ledger *results.Ledger, ids *loadgen.IDs, w, n, batch int) {
	g.t.Helper()
	for done := 0; done < n; done += batch {
		k := min(batch, n-done)
		first := ids.ID(w, uint64(done))
		res, err := g.dbs[0].ExecContext(g.ctx, fmt.Sprintf("INSERT INTO orders (order_id, user_id, amount, status, created_at) SELECT %d + seq, 1, 1.00, 'paid', NOW(6) FROM seq_0_to_%d", first, k-1))
		if err != nil {
			g.t.Fatal(err)
		}
		if got, _ := res.RowsAffected(); got != int64(k) {
			g.t.Fatalf("inserted %d rows, want %d", got, k)
		}
		for j := range k {
			ledger.Ack(w, first+int64(j))
		}
	}
}

// holdApplier3 holds n3's applier: FLUSH TABLES WITH READ LOCK on n3 desyncs
// it, and it applies nothing until release, which waits until it is ready again
// (release may be called more than once).
func (g *clusterUnderAudit) holdApplier3() (release func()) {
	g.t.Helper()
	conn, err := g.dbs[2].Conn(g.ctx)
	if err != nil {
		g.t.Fatal(err)
	}
	if _, err := conn.ExecContext(g.ctx, "FLUSH TABLES WITH READ LOCK"); err != nil {
		conn.Close()
		g.t.Fatal(err)
	}
	released := false
	return func() {
		if released {
			return
		}
		released = true
		defer conn.Close()
		if _, err := conn.ExecContext(context.WithoutCancel(g.ctx), "UNLOCK TABLES"); err != nil {
			g.t.Error(err)
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(g.ctx), time.Minute)
		defer cancel()
		if err := g.c.Nodes[2].WaitReady(wctx); err != nil {
			g.t.Error(err)
		}
	}
}

func (g *clusterUnderAudit) node(a *Audit, i int) NodeAudit {
	g.t.Helper()
	for _, n := range a.Nodes {
		if n.Node == i {
			return n
		}
	}
	g.t.Fatalf("no node %d in the audit: %+v", i, a.Nodes)
	return NodeAudit{}
}

func logAudit(t *testing.T, a *Audit) {
	t.Helper()
	t.Logf("audit: acked %d, lost %d %v, divergent %d (acked %d), unexpected %d (unknown %d, unsent %d); settle %.2fs to %s, timed out %v %s; error %q",
		a.Acked, a.Lost, a.FirstLost, a.Divergent, a.DivergentAcked, a.Unexpected, a.FromUnknown, a.Unsent,
		a.Settle.Seconds, a.Settle.Target, a.Settle.TimedOut, a.Settle.Behind, a.Error)
	for _, n := range a.Nodes {
		t.Logf("  %s: read %v %s rows %d lost %d %v lacks %d (acked %d, alone %d) unexpected %d; %s, %d behind at start",
			n.Label, n.Read, n.Skipped, n.Rows, n.Lost, n.FirstLost, n.Lacks, n.LacksAcked, n.LacksAlone, n.Unexpected, n.Applied, n.Behind)
	}
}

// The audit on the shared 3-node Galera cluster: rows deleted behind the tool's
// back on one node are lost on that node only, and named as divergence; a node
// that is slow to apply (CPU-capped) gives no false loss, the settle waits for
// it; a node that cannot apply in time makes the audit inconclusive; the same
// node read at once, without the settle, would be reported as losing rows; a batch
// spike's rows are read back with the load's. Everything it adds is removed, and
// the cluster is left Synced with its CPU limits as they were.
func TestAuditGalera(t *testing.T) {
	c := sharedGalera(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	g := newClusterUnderAudit(t, ctx, c)
	var had int
	if err := g.dbs[0].QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('users', 'orders')").Scan(&had); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range loadgen.DDL(loadgen.MariaDB) {
		g.exec(1, false, stmt)
	}
	// The cleanups run after ctx is cancelled: they take a context of their own.
	cleanup := func() (*clusterUnderAudit, context.CancelFunc) {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cg := *g
		cg.ctx = cctx
		return &cg, cancel
	}
	if had == 0 {
		t.Cleanup(func() {
			g, cancel := cleanup()
			defer cancel()
			g.exec(1, false, "DROP TABLE IF EXISTS orders", "DROP TABLE IF EXISTS users")
		})
	}
	tag, err := loadgen.PickRunTag(ctx, g.dbs[0], rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3)))
	if err != nil {
		t.Fatal(err)
	}
	ids := loadgen.NewIDs(tag)
	lo, hi := ids.Range()
	var spikeLo, spikeHi int64 = 1, 0
	// Remove what the test wrote on each node apart (wsrep_on=OFF): a replicated
	// DELETE of a row a node lacks would make that node leave the cluster.
	t.Cleanup(func() {
		g, cancel := cleanup()
		defer cancel()
		where := fmt.Sprintf("order_id BETWEEN %d AND %d OR order_id BETWEEN %d AND %d", lo, hi, spikeLo, spikeHi)
		for i, db := range g.dbs {
			g.exec(i+1, true, "DELETE FROM orders WHERE "+where)
			var left int
			if err := db.QueryRowContext(g.ctx, "SELECT COUNT(*) FROM orders WHERE "+where).Scan(&left); err != nil || left != 0 {
				t.Errorf("n%d: %d rows left behind (%v)", i+1, left, err)
			}
		}
	})

	ledger := results.NewLedger()
	g.insert(ledger, ids, 1, 300, 300)
	load := []AuditSource{{Name: "load", Ledger: ledger, Lo: lo, Hi: hi}}

	t.Run("rows deleted on one node", func(t *testing.T) {
		g := *g
		g.t = t
		landed, lost := ids.ID(2, 0), ids.ID(2, 1) // outcome unknown: one landed
		ledger.Unknown(2, landed)
		ledger.Unknown(2, lost)
		unsent := ids.ID(3, 0) // no writer sent it
		g.exec(1, false, fmt.Sprintf("INSERT INTO orders (order_id, user_id, amount, status, created_at) VALUES (%d, 1, 1.00, 'paid', NOW(6)), (%d, 1, 1.00, 'paid', NOW(6))", landed, unsent))
		var gone []int64
		for seq := range uint64(12) {
			gone = append(gone, ids.ID(1, 100+seq))
		}
		g.exec(2, true, fmt.Sprintf("DELETE FROM orders WHERE order_id BETWEEN %d AND %d", gone[0], gone[11]))

		a := AuditCluster(ctx, g.nodes, load, 30*time.Second)
		logAudit(t, a)
		if a.Error != "" || a.Settle.TimedOut || a.Acked != 300 {
			t.Fatalf("audit error %q, timed out %v, acked %d; want a whole audit of 300", a.Error, a.Settle.TimedOut, a.Acked)
		}
		n1, n2, n3 := g.node(a, 1), g.node(a, 2), g.node(a, 3)
		if !n1.Read || !n2.Read || !n3.Read {
			t.Fatalf("not every node read: %+v", a.Nodes)
		}
		if n2.Lost != 12 || !slices.Equal(n2.FirstLost, gone[:auditFirst]) || n2.LacksAlone != 12 || n1.Lost != 0 || n3.Lost != 0 || a.Lost != 0 {
			t.Errorf("lost: n1 %d, n2 %d %v (alone %d), n3 %d, everywhere %d; want n2 only, 12 from %v", n1.Lost, n2.Lost, n2.FirstLost, n2.LacksAlone, n3.Lost, a.Lost, gone[:auditFirst])
		}
		if a.Divergent != 12 || a.DivergentAcked != 12 {
			t.Errorf("divergent %d (acked %d), want 12", a.Divergent, a.DivergentAcked)
		}
		if a.Unexpected != 2 || a.FromUnknown != 1 || a.Unsent != 1 || !slices.Equal(a.FirstUnsent, []int64{unsent}) || !slices.Equal(a.FirstFromUnknown, []int64{landed}) {
			t.Errorf("unexpected %d: unknown %d %v, unsent %d %v; want 1 [%d] and 1 [%d]", a.Unexpected, a.FromUnknown, a.FirstFromUnknown, a.Unsent, a.FirstUnsent, landed, unsent)
		}
		fs := scoreDurability(&Recorded{Nodes: 3, Audit: a}, nil)
		for _, f := range fs {
			t.Logf("%s: %s %g: %s", f.Name, f.Verdict, f.Value, f.Reason)
		}
		wantFinding(t, fs, findLost, Fail, 12, "n2 lacks 12 acknowledged rows that n1 and n3 have: ids "+ids10(gone))
		wantFinding(t, fs, findDiverge, Fail, 12, "n2 lacks 12 acknowledged rows that n1 and n3 have")
		wantFinding(t, fs, findUnsent, Fail, 1, fmt.Sprint(unsent))

		// Put the rows back on n2 alone, and remove the extra ones everywhere.
		g.exec(2, true, fmt.Sprintf("INSERT INTO orders (order_id, user_id, amount, status, created_at) SELECT %d + seq, 1, 1.00, 'paid', NOW(6) FROM seq_0_to_11", gone[0]))
		g.exec(1, false, fmt.Sprintf("DELETE FROM orders WHERE order_id IN (%d, %d)", landed, unsent))
	})

	t.Run("a node slow to apply", func(t *testing.T) {
		g := *g
		g.t = t
		// n3 applies nothing while its applier is held, so it is behind when the
		// audit begins whatever the machine's speed (a CPU quota alone let it
		// catch up in the moment between the insert and the audit). The hold ends
		// while the audit waits for the cluster to settle.
		release := g.holdApplier3()
		defer release()
		start := time.Now()
		g.insert(ledger, ids, 4, 8000, 500)
		var have int64
		if err := g.dbs[2].QueryRowContext(ctx, "SELECT COUNT(*) FROM orders WHERE order_id BETWEEN ? AND ?", ids.ID(4, 0), ids.ID(4, 7999)).Scan(&have); err != nil {
			t.Fatal(err)
		}
		t.Logf("8000 rows inserted on n1 in %v; n3 (applier held) had %d of them right after", time.Since(start).Round(time.Millisecond), have)
		if have == 8000 {
			t.Fatal("n3 had every row before the audit began: the test shows nothing")
		}
		released := make(chan struct{})
		go func() {
			defer close(released)
			time.Sleep(1500 * time.Millisecond)
			release()
		}()
		defer func() { <-released }()

		a := AuditCluster(ctx, g.nodes, load, 60*time.Second)
		logAudit(t, a)
		if a.Error != "" || a.Settle.TimedOut {
			t.Fatalf("audit error %q, settle timed out %v", a.Error, a.Settle.TimedOut)
		}
		n3 := g.node(a, 3)
		if n3.Behind == 0 {
			t.Fatalf("n3 was not behind when the audit began: the test shows nothing (settle %.2fs)", a.Settle.Seconds)
		}
		if a.Acked != 8300 || a.Lost != 0 || a.Divergent != 0 || n3.Lost != 0 || n3.Rows != 8300 {
			t.Errorf("acked %d, lost %d, divergent %d, n3 lost %d of %d rows; want 8300 acked, none lost", a.Acked, a.Lost, a.Divergent, n3.Lost, n3.Rows)
		}
		wantFinding(t, scoreDurability(&Recorded{Nodes: 3, Audit: a}, nil), findLost, Pass, 0)
		t.Logf("settle: n3 was %d seqnos behind; every node at %s after %.2fs", n3.Behind, a.Settle.Target, a.Settle.Seconds)
	})

	t.Run("a node that does not apply in time", func(t *testing.T) {
		g := *g
		g.t = t
		unlock := g.holdApplier3() // n3 applies nothing until unlock
		defer unlock()
		g.insert(ledger, ids, 5, 10, 10)
		a := AuditCluster(ctx, g.nodes, load, 2*time.Second)
		logAudit(t, a)
		unlock()
		n3 := g.node(a, 3)
		if !a.Settle.TimedOut || n3.Read || !strings.Contains(n3.Skipped, "not settled") || !strings.Contains(a.Settle.Behind, "n3") {
			t.Errorf("timed out %v (%s), n3 read %v (%s); want a timeout naming n3, n3 not read", a.Settle.TimedOut, a.Settle.Behind, n3.Read, n3.Skipped)
		}
		if a.Lost != 0 || !g.node(a, 1).Read || !g.node(a, 2).Read {
			t.Errorf("lost %d; n1 and n2 read %v %v", a.Lost, g.node(a, 1).Read, g.node(a, 2).Read)
		}
		for _, f := range scoreDurability(&Recorded{Nodes: 3, Audit: a}, nil) {
			if f.Verdict != Inconclusive || !strings.Contains(f.Reason, "settle timeout") {
				t.Errorf("%s: %s (%s); want inconclusive, the settle timeout", f.Name, f.Verdict, f.Reason)
			}
		}
	})

	// What the settle is for: a node behind, read at once, lacks rows the audit
	// would call lost; after the settle, nothing is.
	t.Run("a node behind read without the settle", func(t *testing.T) {
		g := *g
		g.t = t
		release := g.holdApplier3()
		defer release()
		g.insert(ledger, ids, 6, 1000, 500)
		a := auditCluster(ctx, g.nodes, load, noSettle)
		logAudit(t, a)
		n3 := g.node(a, 3)
		if a.Error != "" || !n3.Read || !g.node(a, 1).Read || !g.node(a, 2).Read {
			t.Fatalf("audit error %q, nodes %+v; want every node read", a.Error, a.Nodes)
		}
		if n3.Lost != 1000 || a.Lost != 0 || a.DivergentAcked != 1000 {
			t.Errorf("n3 lost %d, lost everywhere %d, divergent acknowledged %d; want n3 to lack the 1000 rows it has not applied", n3.Lost, a.Lost, a.DivergentAcked)
		}
		wantFinding(t, scoreDurability(&Recorded{Nodes: 3, Audit: a}, nil), findLost, Fail, 1000, "n3 lacks 1000 acknowledged rows")
		t.Logf("read at once, without the settle: n3 (applier held) lacked %d of %d acknowledged rows", n3.Lost, a.Acked)

		release()
		a = AuditCluster(ctx, g.nodes, load, 30*time.Second)
		logAudit(t, a)
		if a.Error != "" || a.Settle.TimedOut || a.Lost != 0 || a.Divergent != 0 || g.node(a, 3).Lost != 0 {
			t.Errorf("with the settle: error %q, timed out %v, lost %d, divergent %d, n3 lost %d; want nothing lost", a.Error, a.Settle.TimedOut, a.Lost, a.Divergent, g.node(a, 3).Lost)
		}
		t.Logf("then with the settle: every node at %s after %.2fs, nothing lost", a.Settle.Target, a.Settle.Seconds)
	})

	t.Run("a batch spike's rows", func(t *testing.T) {
		g := *g
		g.t = t
		fc := faulttarget.Cluster(c)
		k, err := faults.NewRegistry().Get("batch-spike")
		if err != nil {
			t.Fatal(err)
		}
		p, err := k.Parse(map[string]string{"rate": "4", "times": "1", "rows": "50"})
		if err != nil {
			t.Fatal(err)
		}
		targets, err := faults.Resolve(fc, "1", 1)
		if err != nil {
			t.Fatal(err)
		}
		f := k.New(p)
		r := faults.NewRunner(k.Name, f, &faults.Env{Targets: targets, Cluster: fc, Events: faults.NewEvents(nil), Params: p})
		runErr := r.Run(ctx, 1500*time.Millisecond, time.Minute)
		lw, ok := f.(faults.LedgerWriter)
		if !ok {
			t.Fatal("batch-spike is no LedgerWriter")
		}
		sl, slo, shi := lw.Ledger()
		if sl != nil {
			spikeLo, spikeHi = slo, shi // for the cleanup
		}
		if runErr != nil {
			t.Fatal(runErr)
		}
		if sl == nil {
			t.Fatal("the spike ran and has no ledger")
		}
		sacked, _ := sl.Count()
		if sacked == 0 || (slo <= hi && lo <= shi) {
			t.Fatalf("spike: %d rows acknowledged in %d-%d (load %d-%d); want some, in a range of its own", sacked, slo, shi, lo, hi)
		}
		a := AuditCluster(ctx, g.nodes, append(slices.Clone(load), AuditSource{Name: "batch-spike", Ledger: sl, Lo: slo, Hi: shi}), 30*time.Second)
		logAudit(t, a)
		loadAcked, _ := ledger.Count()
		if a.Error != "" || a.Acked != loadAcked+sacked || a.Lost != 0 || a.Divergent != 0 || a.Unexpected != 0 || len(a.Sources) != 2 {
			t.Errorf("audit %+v; want %d + %d acknowledged, none lost, divergent or unexpected, 2 sources", *a, loadAcked, sacked)
		}
		for _, n := range a.Nodes {
			if n.Rows != loadAcked+sacked {
				t.Errorf("%s has %d rows, want %d", n.Label, n.Rows, loadAcked+sacked)
			}
		}
		t.Logf("spike: %d rows acknowledged, ids %d-%d", sacked, slo, shi)
	})
}

// wantFinding checks one finding's verdict, value and text.
func wantFinding(t *testing.T, fs []Finding, name string, v Verdict, value float64, fragments ...string) {
	t.Helper()
	i := slices.IndexFunc(fs, func(f Finding) bool { return f.Name == name })
	if i < 0 {
		t.Fatalf("no finding %q", name)
	}
	f := fs[i]
	if f.Verdict != v || f.Value != value {
		t.Errorf("%s: %s %g (%s), want %s %g", name, f.Verdict, f.Value, f.Reason, v, value)
	}
	text := f.Reason + "\n" + strings.Join(f.Notes, "\n")
	for _, fr := range fragments {
		if !strings.Contains(text, fr) {
			t.Errorf("%s: no %q in\n%s", name, fr, text)
		}
	}
}

func ids10(xs []int64) string { return ids(xs[:min(len(xs), auditFirst)]) }

// A single server: no divergence finding (nothing to compare), the others judged.
func TestScoreDurabilitySingle(t *testing.T) {
	r := run("fault")
	r.Nodes = 1
	r.Audit = &Audit{Acked: 100, Unexpected: 1, FromUnknown: 1, FirstExtra: []int64{7}, FirstFromUnknown: []int64{7}, Node: 1,
		Nodes: []NodeAudit{{Node: 1, Label: "n1", Read: true, Rows: 101, Unexpected: 1}}}
	fs := scoreDurability(r, nil)
	if len(fs) != 2 || slices.ContainsFunc(fs, func(f Finding) bool { return f.Name == findDiverge }) {
		t.Fatalf("findings %+v; want lost and unsent only", fs)
	}
	wantFinding(t, fs, findLost, Pass, 0, "1 from writes of unknown outcome", "read back on n1")
	wantFinding(t, fs, findUnsent, Pass, 0)
}

// audit.settle in a spec and through --set; a bad one refused.
func TestSpecAuditSettle(t *testing.T) {
	s, err := Builtin("fail-sideways", ParseOptions{Quick: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.auditSettle(); got != 0 {
		t.Errorf("no audit key: settle %v, want 0 (the default)", got)
	}
	s, err = Builtin("fail-sideways", ParseOptions{Quick: true, Set: []string{"audit.settle=5s"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.auditSettle(); got != 5*time.Second {
		t.Errorf("settle %v, want 5s", got)
	}
	for _, bad := range []string{"audit.settle=-1s", "audit.settle=soon", "audit.wait=5s"} {
		if _, err := Builtin("fail-sideways", ParseOptions{Quick: true, Set: []string{bad}}); err == nil {
			t.Errorf("--set %s accepted", bad)
		}
	}
}

// The settle on asynchronous replication: a replica whose applier is stopped is
// not read and the audit is inconclusive; once it applies again, it reaches the
// primary's GTID position and is read back like the primary.
func TestAuditPrimaryReplica(t *testing.T) {
	c := htc.StartForTest(t, htc.Config{Topology: htc.PrimaryReplica, Nodes: 2, Memory: 512 << 20, Labels: testLabels})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	g := newClusterUnderAudit(t, ctx, c)
	for _, stmt := range loadgen.DDL(loadgen.MariaDB) {
		g.exec(1, false, stmt)
	}
	ids := loadgen.NewIDs(11)
	lo, hi := ids.Range()
	load := []AuditSource{{Name: "load", Ledger: results.NewLedger(), Lo: lo, Hi: hi}}

	g.exec(2, false, "STOP SLAVE SQL_THREAD")
	g.insert(load[0].Ledger, ids, 1, 2000, 500)
	a := AuditCluster(ctx, g.nodes, load, time.Second)
	logAudit(t, a)
	if n2 := g.node(a, 2); !a.Settle.TimedOut || n2.Read || !strings.Contains(a.Settle.Target, "GTID") || !g.node(a, 1).Read || a.Lost != 0 {
		t.Errorf("applier stopped: timed out %v, target %q, n2 read %v (%s), n1 read %v, lost %d; want a timeout on n2 only", a.Settle.TimedOut, a.Settle.Target, n2.Read, n2.Skipped, g.node(a, 1).Read, a.Lost)
	}

	g.exec(2, false, "START SLAVE SQL_THREAD")
	a = AuditCluster(ctx, g.nodes, load, 30*time.Second)
	logAudit(t, a)
	n2 := g.node(a, 2)
	if a.Settle.TimedOut || a.Error != "" || !n2.Read || n2.Rows != 2000 || a.Lost != 0 || a.Divergent != 0 || !strings.HasPrefix(n2.Applied, "GTID ") {
		t.Errorf("applier running: timed out %v, error %q, n2 read %v with %d rows at %q, lost %d, divergent %d; want every row on both", a.Settle.TimedOut, a.Error, n2.Read, n2.Rows, n2.Applied, a.Lost, a.Divergent)
	}
}

// After Ctrl-C (the run's ctx done) the audit still runs, with its settle capped
// at interruptedSettle, and its record says so; a node that does not answer is
// marked down.
func TestAuditInterruptedSettle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	nodes := []nodeRef{{index: 1, label: "n1", dsn: "u:p@tcp(" + addr + ")/db?timeout=1s"}}
	ctx, cancel := context.WithCancel(context.Background())

	a := auditServingNodes(ctx, nodes, nil, time.Minute)
	if a.Settle.Timeout != 60 || a.Settle.Capped != "" {
		t.Errorf("running: settle bound %gs, capped %q; want 60s, not capped", a.Settle.Timeout, a.Settle.Capped)
	}
	if len(a.Nodes) != 1 || !a.Nodes[0].Down || a.Nodes[0].Read {
		t.Errorf("nodes %+v; want n1 down, not read", a.Nodes)
	}

	cancel()
	a = auditServingNodes(ctx, nodes, nil, time.Minute)
	if a.Settle.Timeout != interruptedSettle.Seconds() || !strings.Contains(a.Settle.Capped, "interrupted") || !strings.Contains(a.Settle.Capped, "5s instead of 1m0s") {
		t.Errorf("interrupted: settle bound %gs, capped %q; want %v, saying why", a.Settle.Timeout, a.Settle.Capped, interruptedSettle)
	}
	if line := auditLine(a); !strings.Contains(line, a.Settle.Capped) {
		t.Errorf("the audit's log line does not say the settle was capped: %s", line)
	}
	if a = auditServingNodes(ctx, nodes, nil, 2*time.Second); a.Settle.Timeout != 2 || a.Settle.Capped != "" {
		t.Errorf("interrupted, settle 2s: bound %gs, capped %q; want 2s as asked", a.Settle.Timeout, a.Settle.Capped)
	}
}
