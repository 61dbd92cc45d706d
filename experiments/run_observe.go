package experiments

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/internal/safego"
)

// startObservers starts the run's clock and what watches it: the abort guard,
// the fault events and journal, the freshness heartbeat and the indicator
// sampler.
func (r *runState) startObservers() error {
	r.rctx, r.cancel = context.WithCancelCause(r.ctx)
	r.later(func() error { r.cancel(nil); return nil })
	r.startGuard()
	if err := r.openEvents(); err != nil {
		return err
	}
	return r.startSampler()
}

// startGuard arms the abort guard: the spec's conditions, the caller's, and on a
// target (or a cluster htapchaos did not start) the default guard. It sees every
// second of the load and every sample.
func (r *runState) startGuard() {
	conds := append(r.spec.AbortConditions(), r.o.Abort...)
	if r.defaultGuard() {
		conds = append(conds, DefaultTargetGuard(r.spec)...)
	}
	r.obs = r.o.Observer
	if len(conds) == 0 {
		return
	}
	r.guard = NewGuard(conds, r.cancel, r.o.Observer)
	r.obs = r.guard
	for _, c := range conds {
		r.logf("abort guard: %s", c.Text)
	}
}

// defaultGuard says whether the run gets DefaultTargetGuard: on a Target, or
// on an On cluster not of containers, unless NoAbortGuard.
func (r *runState) defaultGuard() bool {
	if r.o.NoAbortGuard {
		return false
	}
	if r.o.Target != nil {
		return true
	}
	_, cb := r.o.On.(ContainerBacked)
	return r.o.On != nil && !cb
}

// openEvents opens events.jsonl, where the faults' steps go (and the log), and
// the fault journal: every fault is recorded before it acts, so that
// `htapchaos heal` can undo it if this process dies first.
func (r *runState) openEvents() error {
	ev, err := os.Create(filepath.Join(r.o.Out, "events.jsonl"))
	if err != nil {
		return err
	}
	r.later(ev.Close)
	if r.jkey != (faults.JournalKey{}) {
		if r.journal, err = faults.OpenJournal(r.jkey, r.o.Out); err != nil {
			return err
		}
	}
	r.events = faults.NewEvents(ev)
	r.events.OnEvent = func(e faults.Event) {
		line := e.Fault + " " + e.Step + " " + strings.Join(e.Nodes, ",")
		if e.Details != "" {
			line += ": " + e.Details
		}
		r.logf("%s", line)
	}
	return nil
}

// startSampler starts the heartbeat (when the spec has one) and the indicator
// sampler, which writes indicators.jsonl every second.
func (r *runState) startSampler() error {
	ind, err := os.Create(filepath.Join(r.o.Out, "indicators.jsonl"))
	if err != nil {
		return err
	}
	r.later(ind.Close)
	inodes := make([]IndicatorNode, len(r.nodes))
	for i, n := range r.nodes {
		inodes[i] = IndicatorNode{Index: n.index, Label: n.label, DSN: n.dsn, Container: n.container}
	}
	var sopts []SamplerOption
	if hb := r.spec.Heartbeat; hb != nil {
		h := NewHeartbeat(inodes[hb.Node-1], hb.Every.D())
		if err := h.Setup(r.rctx); err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
		sopts = append(sopts, WithHeartbeat(h))
		hctx, stopHB := context.WithCancel(r.rctx)
		var hwg sync.WaitGroup
		r.later(func() error { stopHB(); hwg.Wait(); return nil })
		safego.Go(&hwg, "heartbeat", stopOnPanic(r.logf, r.cancel), func() { _ = h.Run(hctx) })
	}
	if r.obs != nil {
		sopts = append(sopts, WithSampleHook(r.obs.Samples))
	}
	// The faults that hold memory (memory-fill): the sampler charts what they
	// hold apart from the server's and the container's memory.
	sopts = append(sopts, WithMemoryHolders(r.holders.list))
	r.sampler = NewSampler(inodes, ind, time.Second, sopts...)
	sctx, stop := context.WithCancel(r.rctx)
	var swg sync.WaitGroup
	r.stopSampler = func() { stop(); swg.Wait() }
	r.later(func() error { r.stopSampler(); return nil })
	safego.Go(&swg, "sampler", stopOnPanic(r.logf, r.cancel), func() { _ = r.sampler.Run(sctx) })
	return nil
}

// memoryHolders are the run's faults that hold memory, added as they are made.
type memoryHolders struct {
	mu sync.Mutex
	hs []faults.MemoryHolder
}

func (m *memoryHolders) add(h faults.MemoryHolder) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hs = append(m.hs, h)
}

func (m *memoryHolders) list() []faults.MemoryHolder {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hs
}
