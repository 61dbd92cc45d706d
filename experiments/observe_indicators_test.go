package experiments

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/faults"
	htc "github.com/htapchaos/htapchaos/testcontainers"
	"github.com/htapchaos/htapchaos/testcontainers/faulttarget"
)

func TestSamplerCounterDeltas(t *testing.T) {
	if d := counterDelta(100, 150); d != 50 {
		t.Errorf("delta %d, want 50", d)
	}
	if d := counterDelta(100, 30); d != 30 {
		t.Errorf("delta after a reset %d, want the new value 30", d)
	}
	prev := map[string][2]int64{"eth0": {100, 10}, "eth1": {1000, 500}}
	cur := map[string][2]int64{"eth0": {150, 20}, "eth2": {7, 3}} // eth1 gone, eth2 new
	if rx, tx := netDelta(prev, cur, nil); rx != 57 || tx != 13 {
		t.Errorf("netDelta all = %d/%d, want 57/13", rx, tx)
	}
	if rx, tx := netDelta(prev, cur, []string{"eth1"}); rx != 0 || tx != 0 {
		t.Errorf("netDelta of a vanished interface = %d/%d, want 0/0", rx, tx)
	}
	cur["eth1"] = [2]int64{40, 600} // re-created: rx reset
	if rx, tx := netDelta(prev, cur, []string{"eth1"}); rx != 40 || tx != 100 {
		t.Errorf("netDelta after a reset = %d/%d, want 40/100", rx, tx)
	}
}

// byNode splits samples per node.
func byNode(ss []Sample) map[int][]Sample {
	out := map[int][]Sample{}
	for _, s := range ss {
		out[s.Node] = append(out[s.Node], s)
	}
	return out
}

