package experiments

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/internal/safego"
	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/results"
	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// Options say where an experiment runs and how it reports.
type Options struct {
	// Out is the run directory (created; must be empty or absent).
	Out string
	// Seed drives every random choice (node random, operation mixes).
	Seed uint64
	// Cluster runs the experiment on a running cluster instead of the spec's.
	Cluster *htc.Cluster
	// Target runs it on an exec target (a cluster htapchaos did not create).
	Target *faults.ExecTarget
	// AllowDestructive is the consent faults on a Target need.
	AllowDestructive bool
	// AllowWrites is the consent a run on a Target needs: it creates and seeds
	// htapchaos's tables in the database the nodes' DSNs name, and writes to them.
	AllowWrites bool
	// Abort are conditions beside the spec's that stop the run when they hold.
	Abort []AbortCondition
	// NoAbortGuard drops the default guard of a run on a Target
	// (DefaultTargetGuard); the spec's and Abort's conditions still apply.
	NoAbortGuard bool
	// SkipHealthCheck runs on a given Cluster or Target without first checking
	// that every node serves and holds no fault's leftovers.
	SkipHealthCheck bool
	// Labels go on a cluster the run starts (tests: to find leftovers).
	Labels map[string]string
	// Progress receives a status line about every second.
	Progress func(Progress)
	// Log receives plain lines about what the run does.
	Log func(format string, args ...any)
	// Observer watches the run live (a metrics endpoint); nil: none.
	Observer Observer
	// AuditSettle bounds the durability audit's wait for every node to apply
	// everything before it reads back; 0: the spec's audit.settle, else
	// DefaultAuditSettle. When it expires the audit is inconclusive.
	AuditSettle time.Duration
}

// Observer watches runs live: a metrics endpoint. Its methods are called from the
// run's goroutines, concurrently; they must be quick.
type Observer interface {
	results.Observer // the load's intervals, every second
	// RunStarted: an experiment starts (a suite runs several, one after the other).
	RunStarted(name string)
	// Phase is the run's phase now: setup, a phase of the spec, ending, done.
	Phase(name string)
	// Fault: a fault of the spec is planned (false), holds (true), is over (false).
	Fault(name, kind string, active bool)
	// Samples are one tick of the indicator sampler, one per node.
	Samples(s []Sample)
}

// Progress is the run's state for a live line.
type Progress struct {
	Phase          string
	Elapsed, Total time.Duration
	OpsPerSec      float64
	P99            time.Duration
	Errors         int64
	ActiveFaults   []string
}

// Result is what a run produced.
type Result struct {
	Dir      string
	Recorded *Recorded
	Findings []Finding
	// Interrupted: the run was cancelled; what was measured is kept and scored.
	Interrupted bool
	// Aborted: an abort condition held and stopped the run; what was measured is
	// kept and scored.
	Aborted *Aborted
}

// Verdict is the run's worst verdict: fail if any finding failed, inconclusive if
// any was inconclusive, else pass.
func (r *Result) Verdict() Verdict { return Worst(r.Findings) }

// Worst is the worst verdict of findings.
func Worst(fs []Finding) Verdict {
	v := Pass
	for _, f := range fs {
		switch f.Verdict {
		case Fail:
			return Fail
		case Inconclusive:
			v = Inconclusive
		}
	}
	return v
}

// ErrNotRecovered is returned by Run when a fault was injected and its nodes did not
// serve again: the cluster is left hurt.
var ErrNotRecovered = errors.New("a fault did not recover")

// runVersion is the version of run.json.
const runVersion = 1

