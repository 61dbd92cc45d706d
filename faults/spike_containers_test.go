package faults_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/loadgen"
)

func spikeCountOrders(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	return queryCount(t, db, "SELECT COUNT(*) FROM orders")
}

// spikeRunning counts the statements of a spike of the kind running on the server.
func spikeRunning(t *testing.T, db *sql.DB, kind string) int64 {
	t.Helper()
	return queryCount(t, db, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE ?", "/* htapchaos "+kind+" %")
}

func spikeValue(t *testing.T, ms []Measurement, name string) float64 {
	t.Helper()
	m, ok := FindMeasurement(ms, name)
	if !ok {
		t.Fatalf("no %q measured (have %v)", name, ms)
	}
	return m.Value
}

// spikePointReads reads orders by primary key one after another on a connection of its
// own until stop is called (at most 30000 reads, 60 s), and returns each read's start
// and latency.
func spikePointReads(t *testing.T, dsn string, orders int64) (stop func() []opSample) {
	t.Helper()
	return sampleOps(t, dsn, 30000, 60*time.Second, 5*time.Millisecond, func(ctx context.Context, conn *sql.Conn, i int64) error {
		var amount float64
		return conn.QueryRowContext(ctx, "SELECT amount FROM orders WHERE order_id = ?", 1+(i*7919)%orders).Scan(&amount)
	})
}

// spikeP99 is the 99th percentile latency of the samples that started in [from, to].
func spikeP99(samples []opSample, from, to time.Time) (time.Duration, int) {
	var lat []time.Duration
	for _, s := range samples {
		if !s.start.Before(from) && !s.start.After(to) && s.err == nil {
			lat = append(lat, s.took)
		}
	}
	if len(lat) == 0 {
		return 0, 0
	}
	slices.Sort(lat)
	return lat[int(math.Ceil(0.99*float64(len(lat))))-1], len(lat)
}

func TestSpikeOnASingleNode(t *testing.T) {
	c, n, db := startSingle(t, 1<<30)
	ctx := context.Background()

	t.Run("refused-without-the-load-schema", func(t *testing.T) {
		k, _ := NewRegistry().Get("batch-spike")
		p, _ := k.Parse(nil)
		r := NewRunner(k.Name, k.New(p), &Env{Targets: c.Nodes(), Cluster: c, Events: NewEvents(nil), Params: p})
		err := r.Run(ctx, time.Second, time.Minute)
		if err == nil || !strings.Contains(err.Error(), "needs the load schema") {
			t.Errorf("a node without the schema: %v, want a refusal", err)
		}
		if !r.Injected.IsZero() {
			t.Error("injected without the schema")
		}
	})

	const seeded = 100_000
	if _, err := loadgen.Setup(ctx, db, loadgen.MariaDB, loadgen.Data{Users: 5000, Orders: seeded}); err != nil {
		t.Fatal(err)
	}

	// rate 2 x 5 = 10 INSERTs of 100 rows a second, for 3 s.
	t.Run("batch-spike-inserts-at-its-rate", func(t *testing.T) {
		const rate, rows = 10.0, 100
		before := spikeCountOrders(t, db)
		r, done := startWith(t, ctx, c, "batch-spike", "1", 3*time.Second, map[string]string{"rate": "2", "times": "5", "rows": "100"})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		grew := spikeCountOrders(t, db) - before
		ms := r.Measurements()
		for _, m := range ms {
			t.Log(m)
		}
		// The spike ran from Inject to Recover: the runner's clock bounds it.
		ran := r.Recovered.Sub(r.Injected).Seconds()
		want := rate * rows * ran
		t.Logf("orders grew %d rows in %.2fs, %.0f expected at %g statements/s", grew, ran, want, rate)
		if float64(grew) < 0.8*want || float64(grew) > 1.1*want {
			t.Errorf("orders grew %d rows in %.2fs: want about %.0f (%g x %d rows a second)", grew, ran, want, rate, rows)
		}
		// Every acknowledged row is in the table; a statement still running when
		// the spike stopped has an unknown outcome and may have committed.
		var unknown int64
		for _, m := range ms {
			if m.Name == MeasureSpikeRows {
				if _, err := fmt.Sscanf(m.Note, "acknowledged inserts; %d with an unknown outcome", &unknown); err != nil {
					t.Fatalf("spike rows note %q: %v", m.Note, err)
				}
			}
		}
		if acked := int64(spikeValue(t, ms, MeasureSpikeRows)); grew < acked || grew > acked+unknown {
			t.Errorf("spike rows %d acknowledged and %d of unknown outcome, the table grew %d", acked, unknown, grew)
		}
		if got := spikeValue(t, ms, MeasureSpikeRate); math.Abs(got-rate) > 0.15*rate {
			t.Errorf("spike rate %.2f ops/s, want %g", got, rate)
		}
		if e := spikeValue(t, ms, MeasureSpikeErrors); e > 0 {
			t.Errorf("%v spike errors", e)
		}
		if p99 := spikeValue(t, ms, MeasureSpikeP99+" bulk-insert"); p99 <= 0 {
			t.Errorf("p99 %v", p99)
		}
	})

	// rate 1 x 5 = 5 fraud scans a second over 100K orders (about 80 ms each here),
	// beside a point-read client. The spike's statements carry its tag in the server's
	// process list: that is how Recover finds what the client left running.
	t.Run("analytics-spike", func(t *testing.T) {
		const rate = 5.0
		stop := spikePointReads(t, n.DSN(), seeded)
		time.Sleep(2 * time.Second) // the reader's baseline
		r, done := startWith(t, ctx, c, "analytics-spike", "1", 3*time.Second, map[string]string{"rate": "1", "times": "5", "mix": "fraud-scan"})
		eventually(t, "a tagged fraud scan in the process list", 2*time.Second, func() bool { return spikeRunning(t, db, "analytics-spike") > 0 })
		err := <-done
		samples := stop()
		if err != nil {
			t.Fatal(err)
		}
		ms := r.Measurements()
		for _, m := range ms {
			t.Log(m)
		}
		ops := spikeValue(t, ms, MeasureSpikeOps)
		ran := r.Recovered.Sub(r.Injected).Seconds()
		if ops < 0.8*rate*(ran-0.5) || ops > 1.1*rate*ran {
			t.Errorf("%v fraud scans in %.2fs: want about %g a second", ops, ran, rate)
		}
		if got := spikeValue(t, ms, MeasureSpikeRate); math.Abs(got-rate) > 0.2*rate {
			t.Errorf("spike rate %.2f ops/s, want %g", got, rate)
		}
		if p99 := spikeValue(t, ms, MeasureSpikeP99+" fraud-scan"); p99 <= 0 {
			t.Errorf("fraud-scan p99 %v", p99)
		}
		base, nb := spikeP99(samples, r.Injected.Add(-2*time.Second), r.Injected)
		during, nd := spikeP99(samples, r.Effective, r.Recovered)
		// Logged, not asserted: on this 2-core machine, shared with other jobs, the
		// inflation ranged from 2x to 60x between runs.
		t.Logf("point reads p99: %v before the spike (%d reads), %v during it (%d reads)", base, nb, during, nd)
		if n := spikeRunning(t, db, "analytics-spike"); n > 0 {
			t.Errorf("%d fraud scans still run after recovery", n)
		}
	})

	// Scans in flight when the run is cancelled end on the server too.
	t.Run("cancel-analytics-spike-leaves-nothing-running", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		r, done := startWith(t, cctx, c, "analytics-spike", "1", time.Hour, map[string]string{"rate": "4", "times": "5", "mix": "fraud-scan"})
		eventually(t, "a tagged fraud scan in the process list", 2*time.Second, func() bool { return spikeRunning(t, db, "analytics-spike") > 0 })
		cancelAndWait(t, cancel, done)
		if n := spikeRunning(t, db, "analytics-spike"); n > 0 {
			t.Errorf("%d fraud scans still run after the cancelled spike returned", n)
		}
		if r.State() != StateCleaned {
			t.Errorf("state %s", r.State())
		}
	})

	t.Run("cancel-batch-spike-leaves-nothing-running", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		r, done := startWith(t, cctx, c, "batch-spike", "1", time.Hour, map[string]string{"rate": "5", "times": "4", "rows": "500"})
		time.Sleep(500 * time.Millisecond)
		cancelAndWait(t, cancel, done)
		if r.State() != StateCleaned {
			t.Errorf("state %s", r.State())
		}
		after := spikeCountOrders(t, db)
		time.Sleep(time.Second)
		if later := spikeCountOrders(t, db); later != after {
			t.Errorf("orders grew by %d rows in the second after the cancelled spike returned", later-after)
		}
		if running := spikeRunning(t, db, "batch-spike"); running > 0 {
			t.Errorf("%d spike statements still run", running)
		}
		if ops := spikeValue(t, r.Measurements(), MeasureSpikeOps); ops == 0 {
			t.Error("the cancelled spike did nothing")
		}
	})
}
