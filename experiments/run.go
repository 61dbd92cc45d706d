package experiments

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/results"
	htc "github.com/htapchaos/htapchaos/testcontainers"
	"github.com/htapchaos/htapchaos/testcontainers/faulttarget"
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
	// On runs it on any cluster behind the faults interface: the faults act on
	// its nodes through the capabilities they have (faults.Killer, ...), the
	// load and the indicators reach each node by its DSN (faults.SQLNode, which
	// every node needs). A cluster of containers brings what only containers
	// have (the topology, run.json's cluster info, container indicators, the
	// sharded layout) by implementing ContainerBacked. Like a Target, the run
	// writes htapchaos's tables: it needs AllowWrites unless it is of
	// containers. Give one of On, Cluster and Target.
	//
	// An On cluster that is not ContainerBacked gets the default abort guard,
	// like a Target (unless NoAbortGuard), but no lock and no fault journal:
	// `htapchaos heal` knows only container clusters and target files, so the
	// caller owns keeping other actors off its cluster and healing what a run
	// that died left (a Recover of each fault it ran).
	On faults.Cluster
	// Workloads, Faults and Scorers are the registries the run takes workload
	// kinds, fault kinds and failure modes from (nil: those the spec was read
	// with, ParseOptions, else the builtins). A spec is checked again against
	// those given here.
	Workloads *loadgen.Registry
	Faults    *faults.Registry
	Scorers   *ScorerRegistry
	// AllowDestructive is the consent faults on a Target need.
	AllowDestructive bool
	// AllowWrites is the consent a run on a Target needs: it creates and seeds
	// htapchaos's tables in the database the nodes' DSNs name, and writes to them.
	AllowWrites bool
	// Abort are conditions beside the spec's that stop the run when they hold.
	Abort []AbortCondition
	// NoAbortGuard drops the default guard of a run on a Target or on an On
	// cluster that is not ContainerBacked (DefaultTargetGuard); the spec's and Abort's conditions still apply.
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

// ContainerBacked is a faults.Cluster of containers htapchaos started
// (Options.On): Containers returns them.
type ContainerBacked interface {
	Containers() *htc.Cluster
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
//
// The run is a sequence of stages (see doc.go) that share a runState: each stage
// reads what the ones before it resolved and adds its own part.
//
// What fails as the run is undone is returned too, after the run's own error: a
// results file (events.jsonl, indicators.jsonl) that does not close may have
// lost data, a cluster that is not removed is left running. With a result and no
// other error, such an error means the result is complete but something was
// left. It never hides the run's own error: errors.Is and errors.As (ErrNotRecovered,
// *Aborted, context.Canceled, *UsageError) answer from the run's error alone
// when there is one.
func Run(ctx context.Context, spec *Spec, o Options) (res *Result, err error) {
	r, err := newRunState(ctx, spec, o)
	if err != nil {
		return nil, err
	}
	defer func() { err = afterClose(err, r.close()) }()
	if err := r.prepareCluster(); err != nil {
		return nil, err
	}
	if err := r.connect(); err != nil {
		return nil, err
	}
	if err := r.seed(); err != nil {
		return nil, err
	}
	if err := r.startObservers(); err != nil {
		return nil, err
	}
	if err := r.runTimeline(); err != nil {
		return nil, err
	}
	r.stop()
	r.audit()
	r.score()
	return r.record()
}

// runState is one experiment in flight: what its stages resolve and share, in the
// order they fill it.
type runState struct {
	ctx      context.Context // the caller's
	spec     *Spec
	o        Options
	logf     func(string, ...any)
	cleanups []func() error // undone in reverse order by close
	regs     registries

	// prepareCluster and connect: where the run acts.
	hc      *htc.Cluster   // the container cluster; nil on a target
	fc      faults.Cluster // what the faults act on
	jkey    faults.JournalKey
	nodes   []nodeRef
	proxies *faults.Proxies
	targets []loadgen.Target
	rf      *RunFile

	// seed.
	db     *sql.DB // the node that takes writes
	layout *loadgen.Sharded
	data   loadgen.Data
	runTag int64
	// builtinSeeded: htapchaos's users and orders were seeded (the run needs them).
	builtinSeeded bool

	// startObservers: the run's clock and who watches it.
	rctx        context.Context // cancelled by an abort, a panic, the load's error
	cancel      context.CancelCauseFunc
	guard       *Guard
	obs         Observer // the guard in front of o.Observer; nil: none
	events      *faults.Events
	journal     *faults.Journal
	sampler     *Sampler
	stopSampler func()
	holders     memoryHolders

	// runTimeline.
	start, end time.Time
	phases     []Window
	plans      []plannedFault
	fmu        sync.Mutex
	records    []FaultRecord   // under fmu while faults run
	active     map[string]bool // faults holding now, under fmu
	fwg        sync.WaitGroup
	lres       *loadgen.Result
	lerr       error

	// stop, audit, score.
	res *Result
	rec *Recorded
}

// newRunState checks the options that need nothing started.
func newRunState(ctx context.Context, spec *Spec, o Options) (*runState, error) {
	r := &runState{ctx: ctx, spec: spec, o: o, logf: o.Log, active: map[string]bool{}}
	if r.logf == nil {
		r.logf = func(string, ...any) {}
	}
	given := registries{workloads: o.Workloads, faults: o.Faults, scorers: o.Scorers}
	r.regs = given.or(spec.regs)
	if given.any() {
		// The spec was read with other registries, or none: check it against the run's.
		if err := spec.validate(r.regs); err != nil {
			return nil, err
		}
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
		r.later(func() error { o.Observer.Phase("done"); return nil })
	}
	return r, nil
}

// afterClose adds close's error to the run's: as text only when the run has an
// error of its own, so that callers' errors.Is and errors.As see the run's
// error (a removal cancelled with the run must not turn ErrNotRecovered into an
// interruption).
func afterClose(err, cerr error) error {
	switch {
	case cerr == nil:
		return err
	case err == nil:
		return fmt.Errorf("closing the run: %w", cerr)
	default:
		return errors.Join(err, fmt.Errorf("closing the run: %v", cerr))
	}
}

// later adds f to what close undoes.
func (r *runState) later(f func() error) { r.cleanups = append(r.cleanups, f) }

// close undoes what the stages set up, last first, and returns what failed.
func (r *runState) close() error {
	var errs []error
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		errs = append(errs, r.cleanups[i]())
	}
	r.cleanups = nil
	return errors.Join(errs...)
}

