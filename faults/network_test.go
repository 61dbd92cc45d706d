package faults_test

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/results"
	htc "github.com/htapchaos/htapchaos/testcontainers"
	"github.com/htapchaos/htapchaos/testcontainers/faulttarget"
)

// pointReads runs closed-loop point reads through dsn for d and returns their p50.
func pointReads(t *testing.T, ctx context.Context, dsn string, data loadgen.Data, d time.Duration) float64 {
	t.Helper()
	tg, err := loadgen.NewTarget(1, dsn, loadgen.DefaultTimeouts)
	if err != nil {
		t.Fatal(err)
	}
	res, err := loadgen.Run(ctx, loadgen.Config{Targets: []loadgen.Target{tg}, Params: loadgen.Params{Data: data},
		Workloads: []loadgen.Spec{{Workload: loadgen.OLTP(), Mix: map[string]int{"point-read": 1}, Closed: true,
			Phases: []loadgen.Phase{{Duration: d, Concurrency: 4}}, MaxOps: 100_000}}})
	if err != nil {
		t.Fatal(err)
	}
	o := res.Summary.Ops[0]
	if o.Count == 0 || o.ErrorsTotal != 0 {
		t.Fatalf("point reads: %d ok, %d errors", o.Count, o.ErrorsTotal)
	}
	return o.Latency.P50
}

// network-latency raises the latency of load routed through the node's proxy by the
// delay (within 10%), and by nothing once recovered.
func TestNetworkLatency(t *testing.T) {
	hc := htc.StartForTest(t, htc.Config{Topology: htc.Single, Memory: 512 << 20, Labels: testLabels})
	n := hc.Nodes[0]
	db, err := n.DB()
	if err != nil {
		t.Fatal(err)
	}
	data := loadgen.Data{Users: 1000, Orders: 10_000}
	ctx := context.Background()
	if _, err := loadgen.Setup(ctx, db, loadgen.MariaDB, data); err != nil {
		t.Fatal(err)
	}
	c := faulttarget.Cluster(hc)
	px := NewProxies()
	defer px.Close()
	if _, err := px.Start(c.Nodes()[0]); err != nil {
		t.Fatal(err)
	}
	dsn, err := px.DSN(1, n.DSN())
	if err != nil {
		t.Fatal(err)
	}
	before := pointReads(t, ctx, dsn, data, 2*time.Second)

	const delay = 40 * time.Millisecond
	k, _ := NewRegistry().Get("network-latency")
	params, err := k.Parse(map[string]string{"delay": delay.String()})
	if err != nil {
		t.Fatal(err)
	}
	r := NewRunner(k.Name, k.New(params), &Env{Targets: c.Nodes(), Cluster: c, Events: NewEvents(nil), Params: params, Proxies: px})
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, 4*time.Second, time.Minute) }()
	eventually(t, "the delay takes effect", 30*time.Second, func() bool { return r.State() == StateEffective })
	during := pointReads(t, ctx, dsn, data, 2*time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	after := pointReads(t, ctx, dsn, data, 2*time.Second)
	added := during - before
	t.Logf("p50 through the proxy: before %.2fms, with %v delay %.2fms (added %.2fms), after %.2fms", before, delay, during, added, after)
	if want := float64(delay.Milliseconds()); added < want*0.9 || added > want*1.1 {
		t.Errorf("added p50 %.2fms, want %v within 10%%", added, delay)
	}
	if after-before > 5 {
		t.Errorf("p50 after recovery %.2fms, before %.2fms: the delay stayed", after, before)
	}
	var sawAdded bool
	for _, m := range r.Measurements() {
		if m.Name == MeasureAddedRoundTrip {
			sawAdded = true
			if m.Value < 0.9*float64(delay.Milliseconds()) {
				t.Errorf("measured %v", m)
			}
		}
	}
	if !sawAdded {
		t.Errorf("no added round trip among %v", r.Measurements())
	}

	t.Run("own-proxy-and-resets", func(t *testing.T) {
		// Without proxies given, the fault starts its own and says where it listens.
		params, err := k.Parse(map[string]string{"delay": "20ms", "reset": "50"})
		if err != nil {
			t.Fatal(err)
		}
		ev := NewEvents(nil)
		f := k.New(params).(*NetLatency)
		r := NewRunner(k.Name, f, &Env{Targets: c.Nodes(), Cluster: c, Events: ev, Params: params})
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx, 3*time.Second, time.Minute) }()
		eventually(t, "the delay takes effect", 30*time.Second, func() bool { return r.State() == StateEffective })
		addr := f.Proxies().Addr(1)
		// Half the new connections through the proxy are reset.
		failed := 0
		for range 20 {
			pdsn, _ := f.Proxies().DSN(1, n.DSN())
			pdb, _ := sql.Open("mysql", pdsn)
			if err := pdb.PingContext(ctx); err != nil {
				failed++
			}
			pdb.Close()
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		t.Logf("proxy %s: %d of 20 connections reset", addr, failed)
		if failed < 3 || failed > 17 {
			t.Errorf("%d of 20 connections failed with reset=50%%", failed)
		}
		var said bool
		for _, e := range ev.List() {
			said = said || (e.Step == "proxy" && e.Details == "clients reach it through "+addr)
		}
		if !said {
			t.Errorf("no event gives the proxy address: %v", ev.List())
		}
		if f.Proxies().Addr(1) != "" {
			t.Error("the fault's own proxy still runs after cleanup")
		}
	})
}

