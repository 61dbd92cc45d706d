package experiments

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/internal/safego"
	"github.com/htapchaos/htapchaos/loadgen"
)

// plannedFault is a fault of the spec laid on the clock, its targets resolved.
type plannedFault struct {
	runner *faults.Runner
	at     time.Time
	hold   time.Duration
}

// runTimeline is the timeline stage: the faults, each on its own goroutine at its
// time, and the load, on one clock. It returns when the load ends (its phases
// are over, or the run was stopped); faults still holding then recover in stop.
func (r *runState) runTimeline() error {
	r.start = time.Now()
	r.rf.Start = r.start
	r.phases = plannedPhases(r.spec, r.start)
	r.rf.Phases = r.phases
	if err := r.planFaults(); err != nil {
		return err
	}
	r.startFaults()
	r.logf("running %s: %s", r.spec.Name, timelineText(r.spec))
	r.lres, r.lerr = loadgen.Run(r.rctx, r.loadConfig())
	return nil
}

// planFaults resolves every fault's targets, time and hold before any starts.
func (r *runState) planFaults() error {
	spec := r.spec
	fr := r.regs.faults
	r.records = make([]FaultRecord, len(spec.Faults))
	r.plans = make([]plannedFault, len(spec.Faults))
	for i, f := range spec.Faults {
		kind, _ := fr.Get(f.Kind)
		params, _ := kind.Parse(f.Params)
		targets, err := faults.Resolve(r.fc, f.Node, r.o.Seed+uint64(i))
		if err != nil {
			return err
		}
		pstart, pdur := spec.PhaseStart(f.Phase)
		at := r.start.Add(pstart + f.Offset.D())
		hold := f.For.D()
		if hold == 0 {
			hold = pdur - f.Offset.D()
		}
		rec := newFaultRecord(f.Name, kind) // with the traits the scorers select on
		rec.Params, rec.Planned = params, Window{Name: FaultPrefix + f.Name, Start: at, End: at.Add(hold)}
		for _, n := range targets {
			rec.Nodes = append(rec.Nodes, n.Index())
			rec.NodeLabels = append(rec.NodeLabels, n.Label())
		}
		r.records[i] = rec
		runner := faults.NewRunner(f.Kind, kind.New(params), &faults.Env{Targets: targets, Cluster: r.fc, Events: r.events, Params: params,
			Proxies: r.proxies, RunTags: []int64{r.runTag}, Journal: r.journal})
		// The fault's window ends when the spec says, however long it took to take effect.
		runner.HoldUntil = at.Add(hold)
		r.plans[i] = plannedFault{runner, at, hold}
		if mh, ok := runner.Fault.(faults.MemoryHolder); ok {
			r.holders.add(mh)
		}
		if r.o.Observer != nil {
			r.o.Observer.Fault(f.Name, f.Kind, false)
		}
	}
	return nil
}

// startFaults starts every planned fault on a goroutine of its own, which waits
// for its time, runs its life cycle and fills its record.
func (r *runState) startFaults() {
	for i, f := range r.spec.Faults {
		p := r.plans[i]
		// The runner turns a panic in a fault's steps into the step's error and
		// recovers; one anywhere else here stops the run.
		safego.Go(&r.fwg, "fault "+f.Name, stopOnPanic(r.logf, r.cancel), func() {
			if !sleepCtx(r.rctx, time.Until(p.at)) {
				return
			}
			r.fmu.Lock()
			r.active[f.Name] = true
			r.fmu.Unlock()
			if r.o.Observer != nil {
				r.o.Observer.Fault(f.Name, f.Kind, true)
				defer r.o.Observer.Fault(f.Name, f.Kind, false)
			}
			ferr := p.runner.Run(r.rctx, p.hold, 5*time.Minute)
			r.fmu.Lock()
			defer r.fmu.Unlock()
			delete(r.active, f.Name)
			rec := &r.records[i]
			rec.Injected, rec.Effective, rec.Recovered, rec.Healthy = p.runner.Injected, p.runner.Effective, p.runner.Recovered, p.runner.Healthy
			rec.State = string(p.runner.State())
			rec.Measurements = p.runner.Measurements()
			if ferr != nil {
				rec.Error = ferr.Error()
			}
		})
	}
}

// loadConfig is the load of the spec's workloads on the run's targets.
func (r *runState) loadConfig() loadgen.Config {
	spec, o := r.spec, r.o
	lcfg := loadgen.Config{
		Targets: r.targets, Out: o.Out, RunTag: r.runTag,
		Params: loadgen.Params{Dialect: loadgen.MariaDB, Data: r.data, ShardEngine: shardEngine(r.layout)}, Observer: r.obs,
	}
	reg := r.regs.workloads
	for i, w := range spec.Workloads {
		wl, _ := spec.workload(i, reg)
		route := r.route(i)
		ls := loadgen.Spec{Workload: wl, Name: w.Name, Mix: w.Mix, Closed: w.Closed(), Route: route, OpTimeout: w.Timeout.D(),
			Retry: loadgen.Retry{Retries: w.Retries, Backoff: w.Backoff.D()}, Seed: o.Seed + 1000 + uint64(i), MeasureMemory: slices.Contains(spec.Modes, ModeMemoryHeadroom)}
		ls.Phases = spec.loadPhases(w)
		if w.BatchRows > 0 {
			lcfg.Params.BatchRows = w.BatchRows
		}
		if w.Query != "" {
			lcfg.Params.Query = w.Query
		}
		lcfg.Workloads = append(lcfg.Workloads, ls)
	}
	lcfg.Progress = r.progress
	return lcfg
}

// route is where the spec's i-th workload sends its operations: the route it
// names, or where none is named the cluster's default (loadgen.DefaultRoute: the
// primary of a primary-replica cluster, the aggregators of a sharded one, else
// every node). On a sharded cluster, clients talk to the aggregators only
// (round-robin; a retry goes to the next) when the route is every node.
func (r *runState) route(i int) loadgen.Route {
	w := r.spec.Workloads[i]
	if !r.spec.routeGiven(i) {
		roles := make([]string, len(r.nodes))
		for k, n := range r.nodes {
			roles[k] = n.role
		}
		route, why := loadgen.DefaultRoute(roles)
		if why != "" {
			r.logf("%s: %s", w.Name, why)
		}
		return route
	}
	route, _ := loadgen.ParseRoute(w.Route, len(r.nodes))
	if aggs := aggregatorIndexes(r.nodes); len(aggs) > 0 && (w.Route == "" || w.Route == "all") {
		route = loadgen.Route{Nodes: aggs}
	}
	return route
}

// progress passes the load's tick on: the phase to the observer, a status line
// to o.Progress.
func (r *runState) progress(p loadgen.Progress) {
	if r.o.Observer != nil {
		r.o.Observer.Phase(phaseAt(r.phases, time.Now()))
	}
	if r.o.Progress == nil {
		return
	}
	r.fmu.Lock()
	act := slices.Sorted(maps.Keys(r.active))
	r.fmu.Unlock()
	secs := p.Interval.End.Sub(p.Interval.Start).Seconds()
	ops := 0.0
	if secs > 0 {
		ops = float64(p.Interval.Ops) / secs
	}
	r.o.Progress(Progress{Phase: phaseAt(r.phases, time.Now()), Elapsed: p.Elapsed, Total: r.spec.Total(), OpsPerSec: ops,
		P99: p.Interval.P99, Errors: p.Interval.Errors, ActiveFaults: act})
}

// sleepCtx sleeps d, or less when ctx is done first: it says whether ctx is live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
