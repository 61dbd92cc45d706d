package faults

import (
	"fmt"
	"testing"

	"github.com/htapchaos/htapchaos/loadgen"
)

// Bad parameters are usage errors, all reported at once, when the parameters are
// parsed; Setup refuses them too, before anything runs.
func TestSpikeRefusesBadParams(t *testing.T) {
	reg := NewRegistry()
	cases := []struct {
		kind string
		raw  map[string]string
		want []string // in the error; none: valid parameters
	}{
		{"batch-spike", map[string]string{"times": "0"}, []string{"times=0"}},
		{"batch-spike", map[string]string{"rate": "0"}, []string{"rate=0"}},
		{"batch-spike", map[string]string{"rate": "0", "times": "0", "rows": "0"}, []string{"rate=0", "times=0", "rows=0"}},
		{"batch-spike", map[string]string{"rows": "1000000"}, []string{"rows=1000000"}},
		{"analytics-spike", map[string]string{"times": "0"}, []string{"times=0"}},
		{"analytics-spike", map[string]string{"rate": "0"}, []string{"rate=0"}},
		{"analytics-spike", map[string]string{"mix": "bogus-scan"}, []string{"mix=bogus-scan", `no operation "bogus-scan"`}},
		{"analytics-spike", map[string]string{"mix": "fraud-scan=x"}, []string{"mix=fraud-scan=x"}},
		{"analytics-spike", map[string]string{"mix": "sql"}, []string{"mix=sql", "query of your own"}},
		{"analytics-spike", map[string]string{"mix": "fraud-scan"}, nil},
		{"analytics-spike", map[string]string{"mix": "dashboard=3, fraud-scan=1", "rate": "1", "times": "1"}, nil},
		{"batch-spike", nil, nil},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.kind, tc.raw), func(t *testing.T) {
			k, err := reg.Get(tc.kind)
			if err != nil {
				t.Fatal(err)
			}
			checkParams(t, k, tc.raw, tc.want, "no node chosen")
		})
	}
	// A batch spike has no mix; an analytics spike has no rows.
	k, _ := reg.Get("batch-spike")
	if _, err := k.Parse(map[string]string{"mix": "bulk-insert"}); err == nil {
		t.Error("batch-spike took mix")
	}
	k, _ = reg.Get("analytics-spike")
	if _, err := k.Parse(map[string]string{"rows": "10"}); err == nil {
		t.Error("analytics-spike took rows")
	}
}

func TestSpikeMixParses(t *testing.T) {
	mix, err := spikeMix(loadgen.Analytics(), "fraud-scan, dashboard=3")
	if err != nil {
		t.Fatal(err)
	}
	if mix["fraud-scan"] != 1 || mix["dashboard"] != 3 || len(mix) != 2 {
		t.Errorf("mix %v", mix)
	}
}
