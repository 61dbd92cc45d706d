package experiments

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/results"
)

// stop is the stop stage: the load has ended; faults still holding (a run cut
// short) recover, the sampler stops, and what was measured becomes the
// Recorded the scorers read.
func (r *runState) stop() {
	if r.o.Observer != nil {
		r.o.Observer.Phase("ending")
	}
	if r.rctx.Err() == nil && r.lerr != nil {
		r.cancel(r.lerr)
	}
	if r.ctx.Err() != nil {
		r.cancel(context.Cause(r.ctx))
	}
	r.fwg.Wait()
	r.end = time.Now()
	r.stopSampler()
	r.rf.End = r.end
	r.rf.Faults = r.records
	r.rf.Missing = r.sampler.Missing()
	r.res = &Result{Dir: r.o.Out, Interrupted: r.ctx.Err() != nil}
	r.aborted()
	r.rec = r.recorded()
}

// aborted records the guard's trip, only when the guard was what stopped the
// run: a trip after a load error or a panic had stopped it does not replace
// that error.
func (r *runState) aborted() {
	if r.guard == nil || r.res.Interrupted {
		return
	}
	a := r.guard.Tripped()
	if a == nil || !errors.Is(context.Cause(r.rctx), a) {
		return
	}
	// Breach to every fault recovered and its nodes serving again.
	for _, f := range r.records {
		if !f.Healthy.IsZero() && f.Healthy.After(a.At) {
			a.FaultsRecoveredIn = max(a.FaultsRecoveredIn, f.Healthy.Sub(a.At).Seconds())
		}
	}
	r.res.Aborted, r.rf.Aborted = a, a
	r.logf("%v; faults recovered %.2fs after the breach", a, a.FaultsRecoveredIn)
}

// recorded is what the run measured, as the scorers read it: the timeline, the
// faults, the indicators, the load's summary, latency by window and by second.
func (r *runState) recorded() *Recorded {
	spec, rf := r.spec, r.rf
	rec := &Recorded{Spec: spec, Nodes: len(r.nodes), Start: r.start, End: r.end, Phases: r.phases, Faults: r.records,
		Indicators: r.sampler.Samples(), TargetRate: map[string]float64{}, DataBytes: rf.DataBytes, Topology: "external"}
	if r.hc != nil {
		rec.Topology = string(r.hc.Topology)
	}
	rec.Shards, rec.ShardEngine, rec.Plans = rf.Shards, rf.ShardEngine, rf.Plans
	rec.Roles = map[int]string{}
	for _, n := range r.nodes {
		rec.Roles[n.index] = n.role
	}
	for _, w := range spec.Workloads {
		rec.TargetRate[w.Name] = w.Rate
	}
	if r.lres != nil {
		rec.Summary = r.lres.Summary
	}
	windows := append([]Window(nil), r.phases...)
	for _, f := range r.records {
		if f.TookEffect() {
			windows = append(windows, f.Window(r.end))
		}
	}
	ps, err := phaseStats(r.o.Out, windows)
	if err != nil {
		r.logf("latency by phase: %v", err)
	}
	rec.Phase, rf.PhaseStats = ps, ps
	if secs, err := results.ReadIntervals(r.o.Out); err == nil {
		rec.Seconds = secs
	} else {
		r.logf("per-second figures: %v", err)
	}
	return rec
}

// audit is the durability audit: once every node has applied everything, read
// every acknowledged write back on each, the load's and those of faults that
// write rows of their own. No load result: nothing to read back.
func (r *runState) audit() {
	if r.lres == nil {
		return
	}
	settle := cmp.Or(r.o.AuditSettle, r.spec.auditSettle(), DefaultAuditSettle)
	lo, hi := loadgen.NewIDs(r.runTag).Range()
	var sources []AuditSource
	if t, ok := r.auditTable(); ok || r.builtinSeeded {
		// Without a ledgered op and without orders, the load wrote nothing to read back.
		sources = append(sources, AuditSource{Name: "load", Ledger: r.lres.Ledger, Lo: lo, Hi: hi, Table: t.Table, Column: t.Column})
	}
	for i, p := range r.plans {
		if lw, ok := p.runner.Fault.(faults.LedgerWriter); ok {
			if l, lo, hi := lw.Ledger(); l != nil {
				sources = append(sources, AuditSource{Name: r.spec.Faults[i].Name, Ledger: l, Lo: lo, Hi: hi})
			}
		}
	}
	r.rec.Audit = auditServingNodes(r.ctx, auditedNodes(r.nodes), sources, settle)
	r.logf("%s", auditLine(r.rec.Audit))
	r.rf.Audit = r.rec.Audit
}

// score is the score stage: every mode's scorer on what was recorded.
func (r *runState) score() {
	r.res.Recorded = r.rec
	r.res.Findings = r.regs.scorers.Score(r.rec)
}

// record is the record stage: run.json, and the run's error. A fault that was
// injected and not recovered leaves the cluster hurt: that is an error of the
// run, whatever the verdicts.
func (r *runState) record() (*Result, error) {
	res, rf := r.res, r.rf
	rf.Findings = res.Findings
	rf.Verdict = res.Verdict()
	rf.Interrupted = res.Interrupted
	switch {
	case res.Aborted != nil:
		rf.Error = res.Aborted.Error()
	case res.Interrupted:
		rf.Error = fmt.Sprintf("interrupted: %v", context.Cause(r.ctx))
	case r.lerr != nil:
		rf.Error = r.lerr.Error()
	}
	if err := writeJSON(filepath.Join(r.o.Out, "run.json"), rf); err != nil {
		return res, err
	}
	var unrecovered []error
	for _, f := range r.records {
		if f.State == string(faults.StateFailed) || (!f.Injected.IsZero() && f.Healthy.IsZero()) {
			unrecovered = append(unrecovered, fmt.Errorf("%w: %s on %s: %s", ErrNotRecovered, f.Name, strings.Join(f.NodeLabels, ","), f.Error))
		}
	}
	switch {
	case len(unrecovered) > 0:
		return res, errors.Join(unrecovered...)
	case res.Aborted != nil:
		return res, res.Aborted
	case r.lerr != nil && !res.Interrupted:
		return res, r.lerr
	case res.Interrupted:
		return res, context.Cause(r.ctx)
	}
	return res, nil
}
