package experiments_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/htapchaos/htapchaos/experiments"
	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// A nightly test runs an experiment three times on one cluster and fails only on a
// verdict taken on a median; unstable findings are logged. (Compiled, not run here:
// TestRepeatOnGalera runs the same calls against real containers.)
func ExampleRepeat() {
	var t *testing.T // your test's *testing.T
	spec, err := experiments.Builtin("htap-contention", experiments.ParseOptions{Quick: true})
	if err != nil {
		t.Fatal(err)
	}
	cluster := htc.StartForTest(t, spec.ClusterConfig())
	rr, err := experiments.Repeat(context.Background(), spec, 3, experiments.RepeatOptions{
		Options: experiments.Options{Cluster: cluster, Out: t.TempDir(), Seed: 1}, // seeds 1, 2, 3; runs in r1, r2, r3
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rr.File.Unstable() {
		t.Logf("unstable: %s: %s: %s, median %s", f.Mode, f.Name, f.CountsText(), f.SpreadText())
	}
	if rr.Verdict() == experiments.Fail {
		t.Errorf("%s failed on the medians", spec.Name)
	}
}

// Three runs of one finding: the median and its spread, the verdict on the median,
// and unstable, since one run failed.
func ExampleAggregateFindings() {
	run := func(v experiments.Verdict, x float64) []experiments.Finding {
		return []experiments.Finding{{Mode: "htap-contention", Name: "oltp p99 inflation", Op: "<=", Budget: 3, Verdict: v, Value: x, Unit: "x"}}
	}
	for _, f := range experiments.AggregateFindings([][]experiments.Finding{run(experiments.Fail, 6.2), run(experiments.Pass, 1.9), run(experiments.Pass, 2.4)}) {
		fmt.Printf("%s: %s %s, %s, unstable %t (%s)\n", f.Name, f.SpreadText(), f.Unit, f.Verdict, f.Unstable, f.CountsText())
	}
	// Output: oltp p99 inflation: 2.4 (1.9..6.2) x, pass, unstable true (pass 2, fail 1)
}
