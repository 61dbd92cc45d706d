package experiments

import (
	"context"
	"database/sql"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/results"
)

// probe writes on one node every 100 ms, one write at a time, on a client of
// the test's own (not the load generator), and keeps the completion time of
// every acknowledged write: the truth the tool's write gaps are checked
// against.
type probe struct {
	db *sql.DB
	mu sync.Mutex
	ok []time.Time
}

const probeTable = "htapchaos_probe"

func newProbe(t *testing.T, dsn string) *probe {
	t.Helper()
	// Timeouts longer than any stall: a write held by the cluster completes late
	// instead of failing, as the load generator's do within their own timeout.
	if !strings.Contains(dsn, "?") {
		dsn += "?"
	} else {
		dsn += "&"
	}
	db, err := sql.Open("mysql", dsn+"timeout=5s&readTimeout=30s&writeTimeout=30s")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+probeTable+" (id BIGINT AUTO_INCREMENT PRIMARY KEY, t BIGINT NOT NULL) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+probeTable); err != nil {
			t.Errorf("drop %s: %v", probeTable, err)
		}
		db.Close()
	})
	return &probe{db: db}
}

// run writes every 100 ms until ctx ends (at most 10 minutes).
func (p *probe) run(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := p.db.ExecContext(ctx, "INSERT INTO "+probeTable+" (t) VALUES (?)", time.Now().UnixMicro()); err == nil {
			p.mu.Lock()
			p.ok = append(p.ok, time.Now())
			p.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// longestStall is the longest time between two consecutive acknowledged
// writes whose window overlaps w.
func (p *probe) longestStall(w Window) (time.Duration, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var longest time.Duration
	var from time.Time
	for i := 1; i < len(p.ok); i++ {
		a, b := p.ok[i-1], p.ok[i]
		if a.Before(w.End) && b.After(w.Start) && b.Sub(a) > longest {
			longest, from = b.Sub(a), a
		}
	}
	return longest, from
}

// A frozen Galera member holds every commit of the cluster until it is evicted,
// while reads go on. The tool's write gap on a surviving node must match what a
// probe client of the test's own saw on that node (within 0.5 s), the read gap
// must stay short, and the failover verdict must judge the write stall.
func TestWriteGapMatchesAProbe(t *testing.T) { probeWriteGap(t, "pause") }

// probeWriteGap runs a fault of kind on node 3 of the shared Galera cluster under
// OLTP on every node while a probe writes on node 1, and checks the tool's
// write and read gaps against the probe's stall.
func probeWriteGap(t *testing.T, kind string) {
	c := sharedGalera(t)
	spec, err := ParseSpec(kind+".yaml", []byte(`name: write-gap-probe
modes: [failover]
data: {users: 500, orders: 5000}
phases:
  - {name: baseline, duration: 6s}
  - {name: fault, duration: 10s}
  - {name: recovery, duration: 12s}
workloads:
  - {kind: oltp, rate: 300, route: all, timeout: 2s}
faults:
  - {kind: `+kind+`, phase: fault, node: "3"}
`), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := newProbe(t, c.Nodes[0].DSN())
	pctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { p.run(pctx) })
	res, err := Run(context.Background(), spec, Options{Cluster: c, Out: t.TempDir(), Seed: 3, Log: t.Logf})
	stop()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	f := res.Recorded.Faults[0]
	if !f.TookEffect() {
		t.Fatalf("the %s never took effect: %+v", kind, f)
	}
	span := res.Recorded.failoverSpan(f)
	truth, from := p.longestStall(span)
	t.Logf("probe on n1: longest write stall %v from +%.1f s (%s effective +%.1f s, recovered +%.1f s)",
		truth.Round(time.Millisecond), from.Sub(res.Recorded.Start).Seconds(), kind,
		f.Effective.Sub(res.Recorded.Start).Seconds(), f.Recovered.Sub(res.Recorded.Start).Seconds())
	if truth < 2*time.Second {
		t.Fatalf("the probe saw a write stall of only %v: the %s did not hold the cluster's commits, nothing to compare", truth, kind)
	}

	gapOf := func(node int, a results.Access) float64 {
		for _, sg := range res.Recorded.Summary.Gaps {
			if sg.Workload == "oltp" && sg.Node == node && sg.Access == a {
				return longestOverlap(sg.Gaps, span).Duration
			}
		}
		t.Fatalf("no %s stream for node %d", a, node)
		return 0
	}
	w1, r1, w2 := gapOf(1, results.Write), gapOf(1, results.Read), gapOf(2, results.Write)
	cw, _ := res.Recorded.Summary.ClusterGaps(results.Write)
	cluster := longestOverlap(cw.Gaps, span).Duration
	t.Logf("tool: n1 write gap %.2f s, n1 read gap %.2f s, n2 write gap %.2f s, cluster-wide write gap %.2f s", w1, r1, w2, cluster)
	if d := math.Abs(w1 - truth.Seconds()); d > 0.5 {
		t.Errorf("n1 write gap %.2f s, the probe's stall %.2f s: off by %.2f s (want within 0.5 s)", w1, truth.Seconds(), d)
	}
	if r1 >= truth.Seconds()/2 {
		t.Errorf("n1 read gap %.2f s: reads should go on while the commits are held (%.2f s)", r1, truth.Seconds())
	}
	// No node had a write succeed while the commits were held: the cluster-wide
	// gap is that stall too.
	if d := math.Abs(cluster - truth.Seconds()); d > 0.5 {
		t.Errorf("cluster-wide write gap %.2f s, the probe's stall %.2f s (want within 0.5 s)", cluster, truth.Seconds())
	}

	var wf *Finding
	for _, fd := range findings(res, ModeFailover) {
		t.Logf("%s: %s %.3g %s %s", fd.Name, fd.Verdict, fd.Value, fd.Reason, fd.Notes)
		if fd.Name == nameWriteGap {
			wf = &fd
		}
	}
	if wf == nil || math.Abs(wf.Value-max(w1, w2)) > 1e-9 {
		t.Fatalf("failover write gap finding %+v, want the longer of n1's and n2's write gaps (%.2f, %.2f)", wf, w1, w2)
	}
	if want := map[bool]Verdict{true: Fail, false: Pass}[wf.Value > wf.Budget]; wf.Verdict != want {
		t.Errorf("write gap %.2f s against %.2f s judged %s", wf.Value, wf.Budget, wf.Verdict)
	}
}
