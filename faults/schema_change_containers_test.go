package faults_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	. "github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/loadgen"
	htc "github.com/htapchaos/htapchaos/testcontainers"
	"github.com/htapchaos/htapchaos/testcontainers/faulttarget"
)

// scStartWriter inserts one order every ~10 ms on a connection of its own until stop
// is called (at most 6000 inserts, 90 s). Its ids start at base.
func scStartWriter(t *testing.T, dsn string, base int64) (stop func() []opSample) {
	t.Helper()
	return sampleOps(t, dsn, 6000, 90*time.Second, 10*time.Millisecond, func(ctx context.Context, conn *sql.Conn, i int64) error {
		_, err := conn.ExecContext(ctx,
			"INSERT INTO orders (order_id, user_id, amount, status, created_at) VALUES (?, 1, 1.00, 'pending', NOW(6))", base+i)
		return err
	})
}

// scWorst is the longest insert that started in [from, to], the count of those
// inserts and of failed ones.
func scWorst(samples []opSample, from, to time.Time) (worst time.Duration, n, failed int) {
	for _, s := range samples {
		if s.start.Before(from) || s.start.After(to) {
			continue
		}
		n++
		if s.err != nil {
			failed++
		}
		worst = max(worst, s.took)
	}
	return worst, n, failed
}

func scFromUnix(s float64) time.Time {
	return time.Unix(0, int64(s*1e9))
}

