package loadgen

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/results"
)

// stallWorkload runs ops that take 100µs, except while stalled: then they wait
// until the stall ends (a frozen node, without a database).
func stallWorkload(from, to *atomic.Int64) *Workload {
	return &Workload{Name: "stall", NoDB: true, Ops: []Op{{Name: "op", Weight: 1, Run: func(ctx context.Context, _ Querier, _ *Worker) error {
		now := time.Now().UnixNano()
		if now >= from.Load() && now < to.Load() {
			select {
			case <-time.After(time.Duration(to.Load() - now)):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		time.Sleep(100 * time.Microsecond)
		return nil
	}}}}
}

func opSummary(t *testing.T, s *results.Summary, op string) results.OpSummary {
	t.Helper()
	for _, o := range s.Ops {
		if o.Op == op {
			return o
		}
	}
	t.Fatalf("no summary for %s: %+v", op, s.Ops)
	return results.OpSummary{}
}

// An open-loop run through a 500 ms stall: the schedule keeps going, operations
// queue up to the in-flight bound and are dropped past it, the queued ones start late,
// and their latency (from the intended start) shows the whole stall.
func TestOpenLoopMeasuresAStallInsteadOfHidingIt(t *testing.T) {
	var from, to atomic.Int64
	from.Store(time.Now().Add(time.Hour).UnixNano())
	to.Store(from.Load())
	wl := stallWorkload(&from, &to)
	go func() {
		time.Sleep(500 * time.Millisecond)
		now := time.Now()
		from.Store(now.UnixNano())
		to.Store(now.Add(500 * time.Millisecond).UnixNano())
	}()
	res, err := Run(context.Background(), Config{
		Workloads: []Spec{{Workload: wl, Phases: []Phase{{Duration: 2 * time.Second, Rate: 1000}}, Workers: 4, MaxInFlight: 200}},
		Interval:  100 * time.Millisecond, GapThreshold: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	o := opSummary(t, res.Summary, "op")
	if got := o.Count + o.Dropped + o.ErrorsTotal; got != 2000 {
		t.Errorf("count %d + dropped %d + errors %d = %d, want every one of the 2000 scheduled ops", o.Count, o.Dropped, o.ErrorsTotal, got)
	}
	// 500 ops fall in the stall; 4 run and 196 wait: about 300 are dropped.
	if o.Dropped < 200 || o.Dropped > 400 {
		t.Errorf("dropped %d, want about 300", o.Dropped)
	}
	if o.Late < 150 {
		t.Errorf("late %d, want the ~200 queued ops", o.Late)
	}
	if o.Latency.Max < 450 || o.Latency.Max > 800 {
		t.Errorf("max latency %.0fms, want about the 500ms stall", o.Latency.Max)
	}
	// Service time only sees the op itself: the stalled ones took up to 500ms, the
	// queued ones 0.1ms.
	if o.Service.P50 > 5 {
		t.Errorf("service p50 %.2fms, want ~0.1ms", o.Service.P50)
	}
	if len(res.Summary.Gaps) != 1 || len(res.Summary.Gaps[0].Gaps) != 1 {
		t.Fatalf("gaps %+v, want one", res.Summary.Gaps)
	}
	if g := res.Summary.Gaps[0].Gaps[0]; g.Duration < 0.45 || g.Duration > 0.7 {
		t.Errorf("gap %.3fs, want about 0.5s", g.Duration)
	}
}

// Closed loop: the phase's concurrency is the number of operations in flight.
func TestClosedLoopConcurrencyFollowsPhases(t *testing.T) {
	var inflight atomic.Int64
	var peaks [2]atomic.Int64
	start := time.Now()
	wl := &Workload{Name: "count", NoDB: true, Ops: []Op{{Name: "op", Weight: 1, Run: func(context.Context, Querier, *Worker) error {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		// Away from the phase boundary at 400ms, whose exact instant the test does not know.
		var p *atomic.Int64
		switch e := time.Since(start); {
		case e < 350*time.Millisecond:
			p = &peaks[0]
		case e > 450*time.Millisecond:
			p = &peaks[1]
		default:
			time.Sleep(time.Millisecond)
			return nil
		}
		for {
			old := p.Load()
			if n <= old || p.CompareAndSwap(old, n) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		return nil
	}}}}
	res, err := Run(context.Background(), Config{Workloads: []Spec{{Workload: wl, Closed: true,
		Phases: []Phase{{Duration: 400 * time.Millisecond, Concurrency: 1}, {Duration: 400 * time.Millisecond, Concurrency: 4}}}}, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if peaks[0].Load() != 1 || peaks[1].Load() != 4 {
		t.Errorf("peak in flight %d then %d, want 1 then 4", peaks[0].Load(), peaks[1].Load())
	}
	o := opSummary(t, res.Summary, "op")
	// ~400 ops in phase 1 (1 worker x 1 ms), ~1600 in phase 2.
	if o.Count < 800 || o.Count > 2200 {
		t.Errorf("count %d", o.Count)
	}
}

func TestMaxOpsBoundsTheRun(t *testing.T) {
	start := time.Now()
	res, err := Run(context.Background(), Config{Workloads: []Spec{{Workload: Noop(), Phases: []Phase{{Duration: time.Minute, Rate: 10000}}, MaxOps: 500}}})
	if err != nil {
		t.Fatal(err)
	}
	if o := opSummary(t, res.Summary, "noop"); o.Count != 500 {
		t.Errorf("count %d, want 500", o.Count)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("a 500-op run took %v", time.Since(start))
	}
}

// Cancelling returns what was measured; the cancelled operations are not errors.
func TestCancelReturnsPartialResults(t *testing.T) {
	var from, to atomic.Int64
	from.Store(0)
	to.Store(time.Now().Add(time.Hour).UnixNano()) // every op stalls until cancelled
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	res, err := Run(ctx, Config{Workloads: []Spec{{Workload: stallWorkload(&from, &to), Phases: []Phase{{Duration: time.Minute, Rate: 100}}, Workers: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("took %v to stop", time.Since(start))
	}
	o := opSummary(t, res.Summary, "op")
	if o.ErrorsTotal != 0 || o.Canceled != 2 {
		t.Errorf("errors %d, canceled %d: want 0 errors and the 2 in-flight ops canceled", o.ErrorsTotal, o.Canceled)
	}
}

func TestMixPicksByWeight(t *testing.T) {
	m, err := NewMix(OLTP(), map[string]int{"point-read": 3, "insert": 1})
	if err != nil {
		t.Fatal(err)
	}
	w := &Worker{Rand: newRand(1)}
	counts := map[string]int{}
	for range 40000 {
		counts[m.Pick(w.Rand).Name]++
	}
	if r := float64(counts["point-read"]) / 40000; r < 0.73 || r > 0.77 || len(counts) != 2 {
		t.Errorf("picks %v", counts)
	}
	for _, bad := range []map[string]int{{"no-such-op": 1}, {"insert": 0}, {"insert": -2}} {
		if _, err := NewMix(OLTP(), bad); err == nil {
			t.Errorf("mix %v accepted", bad)
		}
	}
	if def, _ := NewMix(OLTP(), nil); len(def.Ops()) != 4 {
		t.Errorf("default oltp mix %v", def.Weights())
	}
	if _, err := NewRegistry().Get("olap"); err == nil {
		t.Error("unknown workload accepted")
	}
}

func TestPlaceholders(t *testing.T) {
	for _, tc := range []struct {
		q    string
		want int
	}{
		{"SELECT c FROM sbtest1 WHERE id = ?", 1},
		{"SELECT 1", 0},
		{"SELECT * FROM t WHERE a = ? AND b BETWEEN ? AND ?", 3},
		{"SELECT '?', \"?\", `?` FROM t WHERE x = ?", 1},
		{"SELECT 'it''s ?' , 'a\\'?' FROM t WHERE x=?", 1},
		{"SELECT 1 -- why?\nFROM t WHERE x = ? # and?\n", 1},
		{"SELECT /* ? */ ? /* unterminated ?", 1},
		{"SELECT a-?-1 FROM t", 1},
	} {
		if got := placeholders(tc.q); got != tc.want {
			t.Errorf("placeholders(%q) = %d, want %d", tc.q, got, tc.want)
		}
	}
}