// Cancelling a network-latency fault in the middle: the toxics go, the
// proxy the caller gave stays, and load through it is fast again.
func TestNetworkLatencyCancel(t *testing.T) {
	hc := htc.StartForTest(t, htc.Config{Topology: htc.Single, Memory: 512 << 20, Labels: testLabels})
	c := faulttarget.Cluster(hc)
	px := NewProxies()
	defer px.Close()
	if _, err := px.Start(c.Nodes()[0]); err != nil {
		t.Fatal(err)
	}
	k, _ := NewRegistry().Get("network-latency")
	params, _ := k.Parse(map[string]string{"delay": "200ms", "reset": "10"})
	f := k.New(params).(*NetLatency)
	r := NewRunner(k.Name, f, &Env{Targets: c.Nodes(), Cluster: c, Events: NewEvents(nil), Params: params, Proxies: px})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, time.Hour, time.Minute) }()
	eventually(t, "the delay takes effect", 30*time.Second, func() bool { return r.State() == StateEffective })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r.State() != StateCleaned {
		t.Errorf("state %s", r.State())
	}
	if toxics := px.Proxy(1).Toxics.GetToxicArray(); len(toxics) != 0 {
		t.Errorf("toxics left after a cancel: %v", toxics)
	}
	rtt, _, err := f.Probe(context.Background(), c.Nodes()[0], 5)
	if err != nil || rtt > 50*time.Millisecond {
		t.Errorf("round trip through the proxy after a cancel: %v %v", rtt, err)
	}
}

