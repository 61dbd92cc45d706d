package experiments

import (
	"os"
	"testing"

	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// testLabels mark what these tests create, so a crashed earlier run is swept at start
// and the end can check that nothing is left.
var testLabels = map[string]string{htc.LabelPurpose: "test-experiments"}

func TestMain(m *testing.M) { os.Exit(htc.RunTests(m, testLabels)) }
