package results

import (
	"testing"
	"time"
)

// A GapTracker on its own, as the heartbeat uses it: windows under the
// threshold are not gaps, failures inside a window are counted, and Longest
// and Snapshot agree on the closed gaps; the open window shows only in Snapshot.
func TestGapTracker(t *testing.T) {
	g := NewGapTracker(200 * time.Millisecond)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for ms := 0; ms <= 1000; ms += 100 {
		g.Success(at(ms), false)
	}
	g.Failure(at(1500), true)
	g.Success(at(1900), false) // 0.9 s after the last success, one failure inside
	g.Success(at(2000), false)
	if l := g.Longest(); l != 900*time.Millisecond {
		t.Errorf("longest %v, want 900ms", l)
	}
	sg := g.Snapshot(at(2500)) // open for 0.5 s: an ongoing gap
	if len(sg.Gaps) != 2 || !gapEqual(sg.Gaps[0], Gap{Start: at(1000), End: at(1900), Duration: 0.9, Failed: 1, Late: 1}) ||
		!sg.Gaps[1].Ongoing || sg.Longest != 0.9 || !sg.ClusterWide() {
		t.Errorf("snapshot %+v", sg)
	}
	if l := g.Longest(); l != 900*time.Millisecond {
		t.Errorf("longest after a snapshot %v: the open window is not a closed gap", l)
	}
}
