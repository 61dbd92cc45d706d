package results

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"
)

// Series gives each workload's figures per interval, merged over ops and nodes,
// with the latency the run recorded (windowRunTicks: 10 ms in seconds 0-4, 100
// ms in 5-9, dashboards of 900 ms from second 5).
func TestSeries(t *testing.T) {
	dir, at := windowRunTicks(t)
	pts, _, err := SeriesAndDistributions(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var oltp, dash []SeriesPoint
	for _, p := range pts {
		switch p.Workload {
		case "oltp":
			oltp = append(oltp, p)
		case "dash boards":
			dash = append(dash, p)
		default:
			t.Errorf("unknown workload %q", p.Workload)
		}
	}
	if len(oltp) != 10 || len(dash) != 5 {
		t.Fatalf("%d oltp points, %d dashboard points; want 10 and 5", len(oltp), len(dash))
	}
	for s, p := range oltp {
		if !p.T.Equal(at[s+1].Truncate(1e6)) {
			t.Errorf("second %d: T %s, want the tick %s", s, p.T, at[s+1])
		}
		want := 10.0
		if s >= 5 {
			want = 100
		}
		if p.Count != 20 || !near(p.Latency.P50, want) || !near(p.Latency.P999, want) || !near(p.Latency.Max, want) {
			t.Errorf("second %d: %+v, want 20 successes at %g ms", s, p, want)
		}
		if math.Abs(p.Seconds-1.001) > 1e-9 || math.Abs(p.Rate()-20/1.001) > 1e-9 {
			t.Errorf("second %d: %g s, rate %g", s, p.Seconds, p.Rate())
		}
		wantErr := map[int]int64{5: 1, 6: 1, 7: 1, 8: 2}[s]
		if p.Errors != wantErr {
			t.Errorf("second %d: %d errors %v, want %d", s, p.Errors, p.ByClass, wantErr)
		}
		if s == 8 && p.ByClass[ClassConflict] != 2 || s == 6 && p.ByClass[ClassTimeout] != 1 {
			t.Errorf("second %d: errors by class %v", s, p.ByClass)
		}
		if wantDropped := map[bool]int64{true: 4}[s < 5]; p.Dropped != wantDropped {
			t.Errorf("second %d: %d dropped, want %d", s, p.Dropped, wantDropped)
		}
	}
	for _, p := range dash {
		if p.Count != 2 || !near(p.Latency.P50, 900) {
			t.Errorf("dashboards: %+v", p)
		}
	}
}

// Distributions merge a window's intervals exactly and sample them as
// HdrHistogram plots them: 10 points per decade of 1/(1-q), then the maximum.
func TestDistributions(t *testing.T) {
	dir, at := windowRunTicks(t)
	_, ds, err := SeriesAndDistributions(dir, []Window{{Name: "slow", Start: at[5], End: at[10]}, {Name: "mixed", Start: at[4], End: at[6]}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 4 || ds[0].Window != "slow" || ds[0].Workload != "dash boards" || ds[1].Workload != "oltp" || ds[3].Window != "mixed" || ds[3].Workload != "oltp" {
		t.Fatalf("distributions: %+v", ds)
	}
	slow, mixed := ds[1], ds[3]
	if slow.Count != 100 || mixed.Count != 40 {
		t.Errorf("counts %d and %d, want 100 and 40", slow.Count, mixed.Count)
	}
	// 100 values: q up to 0.99 (20 points, i = 0..20), and the max.
	if len(slow.Points) != 22 || slow.Points[21].Q != 1 || math.Abs(slow.Points[20].Q-0.99) > 1e-12 {
		t.Errorf("slow: %d points %+v", len(slow.Points), slow.Points)
	}
	for _, p := range slow.Points {
		if !near(p.Ms, 100) {
			t.Errorf("slow: %+v, want 100 ms", p)
		}
	}
	// 20 at 10 ms, 20 at 100 ms: the median is 10 ms, from q = 0.9 it is 100 ms.
	for _, p := range mixed.Points {
		want := 100.0
		if p.Q <= 0.5 {
			want = 10
		}
		if !near(p.Ms, want) {
			t.Errorf("mixed: q %.4f: %g ms, want %g", p.Q, p.Ms, want)
		}
	}
}

// A stall of the whole run leaves no line in the logs: the series puts the
// seconds back, at zero, so that a rate is never averaged over the stall.
func TestSeriesStall(t *testing.T) {
	dir := t.TempDir()
	r, err := NewRecorder(Options{Dir: dir, Start: t0})
	if err != nil {
		t.Fatal(err)
	}
	h := r.Handle(Key{Workload: "oltp", Op: "point-read", Node: 1})
	for s := range 10 {
		sec := t0.Add(time.Duration(s) * time.Second)
		if s < 3 || s > 5 {
			for i := range 100 {
				at := sec.Add(time.Duration(i) * 10 * time.Millisecond)
				h.Record(at, at, at.Add(ms(2)), nil)
			}
		}
		if _, err := r.Tick(sec.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Close(t0.Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	pts, _, err := SeriesAndDistributions(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 10 {
		t.Fatalf("%d points, want 10: %+v", len(pts), pts)
	}
	for s, p := range pts {
		want := 100.0
		if s >= 3 && s <= 5 {
			want = 0
		}
		if !p.T.Equal(t0.Add(time.Duration(s+1)*time.Second)) || p.Seconds != 1 || p.Rate() != want {
			t.Errorf("second %d: T %s, %g s, rate %g; want %g/s over 1 s", s, p.T.Sub(t0), p.Seconds, p.Rate(), want)
		}
		if (want == 0) != (p.Latency.P50 == 0) {
			t.Errorf("second %d: latency %+v with rate %g", s, p.Latency, p.Rate())
		}
	}
}

// A tick loop held up (a slow disk under the ledger's fsync) makes one long
// interval, not a spike: its rate is over its own length, from the log's times.
func TestSeriesDelayedTick(t *testing.T) {
	dir := t.TempDir()
	r, err := NewRecorder(Options{Dir: dir, Start: t0})
	if err != nil {
		t.Fatal(err)
	}
	h := r.Handle(Key{Workload: "oltp", Op: "point-read", Node: 1})
	from := 0
	for _, tick := range []int{1, 2, 3, 6, 7} {
		for at := from * 1000; at < tick*1000; at += 10 { // 100/s over the interval
			a := t0.Add(time.Duration(at) * time.Millisecond)
			h.Record(a, a, a.Add(ms(1)), nil)
		}
		from = tick
		if _, err := r.Tick(t0.Add(time.Duration(tick) * time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	// Close 400 ms after the last tick, with nothing in between.
	if _, err := r.Close(t0.Add(7400 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	pts, _, err := SeriesAndDistributions(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pts {
		got = append(got, fmt.Sprintf("%gs:%gs:%g/s", p.T.Sub(t0).Seconds(), p.Seconds, math.Round(p.Rate())))
	}
	want := []string{"1s:1s:100/s", "2s:1s:100/s", "3s:1s:100/s", "6s:3s:100/s", "7s:1s:100/s"}
	if !slices.Equal(got, want) {
		t.Errorf("points %v, want %v", got, want)
	}
}

func TestIntervalGrid(t *testing.T) {
	const b = 100_000
	prev := func(ends ...int64) map[int64]int64 { // each interval starts where the one before ended
		m := map[int64]int64{}
		for i := 1; i < len(ends); i++ {
			m[ends[i]] = ends[i-1]
		}
		return m
	}
	for _, tc := range []struct {
		name       string
		ends       []int64
		startOf    map[int64]int64
		start, end int64
		want       []span
	}{
		{"steady", []int64{b + 1000, b + 2000, b + 3000}, prev(b, b+1000, b+2000, b+3000), b, b + 3000,
			[]span{{b, b + 1000}, {b + 1000, b + 2000}, {b + 2000, b + 3000}}},
		{"a late tick", []int64{b + 1000, b + 2000, b + 5000}, prev(b, b+1000, b+2000, b+5000), b, b + 5000,
			[]span{{b, b + 1000}, {b + 1000, b + 2000}, {b + 2000, b + 5000}}},
		{"a stall of the whole run", []int64{b + 1000, b + 2000, b + 6000}, map[int64]int64{b + 1000: b, b + 2000: b + 1000, b + 6000: b + 5000}, b, b + 6000,
			[]span{{b, b + 1000}, {b + 1000, b + 2000}, {b + 2000, b + 3000}, {b + 3000, b + 4000}, {b + 4000, b + 5000}, {b + 5000, b + 6000}}},
		{"close after an empty tick", []int64{b + 1000, b + 2000, b + 3400}, map[int64]int64{b + 1000: b, b + 2000: b + 1000, b + 3400: b + 3000}, b, b + 3400,
			[]span{{b, b + 1000}, {b + 1000, b + 2000}, {b + 2000, b + 3000}, {b + 3000, b + 3400}}},
		{"five-second intervals", []int64{b + 5000, b + 10000}, prev(b, b+5000, b+10000), b, b + 10000,
			[]span{{b, b + 5000}, {b + 5000, b + 10000}}},
		{"nothing at the start nor the end", []int64{b + 3000, b + 4000}, prev(b+2000, b+3000, b+4000), b, b + 6000,
			[]span{{b, b + 1000}, {b + 1000, b + 2000}, {b + 2000, b + 3000}, {b + 3000, b + 4000}, {b + 4000, b + 5000}, {b + 5000, b + 6000}}},
		{"no times in the logs", []int64{b + 1000, b + 2000}, nil, b, b + 2000, []span{{b, b + 1000}, {b + 1000, b + 2000}}},
		{"no summary", []int64{b + 1000, b + 2000}, nil, 0, 0, []span{{b, b + 1000}, {b + 1000, b + 2000}}},
		{"nothing", nil, nil, b, b + 5000, nil},
	} {
		if got := intervalGrid(tc.ends, tc.startOf, tc.start, tc.end); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
