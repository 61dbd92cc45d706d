package loadgen

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestScheduleTimes(t *testing.T) {
	s := NewSchedule(t0, []Phase{
		{Name: "a", Duration: time.Second, Rate: 4},              // ops at 0, 250, 500, 750 ms
		{Name: "pause", Duration: 500 * time.Millisecond},        // none
		{Name: "b", Duration: time.Second, Rate: 2.5},            // ops at 1.5s, 1.9s, 2.3s
		{Name: "c", Duration: 10 * time.Millisecond, Rate: 1000}, // 10 ops from 2.5s, 1 ms apart
	})
	cases := []struct {
		n     int64
		at    time.Duration
		phase int
	}{
		{0, 0, 0}, {1, 250 * time.Millisecond, 0}, {3, 750 * time.Millisecond, 0},
		{4, 1500 * time.Millisecond, 2}, {5, 1900 * time.Millisecond, 2}, {6, 2300 * time.Millisecond, 2},
		{7, 2500 * time.Millisecond, 3}, {16, 2509 * time.Millisecond, 3},
	}
	for _, c := range cases {
		at, p, ok := s.At(c.n)
		if !ok || at.Sub(t0) != c.at || p != c.phase {
			t.Errorf("At(%d) = %v phase %d ok %t; want %v phase %d", c.n, at.Sub(t0), p, ok, c.at, c.phase)
		}
	}
	if s.Total() != 17 {
		t.Errorf("Total %d, want 17", s.Total())
	}
	if _, _, ok := s.At(17); ok {
		t.Error("At past the end is ok")
	}
	if _, _, ok := s.At(-1); ok {
		t.Error("At(-1) is ok")
	}
	if got := s.End().Sub(t0); got != 2510*time.Millisecond {
		t.Errorf("End %v", got)
	}
	for at, want := range map[time.Duration]int{-time.Millisecond: -1, 0: 0, 999 * time.Millisecond: 0, time.Second: 1, 1700 * time.Millisecond: 2, 2505 * time.Millisecond: 3, 2510 * time.Millisecond: -1} {
		if got := s.PhaseAt(t0.Add(at)); got != want {
			t.Errorf("PhaseAt(%v) = %d, want %d", at, got, want)
		}
	}
}

// The count of operations in a phase matches rate x duration exactly, also for
// fractional products and long runs (no drift from float accumulation).
func TestScheduleCountsAndNoDrift(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		rate float64
		want int64
	}{
		{time.Second, 1000, 1000}, {10 * time.Minute, 2000, 1_200_000}, {time.Second, 0.5, 1}, {3 * time.Second, 0.5, 2},
		{time.Second, 3, 3}, {100 * time.Millisecond, 15, 2}, {time.Second, 0, 0},
	} {
		s := NewSchedule(t0, []Phase{{Duration: c.d, Rate: c.rate}})
		if s.Total() != c.want {
			t.Errorf("%v at %g: %d ops, want %d", c.d, c.rate, s.Total(), c.want)
		}
	}
	s := NewSchedule(t0, []Phase{{Duration: 10 * time.Minute, Rate: 50000}})
	last, _, _ := s.At(s.Total() - 1)
	if want := t0.Add(10*time.Minute - 20*time.Microsecond); last.Sub(want).Abs() > time.Microsecond {
		t.Errorf("last op at %v, want %v", last.Sub(t0), want.Sub(t0))
	}
}

func TestParsePhases(t *testing.T) {
	ps, err := ParsePhases("10s@100, 5s@0,1m@2500.5", false)
	if err != nil || len(ps) != 3 || ps[0].Rate != 100 || ps[1].Rate != 0 || ps[2].Duration != time.Minute || ps[2].Rate != 2500.5 {
		t.Fatalf("%+v %v", ps, err)
	}
	ps, err = ParsePhases("10s@8,10s@32", true)
	if err != nil || ps[1].Concurrency != 32 {
		t.Fatalf("%+v %v", ps, err)
	}
	for _, bad := range []string{"10s", "x@1", "-1s@5", "10s@-1", "10s@fast", "0s@5"} {
		if _, err := ParsePhases(bad, false); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// --phases: whatever it says, parsing never panics and what parses can run.
func FuzzParsePhases(f *testing.F) {
	for _, s := range []string{"10s@100,20s@500", "1m@5", "10s", "5s@NaN", "5s@-1", "0s@1", ",", ""} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, closed bool) {
		ps, err := ParsePhases(s, closed)
		if err != nil {
			return
		}
		for _, p := range ps {
			if p.Duration <= 0 || !(p.Rate >= 0) || math.IsInf(p.Rate, 0) || p.Concurrency < 0 {
				t.Errorf("%q gave phase %+v", s, p)
			}
		}
	})
}