// RunFile is run.json: the spec, the cluster, the timeline, the faults and the
// findings.
type RunFile struct {
	Version int       `json:"version"`
	Tool    string    `json:"tool"`
	Spec    *Spec     `json:"spec"`
	Seed    uint64    `json:"seed"`
	Cluster *htc.Info `json:"cluster,omitempty"`
	// ServerVersion is the database's VERSION() on the node that took the seed.
	ServerVersion string        `json:"server_version,omitempty"`
	Target        string        `json:"target,omitempty"`
	Start         time.Time     `json:"start"`
	End           time.Time     `json:"end"`
	Phases        []Window      `json:"phases"`
	Faults        []FaultRecord `json:"faults"`
	Audit         *Audit        `json:"audit,omitempty"`
	PhaseStats    []PhaseStats  `json:"phase_stats"`
	Findings      []Finding     `json:"findings"`
	Verdict       Verdict       `json:"verdict"`
	Interrupted   bool          `json:"interrupted,omitempty"`
	Aborted       *Aborted      `json:"aborted,omitempty"`
	Missing       []string      `json:"indicators_missing,omitempty"`
	Error         string        `json:"error,omitempty"`
	// DataBytes is the run's database's size after seeding: information_schema's
	// data_length + index_length of its tables (the sizing formula's data); on a
	// sharded cluster summed over the leaves.
	DataBytes int64 `json:"data_bytes,omitempty"`
	// Shards are, on a sharded cluster, the rows of every partition on its leaf
	// after seeding (the skew); Spider the aggregators' Spider timeouts.
	Shards []loadgen.PartitionRows `json:"shards,omitempty"`
	Spider map[string]string       `json:"spider,omitempty"`
	// ShardEngine is the sharded schema's engine: spider or vitess.
	ShardEngine loadgen.ShardEngine `json:"shard_engine,omitempty"`
	// VSchema is, on Vitess, the keyspace's VSchema as vtctld held it; Plans
	// vtgate's plan of every sharded-analytics op (VEXPLAIN PLAN).
	VSchema json.RawMessage              `json:"vschema,omitempty"`
	Plans   map[string]loadgen.QueryPlan `json:"plans,omitempty"`
}

