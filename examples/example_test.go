package examples_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/examples"
	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/loadgen"
	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// labels mark the containers these tests start: RunTests sweeps what a crashed
// earlier run left and checks nothing is left at the end.
var labels = map[string]string{htc.LabelPurpose: "test-examples"}

func TestMain(m *testing.M) { os.Exit(htc.RunTests(m, labels)) }

// The spec names our own workload kind, fault kind and failure mode; the
// registries that know them are given to ParseSpec (to check it) and to Run (to run it).
const spec = `name: custom-freeze
modes: [durability, freeze-stall]
cluster: {topology: single, memory: 512MiB}
phases:
  - {name: baseline, duration: 3s}
  - {name: freeze, duration: 3s}
  - {name: recovery, duration: 3s}
workloads:
  - {kind: kv, rate: 100, timeout: 3s}
faults:
  - {kind: freeze, phase: freeze, offset: 500ms, for: 1500ms, node: "1"}
`

// A fault kind, a workload and a scorer of this module's own, registered beside
// the builtins, run in an experiment on a cluster in containers: the fault froze
// the node and thawed it, the workload's ops ran, stalled while the node was
// frozen, its acknowledged inserts were all read back by the durability audit,
// and the scorer judged the stall.
func TestCustomFaultAndWorkload(t *testing.T) {
	workloads := loadgen.NewRegistry()
	workloads.Register(examples.KV())
	kinds := faults.NewRegistry()
	kinds.Register(examples.FreezeKind())
	scorers := experiments.NewScorers()
	scorers.Register(examples.FreezeStallScorer{})

	s, err := experiments.ParseSpec("custom-freeze.yaml", []byte(spec), experiments.ParseOptions{Workloads: workloads, Faults: kinds, Scorers: scorers})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := experiments.Run(ctx, s, experiments.Options{Out: filepath.Join(t.TempDir(), "run"), Seed: 1, Labels: labels,
		Workloads: workloads, Faults: kinds, Scorers: scorers, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}

	// The fault's life cycle, as the runner recorded it.
	f := res.Recorded.Faults[0]
	if f.Kind != "freeze" || f.Injected.IsZero() || !f.TookEffect() || f.Recovered.IsZero() || f.Healthy.IsZero() || f.Error != "" {
		t.Fatalf("fault record %+v: want freeze injected, effective, recovered and healthy", f)
	}
	// The workload's ops, from the run's own figures by window (latency counts
	// from each op's intended start, in ms).
	count := map[string]int64{}
	slowest := map[string]float64{}
	for _, st := range res.Recorded.Phase {
		if st.Node == 0 && st.Op != "" {
			count[st.Window] += st.Count
			slowest[st.Window] = max(slowest[st.Window], st.Latency.Max/1000)
		}
	}
	if count["baseline"] == 0 || count["freeze"]+count["recovery"] == 0 {
		t.Errorf("ops by phase %v: want get and put counted", count)
	}
	for _, op := range []string{"get", "put"} {
		if n := opCount(res.Recorded.Phase, op); n == 0 {
			t.Errorf("op %s never ran", op)
		}
	}
	// An op due while the node was frozen waited for the thaw (it completes, and
	// is counted, in the freeze phase or just after it): the slowest took at
	// least half the hold, while none took a tenth of it in the baseline.
	hold := f.Recovered.Sub(f.Effective).Seconds()
	if frozen := max(slowest["freeze"], slowest["recovery"]); frozen < 0.5*hold || slowest["baseline"] > 0.1*hold {
		t.Errorf("slowest op %.3fs after the freeze, %.3fs in the baseline; the freeze held %.3fs: the load did not see it", frozen, slowest["baseline"], hold)
	}
	// The durability audit read kv.k back, and the findings judge it.
	if a := res.Recorded.Audit; a == nil || a.Acked == 0 || a.Lost != 0 || a.Error != "" {
		t.Errorf("audit %+v: want acknowledged puts, none lost", a)
	}
	// Our own scorer judged the freeze: the stall it measured is the one above.
	var stall *experiments.Finding
	for i, fd := range res.Findings {
		if fd.Mode == examples.ModeFreezeStall {
			stall = &res.Findings[i]
		}
	}
	if stall == nil || stall.Verdict != experiments.Pass || stall.Value != max(slowest["freeze"], slowest["recovery"]) {
		t.Errorf("freeze-stall finding %+v: want a pass measuring the slowest op after the freeze", stall)
	}
	for _, fd := range res.Findings {
		t.Logf("%s/%s: %s %s", fd.Mode, fd.Name, fd.Verdict, fd.Reason)
		if fd.Verdict == experiments.Fail {
			t.Errorf("%s/%s failed: %s", fd.Mode, fd.Name, fd.Reason)
		}
	}
}

// opCount is how many times op succeeded over the run's phases.
func opCount(stats []experiments.PhaseStats, op string) int64 {
	var n int64
	for _, st := range stats {
		if st.Node == 0 && st.Op == op && !strings.HasPrefix(st.Window, experiments.FaultPrefix) {
			n += st.Count
		}
	}
	return n
}
