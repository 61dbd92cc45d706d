package loadgen

import "testing"

func TestProcs(t *testing.T) {
	open := func(rates ...float64) Spec {
		s := Spec{}
		for _, r := range rates {
			s.Phases = append(s.Phases, Phase{Rate: r})
		}
		return s
	}
	closed := func(conc ...int) Spec {
		s := Spec{Closed: true}
		for _, c := range conc {
			s.Phases = append(s.Phases, Phase{Concurrency: c})
		}
		return s
	}
	for _, tc := range []struct {
		name  string
		specs []Spec
		limit int
		want  int
	}{
		{"nothing", nil, 8, 1},
		{"2K open", []Spec{open(2000)}, 8, 1},
		{"peak phase counts", []Spec{open(2000, 15000, 500)}, 8, 2},
		{"rates add up", []Spec{open(6000), open(6000)}, 8, 2},
		{"50K open", []Spec{open(50000)}, 8, 5},
		{"capped", []Spec{open(50000)}, 2, 2},
		{"8 workers", []Spec{closed(8)}, 8, 1},
		{"32 workers", []Spec{closed(8, 32)}, 8, 1},
		{"33 workers", []Spec{closed(33)}, 8, 2},
		{"64 workers in two workloads", []Spec{closed(32), closed(32)}, 8, 2},
		{"open and closed", []Spec{open(2000), closed(4)}, 8, 2},
		{"heavy adds one", []Spec{open(2000), {Workload: Analytics(), Phases: []Phase{{Rate: 2}}}}, 8, 2},
		{"heavy alone", []Spec{{Workload: Batch(), Phases: []Phase{{Rate: 2}}}}, 8, 2},
		{"heavy capped", []Spec{open(2000), {Workload: Batch(), Phases: []Phase{{Rate: 2}}}}, 1, 1},
	} {
		if got := Procs(tc.specs, tc.limit); got != tc.want {
			t.Errorf("%s: Procs = %d, want %d", tc.name, got, tc.want)
		}
	}
}