// prepareCluster resolves where the run acts (the given cluster, the spec's own,
// or an exec target), takes the cluster's lock, checks its health and lists its
// nodes, then checks the spec against them.
func (r *runState) prepareCluster() error {
	spec, o := r.spec, &r.o
	if err := checkWhere(*o); err != nil {
		return err
	}
	if o.On == nil && o.Cluster == nil && o.Target == nil && spec.Target != "" {
		// The spec's own target, next to the spec file.
		path := spec.Target
		if !filepath.IsAbs(path) && spec.File() != "" {
			path = filepath.Join(filepath.Dir(spec.File()), path)
		}
		t, err := faults.LoadExecTarget(path)
		if err != nil {
			return err
		}
		o.Target = t
	}
	if o.Target != nil && !o.AllowWrites {
		return &UsageError{Field: "--allow-writes", Msg: fmt.Sprintf("%s on target %s creates and seeds users and orders and writes to them in the database its nodes' DSNs name: pass --allow-writes to consent", spec.Name, o.Target.Name)}
	}
	switch {
	case o.On != nil:
		r.fc = o.On
		if cb, ok := o.On.(ContainerBacked); ok {
			r.hc = cb.Containers()
		} else if !o.AllowWrites {
			return &UsageError{Field: "AllowWrites", Msg: fmt.Sprintf("%s on cluster %s creates and seeds its tables and writes to them in the database its nodes' DSNs name: set AllowWrites to consent", spec.Name, o.On.Name())}
		}
	case o.Cluster != nil:
		r.hc = o.Cluster
	case o.Target != nil:
		r.fc = o.Target.Cluster()
	case spec.Cluster != nil:
		hc, remove, err := startSpecCluster(r.ctx, spec, o.Labels, r.logf)
		r.hc = hc
		r.later(func() error { return remove(r.ctx) })
		if err != nil {
			return err
		}
	default:
		return &UsageError{Field: "--cluster", Msg: fmt.Sprintf("%s names no cluster and no target: give --cluster NAME or --target FILE", spec.Name)}
	}
	if r.hc != nil && r.fc == nil {
		r.fc = faulttarget.Cluster(r.hc)
	}
	if err := r.lock(); err != nil {
		return err
	}
	if (o.Cluster != nil || o.Target != nil || o.On != nil) && !o.SkipHealthCheck && len(spec.Faults) > 0 {
		// A cluster that exists already: check it before hurting it.
		r.logf("checking every node before the run (--skip-health-check skips it)")
		if err := faults.HealthCheck(r.ctx, r.fc, r.jkey); err != nil {
			return err
		}
	}
	nodes, err := nodesOf(r.hc, r.fc)
	if err != nil {
		return err
	}
	r.nodes = nodes
	// What needs the node count, now that it is known.
	return checkAgainst(spec, len(r.nodes), r.fc, r.o, r.regs.faults)
}