// galeraCounter reads a numeric status variable.
func galeraCounter(t *testing.T, n *htc.Node, name string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := n.Status(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseFloat(st[name], 64)
	if err != nil {
		t.Fatalf("%s = %q", name, st[name])
	}
	return v
}

// flowControl is the flow control seen over a window: pauses sent by the slow node,
// and the time the writer's node spent paused.
type flowControl struct{ sent, pausedMs float64 }

func flowControlOver(t *testing.T, slow, writer *htc.Node, f func()) flowControl {
	t.Helper()
	s0, p0 := galeraCounter(t, slow, "wsrep_flow_control_sent"), galeraCounter(t, writer, "wsrep_flow_control_paused_ns")
	f()
	s1, p1 := galeraCounter(t, slow, "wsrep_flow_control_sent"), galeraCounter(t, writer, "wsrep_flow_control_paused_ns")
	return flowControl{sent: s1 - s0, pausedMs: (p1 - p0) / 1e6}
}

// slow-node and network-bandwidth on one Galera node spread to the others. A node
// throttled to a few percent of a core falls behind applying what the writer's
// node replicates, sends flow-control pauses, and the writer's node spends seconds
// paused. A node whose egress is capped slows every commit in the cluster: group
// communication waits for its messages. That shows as commit latency on the
// writer's node, not as flow control (Galera 4 sends no pauses for it; measured).
func TestSlowNodesSpreadToTheOthers(t *testing.T) {
	hc := htc.StartForTest(t, htc.Config{Topology: htc.Galera, Nodes: 3, Memory: 512 << 20, Labels: testLabels})
	n1, n3 := hc.Nodes[0], hc.Nodes[2]
	c := faulttarget.Cluster(hc)
	ctx := context.Background()
	db, err := n1.DB()
	if err != nil {
		t.Fatal(err)
	}
	data := loadgen.Data{Users: 1000, Orders: 1000}
	if _, err := loadgen.Setup(ctx, db, loadgen.MariaDB, data); err != nil {
		t.Fatal(err)
	}
	tg, err := loadgen.NewTarget(1, n1.DSN(), loadgen.DefaultTimeouts)
	if err != nil {
		t.Fatal(err)
	}
	// writes inserts orders on n1 as fast as 8 clients can for d.
	writes := func(d time.Duration) (o results.OpSummary) {
		res, err := loadgen.Run(ctx, loadgen.Config{Targets: []loadgen.Target{tg}, Params: loadgen.Params{Data: data},
			Workloads: []loadgen.Spec{{Workload: loadgen.OLTP(), Mix: map[string]int{"insert": 1}, Closed: true,
				Phases: []loadgen.Phase{{Duration: d, Concurrency: 8}}, MaxOps: 500_000}}})
		if err != nil {
			t.Fatal(err)
		}
		o = res.Summary.Ops[0]
		if o.Count == 0 {
			t.Fatalf("no write succeeded: %+v", o.Errors)
		}
		return o
	}
	// under runs the writes while a fault holds on n3, and measures flow control.
	under := func(kind string, params map[string]string) (results.OpSummary, flowControl) {
		var w results.OpSummary
		var r *Runner
		fc := flowControlOver(t, n3, n1, func() {
			var done chan error
			if kind != "" {
				r, done = startWith(t, ctx, c, kind, "3", 5*time.Second, params)
			}
			w = writes(5 * time.Second)
			if done != nil {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
		})
		if kind == "" {
			kind = "no fault"
		}
		t.Logf("%s: writes on n1 %.0f/s p50 %.1fms p99 %.1fms; n3 sent %.0f pauses, n1 paused %.0fms", kind, w.Rate, w.Latency.P50, w.Latency.P99, fc.sent, fc.pausedMs)
		if r != nil {
			t.Logf("%s measured %v", kind, r.Measurements())
		}
		return w, fc
	}
	baseW, baseFC := under("", nil)

	t.Run("slow-node-shows-as-flow-control", func(t *testing.T) {
		_, fc := under("slow-node", map[string]string{"percent": "3"})
		// This machine is shared: some flow control shows without a fault too.
		if fc.sent < 1 || fc.pausedMs < max(500, 3*baseFC.pausedMs) {
			t.Errorf("n3 sent %.0f pauses, n1 paused %.0fms (%.0fms without a fault): no flow control", fc.sent, fc.pausedMs, baseFC.pausedMs)
		}
		if s, p := size(t, n3); s != 3 || !p {
			t.Errorf("afterwards n3 sees size %d primary %t", s, p)
		}
	})

	t.Run("network-bandwidth-slows-commits-on-the-others", func(t *testing.T) {
		w, _ := under("network-bandwidth", map[string]string{"rate": "256kbit"})
		if w.Latency.P50 < 5*baseW.Latency.P50 || w.Rate > baseW.Rate/3 {
			t.Errorf("writes on n1 with n3's egress capped: %.0f/s p50 %.1fms, without: %.0f/s p50 %.1fms: no spread", w.Rate, w.Latency.P50, baseW.Rate, baseW.Latency.P50)
		}
		if s, p := size(t, n3); s != 3 || !p {
			t.Errorf("afterwards n3 sees size %d primary %t", s, p)
		}
	})

	// Cancelling in the middle leaves nothing active.
	for _, kind := range []string{"slow-node", "network-bandwidth"} {
		t.Run("cancel-"+kind, func(t *testing.T) {
			cctx, cancel := context.WithCancel(ctx)
			r, done := start(t, cctx, c, kind, "3", time.Hour)
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if r.State() != StateCleaned {
				t.Errorf("state %s", r.State())
			}
			st, err := ReadCPUStat(ctx, c.Nodes()[2])
			if err != nil || st.Quota() > 0 {
				t.Errorf("CPU quota %.2f cores left after a cancelled %s (%v)", st.Quota(), kind, err)
			}
			res, err := n3.Exec(ctx, "tc", "qdisc", "show")
			if err != nil || strings.Contains(res.Stdout, "tbf") {
				t.Errorf("tbf left after a cancelled %s: %q %v", kind, res.Stdout, err)
			}
		})
	}
}
