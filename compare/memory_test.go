package compare

import (
	"testing"

	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/results"
)

// Memory rows appear only where a run measured per-query memory: for the
// analytics op in the phase it ran, in MiB, lower better; none for OLTP.
func TestMemoryRows(t *testing.T) {
	mem := func(p50, p99, max float64) *results.BytePercentiles {
		return &results.BytePercentiles{P50: p50 * (1 << 20), P99: p99 * (1 << 20), Max: max * (1 << 20)}
	}
	dash := func(phase string, m *results.BytePercentiles) experiments.PhaseStats {
		return experiments.PhaseStats{Window: phase, Workload: "analytics", Op: "dashboard", Count: 10, Rate: 1,
			Latency: results.Percentiles{P50: 50, P99: 90, Max: 100}, Memory: m}
	}
	a := fakeRun{dir: "a", rate: 200, stats: []experiments.PhaseStats{
		stat("baseline", "", 0, 1600, 4, 200, 0),
		dash("baseline", mem(60, 64, 66)),
		dash("fault", nil), // not measured in that phase
	}}.rd()
	b := fakeRun{dir: "b", rate: 400, stats: []experiments.PhaseStats{
		stat("baseline", "", 0, 3200, 3, 400, 0),
		dash("baseline", mem(30, 40, 48)),
		dash("fault", nil),
	}}.rd()
	c, err := Compare([]*experiments.RunDir{a, b})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]float64{ // A's and B's median, MiB
		"baseline/dashboard/" + MetricMemoryP50: {60, 30},
		"baseline/dashboard/" + MetricMemoryP99: {64, 40},
		"baseline/dashboard/" + MetricMemoryMax: {66, 48},
	}
	seen := 0
	for _, r := range c.Workloads {
		k := r.Phase + "/" + r.Op + "/" + r.Metric
		if r.Unit != "MiB" {
			continue
		}
		w, ok := want[k]
		if !ok {
			t.Errorf("memory row %s (workload %s): not expected", k, r.Workload)
			continue
		}
		seen++
		if r.Cells[0].Median == nil || r.Cells[1].Median == nil || *r.Cells[0].Median != w[0] || *r.Cells[1].Median != w[1] {
			t.Errorf("%s: cells %+v, want medians %v", k, r.Cells, w)
		}
		if r.Direction != Lower || r.Cells[1].Better != "B" || r.Cells[1].Ratio == nil || *r.Cells[1].Ratio != w[1]/w[0] {
			t.Errorf("%s: direction %s, B better %q, ratio %v", k, r.Direction, r.Cells[1].Better, fmtPtr(r.Cells[1].Ratio))
		}
	}
	if seen != len(want) {
		t.Errorf("%d of %d memory rows", seen, len(want))
	}
}
