package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/htapchaos/htapchaos/agents"
	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/results"
	"github.com/htapchaos/htapchaos/testcontainers"
)

type loadFlags struct {
	targets     []string
	targetFile  string
	cluster     string
	workload    string
	file        string // --workload-file
	rate        float64
	concurrency int
	phases      string
	mix         []string
	route       string
	duration    time.Duration
	maxOps      int64
	out         string
	workers     int
	maxInFlight int
	opTimeout   time.Duration
	retries     int
	backoff     time.Duration
	setup       bool
	allowWrites bool
	abortOn     []string
	dialect     string
	data        loadgen.Data
	batchRows   int
	query       string
	seed        uint64
	gap, late   time.Duration
	timeouts    loadgen.Timeouts // dial from the flag; read and write: the defaults, for setup
	cpuProfile  string
	metricsAddr string
	measureMem  bool
	agents      int    // --agents: processes that share the load (0: this one)
	launcher    string // --launcher: where they run
}

func (a *app) loadCmd() *cobra.Command {
	f := loadFlags{timeouts: loadgen.DefaultTimeouts}
	reg := loadgen.NewRegistry()
	cmd := &cobra.Command{
		Use:   "load (--target DSN[,DSN...] | --cluster NAME) (--workload NAME | --workload-file FILE)",
		Short: "Run load alone: open-loop or closed-loop traffic, measured in HDR histograms",
		Long: `Drive one workload at the targets and record every operation: latency from each
operation's intended start (open loop, no coordinated omission) and service time,
errors by class, late and dropped operations, and unavailability gaps per node.
Writes <workload>.hlog (standard HdrHistogram interval logs), intervals.jsonl,
summary.json and ledger.json (acknowledged inserts) into --out as the run goes.

Workloads: ` + strings.Join(reg.Names(), ", ") + `, or your own schema and queries
from a workload file (--workload-file; examples in examples/workloads/).`,
		Example: `  htapchaos load --cluster demo --workload oltp --rate 2000 --duration 30s
  htapchaos load --target 'root:pw@tcp(127.0.0.1:3306)/htapchaos' --workload oltp --concurrency 8 --mix point-read=100
  htapchaos load --cluster demo --workload analytics --rate 2 --route node=2
  htapchaos load --cluster demo --workload oltp --phases 20s@1000,20s@4000,20s@1000
  htapchaos load --cluster demo --workload-file examples/workloads/shop.yaml --rate 500 --duration 30s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flags := cmd.Flags()
			if flags.Changed("workload") && f.file != "" {
				return usagef("--workload and --workload-file: pick one")
			}
			return a.load(cmd.Context(), reg, f, flags.Changed("rate"), flags.Changed("concurrency"), flags.Changed("route"))
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.targets, "target", nil, "DSN of each node (go-sql-driver/mysql form), comma-separated or repeated")
	fl.StringVar(&f.targetFile, "target-file", "", "a file of DSNs, one per line (# comments): keeps passwords out of ps; also $"+envTarget)
	fl.StringVar(&f.cluster, "cluster", "", "a cluster started by `htapchaos cluster up`")
	fl.StringVar(&f.workload, "workload", "oltp", "workload: "+strings.Join(reg.Names(), ", "))
	fl.StringVar(&f.file, "workload-file", "", "a workload file (YAML): your own schema, seeding and queries; --setup runs its schema and seeding")
	fl.Float64Var(&f.rate, "rate", 1000, "open loop: operations per second")
	fl.IntVar(&f.concurrency, "concurrency", 0, "closed loop: fixed workers, each waiting for its last operation (for comparison with peers)")
	fl.StringVar(&f.phases, "phases", "", "rates by phase, DURATION@RATE,... (with --concurrency: DURATION@WORKERS,...); replaces --duration")
	fl.StringArrayVar(&f.mix, "mix", nil, "operation weights, e.g. point-read=70,insert=30 (default: the workload's)")
	fl.StringVar(&f.route, "route", "all", "all (round-robin), node=N, or nodes=N,M")
	fl.DurationVar(&f.duration, "duration", 30*time.Second, "how long to run")
	fl.Int64Var(&f.maxOps, "max-ops", 0, "stop after this many operations (0: no limit)")
	fl.StringVar(&f.out, "out", "", "run directory (default runs/load-TIMESTAMP)")
	fl.IntVar(&f.workers, "workers", 32, "open loop: connections per node")
	fl.IntVar(&f.maxInFlight, "max-in-flight", 0, "open loop: operations started or waiting per node before new ones are dropped (default 10 s of the rate)")
	fl.DurationVar(&f.opTimeout, "op-timeout", 10*time.Second, "timeout of each attempt (every read and write of it)")
	fl.IntVar(&f.retries, "retries", 0, "client retries after a failed attempt (next node of the route)")
	fl.DurationVar(&f.backoff, "retry-backoff", 100*time.Millisecond, "wait before the first retry; doubles each time")
	fl.BoolVar(&f.setup, "setup", true, "create the schema if missing and seed it (to --users/--orders, or as the workload file says) first")
	fl.BoolVar(&f.allowWrites, "allow-writes", false, "consent to writes (seeding, inserts, updates) in the database a --target DSN names")
	fl.StringArrayVar(&f.abortOn, "abort-on", nil, `stop the load when a condition holds, e.g. "errors > 5% for 10s", "write_gap > 30s", "p99 > 500ms" (repeatable; exit 4)`)
	fl.StringVar(&f.dialect, "dialect", "mariadb", "DDL dialect: mariadb, mysql, singlestore")
	fl.Int64Var(&f.data.Users, "users", 10_000, "users to seed")
	fl.Int64Var(&f.data.Orders, "orders", 100_000, "orders to seed")
	fl.IntVar(&f.batchRows, "batch-rows", 500, "rows per statement of the batch workload")
	fl.StringVar(&f.query, "query", "", "your own query, for the analytics op sql (use --mix sql=1); each ? in it is bound to a random order id (1..--orders)")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of operation choices")
	fl.BoolVar(&f.measureMem, "measure-memory", false, "record each analytics query's peak memory (MariaDB's MAX_MEMORY_USED; summary.json memory): each runs on a fresh connection, which changes the load")
	fl.DurationVar(&f.gap, "gap-threshold", 500*time.Millisecond, "report a node's unavailability gap when no operation succeeded for this long")
	fl.DurationVar(&f.late, "late-threshold", 10*time.Millisecond, "an operation starting this much after its intended time is late")
	fl.DurationVar(&f.timeouts.Dial, "dial-timeout", loadgen.DefaultTimeouts.Dial, "connect timeout, where the DSN sets none")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a Go CPU profile of htapchaos itself to this file")
	fl.IntVar(&f.agents, "agents", 0, "spread the load over this many agent processes, merged into one run directory (0: run it in this process)")
	fl.StringVar(&f.launcher, "launcher", "local", "where --agents run: local (processes on this machine)")
	metricsFlag(cmd, &f.metricsAddr)
	return cmd
}

func (a *app) load(ctx context.Context, reg *loadgen.Registry, f loadFlags, rateSet, concSet, routeSet bool) error {
	wl, err := reg.Get(f.workload)
	if f.file != "" {
		wl, err = loadgen.LoadWorkloadFile(f.file)
	}
	if err != nil {
		return err
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if rateSet && concSet {
		add(usagef("--rate and --concurrency: pick one (open or closed loop)"))
	}
	// DSNs from a file or the environment keep passwords out of the process list.
	if f.targetFile != "" {
		dsns, err := readTargetFile(f.targetFile)
		add(err)
		f.targets = append(f.targets, dsns...)
	} else if v := os.Getenv(envTarget); v != "" && len(f.targets) == 0 && f.cluster == "" {
		f.targets = []string{v}
	}
	if (f.cluster == "") == (len(f.targets) == 0) && !wl.NoDB {
		add(usagef("give --target DSNs or --cluster NAME (one of them)"))
	}
	dialect, err := loadgen.ParseDialect(f.dialect)
	add(err)
	mix, err := loadgen.ParseMix(f.mix)
	add(err)
	closed := concSet
	var phases []loadgen.Phase
	switch {
	case f.phases != "":
		phases, err = loadgen.ParsePhases(f.phases, closed)
		add(err)
	case closed:
		if f.concurrency <= 0 {
			add(usagef("--concurrency %d: must be positive", f.concurrency))
		}
		phases = []loadgen.Phase{{Name: "run", Duration: f.duration, Concurrency: f.concurrency}}
	default:
		if !(f.rate > 0) {
			add(usagef("--rate %g: the rate must be positive", f.rate))
		}
		phases = []loadgen.Phase{{Name: "run", Duration: f.duration, Rate: f.rate}}
	}
	if f.duration <= 0 {
		add(usagef("--duration %v: must be positive", f.duration))
	}
	if f.batchRows <= 0 {
		add(usagef("--batch-rows %d: must be positive", f.batchRows))
	}
	if f.data.Users < 1 || f.data.Orders < 1 {
		add(usagef("--users and --orders must be at least 1"))
	}
	add(checkMetricsAddr(f.metricsAddr))
	add(checkAgents(f))
	conds, err := parseAbortOn(f.abortOn, false)
	add(err)
	if err := errors.Join(errs...); err != nil {
		return err
	}

	// Targets: the nodes of a cluster, or DSNs.
	var targets []loadgen.Target
	var sharded *testcontainers.Cluster
	var defaultRoute *loadgen.Route // the cluster's, when --route is not given
	if !wl.NoDB {
		if f.cluster != "" {
			c, err := attach(ctx, f.cluster)
			if err != nil {
				return err
			}
			if err := fileOnTopology(f.file, c.Name, c.Topology); err != nil {
				return err
			}
			if c.Topology == testcontainers.Sharded || c.Topology == testcontainers.Vitess {
				sharded = c
				if f.agents > 0 {
					return usagef("--agents: cluster %s is %s: agents do not drive sharded clusters in this version", c.Name, c.Topology)
				}
			}
			if !routeSet {
				roles := make([]string, len(c.Nodes))
				for i, n := range c.Nodes {
					roles[i] = string(n.Role)
				}
				if r, why := loadgen.DefaultRoute(roles); why != "" {
					defaultRoute = &r
					a.progress("load: %s is %s (--route to choose)", c.Name, why)
				}
			}
			for _, n := range c.Nodes {
				t, err := loadgen.NewTarget(n.Index, n.DSN(), f.timeouts)
				if err != nil {
					return err
				}
				targets = append(targets, t)
			}
		} else if targets, err = loadgen.ParseTargets(f.targets, f.timeouts); err != nil {
			return err
		}
	}
	route, err := loadgen.ParseRoute(f.route, max(len(targets), 1))
	if err != nil {
		return err
	}
	if defaultRoute != nil {
		route = *defaultRoute
	}
	if wl.NoDB {
		route = loadgen.Route{}
	}
	var engine loadgen.ShardEngine
	if sharded != nil {
		engine = loadgen.Spider
		if sharded.Topology == testcontainers.Vitess {
			engine = loadgen.VitessEngine
		}
	}
	cfg := loadgen.Config{
		Targets: targets,
		Workloads: []loadgen.Spec{{
			Workload: wl, Mix: mix, Closed: closed, Phases: phases, Route: route,
			Workers: f.workers, MaxInFlight: f.maxInFlight, OpTimeout: f.opTimeout,
			Retry: loadgen.Retry{Retries: f.retries, Backoff: f.backoff}, MaxOps: f.maxOps, Seed: f.seed,
			MeasureMemory: f.measureMem,
		}},
		Params:       loadgen.Params{Dialect: dialect, Data: f.data, BatchRows: f.batchRows, Query: f.query, ShardEngine: engine},
		GapThreshold: f.gap, LateThreshold: f.late,
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if f.agents > 0 {
		// The split's own refusals, before anything connects (the run tag is
		// chosen later, against the database).
		check := cfg
		check.RunTag = 1
		if _, err := agents.Plans(check, f.agents); err != nil {
			return err
		}
	}
	// No writes to a database htapchaos did not create without consent, asked
	// before anything connects.
	if len(f.targets) > 0 && !wl.NoDB && !f.allowWrites {
		if w := loadWrites(wl, mix, f.setup, f.query); len(w) > 0 {
			return usagef("--target: this load writes to the database the DSN names (%s): pass --allow-writes to consent, or give --setup=false and a --mix of reads only", strings.Join(w, "; "))
		}
	}
	defer a.useProcs(func(limit int) int { return loadgen.Procs(cfg.Workloads, limit) })()
	msrv, stopMetrics, err := a.startMetrics(f.metricsAddr)
	if err != nil {
		return err
	}
	defer stopMetrics()
	if msrv != nil {
		msrv.RunStarted("load")
		msrv.Phase("setup")
	}
	if len(targets) > 0 {
		// A DSN naming no database: htapchaos's own, created when it may write.
		if f.allowWrites {
			if err := loadgen.EnsureOwnDatabase(ctx, targets); err != nil {
				return err
			}
		}
		if err := loadgen.CheckReachable(ctx, targets); err != nil {
			return err
		}
		switch {
		case f.setup && wl.Setup != nil:
			if err := a.setupFile(ctx, targets, wl); err != nil {
				return err
			}
		case f.setup && sharded != nil:
			if _, err := seedSharded(ctx, sharded, f.data, a.progress); err != nil {
				return err
			}
		case f.setup:
			if err := a.setupData(ctx, targets, dialect, f.data); err != nil {
				return err
			}
		case sharded == nil && wl.Setup == nil && len(loadWrites(wl, mix, false, "SELECT")) > 0:
			// (The user's own --query is theirs to point at their tables.)
			// Writes without --setup: only into htapchaos's own tables.
			if err := checkOwnTables(ctx, targets[0]); err != nil {
				return err
			}
		}
		if wl.Ledgered() {
			// Ids of a run tag no row of the audited table uses yet.
			if cfg.RunTag, err = pickRunTag(ctx, targets[0], wl); err != nil {
				return err
			}
		}
	}
	// Only now, with the input good and the targets answering, make the run directory.
	out := f.out
	if out == "" {
		out = filepath.Join("runs", "load-"+time.Now().Format("20060102-150405"))
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	cfg.Out = out
	prog := newProgressPrinter(a.stderr)
	cfg.Progress = prog.update
	if msrv != nil {
		cfg.Observer = msrv
		cfg.Progress = func(p loadgen.Progress) { msrv.Phase(p.Phase); prog.update(p) }
	}
	a.progress("load: %s against %d node(s), %s; writing %s", wl.Name, max(len(targets), 1), phasesText(phases), out)
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return usagef("--cpuprofile: %v", err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	lctx := ctx
	var guard *experiments.Guard
	var gctx context.Context
	if len(conds) > 0 {
		var gcancel context.CancelCauseFunc
		gctx, gcancel = context.WithCancelCause(ctx)
		defer gcancel(nil)
		var next experiments.Observer
		if msrv != nil {
			next = msrv
		}
		guard = experiments.NewGuard(conds, gcancel, next)
		cfg.Observer, lctx = guard, gctx
	}
	var res *loadgen.Result
	if f.agents > 0 {
		var rep *agents.RunReport
		res, rep, err = a.loadAgents(lctx, cfg, f, prog)
		prog.done()
		printDegraded(a.stdout, rep)
	} else {
		res, err = loadgen.Run(lctx, cfg)
		prog.done()
	}
	if res != nil && res.Summary != nil {
		printSummary(a.stdout, res)
		files := "summary.json, " + wl.Name + ".hlog, intervals.jsonl, ledger.json"
		if f.agents > 0 {
			files += ", agents.json"
		}
		fmt.Fprintf(a.stdout, "\nresults in %s (%s)\n", out, files)
	}
	if guard != nil && ctx.Err() == nil {
		if ab := guard.Tripped(); ab != nil && errors.Is(context.Cause(gctx), ab) {
			return errors.Join(ab, err)
		}
	}
	return err
}

// checkAgents checks --agents and --launcher.
func checkAgents(f loadFlags) error {
	switch {
	case f.agents < 0 || f.agents > agents.MaxAgents:
		return usagef("--agents %d: want 0 (this process) to %d agents", f.agents, agents.MaxAgents)
	case f.launcher == "local":
		return nil
	case f.launcher == "swarm" || f.launcher == "kubernetes":
		return usagef("--launcher %s: not in this version (local only)", f.launcher)
	default:
		return usagef("--launcher %q: want local", f.launcher)
	}
}

// loadAgents runs the load with --agents processes of this executable, their
// output and the coordinator's lines on stderr beside the progress line.
func (a *app) loadAgents(ctx context.Context, cfg loadgen.Config, f loadFlags, prog *progressPrinter) (*loadgen.Result, *agents.RunReport, error) {
	stderr := logWriter{prog: prog, w: a.stderr}
	a.progress("load: %d agents (--launcher %s), each with 1/%d of the schedule", f.agents, f.launcher, f.agents)
	return agents.Run(ctx, cfg, agents.Options{N: f.agents, Launcher: agents.Local{Stderr: stderr}, Stderr: stderr})
}

// printDegraded says which agents a run lost, and that its rates are short of them.
func printDegraded(w io.Writer, rep *agents.RunReport) {
	if rep == nil || !rep.Degraded {
		return
	}
	for _, ag := range rep.Agents {
		if ag.Lost {
			fmt.Fprintf(w, "degraded: agent %s lost at %s (%s); its operations end at its last report (%s)\n",
				ag.Tag, ag.LostAt.Format("15:04:05.000"), ag.LostReason, ag.LastReport.Format("15:04:05.000"))
		}
	}
	fmt.Fprintln(w, "degraded: the rates below lack the lost agents' share of the schedule after they were lost")
}

// logWriter writes through the progress printer, so lines do not break its live line.
type logWriter struct {
	prog *progressPrinter
	w    io.Writer
}

func (l logWriter) Write(b []byte) (n int, err error) {
	l.prog.log(func() { n, err = l.w.Write(b) })
	return n, err
}

// parseAbortOn parses --abort-on conditions; withSampler says whether the
// command samples the nodes (memory and nodes_down need it).
func parseAbortOn(specs []string, withSampler bool) ([]experiments.AbortCondition, error) {
	var out []experiments.AbortCondition
	var errs []error
	for _, s := range specs {
		c, err := experiments.ParseAbortCondition(s)
		switch {
		case err != nil:
			errs = append(errs, usagef("--abort-on: %v", err))
		case !withSampler && experiments.AbortNeedsSampler(c.Metric):
			errs = append(errs, usagef("--abort-on: %q: %s is read by run's indicator sampler; a load alone does not sample the nodes", s, c.Metric))
		default:
			out = append(out, c)
		}
	}
	return out, errors.Join(errs...)
}

func (a *app) setupData(ctx context.Context, targets []loadgen.Target, d loadgen.Dialect, data loadgen.Data) error {
	t := targets[0]
	db, err := sql.Open("mysql", t.DSN)
	if err != nil {
		return err
	}
	defer db.Close()
	a.progress("setup: schema and seed data (%d users, %d orders) on node %d", data.Users, data.Orders, t.Node)
	data.Logf = func(format string, args ...any) { a.progress("setup: "+format, args...) }
	rep, err := loadgen.Setup(ctx, db, d, data)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if rep.UsersAdded+rep.OrdersAdded == 0 {
		return nil
	}
	a.progress("setup: seeded %d users and %d orders in %.1fs (%.0f rows/s); waiting for replication to settle", rep.UsersAdded, rep.OrdersAdded, rep.Elapsed.Seconds(), rep.RowsPerSecond())
	return a.waitSettled(ctx, targets)
}

func (a *app) waitSettled(ctx context.Context, targets []loadgen.Target) error {
	start := time.Now()
	if err := loadgen.WaitSettled(ctx, targets, 5*time.Minute); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	a.progress("setup: settled in %.1fs", time.Since(start).Seconds())
	return nil
}

// setupFile runs a workload file's Setup (its schema, seeding and samples) on the
// first node.
func (a *app) setupFile(ctx context.Context, targets []loadgen.Target, wl *loadgen.Workload) error {
	t := targets[0]
	db, err := sql.Open("mysql", t.DSN)
	if err != nil {
		return err
	}
	defer db.Close()
	a.progress("setup: %s's schema and seed data on node %d", wl.Name, t.Node)
	rep, err := wl.Setup(ctx, db, func(format string, args ...any) { a.progress("setup: "+format, args...) })
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if rep.Added() == 0 {
		return nil
	}
	var tables []string
	for _, name := range slices.Sorted(maps.Keys(rep.Rows)) {
		tables = append(tables, fmt.Sprintf("%d %s", rep.Rows[name], name))
	}
	a.progress("setup: seeded %s in %.1fs (%.0f rows/s); waiting for replication to settle", strings.Join(tables, ", "), rep.Elapsed.Seconds(), rep.RowsPerSecond())
	return a.waitSettled(ctx, targets)
}

// pickRunTag chooses the run's id range: one no row of the workload's audited
// table holds yet.
func pickRunTag(ctx context.Context, t loadgen.Target, wl *loadgen.Workload) (int64, error) {
	db, err := sql.Open("mysql", t.DSN)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	return loadgen.PickRunTagIn(ctx, db, rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1)), []loadgen.AuditTable{wl.AuditTarget()})
}

func phasesText(ps []loadgen.Phase) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", then ")
}

// progressPrinter shows a live line on a terminal, and a plain line every 10 s otherwise.
type progressPrinter struct {
	mu       sync.Mutex // the load's progress and the run's log lines come from other goroutines
	w        io.Writer
	tty      bool
	lastLine time.Time
	printed  bool
}

func newProgressPrinter(w io.Writer) *progressPrinter {
	p := &progressPrinter{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progressPrinter) update(pr loadgen.Progress) {
	iv := pr.Interval
	secs := iv.End.Sub(iv.Start).Seconds()
	if secs <= 0 {
		secs = 1
	}
	p.show(fmt.Sprintf("%s %4.0fs/%.0fs  %7.0f ops/s  p99 %8s  errors %d  late %d  dropped %d",
		pr.Phase, pr.Elapsed.Seconds(), pr.Total.Seconds(), float64(iv.Ops)/secs, fmtDur(iv.P99), iv.Errors, iv.Late, iv.Dropped))
}

// show puts line on the live line (a terminal) or prints it if 10 s have passed.
func (p *progressPrinter) show(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.tty:
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.printed = true
	case time.Since(p.lastLine) >= 10*time.Second:
		fmt.Fprintf(p.w, "%s %s\n", time.Now().Format("15:04:05"), line)
		p.lastLine = time.Now()
	}
}

// log prints a line of its own: on a terminal, the live line is cleared first.
func (p *progressPrinter) log(print func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.printed {
		fmt.Fprint(p.w, "\r\033[K")
	}
	print()
}

func (p *progressPrinter) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.printed {
		fmt.Fprintln(p.w)
	}
}

func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

func printSummary(w io.Writer, res *loadgen.Result) {
	s := res.Summary
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "WORKLOAD\tOP\tNODE\tOK\tOPS/S\tERRORS\tLATE\tDROPPED\tP50\tP99\tP99.9\tMAX\t")
	for _, o := range s.Ops {
		fmt.Fprintf(tw, "%s\t%s\tn%d\t%d\t%.1f\t%s\t%d\t%d\t%.2fms\t%.2fms\t%.2fms\t%.2fms\t\n", o.Workload, o.Op, o.Node, o.Count, o.Rate,
			errorsText(o), o.Late, o.Dropped, o.Latency.P50, o.Latency.P99, o.Latency.P999, o.Latency.Max)
	}
	tw.Flush()
	for _, g := range append(slices.Clone(s.Gaps), s.Cluster...) {
		where := fmt.Sprintf("%s %ss on n%d", g.Workload, g.Access, g.Node)
		if g.ClusterWide() {
			where = fmt.Sprintf("%ss on every node", g.Access)
		}
		for _, gap := range g.Gaps {
			state := ""
			if gap.Ongoing {
				state = " (still open at the end)"
			}
			fmt.Fprintf(w, "gap: %s: %.2fs from %s, %d failed, %d late%s\n", where, gap.Duration,
				gap.Start.Format("15:04:05.000"), gap.Failed, gap.Late, state)
		}
	}
	if res.Acked+res.Unknown > 0 {
		fmt.Fprintf(w, "ledger: %d inserts acknowledged, %d with unknown outcome\n", res.Acked, res.Unknown)
	}
}

func errorsText(o results.OpSummary) string {
	if o.ErrorsTotal == 0 {
		return "0"
	}
	var parts []string
	for _, c := range results.Classes {
		if n := o.Errors[c]; n > 0 && c != results.ClassCanceled {
			parts = append(parts, fmt.Sprintf("%s=%d", c, n))
		}
	}
	return fmt.Sprintf("%d (%s)", o.ErrorsTotal, strings.Join(parts, " "))
}

// loadWrites says what a load would write: the seeding, and each op of the mix
// (the workload's own weights when no --mix) that changes data.
func loadWrites(wl *loadgen.Workload, mix map[string]int, setup bool, query string) []string {
	var out []string
	switch {
	case setup && wl.Setup != nil:
		out = append(out, "--setup runs "+wl.Name+"'s schema and seeding")
	case setup:
		out = append(out, "--setup creates and seeds users and orders")
	}
	var ops []string
	for _, op := range wl.Ops {
		weight := op.Weight
		if len(mix) > 0 {
			weight = mix[op.Name]
		}
		// The user's own --query may write: counted unless it is a SELECT.
		userWrites := wl.Setup == nil && op.Name == "sql" && !strings.HasPrefix(strings.ToUpper(strings.TrimSpace(query)), "SELECT")
		if weight > 0 && (op.ChangesData || userWrites) {
			ops = append(ops, op.Name)
		}
	}
	if len(ops) > 0 {
		out = append(out, "ops "+strings.Join(ops, ", ")+" change data")
	}
	return out
}

// envTarget holds DSNs (comma-separated) when neither --target nor --cluster is given.
const envTarget = "HTAPCHAOS_TARGET"

// readTargetFile reads DSNs, one per line; blank lines and # comments are skipped.
func readTargetFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("--target-file: %v", err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return nil, usagef("--target-file: %s holds no DSN", path)
	}
	return out, nil
}

// checkOwnTables refuses writes into users or orders of a database where
// htapchaos did not create them.
func checkOwnTables(ctx context.Context, t loadgen.Target) error {
	db, err := sql.Open("mysql", t.DSN)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := loadgen.CheckOwnTables(ctx, db, "users", "orders"); err != nil {
		return usagef("node %d: %v", t.Node, err)
	}
	return nil
}

// fileOnTopology refuses a workload file on a sharded or vitess cluster, as
// experiments do: its tables would need a sharding of their own, which the file
// cannot declare.
func fileOnTopology(file, cluster string, topo testcontainers.Topology) error {
	if file != "" && (topo == testcontainers.Sharded || topo == testcontainers.Vitess) {
		return usagef("--workload-file %s: cluster %s is %s: a workload file's tables would need a sharding of their own; run it on a galera, primary-replica or single cluster", file, cluster, topo)
	}
	return nil
}
