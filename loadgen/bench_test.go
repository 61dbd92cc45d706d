package loadgen

import (
	"context"
	"testing"
	"time"
)

// BenchmarkOpenLoop50K drives the noop workload open-loop at the article's peak of
// 50K ops/s for 3 s per iteration and reports the achieved rate as a percentage of
// the target and the schedule lag: the latency of a no-op operation from its intended
// start is the time the pacer and a worker took to start it.
//
//	go test -run x -bench OpenLoop50K -benchtime 3x ./loadgen
func BenchmarkOpenLoop50K(b *testing.B) {
	const rate, dur = 50_000.0, 3 * time.Second
	var achieved, lagP99, lagP50 []float64
	for b.Loop() {
		start := time.Now()
		res, err := Run(context.Background(), Config{Workloads: []Spec{{Workload: Noop(), Phases: []Phase{{Duration: dur, Rate: rate}}, Workers: 8}}})
		if err != nil {
			b.Fatal(err)
		}
		o := res.Summary.Ops[0]
		wall := time.Since(start)
		if o.Count != int64(rate*dur.Seconds()) || o.Dropped != 0 {
			b.Fatalf("count %d dropped %d", o.Count, o.Dropped)
		}
		// The rate the schedule was kept at: every op ran; the run took this long.
		achieved = append(achieved, float64(o.Count)/wall.Seconds()/rate*100)
		lagP99 = append(lagP99, o.Latency.P99*1000)
		lagP50 = append(lagP50, o.Latency.P50*1000)
	}
	b.ReportMetric(median(achieved), "%rate")
	b.ReportMetric(median(lagP50), "lag-p50-µs")
	b.ReportMetric(median(lagP99), "lag-p99-µs")
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
