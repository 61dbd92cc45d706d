package experiments

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/results"
	htc "github.com/htapchaos/htapchaos/testcontainers"
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

// The audit on a real server: two acknowledged rows deleted are lost, one row in the
// run's range nobody acknowledged is unexpected, rows outside the range are not
// counted; and a million acknowledged rows are read back quickly.
func TestAuditLedger(t *testing.T) {
	c := htc.StartForTest(t, htc.Config{Topology: htc.Single, Memory: 1 << 30, Labels: testLabels})
	db, err := sql.Open("mysql", c.Nodes[0].DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
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

	a, err := AuditLedger(ctx, db, ledger, lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("audit: %+v", *a)
	if a.Acked != 80 || a.Unknown != 1 || a.Lost != 2 || !slices.Equal(a.FirstLost, lost) || a.Unexpected != 1 || !slices.Equal(a.FirstExtra, []int64{extra}) {
		t.Errorf("audit %+v; want acked 80, unknown 1, lost 2 %v, unexpected 1 [%d]", *a, lost, extra)
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
		a, err := AuditLedger(ctx, db, ledger, lo, hi)
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("audit of %d acknowledged rows took %v: lost %d %v", a.Acked, took.Round(time.Millisecond), a.Lost, a.FirstLost)
		if a.Acked != n || a.Lost != 3 || !slices.Equal(a.FirstLost, gone) || a.Unexpected != 0 {
			t.Errorf("audit %+v; want acked %d, lost 3 %v, unexpected 0", *a, n, gone)
		}
		if took > 10*time.Second {
			t.Errorf("audit of a million rows took %v, want well under 10s", took)
		}
	})
}
