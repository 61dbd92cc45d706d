package experiments_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/htapchaos/htapchaos/experiments"
	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// A user's own test runs an experiment against containers it started, and fails on
// a failed verdict. (Compiled, not run here: TestQuickSuiteOnGalera runs the same
// calls against real containers.)
func Example() {
	var t *testing.T // your test's *testing.T
	spec, err := experiments.Builtin("failover-kill", experiments.ParseOptions{Quick: true})
	if err != nil {
		t.Fatal(err)
	}
	cluster := htc.StartForTest(t, spec.ClusterConfig()) // or your own cluster
	res, err := experiments.Run(context.Background(), spec, experiments.Options{Cluster: cluster, Out: t.TempDir(), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Findings {
		fmt.Printf("%s %s: %s (%.3g %s, budget %s %.3g)\n", f.Mode, f.Name, f.Verdict, f.Value, f.Unit, f.Op, f.Budget)
	}
	if res.Verdict() == experiments.Fail {
		t.Errorf("%s failed", spec.Name)
	}
}
