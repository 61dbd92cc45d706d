package loadgen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	_ "github.com/Shopify/toxiproxy/v2/toxics" // registers the latency toxic
	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/htapchaos/htapchaos/results"
	htc "github.com/htapchaos/htapchaos/testcontainers"
)

var testLabels = map[string]string{htc.LabelPurpose: "test-loadgen"}

func TestMain(m *testing.M) { os.Exit(htc.RunTests(m, testLabels)) }

func targetsOf(t *testing.T, c *htc.Cluster) []Target {
	t.Helper()
	var ts []Target
	for _, n := range c.Nodes {
		tg, err := NewTarget(n.Index, n.DSN(), DefaultTimeouts)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tg)
	}
	return ts
}

func setup(t *testing.T, tg Target, data Data) SeedReport {
	t.Helper()
	db, err := sql.Open("mysql", tg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rep, err := Setup(context.Background(), db, MariaDB, data)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// A node frozen for 5 s shows as a gap of about 5 s on the streams routed to it, and
// as none on the others. Reads only: on Galera a frozen member also stalls writes on
// every other node until it is evicted (that is the fail-sideways experiment's
// subject, not this test's). The suspect timeout is raised so that the frozen node is
// not evicted, which would add its rejoin time to the gap.
func TestPauseShowsAsAGapOnItsNodeOnly(t *testing.T) {
	c := htc.StartForTest(t, htc.Config{Topology: htc.Galera, Nodes: 3, Memory: 512 << 20, Labels: testLabels,
		Settings: map[string]string{"wsrep_provider_options": "evs.suspect_timeout=PT30S;evs.inactive_timeout=PT60S"}})
	targets := targetsOf(t, c)
	data := Data{Users: 1000, Orders: 10000}
	setup(t, targets[0], data)

	n2 := c.Nodes[1]
	pauseAt, pauseFor := 3*time.Second, 5*time.Second
	var pauseErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		time.Sleep(pauseAt)
		if pauseErr = n2.Pause(context.Background()); pauseErr != nil {
			return
		}
		time.Sleep(pauseFor)
		pauseErr = n2.Unpause(context.Background())
	})
	t.Cleanup(func() { _ = n2.Unpause(context.Background()) })
	res, err := Run(context.Background(), Config{
		Targets:   targets,
		Workloads: []Spec{{Workload: OLTP(), Mix: map[string]int{"point-read": 1}, Phases: []Phase{{Duration: 12 * time.Second, Rate: 300}}, Workers: 8}},
		Params:    Params{Data: data},
	})
	wg.Wait()
	if err != nil || pauseErr != nil {
		t.Fatal(err, pauseErr)
	}
	gaps := map[int][]results.Gap{}
	for _, g := range res.Summary.Gaps {
		gaps[g.Node] = g.Gaps
	}
	if len(gaps[2]) != 1 {
		t.Fatalf("node 2 gaps %+v, want one", gaps[2])
	}
	if d := gaps[2][0].Duration; d < 4.5 || d > 6.5 {
		t.Errorf("node 2 gap %.2fs, want about 5s", d)
	}
	for _, n := range []int{1, 3} {
		if len(gaps[n]) != 0 {
			t.Errorf("node %d has gaps %+v, want none", n, gaps[n])
		}
	}
	for _, o := range res.Summary.Ops {
		t.Logf("n%d: %d ok, %d errors, %d late, p50 %.2fms p99 %.2fms max %.0fms", o.Node, o.Count, o.ErrorsTotal, o.Late, o.Latency.P50, o.Latency.P99, o.Latency.Max)
		if o.Node == 2 && o.Latency.Max < 4000 {
			t.Errorf("node 2 max latency %.0fms: the frozen operations' wait is missing", o.Latency.Max)
		}
	}

	t.Run("cancel-reaches-queries-on-a-frozen-node", func(t *testing.T) {
		if err := n2.Pause(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer n2.Unpause(context.Background())
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		res, err := Run(ctx, Config{Targets: targets, Params: Params{Data: data},
			Workloads: []Spec{{Workload: OLTP(), Mix: map[string]int{"point-read": 1}, Route: Route{Nodes: []int{2}}, Phases: []Phase{{Duration: time.Minute, Rate: 50}}}}})
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("Run took %v to return after a cancel at 1s, with queries stuck on a frozen node", took)
		}
		o := opSummary(t, res.Summary, "point-read")
		if o.ErrorsTotal != 0 || o.Canceled == 0 {
			t.Errorf("errors %d canceled %d: want the stuck queries counted as canceled, not as errors", o.ErrorsTotal, o.Canceled)
		}
	})

	t.Run("not-ready-1047-is-classed", func(t *testing.T) {
		n1 := c.Nodes[0]
		db, err := n1.DB()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("SET GLOBAL wsrep_reject_queries = ALL"); err != nil {
			t.Fatal(err)
		}
		defer db.Exec("SET GLOBAL wsrep_reject_queries = NONE")
		fresh, _ := sql.Open("mysql", n1.DSN())
		defer fresh.Close()
		_, qerr := fresh.Exec("SELECT COUNT(*) FROM orders")
		if got := results.Classify(qerr); got.Class != results.ClassNotReady || got.Number != 1047 {
			t.Errorf("rejected query: %v classed %+v, want not-ready 1047", qerr, got)
		}
	})
}