// Run runs one experiment: provision or connect, seed, run workloads and faults on
// one clock while sampling every node's indicators, audit durability, score.
// Cancelling ctx stops the load, recovers the faults, tears down and returns what
// was measured, scored, with Interrupted set.
func Run(ctx context.Context, spec *Spec, o Options) (res *Result, err error) {
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if o.Out == "" {
		return nil, &UsageError{Field: "--out", Msg: "no run directory"}
	}
	if st, err := os.Stat(o.Out); err == nil && !st.IsDir() {
		return nil, &UsageError{Field: "--out", Msg: fmt.Sprintf("%s is a file: give a new directory", o.Out)}
	} else if entries, err := os.ReadDir(o.Out); err == nil && len(entries) > 0 {
		return nil, &UsageError{Field: "--out", Msg: fmt.Sprintf("%s is not empty: give a new directory", o.Out)}
	} else if err != nil && !os.IsNotExist(err) {
		return nil, &UsageError{Field: "--out", Msg: err.Error()}
	}
	if o.Observer != nil {
		o.Observer.RunStarted(spec.Name)
		o.Observer.Phase("setup")
		defer o.Observer.Phase("done")
	}
	if o.Cluster == nil && o.Target == nil && spec.Target != "" {
		// The spec's own target, next to the spec file.
		path := spec.Target
		if !filepath.IsAbs(path) && spec.File() != "" {
			path = filepath.Join(filepath.Dir(spec.File()), path)
		}
		t, err := faults.LoadExecTarget(path)
		if err != nil {
			return nil, err
		}
		o.Target = t
	}

	if o.Target != nil && !o.AllowWrites {
		return nil, &UsageError{Field: "--allow-writes", Msg: fmt.Sprintf("%s on target %s creates and seeds users and orders and writes to them in the database its nodes' DSNs name: pass --allow-writes to consent", spec.Name, o.Target.Name)}
	}

	// The cluster: given, the spec's own, or an exec target.
	var (
		hc    *htc.Cluster
		fc    faults.Cluster
		nodes []nodeRef
	)
	switch {
	case o.Cluster != nil:
		hc = o.Cluster
	case o.Target != nil:
		fc = o.Target.Cluster()
	case spec.Cluster != nil:
		var remove func(context.Context) error
		hc, remove, err = startSpecCluster(ctx, spec, o.Labels, logf)
		defer func() { err = errors.Join(err, remove(ctx)) }()
		if err != nil {
			return nil, err
		}
	default:
		return nil, &UsageError{Field: "--cluster", Msg: fmt.Sprintf("%s names no cluster and no target: give --cluster NAME or --target FILE", spec.Name)}
	}
	if hc != nil {
		fc = faults.Containers(hc)
	}
	// What the fault journal and the lock are kept by: the cluster's name, or
	// the target file.
	var jkey faults.JournalKey
	switch {
	case hc != nil:
		jkey.Cluster = hc.Name
	case o.Target != nil:
		jkey.Target = o.Target.File()
	}
	if jkey != (faults.JournalKey{}) {
		// One actor per cluster: no other run, fault or heal acts on it meanwhile.
		lk, err := faults.AcquireLock(jkey, "htapchaos run "+spec.Name)
		if err != nil {
			return nil, err
		}
		defer lk.Release()
		if h := lk.TookOver; h != nil {
			logf("took the lock over from process %d (%s), which died holding it: `%s` heals what it left", h.PID, h.Command, jkey.HealCommand())
		}
	}
	if (o.Cluster != nil || o.Target != nil) && !o.SkipHealthCheck && len(spec.Faults) > 0 {
		// A cluster that exists already: check it before hurting it.
		logf("checking every node before the run (--skip-health-check skips it)")
		if err := faults.HealthCheck(ctx, fc, jkey); err != nil {
			return nil, err
		}
	}
	if hc != nil {
		for _, n := range hc.Nodes {
			nodes = append(nodes, nodeRef{index: n.Index, label: n.Name, alias: n.Alias, role: string(n.Role), dsn: n.DSN(), container: n})
		}
	} else {
		for _, n := range fc.Nodes() {
			sn, ok := n.(faults.SQLNode)
			if !ok || sn.DSN() == "" {
				return nil, &UsageError{Field: "--target", Msg: fmt.Sprintf("node %s has no dsn: the load needs one", n.Label())}
			}
			nodes = append(nodes, nodeRef{index: n.Index(), label: n.Label(), alias: n.Label(), role: n.Role(), dsn: sn.DSN()})
		}
	}
	// What needs the node count, now that it is known.
	if err := checkAgainst(spec, len(nodes), fc, o); err != nil {
		return nil, err
	}

	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	rf := &RunFile{Version: runVersion, Tool: toolVersion(), Spec: spec, Seed: o.Seed}
	if hc != nil {
		info := hc.Info()
		for i := range info.Nodes {
			info.Nodes[i].DSN = loadgen.Redact(info.Nodes[i].DSN)
		}
		if info.LB != nil {
			info.LB.DSN = loadgen.Redact(info.LB.DSN)
		}
		rf.Cluster = &info
	} else {
		rf.Target = o.Target.Name
	}

	// Load goes through latency proxies when a fault adds latency on the client path.
	var proxies *faults.Proxies
	if slices.ContainsFunc(spec.Faults, func(f FaultSpec) bool {
		k, err := faults.NewRegistry().Get(f.Kind)
		return err == nil && k.ClientPath
	}) {
		proxies = faults.NewProxies()
		defer proxies.Close()
		for _, n := range fc.Nodes() {
			if _, err := proxies.Start(n); err != nil {
				return nil, err
			}
		}
	}
	var targets []loadgen.Target
	for _, n := range nodes {
		dsn := n.dsn
		if proxies != nil {
			if dsn, err = proxies.DSN(n.index, n.dsn); err != nil {
				return nil, err
			}
		}
		t, err := loadgen.NewTarget(n.index, dsn, loadgen.DefaultTimeouts)
		if err != nil {
			return nil, err
		}
		t.Name = n.label
		targets = append(targets, t)
	}
	if err := loadgen.CheckReachable(ctx, targets); err != nil {
		return nil, err
	}

	// Seed, on the node that takes writes, and wait for the others to have it.
	dialect := loadgen.MariaDB
	data := loadgen.Data{Users: spec.Data.Users, Orders: spec.Data.Orders, Merchants: spec.Data.Merchants}
	db, err := sql.Open("mysql", nodes[0].dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	layout, closeLayout, err := shardedLayoutOf(nodes, hc)
	if err != nil {
		return nil, err
	}
	defer closeLayout()
	var rep loadgen.SeedReport
	if layout != nil {
		logf("seeding the sharded schema over %d leaves: %d users and %d orders", len(layout.Leaves), data.Users, data.Orders)
		rep, err = loadgen.SetupSharded(ctx, *layout, data)
	} else {
		logf("seeding %d users and %d orders", data.Users, data.Orders)
		rep, err = loadgen.Setup(ctx, db, dialect, data)
	}
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&rf.ServerVersion); err != nil {
		logf("server version: %v", err) // a figure for the record, not a reason to stop
	}
	if layout != nil {
		// The data lives on the leaves; the aggregators' Spider tables hold none.
		for _, l := range layout.Leaves {
			rf.DataBytes += dataSize(ctx, l.DB, logf)
		}
		if rf.Shards, err = loadgen.ShardRows(ctx, *layout); err != nil {
			logf("rows per partition: %v", err)
		}
		rf.ShardEngine = shardEngine(layout)
		if layout.Engine == loadgen.VitessEngine {
			// vtgate advertises a MySQL version of its own: name the shards' server too.
			var shard string
			if err := layout.Leaves[0].DB.QueryRowContext(ctx, "SELECT VERSION()").Scan(&shard); err == nil {
				rf.ServerVersion += " over " + shard
			}
			if hc != nil {
				if rf.VSchema, err = hc.VSchema(ctx); err != nil {
					logf("vschema: %v", err)
				}
			}
			if rf.Plans, err = loadgen.VitessPlans(ctx, layout.Aggregators[0]); err != nil {
				logf("vtgate plans: %v", err)
			}
			for _, op := range slices.Sorted(maps.Keys(rf.Plans)) {
				logf("vtgate plan of %s: %s", op, rf.Plans[op].Shape)
			}
		} else if rf.Spider, err = SpiderSettings(ctx, layout.Aggregators[0]); err != nil {
			logf("spider settings: %v", err)
		}
		skew := loadgen.Skew(rf.Shards)
		logf("rows per partition: skew %s", skewText(skew))
	} else {
		rf.DataBytes = dataSize(ctx, db, logf)
	}
	if rep.UsersAdded+rep.OrdersAdded > 0 {
		logf("seeded %d users and %d orders (%.0f rows/s)", rep.UsersAdded, rep.OrdersAdded, rep.RowsPerSecond())
	}
	if err := loadgen.WaitSettled(ctx, targets, 5*time.Minute); err != nil {
		return nil, fmt.Errorf("wait for the nodes to have the data: %w", err)
	}
	runTag, err := loadgen.PickRunTag(ctx, db, rand.New(rand.NewPCG(o.Seed, 1)))
	if err != nil {
		return nil, err
	}
	idLo, idHi := loadgen.NewIDs(runTag).Range()

	// One clock from here.
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The abort guard: the spec's conditions, the caller's, and on a target the
	// default guard. It sees every second of the load and every sample.
	conds := append(spec.AbortConditions(), o.Abort...)
	if o.Target != nil && !o.NoAbortGuard {
		conds = append(conds, DefaultTargetGuard(spec)...)
	}
	var guard *Guard
	obs := o.Observer
	if len(conds) > 0 {
		guard = NewGuard(conds, cancel, o.Observer)
		obs = guard
		for _, c := range conds {
			logf("abort guard: %s", c.Text)
		}
	}
	ev, err := os.Create(filepath.Join(o.Out, "events.jsonl"))
	if err != nil {
		return nil, err
	}
	defer ev.Close()
	// The fault journal: every fault is recorded before it acts, so that
	// `htapchaos heal` can undo it if this process dies first.
	var journal *faults.Journal
	if jkey != (faults.JournalKey{}) {
		if journal, err = faults.OpenJournal(jkey, o.Out); err != nil {
			return nil, err
		}
	}
	events := faults.NewEvents(ev)
	events.OnEvent = func(e faults.Event) {
		line := e.Fault + " " + e.Step + " " + strings.Join(e.Nodes, ",")
		if e.Details != "" {
			line += ": " + e.Details
		}
		logf("%s", line)
	}

	// Indicators.
	ind, err := os.Create(filepath.Join(o.Out, "indicators.jsonl"))
	if err != nil {
		return nil, err
	}
	defer ind.Close()
	inodes := make([]IndicatorNode, len(nodes))
	for i, n := range nodes {
		inodes[i] = IndicatorNode{Index: n.index, Label: n.label, DSN: n.dsn, Container: n.container}
	}
	var sopts []SamplerOption
	if spec.Heartbeat != nil {
		hb := NewHeartbeat(inodes[spec.Heartbeat.Node-1], spec.Heartbeat.Every.D())
		if err := hb.Setup(rctx); err != nil {
			return nil, fmt.Errorf("heartbeat: %w", err)
		}
		sopts = append(sopts, WithHeartbeat(hb))
		hctx, stopHB := context.WithCancel(rctx)
		var hwg sync.WaitGroup
		defer hwg.Wait()
		defer stopHB()
		safego.Go(&hwg, "heartbeat", stopOnPanic(logf, cancel), func() { _ = hb.Run(hctx) })
	}
	if obs != nil {
		sopts = append(sopts, WithSampleHook(obs.Samples))
	}
	// The faults that hold memory (memory-fill, made below): the sampler charts
	// what they hold apart from the server's and the container's memory.
	var holdersMu sync.Mutex
	var holders []faults.MemoryHolder
	sopts = append(sopts, WithMemoryHolders(func() []faults.MemoryHolder {
		holdersMu.Lock()
		defer holdersMu.Unlock()
		return holders
	}))
	sampler := NewSampler(inodes, ind, time.Second, sopts...)
	sctx, stopSampler := context.WithCancel(rctx)
	defer stopSampler()
	var swg sync.WaitGroup
	safego.Go(&swg, "sampler", stopOnPanic(logf, cancel), func() { _ = sampler.Run(sctx) })

	start := time.Now()
	rf.Start = start
	total := spec.Total()
	phases := plannedPhases(spec, start)
	rf.Phases = phases

	// Faults, each on its own goroutine at its time.
	fr := faults.NewRegistry()
	var (
		fmu     sync.Mutex
		records = make([]FaultRecord, len(spec.Faults))
		active  = map[string]bool{}
		fwg     sync.WaitGroup
	)
	type planned struct {
		runner *faults.Runner
		at     time.Time
		hold   time.Duration
	}
	plans := make([]planned, len(spec.Faults))
	for i, f := range spec.Faults { // every target resolved before any fault starts
		kind, _ := fr.Get(f.Kind)
		params, _ := kind.Parse(f.Params)
		targetsF, err := faults.Resolve(fc, f.Node, o.Seed+uint64(i))
		if err != nil {
			stopSampler()
			swg.Wait()
			return nil, err
		}
		pstart, pdur := spec.PhaseStart(f.Phase)
		at := start.Add(pstart + f.Offset.D())
		hold := f.For.D()
		if hold == 0 {
			hold = pdur - f.Offset.D()
		}
		rec := newFaultRecord(f.Name, kind) // with the traits the scorers select on
		rec.Params, rec.Planned = params, Window{Name: FaultPrefix + f.Name, Start: at, End: at.Add(hold)}
		for _, n := range targetsF {
			rec.Nodes = append(rec.Nodes, n.Index())
			rec.NodeLabels = append(rec.NodeLabels, n.Label())
		}
		records[i] = rec
		runner := faults.NewRunner(f.Kind, kind.New(params), &faults.Env{Targets: targetsF, Cluster: fc, Events: events, Params: params, Proxies: proxies, RunTags: []int64{runTag}, Journal: journal})
		// The fault's window ends when the spec says, however long it took to take effect.
		runner.HoldUntil = at.Add(hold)
		plans[i] = planned{runner, at, hold}
		if mh, ok := runner.Fault.(faults.MemoryHolder); ok {
			holdersMu.Lock()
			holders = append(holders, mh)
			holdersMu.Unlock()
		}
		if o.Observer != nil {
			o.Observer.Fault(f.Name, f.Kind, false)
		}
	}
	for i, f := range spec.Faults {
		p := plans[i]
		// The runner turns a panic in a fault's steps into the step's error and
		// recovers; one anywhere else here stops the run.
		safego.Go(&fwg, "fault "+f.Name, stopOnPanic(logf, cancel), func() {
			if !sleepCtx(rctx, time.Until(p.at)) {
				return
			}
			fmu.Lock()
			active[f.Name] = true
			fmu.Unlock()
			if o.Observer != nil {
				o.Observer.Fault(f.Name, f.Kind, true)
				defer o.Observer.Fault(f.Name, f.Kind, false)
			}
			ferr := p.runner.Run(rctx, p.hold, 5*time.Minute)
			fmu.Lock()
			defer fmu.Unlock()
			delete(active, f.Name)
			r := &records[i]
			r.Injected, r.Effective, r.Recovered, r.Healthy = p.runner.Injected, p.runner.Effective, p.runner.Recovered, p.runner.Healthy
			r.State = string(p.runner.State())
			r.Measurements = p.runner.Measurements()
			if ferr != nil {
				r.Error = ferr.Error()
			}
		})
	}

	// The load.
	lcfg := loadgen.Config{
		Targets: targets, Out: o.Out, RunTag: runTag,
		Params: loadgen.Params{Dialect: dialect, Data: data, ShardEngine: shardEngine(layout)}, Observer: obs,
	}
	reg := loadgen.NewRegistry()
	for i, w := range spec.Workloads {
		wl, _ := reg.Get(w.Kind)
		route, _ := loadgen.ParseRoute(w.Route, len(nodes))
		if aggs := aggregatorIndexes(nodes); len(aggs) > 0 && (w.Route == "" || w.Route == "all") {
			// Clients talk to the aggregators only, round-robin; a retry goes to
			// the next aggregator.
			route = loadgen.Route{Nodes: aggs}
		}
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
	lcfg.Progress = func(p loadgen.Progress) {
		if o.Observer != nil {
			o.Observer.Phase(phaseAt(phases, time.Now()))
		}
		if o.Progress == nil {
			return
		}
		fmu.Lock()
		act := slices.Sorted(maps.Keys(active))
		fmu.Unlock()
		secs := p.Interval.End.Sub(p.Interval.Start).Seconds()
		ops := 0.0
		if secs > 0 {
			ops = float64(p.Interval.Ops) / secs
		}
		o.Progress(Progress{Phase: phaseAt(phases, time.Now()), Elapsed: p.Elapsed, Total: total, OpsPerSec: ops,
			P99: p.Interval.P99, Errors: p.Interval.Errors, ActiveFaults: act})
	}
	logf("running %s: %s", spec.Name, timelineText(spec))
	lres, lerr := loadgen.Run(rctx, lcfg)
	if o.Observer != nil {
		o.Observer.Phase("ending")
	}
	// Faults that are still holding (a run cut short) recover now.
	if rctx.Err() == nil && lerr != nil {
		cancel(lerr)
	}
	if ctx.Err() != nil {
		cancel(context.Cause(ctx))
	}
	fwg.Wait()
	end := time.Now()
	stopSampler()
	swg.Wait()
	rf.End = end
	rf.Faults = records
	rf.Missing = sampler.Missing()

	res = &Result{Dir: o.Out, Interrupted: ctx.Err() != nil}
	if guard != nil && !res.Interrupted {
		// Only when the guard was what stopped the run: a trip after a load
		// error or a panic had stopped it does not replace that error.
		if a := guard.Tripped(); a != nil && errors.Is(context.Cause(rctx), a) {
			// Breach to every fault recovered and its nodes serving again.
			for _, f := range records {
				if !f.Healthy.IsZero() && f.Healthy.After(a.At) {
					a.FaultsRecoveredIn = max(a.FaultsRecoveredIn, f.Healthy.Sub(a.At).Seconds())
				}
			}
			res.Aborted, rf.Aborted = a, a
			logf("%v; faults recovered %.2fs after the breach", a, a.FaultsRecoveredIn)
		}
	}
	rec := &Recorded{Spec: spec, Nodes: len(nodes), Start: start, End: end, Phases: phases, Faults: records,
		Indicators: sampler.Samples(), TargetRate: map[string]float64{}, DataBytes: rf.DataBytes}
	if hc != nil {
		rec.Topology = string(hc.Topology)
	} else {
		rec.Topology = "external"
	}
	rec.Shards, rec.ShardEngine, rec.Plans = rf.Shards, rf.ShardEngine, rf.Plans
	rec.Roles = map[int]string{}
	for _, n := range nodes {
		rec.Roles[n.index] = n.role
	}
	for _, w := range spec.Workloads {
		rec.TargetRate[w.Name] = w.Rate
	}
	if lres != nil {
		rec.Summary = lres.Summary
		// Durability: once every node has applied everything, read every
		// acknowledged write back on each, the load's and those of faults that
		// write rows of their own.
		settle := cmp.Or(o.AuditSettle, spec.auditSettle(), DefaultAuditSettle)
		sources := []AuditSource{{Name: "load", Ledger: lres.Ledger, Lo: idLo, Hi: idHi}}
		for i, p := range plans {
			if lw, ok := p.runner.Fault.(faults.LedgerWriter); ok {
				if l, lo, hi := lw.Ledger(); l != nil {
					sources = append(sources, AuditSource{Name: spec.Faults[i].Name, Ledger: l, Lo: lo, Hi: hi})
				}
			}
		}
		rec.Audit = auditServingNodes(ctx, auditedNodes(nodes), sources, settle)
		logf("%s", auditLine(rec.Audit))
		rf.Audit = rec.Audit
	}
	windows := append([]Window(nil), phases...)
	for _, f := range records {
		if f.TookEffect() {
			windows = append(windows, f.Window(end))
		}
	}
	ps, perr := phaseStats(o.Out, windows)
	if perr != nil {
		logf("latency by phase: %v", perr)
	}
	rec.Phase = ps
	if secs, err := results.ReadIntervals(o.Out); err == nil {
		rec.Seconds = secs
	} else {
		logf("per-second figures: %v", err)
	}
	rf.PhaseStats = ps
	res.Recorded = rec
	res.Findings = NewScorers().Score(rec)
	rf.Findings = res.Findings
	rf.Verdict = res.Verdict()
	rf.Interrupted = res.Interrupted
	switch {
	case res.Aborted != nil:
		rf.Error = res.Aborted.Error()
	case res.Interrupted:
		rf.Error = fmt.Sprintf("interrupted: %v", context.Cause(ctx))
	case lerr != nil:
		rf.Error = lerr.Error()
	}
	if werr := writeJSON(filepath.Join(o.Out, "run.json"), rf); werr != nil {
		return res, werr
	}
	// A fault that was injected and not recovered leaves the cluster hurt: that is an
	// error of the run, whatever the verdicts.
	var unrecovered []error
	for _, f := range records {
		if f.State == string(faults.StateFailed) || (!f.Injected.IsZero() && f.Healthy.IsZero()) {
			unrecovered = append(unrecovered, fmt.Errorf("%w: %s on %s: %s", ErrNotRecovered, f.Name, strings.Join(f.NodeLabels, ","), f.Error))
		}
	}
	if len(unrecovered) > 0 {
		return res, errors.Join(unrecovered...)
	}
	if res.Aborted != nil {
		return res, res.Aborted
	}
	if lerr != nil && !res.Interrupted {
		return res, lerr
	}
	if res.Interrupted {
		return res, context.Cause(ctx)
	}
	return res, nil
}

// nodeRef is a node as the runner uses it.
type nodeRef struct {
	index     int
	label     string
	alias     string // the name peers know it by (leaf1; a target's node name)
	role      string
	dsn       string
	container *htc.Node
}

// checkAgainst checks what the spec says about nodes against the real cluster.
func checkAgainst(spec *Spec, n int, fc faults.Cluster, o Options) error {
	var errs []error
	bad := func(path, format string, a ...any) {
		errs = append(errs, &UsageError{Field: "experiment", Msg: spec.at(path) + ": " + fmt.Sprintf(format, a...)})
	}
	for i, w := range spec.Workloads {
		if _, err := loadgen.ParseRoute(w.Route, n); err != nil {
			bad(fmt.Sprintf("workloads[%d].route", i), "%s (the cluster has %d nodes)", usageMsg(err), n)
		}
	}
	fr := faults.NewRegistry()
	for i, f := range spec.Faults {
		kind, err := fr.Get(f.Kind)
		if err != nil {
			continue
		}
		ts, err := faults.Resolve(fc, f.Node, o.Seed+uint64(i))
		if err != nil {
			bad(fmt.Sprintf("faults[%d].node", i), "%s", usageMsg(err))
			continue
		}
		if err := kind.Check(ts); err != nil {
			bad(fmt.Sprintf("faults[%d]", i), "%s", usageMsg(err))
		}
		if err := faults.CheckConsent(fc, kind, f.Node, o.AllowDestructive); err != nil {
			for _, e := range unjoin(err) {
				bad(fmt.Sprintf("faults[%d]", i), "%s", usageMsg(e))
			}
		}
	}
	if spec.Heartbeat != nil && (spec.Heartbeat.Node < 1 || spec.Heartbeat.Node > n) {
		bad("heartbeat.node", "node %d: out of range 1-%d", spec.Heartbeat.Node, n)
	}
	return errors.Join(errs...)
}

// plannedPhases lays the spec's phases on the clock.
func plannedPhases(spec *Spec, start time.Time) []Window {
	var out []Window
	t := start
	for _, p := range spec.Phases {
		out = append(out, Window{Name: p.Name, Start: t, End: t.Add(p.Duration.D())})
		t = t.Add(p.Duration.D())
	}
	return out
}

func phaseAt(ws []Window, t time.Time) string {
	for _, w := range ws {
		if w.Contains(t) {
			return w.Name
		}
	}
	if len(ws) > 0 && !t.Before(ws[len(ws)-1].End) {
		return "ending"
	}
	return ""
}

func timelineText(spec *Spec) string {
	var parts []string
	for _, p := range spec.Phases {
		parts = append(parts, fmt.Sprintf("%s %v", p.Name, p.Duration.D()))
	}
	return strings.Join(parts, ", ")
}

// auditServingNodes runs the durability audit on every node: each must have
// applied everything before it is read (see AuditCluster). It runs when the run's
// ctx is done too (the run was interrupted), then with the settle capped at
// interruptedSettle, which the audit's record says.
func auditServingNodes(ctx context.Context, nodes []nodeRef, sources []AuditSource, settle time.Duration) *Audit {
	an := make([]AuditNode, len(nodes))
	for i, n := range nodes {
		an[i] = AuditNode{Index: n.index, Label: n.label, DSN: n.dsn}
	}
	settle = cmp.Or(settle, DefaultAuditSettle)
	capped := ""
	if ctx.Err() != nil && settle > interruptedSettle {
		capped = fmt.Sprintf("the run was interrupted: the settle was capped at %v instead of %v", interruptedSettle, settle)
		settle = interruptedSettle
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settle+3*time.Minute)
	defer cancel()
	a := AuditCluster(actx, an, sources, settle)
	a.Settle.Capped = capped
	return a
}

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

// writeJSON writes v through a synced temporary file and a rename: a reader never
// sees half, and a crash after it returns does not lose it.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return results.WriteFileAtomic(path, append(b, '\n'))
}

func toolVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return "htapchaos " + bi.Main.Version
	}
	return "htapchaos"
}

// phaseStats splits latency by window from the run directory's interval logs.
func phaseStats(dir string, windows []Window) ([]PhaseStats, error) {
	rw := make([]results.Window, len(windows))
	for i, w := range windows {
		rw[i] = results.Window{Name: w.Name, Start: w.Start, End: w.End}
	}
	ws, err := results.WindowStats(dir, rw)
	if err != nil {
		return nil, err
	}
	out := make([]PhaseStats, len(ws))
	for i, w := range ws {
		out[i] = PhaseStats{Phase: w.Window, Workload: w.Workload, Op: w.Op, Node: w.Node, Seconds: w.Seconds, Count: w.Count,
			Rate: w.Rate, Errors: w.Errors, Late: w.Late, Dropped: w.Dropped, Latency: w.Latency, ByClass: w.ByClass, Memory: w.Memory,
			Returned: w.Returned, ReturnedTotal: w.ReturnedTotal}
	}
	return out, nil
}

// dataSize is the database's data and index bytes (information_schema), 0 with a
// line in the log when it cannot be read (the sizing formula then says so).
func dataSize(ctx context.Context, db *sql.DB, logf func(string, ...any)) int64 {
	var n sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT SUM(data_length + index_length) FROM information_schema.TABLES WHERE table_schema = DATABASE()").Scan(&n); err != nil {
		logf("data size: %v", err)
	}
	return n.Int64
}
