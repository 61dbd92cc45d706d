package testcontainers

import (
	"os"
	"testing"
)

// testLabels mark what these tests create, so a crashed earlier run is swept at start
// and the end can check that nothing is left.
var testLabels = map[string]string{LabelPurpose: "test-testcontainers"}

func TestMain(m *testing.M) { os.Exit(RunTests(m, testLabels)) }
