package experiments

import (
	"os"
	"testing"

	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// testLabels mark what these tests create, so a crashed earlier run is swept at start
// and the end can check that nothing is left.
var testLabels = map[string]string{htc.LabelPurpose: "test-experiments"}

// keptRuns holds run directories that outlive their test (TestCompareEngines
// reads the data-movement runs of both sharded engines); removed at the end.
var keptRuns string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "htapchaos-experiments-")
	if err != nil {
		panic(err)
	}
	keptRuns = dir
	code := htc.RunTests(m, testLabels)
	os.RemoveAll(dir)
	os.Exit(code)
}

// sharedGalera is the 3-node Galera cluster of the quick builtins, shared by the
// package's tests (started once, removed after the last test). Tests that fault it
// heal it before they end.
func sharedGalera(t testing.TB) *htc.Cluster {
	t.Helper()
	first, err := Builtin("failover-kill", ParseOptions{Quick: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := first.ClusterConfig()
	cfg.Labels = testLabels
	return htc.SharedForTest(t, "galera-quick", cfg)
}
