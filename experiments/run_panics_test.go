package experiments

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/internal/safego"
	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// A panic in the sampler (here in its sample hook) does not kill the process: as
// Run launches it, it cancels the run with the panic as the cause, and says so.
func TestSamplerPanicStopsTheRun(t *testing.T) {
	node := IndicatorNode{Index: 1, Label: "n1", DSN: "root@tcp(127.0.0.1:1)/htapchaos"} // nothing listens: a down sample
	s := NewSampler([]IndicatorNode{node}, nil, 50*time.Millisecond, WithSampleHook(func([]Sample) { panic("hook") }))
	rctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var mu sync.Mutex
	var logged []string
	logf := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, fmt.Sprintf(format, a...))
	}
	var swg sync.WaitGroup
	safego.Go(&swg, "sampler", stopOnPanic(logf, cancel), func() { _ = s.Run(rctx) })
	select {
	case <-rctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the run was not cancelled")
	}
	swg.Wait()
	var pe *safego.PanicError
	if !errors.As(context.Cause(rctx), &pe) || pe.Name != "sampler" || pe.Value != "hook" {
		t.Errorf("cause %v, want the sampler's panic", context.Cause(rctx))
	}
	if len(logged) != 1 || logged[0] != "panic in sampler: hook: stopping the run" {
		t.Errorf("logged %q", logged)
	}
	if strings.Contains(strings.Join(logged, ""), "\n") {
		t.Error("the log line holds the stack")
	}
}

// A panic in one of the sampler's own goroutines (here: a container node with
// no engine behind it) is raised again by Run, for the same handling.
func TestSamplerGoroutinePanicIsRaisedByRun(t *testing.T) {
	node := IndicatorNode{Index: 1, Label: "n1", DSN: "root@tcp(127.0.0.1:1)/htapchaos", Container: &htc.Node{}}
	s := NewSampler([]IndicatorNode{node}, nil, 50*time.Millisecond)
	rctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var swg sync.WaitGroup
	safego.Go(&swg, "sampler", cancel, func() { _ = s.Run(rctx) })
	select {
	case <-rctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the run was not cancelled")
	}
	swg.Wait()
	var pe *safego.PanicError
	if !errors.As(context.Cause(rctx), &pe) || !strings.HasPrefix(pe.Name, "sampler: n1") {
		t.Errorf("cause %v, want the panic of a sampler goroutine", context.Cause(rctx))
	}
}
