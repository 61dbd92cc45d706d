package loadgen

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/internal/safego"
)

// A panicking op does not kill the process: the run stops as on a cancel, keeps
// what it measured and returns the panic (which names the worker and holds the
// op's stack) as its error.
func TestPanickingOpStopsTheRunWithTheCause(t *testing.T) {
	for _, closed := range []bool{false, true} {
		name := map[bool]string{false: "open", true: "closed"}[closed]
		t.Run(name, func(t *testing.T) {
			var n atomic.Int64
			wl := &Workload{Name: "boom", NoDB: true, Ops: []Op{{Name: "op", Weight: 1, Run: func(context.Context, Querier, *Worker) error {
				if n.Add(1) == 200 {
					var m map[string]int
					m["x"]++ // a bug in an op
				}
				return nil
			}}}}
			phase := Phase{Duration: time.Minute, Rate: 1000}
			if closed {
				phase = Phase{Duration: time.Minute, Concurrency: 2}
			}
			start := time.Now()
			res, err := Run(context.Background(), Config{Workloads: []Spec{{Workload: wl, Closed: closed, Phases: []Phase{phase}, Workers: 2}}})
			var pe *safego.PanicError
			if !errors.As(err, &pe) {
				t.Fatalf("err %v, want the panic", err)
			}
			if !strings.HasPrefix(pe.Name, "load boom worker ") || !strings.Contains(err.Error(), "assignment to entry in nil map") || !strings.Contains(err.Error(), "TestPanickingOpStopsTheRunWithTheCause") {
				t.Errorf("the error does not name the worker or hold the op's stack:\n%v", err)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("the run went on for %v after the panic", d)
			}
			if res == nil || res.Summary == nil {
				t.Fatal("no results kept")
			}
			if o := opSummary(t, res.Summary, "op"); o.Count < 150 {
				t.Errorf("%d ops recorded, want the ~199 before the panic", o.Count)
			}
		})
	}
}

// A panic in a tick of the recorder (here the progress callback) stops the run too.
func TestPanickingTickStopsTheRunWithTheCause(t *testing.T) {
	cfg := Config{Workloads: []Spec{{Workload: Noop(), Phases: []Phase{{Duration: time.Minute, Rate: 100}}}}, Interval: 10 * time.Millisecond,
		Progress: func(Progress) { panic("progress") }}
	res, err := Run(context.Background(), cfg)
	var pe *safego.PanicError
	if !errors.As(err, &pe) || pe.Name != "load recorder" || pe.Value != "progress" {
		t.Fatalf("err %v, want the recorder's panic", err)
	}
	if res == nil || res.Summary == nil {
		t.Fatal("no results kept")
	}
}
