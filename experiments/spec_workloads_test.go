package experiments

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/results"
	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// inlineShop is a workload file's contents, written inline in a spec under
// workload: (indented by 6).
const inlineShop = `      name: shop
      class: oltp
      schema:
        sql: |
          CREATE TABLE IF NOT EXISTS customers (id BIGINT NOT NULL PRIMARY KEY, email VARCHAR(32) NOT NULL) ENGINE=InnoDB;
          CREATE TABLE IF NOT EXISTS purchases (id BIGINT NOT NULL PRIMARY KEY, customer_id BIGINT NOT NULL, amount INT NOT NULL, KEY (customer_id)) ENGINE=InnoDB;
      tables:
        - {name: customers, rows: 200, columns: {id: {sequence: 1}, email: {string: 12}}}
        - {name: purchases, rows: 1000, columns: {id: {sequence: 1}, customer_id: {fk: customers}, amount: {uniform: {min: 1, max: 100}}}}
      ops:
        - name: customer
          sql: SELECT id, email FROM customers WHERE id = ?
          args: [{zipf: {min: 1, max: 200, s: 1.2}}]
          rows: 1
          weight: 50
        - name: purchase
          sql: INSERT INTO purchases (id, customer_id, amount) VALUES (?, ?, ?)
          args: [next-id, {fk: customers}, {uniform: {min: 1, max: 100}}]
          ledger: {table: purchases, column: id}
          weight: 30
        - name: history
          sql: SELECT c.email, p.amount FROM customers c JOIN purchases p ON p.customer_id = c.id WHERE c.id = ?
          args: [{fk: customers}]
          weight: 20
`

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Workload files in a spec: by file (relative to the spec) and inline, each
// resolved to its workload with its name and class; errors name the spec's or
// the file's lines; what a workload file cannot run with is refused.
func TestSpecWorkloadFiles(t *testing.T) {
	dir := t.TempDir()
	shop := strings.ReplaceAll(strings.TrimPrefix(inlineShop, "      "), "\n      ", "\n")
	writeFile(t, filepath.Join(dir, "shop.yaml"), shop)
	head := "name: mine\nmodes: [durability]\ncluster: {topology: single}\nphases: [{name: baseline, duration: 2s}]\n"

	path := filepath.Join(dir, "byfile.yaml")
	spec, err := ParseSpec(path, []byte(head+"workloads: [{kind: file, file: shop.yaml, rate: 50}]\n"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if w := spec.Workloads[0]; w.Name != "shop" || w.Class != "oltp" || w.wl == nil || w.wl.Audit == nil || w.wl.Audit.Table != "purchases" {
		t.Errorf("by file: %+v", w)
	}
	if spec.needsBuiltinSchema(loadgen.NewRegistry(), spec.registries().faults) {
		t.Error("a spec of workload files only needs the builtin schema")
	}

	inline := head + "workloads:\n  - name: mine\n    rate: 50\n    workload:\n" + inlineShop
	spec, err = ParseSpec(path, []byte(inline), ParseOptions{Set: []string{"workloads.mine.rate=20"}})
	if err != nil {
		t.Fatal(err)
	}
	if w := spec.Workloads[0]; w.Kind != KindFile || w.Name != "mine" || w.Rate != 20 || w.wl == nil || len(w.wl.Ops) != 3 {
		t.Errorf("inline: %+v", w)
	}
	// A flow mapping inline, on one line.
	flow := head + "workloads: [{rate: 5, workload: {name: tiny, ops: [{name: one, sql: 'SELECT 1', weight: 1}]}}]\n"
	if spec, err = ParseSpec(path, []byte(flow), ParseOptions{}); err != nil || spec.Workloads[0].Name != "tiny" {
		t.Errorf("inline flow: %v", err)
	}

	for _, c := range []struct {
		name, spec, want string
	}{
		// The 2nd line of the inline workload is line 10 of the spec.
		{"inline error at the spec's line", strings.Replace(inline, "class: oltp", "class: olap", 1), path + ":10"},
		{"inline flow error at the spec's line", head + "# two lines\n# down\n" + strings.Replace(flow, "weight: 1", "weight: x", 1)[len(head):], path + ":7"},
		{"file error at the file's line", head + "workloads: [{kind: file, file: bad.yaml, rate: 5}]\n", filepath.Join(dir, "bad.yaml") + ":2"},
		{"file error at the spec's line", head + "workloads: [{kind: file, file: bad.yaml, rate: 5}]\n", path + ":5: file bad.yaml: "},
		{"missing file", head + "workloads: [{kind: file, file: none.yaml, rate: 5}]\n", path + ":5: file none.yaml: "},
		{"file and inline", head + "workloads: [{file: shop.yaml, workload: {name: x}, rate: 5}]\n", path + ":5: give a workload file or an inline workload, not both"},
		{"file on another kind", head + "workloads: [{kind: oltp, file: shop.yaml, rate: 5}]\n", `for kind: file, not "oltp"`},
		{"sharded", strings.Replace(head, "topology: single", "topology: sharded", 1) + "workloads: [{kind: file, file: shop.yaml, rate: 5}]\n", "does not run on the sharded topology"},
		{"two audited tables", head + "workloads: [{kind: file, file: shop.yaml, rate: 5}, {kind: oltp, rate: 5}]\n", "the durability audit reads one table per run: oltp into orders.order_id; shop into purchases.id"},
	} {
		writeFile(t, filepath.Join(dir, "bad.yaml"), "name: bad\nops: 3\n")
		_, err := ParseSpec(path, []byte(c.spec), ParseOptions{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// The builtin oltp with a mix of no ledgered op runs beside it.
	both, err := ParseSpec(path, []byte(head+"workloads: [{kind: file, file: shop.yaml, rate: 5}, {kind: oltp, rate: 5, mix: {point-read: 1}}]\n"), ParseOptions{})
	if err != nil {
		t.Fatalf("oltp without inserts beside a file: %v", err)
	}

	// The dry run says what is seeded: the file's tables only, or both.
	spec, err = ParseSpec(path, []byte(head+"workloads: [{kind: file, file: shop.yaml, rate: 50}]\n"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if plan := spec.Plan(nil, nil); !strings.Contains(plan, "\ndata: workload shop's own tables, seeded first\n") {
		t.Errorf("plan of a workload file only:\n%s", plan)
	}
	if plan := both.Plan(nil, nil); !strings.Contains(plan, fmt.Sprintf("\ndata: %d users, %d orders; workload shop's own tables, seeded first\n", both.Data.Users, both.Data.Orders)) {
		t.Errorf("plan of a workload file and oltp:\n%s", plan)
	}
}

// A workload file in an experiment on a real server: its schema is seeded
// instead of htapchaos's (no orders table), its ops run and are counted, and the
// durability audit reads its declared table back: the acknowledged inserts are
// there, as a count taken from the server itself says.
func TestWorkloadFileExperiment(t *testing.T) {
	cfg := htc.Config{Topology: htc.Single, Nodes: 1, Memory: 512 << 20, Labels: testLabels}
	c := htc.StartForTest(t, cfg)
	spec, err := ParseSpec("shop-run.yaml", []byte("name: shop-run\nmodes: [durability]\nphases: [{name: baseline, duration: 3s}, {name: after, duration: 2s}]\n"+
		"workloads:\n  - rate: 200\n    timeout: 2s\n    workload:\n"+inlineShop), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), spec, Options{Cluster: c, Out: t.TempDir(), Seed: 5, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int64{}
	for _, s := range res.Recorded.Phase {
		if s.Window == "baseline" && s.Node == 0 && s.Op != "" {
			ops[s.Op] += s.Count
		}
	}
	for _, op := range []string{"customer", "purchase", "history"} {
		if ops[op] == 0 {
			t.Errorf("op %s ran no operation in the baseline: %v", op, ops)
		}
	}
	a := res.Recorded.Audit
	if a == nil || a.Error != "" || a.Acked == 0 || a.Lost != 0 || a.Unexpected != a.FromUnknown {
		t.Fatalf("audit %+v: want acknowledged purchases, none lost, none unsent", a)
	}
	db, err := sql.Open("mysql", c.Nodes[0].DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var inRange, orders int64
	lo, hi := int64(1)<<40, int64(1)<<62
	if err := db.QueryRow("SELECT COUNT(*) FROM purchases WHERE id BETWEEN ? AND ?", lo, hi).Scan(&inRange); err != nil {
		t.Fatal(err)
	}
	if inRange != a.Acked+a.FromUnknown {
		t.Errorf("purchases inserted by the run: %d on the server, the audit read %d acknowledged + %d of unknown outcome", inRange, a.Acked, a.FromUnknown)
	}
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE table_schema = DATABASE() AND table_name = 'orders'").Scan(&orders); err != nil || orders != 0 {
		t.Errorf("orders tables: %d (%v): want htapchaos's schema not seeded", orders, err)
	}
	for _, f := range res.Findings {
		t.Log(fmt.Sprintf("%s/%s: %s %s", f.Mode, f.Name, f.Verdict, f.Reason))
	}
}

// The audit reads back the declared table and column, quoted; sources of two
// tables are read from both.
func TestReadBackQuery(t *testing.T) {
	for _, c := range []struct {
		tables []loadgen.AuditTable
		want   string
		args   int
	}{
		{nil, "SELECT `order_id` FROM `orders` WHERE `order_id` BETWEEN ? AND ? ORDER BY `order_id`", 1},
		{[]loadgen.AuditTable{{Table: "pur`chases", Column: "id"}}, "SELECT `id` FROM `pur``chases` WHERE `id` BETWEEN ? AND ? ORDER BY `id`", 1},
		{[]loadgen.AuditTable{loadgen.DefaultAudit, {Table: "purchases", Column: "id"}},
			"SELECT id FROM (SELECT `order_id` AS id FROM `orders` WHERE `order_id` BETWEEN ? AND ? UNION SELECT `id` AS id FROM `purchases` WHERE `id` BETWEEN ? AND ?) AS audited ORDER BY id", 2},
	} {
		if q, n := readBackQuery(c.tables); q != c.want || n != c.args {
			t.Errorf("%v: %q (%d), want %q (%d)", c.tables, q, n, c.want, c.args)
		}
	}
	p := newAuditPlan([]AuditSource{{Name: "load", Ledger: results.NewLedger(), Table: "purchases", Column: "id"}, {Name: "spike", Ledger: results.NewLedger()}})
	if !strings.Contains(p.query, "`purchases`") || !strings.Contains(p.query, "`orders`") {
		t.Errorf("plan of two tables reads %q", p.query)
	}
}
