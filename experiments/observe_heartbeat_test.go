package experiments

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"time"
)

// hbQuantile of values (0..1), nearest rank.
func hbQuantile(vs []float64, q float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(vs))
	return s[max(int(math.Ceil(q*float64(len(s))))-1, 0)]
}

// runHeartbeat starts the heartbeat on the first of nodes and a sampler reading
// it on the others, every second, until stop; stop waits for both and returns
// their errors. Calling it again does nothing more.
func runHeartbeat(t *testing.T, ctx context.Context, nodes []IndicatorNode) (*Heartbeat, *Sampler, func() error) {
	t.Helper()
	hb := NewHeartbeat(nodes[0], 0)
	if err := hb.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	s := NewSampler(nodes, nil, time.Second, WithHeartbeat(hb))
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var hbErr, sErr error
	wg.Go(func() { hbErr = hb.Run(rctx) })
	wg.Go(func() { sErr = s.Run(rctx) })
	var once sync.Once
	var err error
	return hb, s, func() error {
		once.Do(func() {
			cancel()
			wg.Wait()
			err = errors.Join(hbErr, sErr)
		})
		return err
	}
}

// The freshness heartbeat on a 3-node Galera cluster, written on n1: the other
// nodes are fresh to within a fraction of a second; cut n3 off the cluster network
// and its staleness grows with the cut, then falls back once it rejoins.
func TestHeartbeatGalera(t *testing.T) {
	c := sharedGalera(t)
	n3 := c.Nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	hb, s, stop := runHeartbeat(t, ctx, ContainerIndicatorNodes(c))
	defer stop()
	sleep := func(d time.Duration) {
		select {
		case <-ctx.Done():
			t.Fatal("test timed out")
		case <-time.After(d):
		}
	}
	staleness := func(node int, from, to time.Time) (ts []time.Time, ms []float64) {
		for _, smp := range s.Samples() {
			if smp.Node == node && smp.StalenessMs != nil && !smp.T.Before(from) && smp.T.Before(to) {
				ts, ms = append(ts, smp.T), append(ms, *smp.StalenessMs)
			}
		}
		return ts, ms
	}

	start := time.Now()
	sleep(8 * time.Second)
	cutAt := time.Now()
	t.Run("normal", func(t *testing.T) {
		for _, node := range []int{2, 3} {
			_, ms := staleness(node, start.Add(time.Second), cutAt)
			t.Logf("n%d: %d readings, staleness p50 %.1fms p99 %.1fms max %.1fms", node, len(ms), hbQuantile(ms, 0.5), hbQuantile(ms, 0.99), hbQuantile(ms, 1))
			if len(ms) < 5 {
				t.Errorf("n%d: %d staleness readings in 7s", node, len(ms))
			}
			if p99 := hbQuantile(ms, 0.99); p99 >= 1000 {
				t.Errorf("n%d: p99 staleness %.0fms, want under 1s", node, p99)
			}
		}
		if _, ms := staleness(1, start, cutAt); len(ms) != 0 {
			t.Errorf("staleness read on the writer node: %v", ms)
		}
	})

	const cut = 10 * time.Second
	if err := n3.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n3.Reconnect(context.Background()) })
	sleep(cut)
	if err := n3.Reconnect(ctx); err != nil {
		t.Fatal(err)
	}
	healAt := time.Now()
	t.Run("partitioned", func(t *testing.T) {
		ts, ms := staleness(3, cutAt, healAt.Add(time.Second))
		t.Logf("n3 during the cut: %v", ms)
		if len(ms) < int(cut/time.Second)-2 {
			t.Fatalf("n3: %d staleness readings during a %v cut", len(ms), cut)
		}
		last := len(ms) - 1
		grew := (ms[last] - ms[0]) / 1000
		span := ts[last].Sub(ts[0]).Seconds()
		if math.Abs(grew-span) > 1.5 {
			t.Errorf("n3 staleness grew %.1fs over %.1fs of cut, want about as much", grew, span)
		}
		if ms[last] < float64((cut - 2*time.Second).Milliseconds()) {
			t.Errorf("n3 staleness %.0fms at the end of a %v cut", ms[last], cut)
		}
		_, ms2 := staleness(2, cutAt, healAt)
		t.Logf("n2 during the cut (the cluster stalls until n3 is evicted): %v", ms2)
	})

	t.Run("rejoined", func(t *testing.T) {
		deadline := time.Now().Add(60 * time.Second)
		for {
			_, ms := staleness(3, healAt, time.Now())
			if n := len(ms); n >= 3 && ms[n-1] < 1000 && ms[n-2] < 1000 {
				t.Logf("n3 fresh again %v after the heal: %v", time.Since(healAt).Round(time.Second), ms)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("n3 not fresh 60s after the heal: %v", ms)
			}
			sleep(time.Second)
		}
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	st := hb.Stats()
	t.Logf("heartbeat: %+v", st)
	if want := int64(time.Since(start) / st.Every / 2); st.Writes < want {
		t.Errorf("%d heartbeat writes, want at least %d", st.Writes, want)
	}
}