// The sampler on a 3-node Galera cluster: a sample per node per second; a frozen
// node shows as down (and paused) without delaying the others; write load shows as
// last_committed rising and network bytes; memory is plausible; a CPU-starved node
// makes flow control show.
func TestSamplerGalera(t *testing.T) {
	c := htc.StartForTest(t, htc.Config{Topology: htc.Galera, Nodes: 3, Memory: 512 << 20, Labels: testLabels})
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	db1, err := sql.Open("mysql", n1.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db1.Close()
	db1.SetMaxOpenConns(8)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := db1.ExecContext(ctx, "CREATE TABLE load_t (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	s := NewSampler(ContainerIndicatorNodes(c), &buf, time.Second)
	sctx, stop := context.WithCancel(ctx)
	var runErr error
	var wg sync.WaitGroup
	wg.Go(func() { runErr = s.Run(sctx) })
	defer func() { stop(); wg.Wait() }()
	sleep := func(d time.Duration) {
		select {
		case <-ctx.Done():
			t.Fatal("test timed out")
		case <-time.After(d):
		}
	}

	// Write load: bounded insert loops on n1, until loadStop.
	var inserted atomic.Int64
	load := func(lctx context.Context, workers int) *sync.WaitGroup {
		var lw sync.WaitGroup
		for range workers {
			lw.Go(func() {
				for i := 0; i < 200_000 && lctx.Err() == nil; i++ {
					qctx, cancel := context.WithTimeout(lctx, 5*time.Second)
					_, err := db1.ExecContext(qctx, "INSERT INTO load_t (v) VALUES (REPEAT('x', 150))")
					cancel()
					if err == nil {
						inserted.Add(1)
					}
				}
			})
		}
		return &lw
	}
	start := time.Now()
	lctx, loadStop := context.WithCancel(ctx)
	lw := load(lctx, 2)
	sleep(5 * time.Second)
	loadEnd := time.Now()
	loadStop()
	lw.Wait()

	// Freeze n2 for 3 s (not long enough for Galera to evict it).
	if err := n2.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	pausedAt := time.Now()
	sleep(3 * time.Second)
	if err := n2.Unpause(ctx); err != nil {
		t.Fatal(err)
	}
	unpausedAt := time.Now()
	sleep(4 * time.Second)

	// Slow node: n3 starved of CPU while n1 takes writes: flow control.
	// A low flow-control limit on n3, so that falling a few write-sets behind makes
	// it pause the cluster: what is tested is that the sampler sees the pause, not
	// how far behind Galera's default lets a node fall on a given day.
	if db3, err := n3.DB(); err != nil {
		t.Fatal(err)
	} else if _, err := db3.ExecContext(ctx, "SET GLOBAL wsrep_provider_options = 'gcs.fc_limit=2'"); err != nil {
		t.Fatal(err)
	}
	restore, err := n3.LimitCPU(ctx, 0.03)
	if err != nil {
		t.Fatal(err)
	}
	fcStart := time.Now()
	lctx, loadStop = context.WithCancel(ctx)
	lw = load(lctx, 4)
	sleep(8 * time.Second)
	loadStop()
	lw.Wait()
	if err := restore(ctx); err != nil {
		t.Fatal(err)
	}
	fcEnd := time.Now()
	sleep(2 * time.Second)
	stop()
	wg.Wait()
	end := time.Now()
	if runErr != nil {
		t.Fatal(runErr)
	}

	all := s.Samples()
	per := byNode(all)
	t.Logf("%d samples over %v; %d rows inserted; missing: %q", len(all), end.Sub(start).Round(time.Millisecond), inserted.Load(), s.Missing())

	t.Run("json lines", func(t *testing.T) {
		sc := bufio.NewScanner(&buf)
		lines := 0
		for sc.Scan() {
			var smp Sample
			if err := json.Unmarshal(sc.Bytes(), &smp); err != nil {
				t.Fatalf("line %d: %v: %s", lines+1, err, sc.Text())
			}
			lines++
		}
		if lines != len(all) {
			t.Errorf("%d JSON lines, %d samples", lines, len(all))
		}
	})

	t.Run("cadence", func(t *testing.T) {
		secs := end.Sub(start).Seconds()
		var worst time.Duration
		for node := 1; node <= 3; node++ {
			ss := per[node]
			if n := float64(len(ss)); n < secs-2 || n > secs+2 {
				t.Errorf("n%d: %d samples in %.1fs, want one a second", node, len(ss), secs)
			}
			for i := 1; i < len(ss); i++ {
				d := ss[i].T.Sub(ss[i-1].T)
				worst = max(worst, (d - time.Second).Abs())
				if d < 500*time.Millisecond || d > 1500*time.Millisecond {
					t.Errorf("n%d: samples %v apart at %v", node, d, ss[i].T.Sub(start).Round(time.Millisecond))
				}
			}
		}
		t.Logf("worst tick deviation from 1s: %v", worst)
	})

	t.Run("pause", func(t *testing.T) {
		down := 0
		for _, smp := range per[2] {
			// Well inside the pause: down and paused.
			if smp.T.After(pausedAt.Add(300*time.Millisecond)) && smp.T.Before(unpausedAt.Add(-1100*time.Millisecond)) {
				down++
				if smp.Up || !smp.Paused {
					t.Errorf("n2 at %v into the pause: up %t paused %t, want down and paused", smp.T.Sub(pausedAt).Round(time.Millisecond), smp.Up, smp.Paused)
				}
			}
		}
		if down < 1 {
			t.Errorf("no n2 sample inside the pause")
		}
		for _, node := range []int{1, 3} {
			for _, smp := range per[node] {
				if !smp.Up && smp.T.Before(fcStart) {
					t.Errorf("n%d down at %v (pause at %v)", node, smp.T.Sub(start).Round(time.Millisecond), pausedAt.Sub(start).Round(time.Millisecond))
				}
			}
		}
		for _, smp := range per[2] {
			if smp.T.After(unpausedAt.Add(2*time.Second)) && smp.T.Before(fcStart) && !smp.Up {
				t.Errorf("n2 still down %v after the unpause", smp.T.Sub(unpausedAt).Round(time.Millisecond))
			}
		}
	})

	t.Run("load", func(t *testing.T) {
		var first, last int64
		var tx int64
		for _, smp := range per[1] {
			if !smp.Up || smp.T.After(loadEnd) {
				continue
			}
			if first == 0 {
				first = smp.LastCommitted
			}
			last = smp.LastCommitted
			tx += smp.NetTxBytes
			if smp.ClusterSize != 3 || !smp.Primary || !smp.Ready || smp.State != "Synced" {
				t.Errorf("n1 at %v: size %d primary %t ready %t state %q", smp.T.Sub(start).Round(time.Millisecond), smp.ClusterSize, smp.Primary, smp.Ready, smp.State)
			}
		}
		t.Logf("n1 last_committed %d -> %d; cluster-network tx %d bytes", first, last, tx)
		if last-first < 100 {
			t.Errorf("last_committed %d -> %d under write load, want it rising", first, last)
		}
		if tx < 100*150 {
			t.Errorf("n1 sent %d bytes on the cluster network under write load, want the writesets", tx)
		}
	})

	t.Run("memory, CPU and threads", func(t *testing.T) {
		for node, ss := range per {
			with, withCPU := 0, 0
			for _, smp := range ss {
				if smp.CPUPct != 0 {
					withCPU++
					if smp.CPUPct < 0 || smp.CPUPct > 100*float64(runtime.NumCPU()) {
						t.Errorf("n%d CPU %.1f%%", node, smp.CPUPct)
					}
				}
				if smp.MemoryPct != 0 {
					with++
					if smp.MemoryPct < 0 || smp.MemoryPct > 100 {
						t.Errorf("n%d memory %.1f%%", node, smp.MemoryPct)
					}
				}
				if smp.Up && smp.ThreadsConnected < 1 {
					t.Errorf("n%d: threads connected %d", node, smp.ThreadsConnected)
				}
			}
			if with < len(ss)/2 {
				t.Errorf("n%d: memory in %d of %d samples", node, with, len(ss))
			}
			// Every node applies the writes: none is idle.
			if withCPU < len(ss)/2 {
				t.Errorf("n%d: CPU in %d of %d samples under write load", node, withCPU, len(ss))
			}
			t.Logf("n%d memory %.1f%%, CPU %.1f%% at the end", node, ss[len(ss)-1].MemoryPct, ss[len(ss)-1].CPUPct)
		}
		lag := 0
		for _, m := range s.Missing() {
			switch {
			case strings.Contains(m, "replica lag: not a replica"):
				lag++
			case strings.Contains(m, "network bytes: every interface counted"):
			default:
				t.Errorf("missing %q", m)
			}
		}
		if lag != 3 {
			t.Errorf("missing %q, want the replica lag of each node", s.Missing())
		}
	})

	t.Run("flow control", func(t *testing.T) {
		var paused float64
		var sent, queue int64
		for _, smp := range all {
			if smp.T.After(fcStart) && smp.T.Before(fcEnd.Add(2*time.Second)) {
				paused += smp.FCPausedMs
				sent += smp.FCSent
				queue = max(queue, smp.RecvQueue)
			}
		}
		t.Logf("with n3 at 0.03 CPU: flow control paused %.0fms in total, %d FC messages sent, max recv queue %d", paused, sent, queue)
		if paused <= 0 {
			t.Errorf("no flow control pause while n3 was starved")
		}
	})
}

// On primary-replica nodes given only by DSN (as an exec target gives them): the
// replicas are found out and show their lag, the primary does not; nothing Galera
// or container is sampled, and Missing says so; the heartbeat on the primary is
// read on the replicas.
func TestSamplerPrimaryReplicaByDSN(t *testing.T) {
	c := htc.StartForTest(t, htc.Config{Topology: htc.PrimaryReplica, Memory: 512 << 20, Labels: testLabels})
	var nodes []IndicatorNode
	for _, n := range c.Nodes {
		nodes = append(nodes, IndicatorNode{Index: n.Index, Label: n.Name, DSN: n.DSN()})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hb := NewHeartbeat(nodes[0], 0)
	s := NewSampler(nodes, nil, 500*time.Millisecond, WithHeartbeat(hb))
	rctx, stop := context.WithTimeout(ctx, 4*time.Second)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() { _ = hb.Run(rctx) })
	if err := s.Run(rctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	per := byNode(s.Samples())
	for node := 1; node <= 3; node++ {
		ss := per[node]
		if len(ss) < 6 {
			t.Fatalf("n%d: %d samples in 4s at 500ms", node, len(ss))
		}
		last := ss[len(ss)-1]
		if !last.Up || last.ClusterSize != 0 || last.MemoryPct != 0 {
			t.Errorf("n%d last sample %+v", node, last)
		}
		if node == 1 && last.ReplicaLagS != nil {
			t.Errorf("primary has a replica lag %v", *last.ReplicaLagS)
		}
		if node > 1 {
			if last.ReplicaLagS == nil || *last.ReplicaLagS > 2 {
				t.Errorf("n%d replica lag %v, want a small number", node, last.ReplicaLagS)
			}
			if last.StalenessMs == nil || *last.StalenessMs > 1000 {
				t.Errorf("n%d staleness %v, want under 1s", node, last.StalenessMs)
			} else {
				t.Logf("n%d: replica lag %.0fs, staleness %.1fms", node, *last.ReplicaLagS, *last.StalenessMs)
			}
		}
	}
	want := []string{"n1: replica lag: not a replica"}
	for node := 1; node <= 3; node++ {
		for _, f := range []string{"container state", "galera", "memory", "network bytes"} {
			why := "not a container"
			if f == "galera" {
				why = "not a Galera node (no wsrep provider)"
			}
			want = append(want, fmt.Sprintf("n%d: %s: %s", node, f, why))
		}
	}
	slices.Sort(want)
	if got := s.Missing(); !slices.Equal(got, want) {
		t.Errorf("missing\n%q\nwant\n%q", got, want)
	}
}

// fixedHolder holds a known number of bytes on one node.
type fixedHolder struct {
	node     int
	bytes    int64
	inServer bool
}

func (h fixedHolder) HeldBytes(node int) (int64, bool, bool) {
	return h.bytes, h.inServer, node == h.node
}

// The server's own memory and the memory-fill hog's, on a node of the shared
// Galera cluster: each sample's Memory_used is the server's (a direct read before
// and after brackets it); a memory-fill with method=sql shows as HogBytes inside
// the server (HogInServer), and Memory_used rises by what the fault says it holds,
// within 15%; an exec hog's resident memory is what the container's figure rose
// by, within 3 points of the limit. Holders that hold nothing on a node (not ok)
// add nothing; several add up.
func TestSamplerServerMemoryAndHog(t *testing.T) {
	c := sharedGalera(t)
	n1 := c.Nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db, err := n1.DB()
	if err != nil {
		t.Fatal(err)
	}
	memoryUsed := func() int64 {
		t.Helper()
		var name string
		var v int64
		if err := db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Memory_used'").Scan(&name, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	kind, err := faults.NewRegistry().Get("memory-fill")
	if err != nil {
		t.Fatal(err)
	}
	// fill runs memory-fill on n1 with the method for hold, the sampler watching
	// n1 with the fault and two more holders (one for another node, one of 1 MiB
	// on n1), and returns the samples and the fault's measurements.
	fill := func(method string, percent int, hold time.Duration) ([]Sample, *faults.Runner) {
		t.Helper()
		params, err := kind.Parse(map[string]string{"method": method, "percent": fmt.Sprint(percent)})
		if err != nil {
			t.Fatal(err)
		}
		fault := kind.New(params)
		fc := faulttarget.Cluster(c)
		targets, err := faults.Resolve(fc, "1", 1)
		if err != nil {
			t.Fatal(err)
		}
		holders := []faults.MemoryHolder{fault.(faults.MemoryHolder), fixedHolder{node: 2, bytes: 1 << 40}, fixedHolder{node: 1, bytes: 1 << 20}}
		s := NewSampler(ContainerIndicatorNodes(c)[:1], nil, time.Second, WithMemoryHolders(func() []faults.MemoryHolder { return holders }))
		sctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { _ = s.Run(sctx) })
		time.Sleep(3 * time.Second) // the engine's statistics come after a second or two
		r := faults.NewRunner("memory-fill", fault, &faults.Env{Targets: targets, Cluster: fc, Events: faults.NewEvents(nil), Params: params})
		rerr := r.Run(ctx, hold, time.Minute)
		time.Sleep(1500 * time.Millisecond)
		stop()
		wg.Wait()
		if rerr != nil {
			t.Fatalf("memory-fill %s: %v", method, rerr)
		}
		return s.Samples(), r
	}

	t.Run("memory-used-is-the-server's", func(t *testing.T) {
		before := memoryUsed()
		s := NewSampler(ContainerIndicatorNodes(c)[:1], nil, time.Second)
		sctx, stop := context.WithTimeout(ctx, 3500*time.Millisecond)
		defer stop()
		_ = s.Run(sctx)
		after := memoryUsed()
		lo, hi := min(before, after), max(before, after)
		ss := s.Samples()
		withLimit := 0
		for _, smp := range ss {
			// Other clients (this test's own connection, the cluster) move it by a little.
			if v := smp.ServerMemoryBytes; float64(v) < float64(lo)*0.95 || float64(v) > float64(hi)*1.05 {
				t.Errorf("sampled Memory_used %d, direct reads %d and %d around it", v, before, after)
			}
			if smp.HogBytes != 0 || smp.HogInServer {
				t.Errorf("hog %d in server %t; want no hog", smp.HogBytes, smp.HogInServer)
			}
			if smp.MemoryPct > 0 { // the engine's statistics came
				withLimit++
				if smp.MemoryLimitBytes != 512<<20 {
					t.Errorf("limit %d, want 512 MiB", smp.MemoryLimitBytes)
				}
			}
		}
		if len(ss) < 3 || withLimit == 0 {
			t.Errorf("%d samples, %d with the engine's memory figures", len(ss), withLimit)
		}
		for _, m := range s.Missing() {
			if strings.Contains(m, "server memory") {
				t.Errorf("missing %q", m)
			}
		}
		t.Logf("Memory_used %.1f MiB, container %.1f%% of %d MiB", float64(ss[0].ServerMemoryBytes)/(1<<20), ss[0].MemoryPct, ss[0].MemoryLimitBytes>>20)
	})

	for _, method := range []string{"sql", "exec"} {
		t.Run("hog-"+method, func(t *testing.T) {
			st, err := n1.MemoryStats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			percent := min(int(st.Percent)+20, 85)
			ss, r := fill(method, percent, 5*time.Second)
			const extra = 1 << 20 // the fixed holder on n1
			var before, during []Sample
			var trace []string
			for _, smp := range ss {
				switch {
				case smp.T.Before(r.Injected) && smp.MemoryPct > 0:
					before = append(before, smp)
				case smp.T.After(r.Effective.Add(time.Second)) && smp.T.Before(r.Recovered) && smp.MemoryPct > 0:
					during = append(during, smp)
				}
				if smp.HogBytes < extra {
					t.Errorf("hog %d bytes: the 1 MiB holder on n1 is missing", smp.HogBytes)
				}
				trace = append(trace, fmt.Sprintf("%.1fs server %.1f hog %.1f MiB container %.1f%%", smp.T.Sub(r.Injected).Seconds(),
					float64(smp.ServerMemoryBytes)/(1<<20), float64(smp.HogBytes-extra)/(1<<20), smp.MemoryPct))
			}
			t.Logf("samples (time since the injection):\n%s", strings.Join(trace, "\n"))
			last := ss[len(ss)-1]
			if len(before) == 0 || len(during) < 2 || last.HogBytes != extra {
				t.Fatalf("%d samples before the fill, %d during, the last holds %d bytes (want the fault's 0 plus 1 MiB)", len(before), len(during), last.HogBytes)
			}
			ms := r.Measurements()
			med := func(ss []Sample, f func(Sample) float64) float64 {
				var vs []float64
				for _, s := range ss {
					vs = append(vs, f(s))
				}
				return Median(vs)
			}
			held := med(during, func(s Sample) float64 { return float64(s.HogBytes - extra) })
			server := func(s Sample) float64 { return float64(s.ServerMemoryBytes) }
			pct := func(s Sample) float64 { return s.MemoryPct }
			serverRise := med(during, server) - med(before, server)
			pctRise := med(during, pct) - med(before, pct)
			t.Logf("method=%s to %d%%: the fault holds %.1f MiB; Memory_used %.1f -> %.1f MiB (+%.1f); container %.1f%% -> %.1f%%; measurements %v",
				method, percent, held/(1<<20), med(before, server)/(1<<20), med(during, server)/(1<<20), serverRise/(1<<20), med(before, pct), med(during, pct), ms)
			for _, smp := range during {
				if smp.HogInServer != (method == "sql") {
					t.Errorf("hog in server %t with method=%s", smp.HogInServer, method)
				}
			}
			if method == "sql" {
				// The MEMORY tables are in the server's own account: it rose by what the fault holds.
				if math.Abs(serverRise-held) > 0.15*held {
					t.Errorf("Memory_used rose %.1f MiB while the fault held %.1f MiB in the server: want equal within 15%%", serverRise/(1<<20), held/(1<<20))
				}
				return
			}
			// The exec hog is outside the server: the container's figure rose by its resident memory.
			limit := float64(last.MemoryLimitBytes)
			if got := held / limit * 100; math.Abs(got-pctRise) > 3 {
				t.Errorf("the hog holds %.1f%% of the limit, the container rose %.1f points: want equal within 3", got, pctRise)
			}
			if math.Abs(serverRise) > 0.1*held {
				t.Errorf("Memory_used moved %.1f MiB with an exec hog of %.1f MiB outside the server", serverRise/(1<<20), held/(1<<20))
			}
		})
	}
}