// scLeft asks the server whether what schema-change adds is on orders.
func scLeft(t *testing.T, db *sql.DB) (column, index bool) {
	t.Helper()
	column = queryCount(t, db, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'orders' AND COLUMN_NAME = ?", SchemaColumn) > 0
	index = queryCount(t, db, "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'orders' AND INDEX_NAME = ?", SchemaIndex) > 0
	return column, index
}

func scAltersRunning(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	return queryCount(t, db, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'ALTER TABLE%'")
}

// On one node with 400K orders and a writer inserting every 10 ms: the forced
// rebuild stalls the writer for about the ALTER's duration, the instant ADD COLUMN
// does not, and every variant leaves nothing behind.
func TestSchemaChangeOnASingleNode(t *testing.T) {
	c, n, db := startSingle(t, 1<<30)
	ctx := context.Background()
	rep, err := loadgen.Setup(ctx, db, loadgen.MariaDB, loadgen.Data{Users: 10_000, Orders: 400_000})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %d orders in %.1fs (%.0f rows/s)", rep.OrdersAdded, rep.Elapsed.Seconds(), rep.RowsPerSecond())

	t.Run("rsu-refused-off-galera", func(t *testing.T) {
		k, _ := NewRegistry().Get("schema-change")
		p, err := k.Parse(map[string]string{"method": "RSU"})
		if err != nil {
			t.Fatal(err)
		}
		r := NewRunner(k.Name, k.New(p), &Env{Targets: c.Nodes(), Cluster: c, Events: NewEvents(nil), Params: p})
		err = r.Run(ctx, time.Second, time.Minute)
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "not a Galera node") {
			t.Errorf("RSU on a single node: %v, want a usage error saying it is not a Galera node", err)
		}
		if r.State() != StateCleaned || !r.Injected.IsZero() {
			t.Errorf("state %s, injected %v: want cleaned, never injected", r.State(), r.Injected)
		}
	})

	// run runs one variant under the writer and returns the ALTER's duration and the
	// writer's worst latency while the fault ran.
	writerBase := int64(1) << 50
	run := func(t *testing.T, variant string) (alter, worst time.Duration) {
		t.Helper()
		writerBase += 1 << 20
		stop := scStartWriter(t, n.DSN(), writerBase)
		time.Sleep(300 * time.Millisecond) // the writer's baseline
		t0 := time.Now()
		r, done := startWith(t, ctx, c, "schema-change", "1", 500*time.Millisecond, map[string]string{"variant": variant})
		err := <-done
		t1 := time.Now()
		time.Sleep(100 * time.Millisecond)
		samples := stop()
		if err != nil {
			t.Fatal(err)
		}
		ms := r.Measurements()
		for _, m := range ms {
			t.Log(m)
		}
		d, ok := FindMeasurement(ms, MeasureAlterDuration)
		if !ok {
			t.Fatal("no alter duration measured")
		}
		if strings.Contains(d.Note, "error") || !strings.Contains(d.Note, "variant="+variant) {
			t.Errorf("alter duration note %q: want the variant and no error", d.Note)
		}
		s, _ := FindMeasurement(ms, MeasureAlterStart)
		e, _ := FindMeasurement(ms, MeasureAlterEnd)
		start, end := scFromUnix(s.Value), scFromUnix(e.Value)
		if start.Before(t0) || end.After(t1) || end.Before(start) {
			t.Errorf("ALTER %v .. %v lies outside the run %v .. %v", start, end, t0, t1)
		}
		if diff := end.Sub(start).Seconds() - d.Value; diff < -1e-3 || diff > 1e-3 {
			t.Errorf("alter duration %.3fs, but it ran from %v to %v", d.Value, start, end)
		}
		if rows, _ := FindMeasurement(ms, MeasureTableRows); rows.Value < 300_000 {
			t.Errorf("table rows %v, want about 400K", rows.Value)
		}
		worst, writes, failed := scWorst(samples, t0, t1)
		t.Logf("%s: ALTER %.3fs; writer: %d inserts during the fault, %d failed, worst %v", variant, d.Value, writes, failed, worst)
		if failed > 0 {
			t.Errorf("%d of the writer's inserts failed", failed)
		}
		if _, around, _ := scWorst(samples, start, end); around == 0 && d.Value > 0.1 {
			t.Errorf("no insert started while the ALTER ran: the writer did not run")
		}
		if _, all, _ := scWorst(samples, t0.Add(-time.Second), t1.Add(time.Second)); all < 20 {
			t.Errorf("only %d inserts around the fault: the writer did not run", all)
		}
		column, index := scLeft(t, db)
		if column || index {
			t.Errorf("after recovery: column left %t, index left %t", column, index)
		}
		return time.Duration(d.Value * float64(time.Second)), worst
	}

	var rebuild time.Duration
	t.Run("add-not-null-default-stalls-writes", func(t *testing.T) {
		alter, worst := run(t, "add-not-null-default")
		rebuild = alter
		if worst < 300*time.Millisecond || worst < alter/2 {
			t.Errorf("the rebuild ran %v but the worst write took %v: want a stall of at least half of it and 300ms", alter, worst)
		}
	})
	t.Run("add-nullable-does-not", func(t *testing.T) {
		alter, worst := run(t, "add-nullable")
		if worst >= 200*time.Millisecond {
			t.Errorf("instant ADD COLUMN: the worst write took %v, want under 200ms", worst)
		}
		if rebuild > 0 && alter > rebuild/5 {
			t.Errorf("instant ADD COLUMN ran %v, the rebuild %v: not instant", alter, rebuild)
		}
	})
	t.Run("add-index", func(t *testing.T) {
		alter, worst := run(t, "add-index")
		// Built online (the server's default, in place): writes go on, if slower.
		if worst >= alter/2 && worst >= 300*time.Millisecond {
			t.Errorf("ADD INDEX ran %v and stalled a write %v: not online", alter, worst)
		}
	})

	t.Run("leftover-refused", func(t *testing.T) {
		if _, err := db.Exec("ALTER TABLE orders ADD COLUMN " + SchemaColumn + " INT NULL"); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if _, err := db.Exec("ALTER TABLE orders DROP COLUMN " + SchemaColumn); err != nil {
				t.Error(err)
			}
		}()
		k, _ := NewRegistry().Get("schema-change")
		p, _ := k.Parse(nil)
		r := NewRunner(k.Name, k.New(p), &Env{Targets: c.Nodes(), Cluster: c, Events: NewEvents(nil), Params: p})
		err := r.Run(ctx, time.Second, time.Minute)
		if err == nil || !strings.Contains(err.Error(), "left by an earlier run") {
			t.Errorf("a leftover column: %v, want a refusal", err)
		}
		if column, _ := scLeft(t, db); !column {
			t.Error("the refusal dropped a column it did not add")
		}
	})

	t.Run("cancel-mid-rebuild-leaves-nothing", func(t *testing.T) {
		if rebuild < time.Second {
			t.Skipf("the rebuild took %v: too short to cancel in the middle", rebuild)
		}
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		r, done := startWith(t, cctx, c, "schema-change", "1", time.Hour, map[string]string{"variant": "add-not-null-default"})
		time.Sleep(300 * time.Millisecond)
		if scAltersRunning(t, db) == 0 {
			t.Fatal("no ALTER running 300ms into the rebuild")
		}
		cancelled := time.Now()
		cancelAndWait(t, cancel, done)
		took := time.Since(cancelled)
		if r.State() != StateCleaned {
			t.Errorf("state %s", r.State())
		}
		d, _ := FindMeasurement(r.Measurements(), MeasureAlterDuration)
		t.Logf("cancelled: recovered %v after the cancel; %s", took, d)
		if !strings.Contains(d.Note, "killed") {
			t.Errorf("alter duration note %q: want killed", d.Note)
		}
		if took > rebuild/2 {
			t.Errorf("recovery took %v after the cancel: the rebuild (%v) was waited for, not killed", took, rebuild)
		}
		if column, index := scLeft(t, db); column || index {
			t.Errorf("after a cancelled rebuild: column left %t, index left %t", column, index)
		}
		if n := scAltersRunning(t, db); n > 0 {
			t.Errorf("%d ALTERs still running after a cancelled rebuild", n)
		}
	})
}

