package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/htapchaos/htapchaos/internal/safego"
)

// Fault is one injection. Each step either does its work or says why it could not;
// the Runner calls them in order and never skips Recover once Inject was called.
type Fault interface {
	// Setup checks the targets can take the fault and prepares what it needs.
	Setup(ctx context.Context, env *Env) error
	// Inject starts the fault.
	Inject(ctx context.Context, env *Env) error
	// WaitForEffect returns once the fault has verifiably taken effect.
	WaitForEffect(ctx context.Context, env *Env) error
	// Recover undoes the fault.
	Recover(ctx context.Context, env *Env) error
	// WaitForRecovery returns once the targets serve again.
	WaitForRecovery(ctx context.Context, env *Env) error
	// Cleanup removes what Setup made.
	Cleanup(ctx context.Context, env *Env) error
}

// Measurement is a figure a fault measured about its own effect: the memory
// percentage it reached, how long an ALTER TABLE ran, the delay a proxy added.
type Measurement struct {
	Name  string  `json:"name"`
	Node  string  `json:"node,omitempty"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit,omitempty"` // s, %, ms, bytes, rows, ...
	Note  string  `json:"note,omitempty"` // an error, a variant, a method
}

func (m Measurement) String() string {
	s := m.Name
	if m.Node != "" {
		s += " on " + m.Node
	}
	if m.Unit == "unix-s" { // a point in time
		s += " = " + time.Unix(0, int64(m.Value*1e9)).UTC().Format("15:04:05.000")
	} else {
		s += fmt.Sprintf(" = %.4g", m.Value)
	}
	if m.Unit != "" && m.Unit != "unix-s" {
		s += " " + m.Unit
	}
	if m.Note != "" {
		s += " (" + m.Note + ")"
	}
	return s
}

// Measurer is implemented by faults that measure their effect. Measurements is
// called after recovery; it must be safe while the fault's own goroutines run.
type Measurer interface {
	Measurements() []Measurement
}

// Env is what a fault acts on and reports to.
type Env struct {
	Targets []Node
	Cluster Cluster
	Events  *Events
	Params  Params
	// Proxies are latency proxies in front of the nodes' client ports, started by
	// whoever routes load through them; network-latency starts its own when nil.
	Proxies *Proxies
	// RunTags are the id ranges (loadgen.IDs) the run's own writers use: a fault
	// that writes rows of its own (a batch spike) picks another.
	RunTags []int64
	// Journal, when set, records the fault before it acts and its recovery after,
	// so that `htapchaos heal` can undo it if this process dies first.
	Journal *Journal
}

// State is where a fault is in its life cycle.
type State string

const (
	StateNew       State = "new"
	StateReady     State = "ready"     // set up
	StateInjected  State = "injected"  // inject called
	StateEffective State = "effective" // took effect
	StateRecovered State = "recovered" // recover called
	StateHealthy   State = "healthy"   // targets serve again
	StateCleaned   State = "cleaned"
	StateFailed    State = "failed" // recovery failed: a person must look
)

// legal lists the moves the state machine allows.
var legal = map[State][]State{
	StateNew:       {StateReady, StateCleaned},
	StateReady:     {StateInjected, StateCleaned},
	StateInjected:  {StateEffective, StateRecovered, StateFailed},
	StateEffective: {StateRecovered, StateFailed},
	StateRecovered: {StateHealthy, StateFailed},
	StateHealthy:   {StateCleaned},
	StateFailed:    {StateCleaned},
}

// ErrIllegalMove is returned for a step the life cycle does not allow now.
var ErrIllegalMove = errors.New("illegal fault state change")

// Runner drives one fault through its life cycle.
type Runner struct {
	Kind  string
	Fault Fault
	Env   *Env
	// EffectTimeout bounds the wait for the fault to take effect (default 60s).
	EffectTimeout time.Duration
	// HoldUntil, when set, ends the hold at this time instead of hold after the
	// effect: a fault on a timeline ends with its window however long it took to
	// take effect.
	HoldUntil time.Time

	mu        sync.Mutex
	state     State
	journalID string
	failed    bool // recovery failed: the fault may still be in place
	// Timings measured by the runner.
	Injected, Effective, Recovered, Healthy time.Time
}

// NewRunner wraps a fault.
func NewRunner(kind string, f Fault, env *Env) *Runner {
	return &Runner{Kind: kind, Fault: f, Env: env, state: StateNew}
}

// State reports the current state.
func (r *Runner) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

func (r *Runner) move(to State) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.legalLocked(to); err != nil {
		return err
	}
	r.state = to
	return nil
}

func (r *Runner) legalLocked(to State) error {
	for _, s := range legal[r.state] {
		if s == to {
			return nil
		}
	}
	return fmt.Errorf("%w: %s -> %s", ErrIllegalMove, r.state, to)
}

// step runs one life-cycle step if the state machine allows it now, and moves to its
// state once it succeeded. An Inject that failed may have half happened (two nodes
// of three frozen): it counts as injected, so recovery runs.
func (r *Runner) step(ctx context.Context, name string, to State, f func(context.Context, *Env) error) error {
	r.mu.Lock()
	err := r.legalLocked(to)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	r.Env.Events.Add(r.Kind, name, r.Env.Targets, "")
	err = r.call(ctx, name, f)
	if err == nil || to == StateInjected {
		r.mu.Lock()
		r.state = to
		r.mu.Unlock()
	}
	if err != nil {
		r.Env.Events.Add(r.Kind, name+"-failed", r.Env.Targets, err.Error())
		return fmt.Errorf("%s %s: %w", r.Kind, name, err)
	}
	return nil
}

