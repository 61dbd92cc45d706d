package faults_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"testing"
	"time"

	. "github.com/htapchaos/htapchaos/faults"
	htc "github.com/htapchaos/htapchaos/testcontainers"
	"github.com/htapchaos/htapchaos/testcontainers/faulttarget"
)

func TestFaultsOnGalera(t *testing.T) {
	hc := htc.StartForTest(t, htc.Config{Topology: htc.Galera, Nodes: 3, Memory: 512 << 20, Labels: testLabels})
	c := faulttarget.Cluster(hc)
	n1, n2, n3 := hc.Nodes[0], hc.Nodes[1], hc.Nodes[2]
	ctx := context.Background()

	t.Run("node-kill", func(t *testing.T) {
		_, done := start(t, ctx, c, "node-kill", "2", 6*time.Second)
		conn, err := net.DialTimeout("tcp", n2.Addr(), time.Second)
		if err == nil {
			// The engine's proxy may accept and drop at once: no server answers.
			buf := make([]byte, 1)
			conn.SetReadDeadline(time.Now().Add(time.Second))
			_, err = conn.Read(buf)
			conn.Close()
		}
		if err == nil {
			t.Error("the killed node still answers")
		}
		eventually(t, "the survivors see size 2", 20*time.Second, func() bool { s, p := size(t, n1); return s == 2 && p })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if s, p := size(t, n2); s != 3 || !p {
			t.Errorf("after recovery n2 sees size %d primary %t", s, p)
		}
	})

	t.Run("node-stop", func(t *testing.T) {
		_, done := start(t, ctx, c, "node-stop", "3", 3*time.Second)
		st, err := n3.State(ctx)
		if err != nil || st.Running || st.ExitCode != 0 {
			t.Errorf("after a graceful stop: %+v %v, want stopped with exit 0", st, err)
		}
		// A graceful leave shrinks the cluster at once, without a suspect timeout.
		eventually(t, "the others see size 2", 5*time.Second, func() bool { s, p := size(t, n1); return s == 2 && p })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		eventually(t, "n3 rejoins", 30*time.Second, func() bool { s, p := size(t, n3); return s == 3 && p })
	})

	t.Run("node-restart", func(t *testing.T) {
		before, err := n2.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		r, done := startWith(t, ctx, c, "node-restart", "2", time.Second, map[string]string{"signal": "kill"})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		after, err := n2.State(ctx)
		if err != nil || !after.StartedAt.After(before.StartedAt) {
			t.Errorf("n2 started at %v before, %v after (%v): not restarted", before.StartedAt, after.StartedAt, err)
		}
		if s, p := size(t, n2); s != 3 || !p {
			t.Errorf("after the restart n2 sees size %d primary %t", s, p)
		}
		var down float64
		for _, m := range r.Measurements() {
			if m.Name == MeasureDownUntilServing {
				down = m.Value
			}
		}
		// The restart happens inside Inject: it was down for part of the time until the
		// fault took effect.
		if took := r.Effective.Sub(began).Seconds(); down <= 0 || down > took {
			t.Errorf("measured down %.2fs; the fault took effect %.2fs after it began", down, took)
		}
	})

	t.Run("pause-stalls-a-client-for-the-duration", func(t *testing.T) {
		const hold = 3 * time.Second
		r, done := start(t, ctx, c, "pause", "3", hold)
		db, _ := sql.Open("mysql", n3.DSN())
		defer db.Close()
		qstart := time.Now()
		var one int
		err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
		stalled := time.Since(qstart)
		if err != nil {
			t.Fatalf("query after the pause: %v", err)
		}
		if ferr := <-done; ferr != nil {
			t.Fatal(ferr)
		}
		// The query was sent right after the pause took effect and answered at the thaw.
		want := r.Recovered.Sub(r.Effective)
		if d := stalled - want; d < -500*time.Millisecond || d > 500*time.Millisecond {
			t.Errorf("the client stalled %v, the node was frozen %v", stalled, want)
		}
		if want < hold {
			t.Errorf("frozen only %v of the %v hold", want, hold)
		}
	})

	t.Run("partition-loses-primary-while-the-others-keep-quorum", func(t *testing.T) {
		_, done := start(t, ctx, c, "partition", "n3", 5*time.Second)
		if s, p := size(t, n3); p {
			t.Errorf("cut-off n3 still Primary (size %d)", s)
		}
		eventually(t, "n1 keeps quorum with size 2", 20*time.Second, func() bool { s, p := size(t, n1); return s == 2 && p })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		eventually(t, "n3 rejoins", 30*time.Second, func() bool { s, p := size(t, n3); return s == 3 && p })
	})

	t.Run("cpu-hog", func(t *testing.T) {
		// The engine's CPU figure (what the experiments' sampler records) must see
		// the hog: an idle node before, at least most of a core during it.
		cpuOver := func(d time.Duration) float64 {
			a, err := n1.ResourceStats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(d)
			b, err := n1.ResourceStats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return b.CPUPercentSince(a)
		}
		before := cpuOver(time.Second)
		_, done := start(t, ctx, c, "cpu-hog", "1", 3*time.Second)
		// The hog's workers burn CPU inside the node's container (ps: share of a CPU
		// over each process's life, which is all of this hold).
		time.Sleep(time.Second)
		res, err := n1.Exec(ctx, "sh", "-c", `ps -eo stat=,pcpu=,comm= | awk '$1 !~ /^Z/ && $3 ~ /^stress-ng/ {s+=$2} END {print s+0}'`)
		if err != nil {
			t.Fatal(err)
		}
		var pcpu float64
		fmt.Sscan(res.Stdout, &pcpu)
		if pcpu < 50 {
			t.Errorf("stress-ng uses %.0f%% of a CPU: not hogging", pcpu)
		}
		during := cpuOver(time.Second)
		t.Logf("n1 CPU as the engine reports it: %.0f%% before, %.0f%% during the hog", before, during)
		if before > 50 || during < 80 {
			t.Errorf("engine CPU %.0f%% before and %.0f%% during two stress-ng workers: want under 50 and at least 80", before, during)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if live, _ := Hogs(ctx, faulttarget.Cluster(hc).Nodes()[0]); live {
			t.Error("stress-ng still runs after recovery")
		}
	})

	// Cancelling in the middle of each fault leaves nothing active.
	for _, kind := range []string{"pause", "partition", "node-kill", "node-restart", "cpu-hog"} {
		t.Run("cancel-"+kind, func(t *testing.T) {
			cctx, cancel := context.WithCancel(ctx)
			r, done := start(t, cctx, c, kind, "2", time.Hour)
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(3 * time.Minute):
				t.Fatal("recovery after cancel did not finish")
			}
			if r.State() != StateCleaned {
				t.Errorf("state %s", r.State())
			}
			st, err := n2.State(ctx)
			if err != nil || !st.Running || st.Paused {
				t.Errorf("n2 after a cancelled %s: %+v %v", kind, st, err)
			}
			if live, _ := Hogs(ctx, faulttarget.Cluster(hc).Nodes()[1]); live {
				t.Errorf("stress-ng left running after a cancelled %s", kind)
			}
			if s, p := size(t, n2); s != 3 || !p {
				t.Errorf("n2 after a cancelled %s: size %d primary %t", kind, s, p)
			}
		})
	}
}