func TestSingleNode(t *testing.T) {
	c := htc.StartForTest(t, htc.Config{Topology: htc.Single, Memory: 512 << 20, Labels: testLabels})
	targets := targetsOf(t, c)
	data := Data{Users: 2000, Orders: 20000}

	t.Run("setup-seeds-and-reruns", func(t *testing.T) {
		rep := setup(t, targets[0], data)
		if rep.UsersAdded != 2000 || rep.OrdersAdded != 20000 || rep.RowsPerSecond() <= 0 {
			t.Fatalf("first setup %+v", rep)
		}
		t.Logf("seeded %d rows at %.0f rows/s", rep.UsersAdded+rep.OrdersAdded, rep.RowsPerSecond())
		if again := setup(t, targets[0], data); again.UsersAdded+again.OrdersAdded != 0 {
			t.Fatalf("second setup added %+v", again)
		}
		bigger := data
		bigger.Orders = 25000
		if more := setup(t, targets[0], bigger); more.OrdersAdded != 5000 {
			t.Fatalf("growing to 25000 orders added %d", more.OrdersAdded)
		}
	})

	t.Run("refuses-a-table-it-did-not-create", func(t *testing.T) {
		ctx := context.Background()
		root, err := sql.Open("mysql", targets[0].DSN)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		// Its own tables carry its mark.
		var comment string
		if err := root.QueryRowContext(ctx, "SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'orders'").Scan(&comment); err != nil || comment != TableMark {
			t.Errorf("orders' comment %q (%v), want %q", comment, err, TableMark)
		}
		// Someone else's orders, in a database of theirs.
		mustExec(t, root, "CREATE DATABASE IF NOT EXISTS theirs")
		mustExec(t, root, "CREATE TABLE IF NOT EXISTS theirs.orders (id INT PRIMARY KEY, note VARCHAR(10))")
		mustExec(t, root, "INSERT IGNORE INTO theirs.orders VALUES (1, 'keep')")
		theirs, err := sql.Open("mysql", strings.Replace(targets[0].DSN, "/htapchaos?", "/theirs?", 1))
		if err != nil {
			t.Fatal(err)
		}
		defer theirs.Close()
		_, err = Setup(ctx, theirs, MariaDB, Data{Users: 10, Orders: 10})
		if !errors.Is(err, ErrNotOurTable) || !strings.Contains(err.Error(), "orders exists in the database the DSN names") {
			t.Fatalf("setup over a table it did not create: %v", err)
		}
		var users, rows int
		root.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'theirs' AND TABLE_NAME = 'users'").Scan(&users)
		root.QueryRowContext(ctx, "SELECT COUNT(*) FROM theirs.orders").Scan(&rows)
		if users != 0 || rows != 1 {
			t.Errorf("after the refusal: %d users table(s), %d rows in their orders: want nothing touched", users, rows)
		}
	})

	t.Run("latency-proxy-raises-p50-by-the-delay", func(t *testing.T) {
		const delay = 50 * time.Millisecond
		proxyAddr := startLatencyProxy(t, c.Nodes[0].Addr(), delay)
		direct := targets[0]
		via, err := NewTarget(1, strings.Replace(direct.DSN, c.Nodes[0].Addr(), proxyAddr, 1), DefaultTimeouts)
		if err != nil {
			t.Fatal(err)
		}
		p50 := func(tg Target) float64 {
			res, err := Run(context.Background(), Config{Targets: []Target{tg}, Params: Params{Data: data},
				Workloads: []Spec{{Workload: OLTP(), Mix: map[string]int{"point-read": 1}, Closed: true, Phases: []Phase{{Duration: 3 * time.Second, Concurrency: 4}}}}})
			if err != nil {
				t.Fatal(err)
			}
			return opSummary(t, res.Summary, "point-read").Latency.P50
		}
		d, v := p50(direct), p50(via)
		added := v - d
		t.Logf("p50 direct %.2fms, through a %v proxy %.2fms: +%.2fms", d, delay, v, added)
		if want := float64(delay.Milliseconds()); added < want*0.9 || added > want*1.1 {
			t.Errorf("the proxy added %.2fms to p50, want %v within 10%%", added, delay)
		}
	})

	t.Run("server-errors-land-in-their-class", func(t *testing.T) {
		db := openDB(t, targets[0].DSN)
		ctx := context.Background()
		mustExec(t, db, "CREATE TABLE IF NOT EXISTS locks (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
		mustExec(t, db, "INSERT IGNORE INTO locks VALUES (1,0),(2,0)")

		// 1205: a row held by another transaction past innodb_lock_wait_timeout.
		a, b := conn(t, db), conn(t, db)
		mustExecConn(t, a, "BEGIN")
		mustExecConn(t, a, "SELECT * FROM locks WHERE id = 1 FOR UPDATE")
		mustExecConn(t, b, "SET SESSION innodb_lock_wait_timeout = 1")
		_, err := b.ExecContext(ctx, "UPDATE locks SET v = v + 1 WHERE id = 1")
		expectClass(t, err, results.ClassLockWait, 1205)
		mustExecConn(t, a, "ROLLBACK")

		// 1213: two transactions taking two rows in opposite orders.
		mustExecConn(t, a, "BEGIN")
		mustExecConn(t, b, "BEGIN")
		mustExecConn(t, a, "UPDATE locks SET v = v + 1 WHERE id = 1")
		mustExecConn(t, b, "UPDATE locks SET v = v + 1 WHERE id = 2")
		errA := make(chan error, 1)
		go func() { _, err := a.ExecContext(ctx, "UPDATE locks SET v = v + 1 WHERE id = 2"); errA <- err }()
		time.Sleep(300 * time.Millisecond)
		_, errB := b.ExecContext(ctx, "UPDATE locks SET v = v + 1 WHERE id = 1")
		deadlock := errB
		if deadlock == nil {
			deadlock = <-errA
		} else {
			<-errA
		}
		expectClass(t, deadlock, results.ClassConflict, 1213)
		a.ExecContext(ctx, "ROLLBACK")
		b.ExecContext(ctx, "ROLLBACK")

		// 1290: a read-only server and a user without the privilege to write anyway.
		mustExec(t, db, "CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY 'app'")
		mustExec(t, db, "GRANT ALL ON htapchaos.* TO 'app'@'%'")
		mustExec(t, db, "SET GLOBAL read_only = ON")
		defer db.Exec("SET GLOBAL read_only = OFF")
		cfg, _ := mysql.ParseDSN(targets[0].DSN)
		cfg.User, cfg.Passwd = "app", "app"
		app := openDB(t, cfg.FormatDSN())
		_, err = app.Exec("INSERT INTO locks VALUES (3, 0)")
		expectClass(t, err, results.ClassReadOnly, 1290)
		mustExec(t, db, "SET GLOBAL read_only = OFF")

		// 1114: a MEMORY table at its size limit.
		mustExecConn(t, a, "SET SESSION max_heap_table_size = 16384")
		mustExecConn(t, a, "CREATE TEMPORARY TABLE heap (x CHAR(255)) ENGINE=MEMORY")
		var full error
		for i := 0; i < 10000 && full == nil; i++ {
			_, full = a.ExecContext(ctx, "INSERT INTO heap VALUES (REPEAT('x', 255))")
		}
		expectClass(t, full, results.ClassResource, 1114)
	})

	t.Run("timeouts-refusals-and-other-errors-through-the-runner", func(t *testing.T) {
		sleepy := Spec{Workload: Analytics(), Mix: map[string]int{"sql": 1}, Closed: true, OpTimeout: 200 * time.Millisecond,
			Phases: []Phase{{Duration: time.Second, Concurrency: 2}}}
		res, err := Run(context.Background(), Config{Targets: targets, Workloads: []Spec{sleepy}, Params: Params{Query: "SELECT SLEEP(2)"}})
		if err != nil {
			t.Fatal(err)
		}
		o := opSummary(t, res.Summary, "sql")
		if o.Errors[results.ClassTimeout] < 4 || o.ErrorsTotal != o.Errors[results.ClassTimeout] || o.Count != 0 {
			t.Errorf("SLEEP(2) under a 200ms timeout: %+v", o)
		}

		res, err = Run(context.Background(), Config{Targets: targets, Workloads: []Spec{{Workload: Analytics(), Mix: map[string]int{"sql": 1},
			Closed: true, Phases: []Phase{{Duration: 300 * time.Millisecond, Concurrency: 1}}}}, Params: Params{Query: "SELECT * FROM no_such_table"}})
		if err != nil {
			t.Fatal(err)
		}
		o = opSummary(t, res.Summary, "sql")
		if o.Errors[results.ClassOther] == 0 || len(o.Other) != 1 || o.Other[0].Number != 1146 {
			t.Errorf("missing table: %+v", o)
		}

		// A query of the user's own with placeholders: each ? gets a random order id.
		db := openDB(t, targets[0].DSN)
		mustExec(t, db, "CREATE TABLE qargs (a BIGINT, b BIGINT)")
		res, err = Run(context.Background(), Config{Targets: targets, Workloads: []Spec{{Workload: Analytics(), Mix: map[string]int{"sql": 1},
			Closed: true, Phases: []Phase{{Duration: 300 * time.Millisecond, Concurrency: 1}}}},
			Params: Params{Data: Data{Orders: 50}, Query: "INSERT INTO qargs /* a ? in a comment */ VALUES (?, ?)"}})
		if err != nil {
			t.Fatal(err)
		}
		o = opSummary(t, res.Summary, "sql")
		var rows, lo, hi, distinct int64
		if err := db.QueryRow("SELECT COUNT(*), MIN(LEAST(a, b)), MAX(GREATEST(a, b)), COUNT(DISTINCT a) FROM qargs").Scan(&rows, &lo, &hi, &distinct); err != nil {
			t.Fatal(err)
		}
		if o.Count == 0 || o.ErrorsTotal != 0 || rows != o.Count || lo < 1 || hi > 50 || distinct < 10 {
			t.Errorf("bound placeholders: %+v; table has %d rows, ids %d..%d, %d distinct", o, rows, lo, hi, distinct)
		}

		closed := closedPort(t)
		dead, _ := NewTarget(1, fmt.Sprintf("root:x@tcp(%s)/htapchaos", closed), DefaultTimeouts)
		res, err = Run(context.Background(), Config{Targets: []Target{dead}, Params: Params{Data: data}, RunTag: 1,
			Workloads: []Spec{{Workload: OLTP(), Mix: map[string]int{"point-read": 1}, Phases: []Phase{{Duration: 300 * time.Millisecond, Rate: 50}}}}})
		if err != nil {
			t.Fatal(err)
		}
		o = opSummary(t, res.Summary, "point-read")
		if o.Errors[results.ClassConnection] != 15 || o.ErrorsTotal != 15 {
			t.Errorf("refused port: %+v, want 15 connection errors", o)
		}
		if err := CheckReachable(context.Background(), []Target{dead}); !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), closed) {
			t.Errorf("CheckReachable: %v", err)
		}
	})

	t.Run("retries-turn-a-dead-node-into-latency", func(t *testing.T) {
		setup(t, targets[0], data)
		dead, _ := NewTarget(2, fmt.Sprintf("root:x@tcp(%s)/htapchaos", closedPort(t)), DefaultTimeouts)
		const backoff = 50 * time.Millisecond
		res, err := Run(context.Background(), Config{Targets: []Target{targets[0], dead}, Params: Params{Data: data},
			// Two workers per node: node 1's keep a connection each, and node 2's
			// retries need connections to node 1 beside them (a pool capped at the
			// workers left node 2's queue waiting on it until the run's end).
			Workloads: []Spec{{Workload: OLTP(), Mix: map[string]int{"point-read": 1}, Retry: Retry{Retries: 2, Backoff: backoff}, Workers: 2,
				Phases: []Phase{{Duration: 2 * time.Second, Rate: 50}}}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range res.Summary.Ops {
			if o.Node == 2 && o.Latency.Max > 1000 {
				t.Errorf("n2: max %.0fms: requests retried on node 1 waited for a connection", o.Latency.Max)
			}
			if o.ErrorsTotal != 0 || o.Count != 50 {
				t.Errorf("n%d: %d ok, %d errors %v %v: want every request to succeed, retried on node 1 when sent to the dead node 2", o.Node, o.Count, o.ErrorsTotal, o.Errors, o.Other)
			}
			if o.Node == 2 && o.Latency.P50 < float64(backoff.Milliseconds()) {
				t.Errorf("n2 p50 %.1fms: the retry's backoff is missing from what the user saw", o.Latency.P50)
			}
			if o.Node == 1 && o.Latency.P50 > 20 {
				t.Errorf("n1 p50 %.1fms", o.Latency.P50)
			}
		}
	})

	defer t.Run("reconnects-after-the-node-restarts", func(t *testing.T) { reconnectAfterRestart(t, c, targets, data) })

	t.Run("analytics-memory-is-each-query's-own-when-asked", func(t *testing.T) { analyticsMemory(t, targets[0], data) })

	t.Run("ledger-holds-exactly-the-acknowledged-inserts", func(t *testing.T) {
		dir := t.TempDir()
		res, err := Run(context.Background(), Config{Targets: targets, Out: dir, Params: Params{Data: data, BatchRows: 50},
			Workloads: []Spec{
				{Workload: OLTP(), Mix: map[string]int{"insert": 1}, Phases: []Phase{{Duration: 2 * time.Second, Rate: 200}}},
				{Workload: Batch(), Mix: map[string]int{"bulk-insert": 1, "load-data": 1}, Phases: []Phase{{Duration: 2 * time.Second, Rate: 5}}},
			}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Acked != 400+10*50 || res.Unknown != 0 {
			t.Fatalf("acked %d unknown %d, want 900 and 0; %+v", res.Acked, res.Unknown, res.Summary.Ops)
		}
		if o := opSummary(t, res.Summary, "load-data"); o.Count == 0 || o.ErrorsTotal != 0 {
			t.Errorf("LOAD DATA LOCAL INFILE: %+v", o)
		}
		db := openDB(t, targets[0].DSN)
		var inDB int64
		for _, r := range res.Ledger.Acked() {
			var n int64
			if err := db.QueryRow("SELECT COUNT(*) FROM orders WHERE order_id BETWEEN ? AND ?", r.Lo, r.Hi).Scan(&n); err != nil {
				t.Fatal(err)
			}
			inDB += n
		}
		if inDB != res.Acked {
			t.Errorf("%d acknowledged ids, %d of them in the table", res.Acked, inDB)
		}
		back, err := results.ReadLedger(dir + "/ledger.json")
		if err != nil {
			t.Fatal(err)
		}
		if acked, _ := back.Count(); acked != res.Acked {
			t.Errorf("ledger.json holds %d, want %d", acked, res.Acked)
		}
		for _, f := range []string{"oltp.hlog", "batch.hlog", "summary.json", "intervals.jsonl"} {
			if st, err := os.Stat(dir + "/" + f); err != nil || st.Size() == 0 {
				t.Errorf("%s: %v", f, err)
			}
		}
	})
}

// The peak memory recorded for an analytics query is the server's account of that
// query: within 10% of what a direct read of MAX_MEMORY_USED on a fresh connection
// that ran the same query gives, well above what a fresh connection holds without
// it, and not a high-water mark a bigger query left: the small query, run on the
// same worker between big ones, keeps its own figure.
func analyticsMemory(t *testing.T, tg Target, data Data) {
	// A GROUP BY on a column without an index: an in-memory temporary table of
	// one row per amount, then a sort.
	const big = "SELECT amount, COUNT(*), SUM(order_id) FROM orders GROUP BY amount"
	const small = "SELECT COUNT(*) FROM users"
	db := openDB(t, tg.DSN)
	db.SetMaxIdleConns(0) // every connection new
	direct := func(query string) int64 {
		t.Helper()
		c := conn(t, db)
		if query != "" {
			if _, err := drain(context.Background(), c, query); err != nil {
				t.Fatal(err)
			}
		}
		var v int64
		if err := c.QueryRowContext(context.Background(), memoryQuery).Scan(&v); err != nil {
			t.Fatal(err)
		}
		c.Close()
		return v
	}
	floor, smallWant := direct(""), direct(small)
	var ws []int64
	for range 3 {
		ws = append(ws, direct(big))
	}
	slices.Sort(ws)
	want := ws[1]
	t.Logf("MAX_MEMORY_USED on a fresh connection: %d bytes idle, %d after %q, %d (%d..%d) after %q", floor, smallWant, small, want, ws[0], ws[2], big)
	if want < 4*floor {
		t.Fatalf("the big query's %d bytes are not well above a fresh connection's %d: the test cannot tell them apart", want, floor)
	}

	// Closed loop, one worker: the big query (sql) and the small one (fraud-scan
	// stands in: it is replaced by a count) alternate on one worker's connections.
	wl := Analytics()
	for i := range wl.Ops {
		if wl.Ops[i].Name == "fraud-scan" {
			wl.Ops[i].Run = func(ctx context.Context, q Querier, _ *Worker) error { _, err := drain(ctx, q, small); return err }
		}
	}
	res, err := Run(context.Background(), Config{Targets: []Target{tg}, Params: Params{Data: data, Query: big},
		Workloads: []Spec{{Workload: wl, Mix: map[string]int{"sql": 1, "fraud-scan": 1}, Closed: true, Phases: []Phase{{Duration: 3 * time.Second, Concurrency: 1}}, MeasureMemory: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.MemoryUnavailable != "" {
		t.Fatalf("memory unavailable on MariaDB: %s", res.Summary.MemoryUnavailable)
	}
	got, gotSmall := opSummary(t, res.Summary, "sql"), opSummary(t, res.Summary, "fraud-scan")
	if got.Memory == nil || gotSmall.Memory == nil || got.Count < 3 || gotSmall.Count < 3 {
		t.Fatalf("big: %d queries, memory %+v; small: %d, memory %+v", got.Count, got.Memory, gotSmall.Count, gotSmall.Memory)
	}
	t.Logf("recorded: big p50 %.0f max %.0f bytes (%d queries, latency p50 %.1f ms); small p50 %.0f max %.0f (%d)",
		got.Memory.P50, got.Memory.Max, got.Count, got.Latency.P50, gotSmall.Memory.P50, gotSmall.Memory.Max, gotSmall.Count)
	if d := math.Abs(got.Memory.P50-float64(want)) / float64(want); d > 0.10 {
		t.Errorf("big query: recorded p50 %.0f bytes, a direct read %d: %.1f%% apart, want within 10%%", got.Memory.P50, want, d*100)
	}
	if d := math.Abs(gotSmall.Memory.Max-float64(smallWant)) / float64(smallWant); d > 0.10 {
		t.Errorf("small query between big ones: recorded max %.0f bytes, a direct read %d: %.1f%% apart (a high-water mark of the big query?)", gotSmall.Memory.Max, smallWant, d*100)
	}

	// Without the opt-in (Spec.MeasureMemory) the same ops run as any other and
	// record no memory.
	res, err = Run(context.Background(), Config{Targets: []Target{tg}, Params: Params{Data: data, Query: big},
		Workloads: []Spec{{Workload: wl, Mix: map[string]int{"sql": 1, "fraud-scan": 1}, Closed: true, Phases: []Phase{{Duration: time.Second, Concurrency: 1}}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"sql", "fraud-scan"} {
		if o := opSummary(t, res.Summary, op); o.Count == 0 || o.Memory != nil {
			t.Errorf("%s without MeasureMemory: %d queries, memory %+v; want queries and no memory", op, o.Count, o.Memory)
		}
	}
}

// Run last in TestSingleNode: it kills the node.
func reconnectAfterRestart(t *testing.T, c *htc.Cluster, targets []Target, data Data) {
	n := c.Nodes[0]
	var faultErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		time.Sleep(2 * time.Second)
		if faultErr = n.Kill(context.Background()); faultErr != nil {
			return
		}
		time.Sleep(time.Second)
		faultErr = n.Start(context.Background())
	})
	res, err := Run(context.Background(), Config{Targets: targets, Params: Params{Data: data},
		Workloads: []Spec{{Workload: OLTP(), Mix: map[string]int{"point-read": 1}, Phases: []Phase{{Duration: 10 * time.Second, Rate: 100}}, OpTimeout: 2 * time.Second}}})
	wg.Wait()
	if err != nil || faultErr != nil {
		t.Fatal(err, faultErr)
	}
	o := opSummary(t, res.Summary, "point-read")
	t.Logf("%d ok, errors %v", o.Count, o.Errors)
	if o.Errors[results.ClassConnection] == 0 {
		t.Errorf("no connection errors while the node was dead: %+v", o.Errors)
	}
	if len(res.Summary.Gaps) != 1 || len(res.Summary.Gaps[0].Gaps) != 1 {
		t.Fatalf("gaps %+v, want one", res.Summary.Gaps)
	}
	g := res.Summary.Gaps[0].Gaps[0]
	if g.Ongoing || g.Failed == 0 || g.Duration < 1 || g.Duration > 8 {
		t.Errorf("gap %+v: want a closed gap of a few seconds with failures inside (the client reconnected)", g)
	}
}

func startLatencyProxy(t *testing.T, upstream string, delay time.Duration) string {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "node", "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	toxic := fmt.Sprintf(`{"name":"delay","type":"latency","stream":"downstream","attributes":{"latency":%d}}`, delay.Milliseconds())
	if _, err := p.Toxics.AddToxicJson(strings.NewReader(toxic)); err != nil {
		t.Fatal(err)
	}
	return p.Listen
}

func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func conn(t *testing.T, db *sql.DB) *sql.Conn {
	t.Helper()
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func mustExec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func mustExecConn(t *testing.T, c *sql.Conn, q string) {
	t.Helper()
	if _, err := c.ExecContext(context.Background(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func expectClass(t *testing.T, err error, class results.Class, number uint16) {
	t.Helper()
	got := results.Classify(err)
	if got.Class != class || got.Number != number {
		t.Errorf("%v: classed %+v, want %s %d", err, got, class, number)
	}
}
