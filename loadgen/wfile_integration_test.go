package loadgen_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/results"
	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// The shipped shop workload file on a real server: its Setup creates and seeds two
// tables (a foreign key between them), a short load runs its zipf point read, its
// join, its audited insert and its update with a histogram per op, and every
// insert the ledger says was acknowledged is in the table. The truth is read back
// with queries of this test's own. Then the checks an op declares: a read
// returning another row count, and its own timeout, are its errors; values drawn
// from: an existing table are real ids.
func TestWorkloadFileOnAServer(t *testing.T) {
	c := htc.StartForTest(t, htc.Config{Topology: htc.Single, Memory: 512 << 20, Labels: map[string]string{htc.LabelPurpose: "test-loadgen"}})
	ctx := context.Background()
	tg, err := loadgen.NewTarget(1, c.Nodes[0].DSN(), loadgen.DefaultTimeouts)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", tg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func(query string, args ...any) int64 {
		t.Helper()
		var n int64
		if err := db.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}

	wl, err := loadgen.LoadWorkloadFile("../examples/workloads/shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var logged []string
	logf := func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) }
	rep, err := wl.Setup(ctx, db, logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %v in %v (%.0f rows/s)", rep.Rows, rep.Elapsed.Round(time.Millisecond), rep.RowsPerSecond())
	if rep.Rows["customers"] != 2000 || rep.Rows["purchases"] != 20000 {
		t.Errorf("setup reports %v, want 2000 customers and 20000 purchases", rep.Rows)
	}
	if n := count("SELECT COUNT(*) FROM customers"); n != 2000 {
		t.Errorf("%d customers in the table, want 2000", n)
	}
	if n := count("SELECT COUNT(*) FROM purchases"); n != 20000 {
		t.Errorf("%d purchases in the table, want 20000", n)
	}
	if n := count("SELECT COUNT(*) FROM purchases p LEFT JOIN customers c ON c.id = p.customer_id WHERE c.id IS NULL"); n != 0 {
		t.Errorf("%d purchases of no seeded customer: the fk went outside the parent's ids", n)
	}
	if n := count("SELECT COUNT(DISTINCT customer_id) FROM purchases"); n < 1900 {
		t.Errorf("purchases reference %d customers, want nearly all 2000", n)
	}
	if n := count("SELECT COUNT(*) FROM customers WHERE tier IS NULL"); n < 300 || n > 500 {
		t.Errorf("%d customers without a tier, want about 400 (null: 0.2)", n)
	}
	if n := count("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('customers', 'purchases') AND TABLE_COMMENT = 'htapchaos'"); n != 2 {
		t.Errorf("%d of the seeded tables carry htapchaos's mark, want 2", n)
	}
	again, err := wl.Setup(ctx, db, logf)
	if err != nil || again.Added() != 0 {
		t.Errorf("a second setup added %v (%v), want nothing", again.Rows, err)
	}

	res, err := loadgen.Run(ctx, loadgen.Config{
		Targets:   []loadgen.Target{tg},
		Workloads: []loadgen.Spec{{Workload: wl, Phases: []loadgen.Phase{{Duration: 3 * time.Second, Rate: 200}}, Workers: 8}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, o := range res.Summary.Ops {
		t.Logf("%s: %d ok, %d errors %v, p50 %.2fms p99 %.2fms", o.Op, o.Count, o.ErrorsTotal, o.Other, o.Latency.P50, o.Latency.P99)
		total += o.Count + o.ErrorsTotal + o.Dropped
		if o.ErrorsTotal != 0 {
			t.Errorf("op %s: %d errors %v", o.Op, o.ErrorsTotal, o.Other)
		}
		if o.Count == 0 || o.Latency.P50 <= 0 {
			t.Errorf("op %s: no histogram of successes", o.Op)
		}
		if want := map[string]results.Access{"purchase": results.Write, "ship": results.Write}[o.Op]; want != "" && o.Access != want {
			t.Errorf("op %s: access %s, want %s", o.Op, o.Access, want)
		}
	}
	if len(res.Summary.Ops) != 4 || total != 600 {
		t.Errorf("%d ops over %d histograms, want 600 over customer, customer-purchases, purchase, ship", total, len(res.Summary.Ops))
	}
	acked, unknown := res.Ledger.Count()
	if acked < 60 || unknown != 0 {
		t.Errorf("ledger: %d acknowledged, %d unknown; want about 120 acknowledged purchases", acked, unknown)
	}
	var inTable int64
	for _, r := range res.Ledger.Acked() {
		inTable += count("SELECT COUNT(*) FROM purchases WHERE id BETWEEN ? AND ?", r.Lo, r.Hi)
	}
	if inTable != acked {
		t.Errorf("%d of the %d acknowledged purchases are in the table", inTable, acked)
	}

	// What an op declares is checked on every attempt.
	checks, err := loadgen.ParseWorkloadFile("checks.yaml", []byte(`name: checks
ops:
  - name: real-ids
    sql: SELECT id FROM purchases WHERE id = ?
    args: [{from: {table: purchases, column: id}}]
    rows: 1
  - name: wrong-count
    sql: SELECT id FROM customers WHERE id = ?
    args: [{uniform: {min: 1, max: 2000}}]
    rows: 2
  - name: slow
    sql: SELECT SLEEP(0.5) FROM customers WHERE id = ?
    args: [{uniform: {min: 1, max: 2000}}]
    timeout: 100ms
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checks.Setup(ctx, db, logf); err != nil {
		t.Fatal(err)
	}
	// A workload whose Setup did not run samples at its first op.
	lazy, err := loadgen.ParseWorkloadFile("lazy.yaml", []byte(`name: lazy
ops:
  - name: lazy-ids
    sql: SELECT id FROM customers WHERE id = ?
    args: [{from: {table: customers, column: id}}]
    rows: 1
`))
	if err != nil {
		t.Fatal(err)
	}
	res, err = loadgen.Run(ctx, loadgen.Config{
		Targets: []loadgen.Target{tg},
		Workloads: []loadgen.Spec{{Workload: checks, Phases: []loadgen.Phase{{Duration: time.Second, Rate: 60}}, Workers: 8},
			{Workload: lazy, Phases: []loadgen.Phase{{Duration: time.Second, Rate: 20}}, Workers: 4}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range res.Summary.Ops {
		t.Logf("%s: %d ok, errors %v %v", o.Op, o.Count, o.Errors, o.Other)
		switch o.Op {
		case "real-ids", "lazy-ids":
			if o.Count == 0 || o.ErrorsTotal != 0 {
				t.Errorf("%s: %d ok, %d errors: the sampled ids are not the table's", o.Op, o.Count, o.ErrorsTotal)
			}
		case "wrong-count":
			if o.Count != 0 || o.Errors[results.ClassOther] == 0 || len(o.Other) == 0 || !strings.Contains(o.Other[0].Message, "wrong-count returned 1 rows, the file says rows: 2") {
				t.Errorf("wrong-count: %d ok, errors %v %v: want every attempt an error naming the counts", o.Count, o.Errors, o.Other)
			}
		case "slow":
			if o.Count != 0 || o.Errors[results.ClassTimeout] == 0 {
				t.Errorf("slow: %d ok, errors %v: want every attempt to time out after 100ms", o.Count, o.Errors)
			}
			if o.ErrorLatency != nil && o.ErrorLatency.Max > 400 {
				t.Errorf("slow: errors after up to %.0fms: the op's 100ms timeout did not cut the 500ms query", o.ErrorLatency.Max)
			}
		}
	}
	if len(res.Summary.Ops) != 4 {
		t.Errorf("%d op histograms, want real-ids, wrong-count, slow and lazy-ids", len(res.Summary.Ops))
	}

	// A table the file seeds that someone else made is not touched.
	if _, err := db.ExecContext(ctx, "CREATE TABLE theirs (id BIGINT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	theirs, err := loadgen.ParseWorkloadFile("theirs.yaml", []byte("name: theirs\ntables:\n  - name: theirs\n    rows: 10\n    columns: {id: {sequence: 1}}\nops:\n  - name: r\n    sql: SELECT 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := theirs.Setup(ctx, db, logf); !errors.Is(err, loadgen.ErrNotOurTable) {
		t.Errorf("seeding a table htapchaos did not make: %v, want ErrNotOurTable", err)
	}
	if n := count("SELECT COUNT(*) FROM theirs"); n != 0 {
		t.Errorf("%d rows seeded into a table htapchaos did not make", n)
	}
}