// Run sets the fault up, injects it, waits until it took effect, holds it for hold
// (or until ctx ends), recovers, waits until the targets serve again and cleans up.
// Whatever happens after Inject (an error, a cancel, a signal), recovery runs on a
// context of its own, bounded by recoverTimeout. The error says what failed; a
// cancel during the hold is not an error of the fault.
func (r *Runner) Run(ctx context.Context, hold, recoverTimeout time.Duration) error {
	if err := r.step(ctx, "setup", StateReady, r.Fault.Setup); err != nil {
		return errors.Join(err, r.cleanup(ctx, recoverTimeout))
	}
	if err := r.journalInject(ctx); err != nil {
		// Never act without a record a heal could find.
		return errors.Join(err, r.cleanup(ctx, recoverTimeout))
	}
	markActive(r, true)
	err := r.step(ctx, "inject", StateInjected, r.Fault.Inject)
	r.Injected = time.Now()
	if err == nil {
		timeout := r.EffectTimeout
		if timeout == 0 {
			timeout = time.Minute
		}
		ectx, cancel := context.WithTimeout(ctx, timeout)
		err = r.step(ectx, "effect", StateEffective, r.Fault.WaitForEffect)
		cancel()
		if err == nil {
			r.Effective = time.Now()
			if !r.HoldUntil.IsZero() {
				hold = max(time.Until(r.HoldUntil), 0)
			}
			t := time.NewTimer(hold)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	err = errors.Join(err, r.recover(ctx, recoverTimeout))
	for _, m := range r.Measurements() {
		r.Env.Events.Add(r.Kind, "measured", r.Env.Targets, m.String())
	}
	return err
}

// Measurements returns what the fault measured about its effect, if it measures.
func (r *Runner) Measurements() []Measurement {
	if m, ok := r.Fault.(Measurer); ok {
		return m.Measurements()
	}
	return nil
}

// recover runs Recover, WaitForRecovery and Cleanup on a context that outlives a
// cancelled ctx: a node left frozen or cut off after htapchaos exits is a bug.
func (r *Runner) recover(ctx context.Context, timeout time.Duration) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := r.step(rctx, "recover", StateRecovered, r.Fault.Recover); err != nil {
		r.markFailed()
		return errors.Join(err, r.cleanup(rctx, timeout))
	}
	r.Recovered = time.Now()
	if err := r.step(rctx, "recovered", StateHealthy, r.Fault.WaitForRecovery); err != nil {
		r.markFailed()
		return errors.Join(err, r.cleanup(rctx, timeout))
	}
	r.Healthy = time.Now()
	markActive(r, false)
	jerr := r.journalRecovered()
	return errors.Join(r.cleanup(rctx, timeout), jerr)
}

// call runs one step with a panic in it turned into the step's error: the state
// machine goes on, and a fault that panicked in Inject or its hold is recovered.
func (r *Runner) call(ctx context.Context, name string, f func(context.Context, *Env) error) (err error) {
	defer safego.Recover(r.Kind+" "+name, func(p error) { err = p })
	return f(ctx, r.Env)
}

func (r *Runner) markFailed() {
	_ = r.move(StateFailed)
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
}

// journalInject records the fault before it acts: kind, nodes, parameters and
// the state a heal needs to undo it (Undoer).
func (r *Runner) journalInject(ctx context.Context) error {
	j := r.Env.Journal
	if j == nil {
		return nil
	}
	e := JournalEntry{ID: newJournalID(), Event: JournalInject, Kind: r.Kind, Params: r.Env.Params,
		PID: os.Getpid(), Command: filepath.Base(os.Args[0])}
	if len(os.Args) > 1 {
		e.Command += " " + os.Args[1]
	}
	for _, n := range r.Env.Targets {
		e.Nodes = append(e.Nodes, n.Index())
		e.Labels = append(e.Labels, n.Label())
	}
	if u, ok := r.Fault.(Undoer); ok {
		st, err := u.UndoState(ctx, r.Env)
		if err != nil {
			return fmt.Errorf("%s: what a heal would need: %w", r.Kind, err)
		}
		if e.Undo, err = json.Marshal(st); err != nil {
			return err
		}
	}
	if err := j.Append(e); err != nil {
		return err
	}
	r.mu.Lock()
	r.journalID = e.ID
	r.mu.Unlock()
	return nil
}

// journalRecovered records that the fault was recovered and its nodes serve.
func (r *Runner) journalRecovered() error {
	r.mu.Lock()
	id := r.journalID
	r.mu.Unlock()
	if r.Env.Journal == nil || id == "" {
		return nil
	}
	return r.Env.Journal.Append(JournalEntry{ID: id, Event: JournalRecovered, Kind: r.Kind})
}

func (r *Runner) cleanup(ctx context.Context, timeout time.Duration) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	return r.step(cctx, "cleanup", StateCleaned, r.Fault.Cleanup)
}