// checkWhere refuses options that say more than once where the run acts.
func checkWhere(o Options) error {
	var given []string
	if o.On != nil {
		given = append(given, "On")
	}
	if o.Cluster != nil {
		given = append(given, "Cluster")
	}
	if o.Target != nil {
		given = append(given, "Target")
	}
	if len(given) > 1 {
		return &UsageError{Field: "Options", Msg: fmt.Sprintf("give one of On, Cluster and Target, not %s", strings.Join(given, " and "))}
	}
	return nil
}

// lock takes the cluster's lock: one actor per cluster, no other run, fault or
// heal acts on it meanwhile. The lock and the fault journal are kept by the
// cluster's name, or the target file.
func (r *runState) lock() error {
	switch {
	case r.hc != nil:
		r.jkey.Cluster = r.hc.Name
	case r.o.Target != nil:
		r.jkey.Target = r.o.Target.File()
	default:
		return nil
	}
	lk, err := faults.AcquireLock(r.jkey, "htapchaos run "+r.spec.Name)
	if err != nil {
		return err
	}
	r.later(func() error { lk.Release(); return nil })
	if h := lk.TookOver; h != nil {
		r.logf("took the lock over from process %d (%s), which died holding it: `%s` heals what it left", h.PID, h.Command, r.jkey.HealCommand())
	}
	return nil
}

// nodesOf lists the run's nodes: a container cluster's, or those of any other
// cluster, each of which must have a DSN.
func nodesOf(hc *htc.Cluster, fc faults.Cluster) ([]nodeRef, error) {
	var nodes []nodeRef
	if hc != nil {
		for _, n := range hc.Nodes {
			nodes = append(nodes, nodeRef{index: n.Index, label: n.Name, alias: n.Alias, role: string(n.Role), dsn: n.DSN(), container: n})
		}
		return nodes, nil
	}
	for _, n := range fc.Nodes() {
		sn, ok := n.(faults.SQLNode)
		if !ok || sn.DSN() == "" {
			return nil, &UsageError{Field: "--target", Msg: fmt.Sprintf("node %s has no dsn: the load needs one", n.Label())}
		}
		nodes = append(nodes, nodeRef{index: n.Index(), label: n.Label(), alias: n.Label(), role: n.Role(), dsn: sn.DSN()})
	}
	return nodes, nil
}

// connect creates the run directory and run.json's head, starts the latency
// proxies a client-path fault needs, and opens a load target per node.
func (r *runState) connect() error {
	if err := os.MkdirAll(r.o.Out, 0o755); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	r.rf = &RunFile{Version: runVersion, Tool: toolVersion(), Spec: r.spec, Seed: r.o.Seed}
	if r.hc != nil {
		info := r.hc.Info()
		for i := range info.Nodes {
			info.Nodes[i].DSN = loadgen.Redact(info.Nodes[i].DSN)
		}
		if info.LB != nil {
			info.LB.DSN = loadgen.Redact(info.LB.DSN)
		}
		r.rf.Cluster = &info
	} else if r.o.Target != nil {
		r.rf.Target = r.o.Target.Name
	} else {
		r.rf.Target = r.fc.Name()
	}
	// Load goes through latency proxies when a fault adds latency on the client path.
	if slices.ContainsFunc(r.spec.Faults, func(f FaultSpec) bool {
		k, err := r.regs.faults.Get(f.Kind)
		return err == nil && k.ClientPath
	}) {
		r.proxies = faults.NewProxies()
		r.later(func() error { r.proxies.Close(); return nil })
		for _, n := range r.fc.Nodes() {
			if _, err := r.proxies.Start(n); err != nil {
				return err
			}
		}
	}
	for _, n := range r.nodes {
		dsn := n.dsn
		if r.proxies != nil {
			var err error
			if dsn, err = r.proxies.DSN(n.index, n.dsn); err != nil {
				return err
			}
		}
		t, err := loadgen.NewTarget(n.index, dsn, loadgen.DefaultTimeouts)
		if err != nil {
			return err
		}
		t.Name = n.label
		r.targets = append(r.targets, t)
	}
	return loadgen.CheckReachable(r.ctx, r.targets)
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
func checkAgainst(spec *Spec, n int, fc faults.Cluster, o Options, fr *faults.Registry) error {
	var errs []error
	bad := func(path, format string, a ...any) {
		errs = append(errs, &UsageError{Field: "experiment", Msg: spec.at(path) + ": " + fmt.Sprintf(format, a...)})
	}
	for i, w := range spec.Workloads {
		if _, err := loadgen.ParseRoute(w.Route, n); err != nil {
			bad(fmt.Sprintf("workloads[%d].route", i), "%s (the cluster has %d nodes)", usageMsg(err), n)
		}
	}
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
	return results.WindowStats(dir, rw)
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