// On Galera, TOI runs the ALTER on every node and RSU on the chosen node only; each
// drops what it added the same way, and the cluster is whole afterwards.
func TestSchemaChangeOnGalera(t *testing.T) {
	hc := htc.StartForTest(t, htc.Config{Topology: htc.Galera, Nodes: 3, Memory: 512 << 20, Labels: testLabels})
	c := faulttarget.Cluster(hc)
	ctx := context.Background()
	dbs := make([]*sql.DB, len(hc.Nodes))
	for i, n := range hc.Nodes {
		db, err := sql.Open("mysql", n.DSN())
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dbs[i] = db
	}
	if _, err := loadgen.Setup(ctx, dbs[0], loadgen.MariaDB, loadgen.Data{Users: 1000, Orders: 20_000}); err != nil {
		t.Fatal(err)
	}
	columns := func() (on [3]bool) {
		for i, db := range dbs {
			on[i], _ = scLeft(t, db)
		}
		return on
	}
	for _, tc := range []struct {
		method string
		want   [3]bool // where the column is while the fault holds
	}{
		{"TOI", [3]bool{true, true, true}},
		{"RSU", [3]bool{false, true, false}},
	} {
		t.Run(tc.method, func(t *testing.T) {
			_, done := startWith(t, ctx, c, "schema-change", "2", 2*time.Second, map[string]string{"method": tc.method})
			eventually(t, "the column on the nodes the method reaches", 2*time.Second, func() bool { return columns() == tc.want })
			time.Sleep(500 * time.Millisecond)
			if got := columns(); got != tc.want {
				t.Errorf("%s: column on n1-n3 %v, want %v", tc.method, got, tc.want)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			eventually(t, "the column gone from every node", 5*time.Second, func() bool { return columns() == [3]bool{} })
			for _, n := range hc.Nodes {
				if s, p := size(t, n); s != 3 || !p {
					t.Errorf("after %s: %s sees size %d primary %t", tc.method, n.Name, s, p)
				}
			}
		})
	}
}
