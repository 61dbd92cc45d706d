package loadgen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/htapchaos/htapchaos/internal/safego"
	"github.com/htapchaos/htapchaos/results"
)

// Retry is a client retry policy (the article's clients: a timeout plus N retries with
// backoff). A retried request is recorded once, as the user saw it: its latency covers
// every attempt and the backoff between them, and it counts as failed only if the
// last attempt failed. Each retry goes to the next node of the route.
type Retry struct {
	Retries int           // extra attempts after the first (0: none)
	Backoff time.Duration // before the first retry; doubles each time (default 100ms)
}

// Spec is one workload's part of a run.
type Spec struct {
	Workload *Workload
	// Name is the stream's name in the results (default: the workload's name), so
	// that two streams of one workload are told apart.
	Name string
	Mix  map[string]int // op weights; empty: the workload's defaults
	// Closed selects the closed loop: Phases give Concurrency (fixed workers, each
	// waiting for its previous operation). Otherwise the open loop: Phases give Rate.
	Closed bool
	Phases []Phase
	Route  Route
	// Workers is the connections per routed node in the open loop (default 32).
	Workers int
	// MaxInFlight bounds the operations started or waiting per routed node in the open
	// loop; past it an operation is dropped and counted (default: 10 s of the peak rate,
	// at least Workers).
	MaxInFlight int
	// OpTimeout bounds each attempt (default 10s).
	OpTimeout time.Duration
	Retry     Retry
	// MaxOps stops the workload after this many operations (0: when its phases end).
	MaxOps int64
	// Seed makes operation choices reproducible.
	Seed uint64
	// MeasureMemory runs the ops that can measure their per-query peak memory
	// (Op.Memory) on a fresh connection each and reads the server's account of
	// it (see memory.go). Off (the default), they run on the worker's kept
	// connection like every other op and record no memory: the fresh dial and
	// the PROCESSLIST read change the load, so only a run that scores memory
	// asks for them (the memory-headroom mode; `load --measure-memory`).
	MeasureMemory bool
}

func (s Spec) streamName() string {
	if s.Name != "" {
		return s.Name
	}
	return s.Workload.Name
}

// Config is a whole load run.
type Config struct {
	Targets   []Target
	Workloads []Spec
	Params    Params
	// Out is the run directory (.hlog files, summary.json, ledger.json); "" keeps
	// results in memory.
	Out string
	// Interval between recorder ticks and progress reports (default 1s).
	Interval time.Duration
	// GapThreshold and LateThreshold pass to the recorder.
	GapThreshold, LateThreshold time.Duration
	// RunTag picks the id range of generated rows (0: chosen against the database).
	RunTag int64
	// Progress is called after every tick.
	Progress func(p Progress)
	// Observer is given every closed interval's per-key figures (a live metrics
	// endpoint); nil: none.
	Observer results.Observer

	// Share is this process's part of the run when several processes (agents)
	// drive it together; zero: all of it. See Share.
	Share Share
	// WorkerBase offsets this process's worker (writer) ids: they start at
	// WorkerBase+1, so that the ids of agents sharing a run tag never meet.
	WorkerBase int
	// StartAt, when set, is called once every workload is prepared (pools open)
	// and returns the instant the run starts: the schedule, the recorder's first
	// interval and the ticks are laid from it, and Run sleeps until it. An error
	// ends the run before any operation.
	StartAt func(ctx context.Context) (time.Time, error)
	// Export is given the raw data of every interval the run's recorder closes
	// (results.Options.Export): an agent sends it to its coordinator. It is
	// called under the recorder's lock: it must only hand the frame on.
	Export func(*results.IntervalFrame)
	// Ledger is the acknowledged-write ledger the run fills; nil: a new one. A
	// caller that snapshots it while the run goes (an agent) passes its own.
	Ledger *results.Ledger
}

// Share is one process's part of a run's schedule when Of processes drive it
// together: Index (0-based) of Of. In the open loop the process takes every Of-th
// operation of the schedule, starting at the Index-th: the union of the shares'
// intended times is the one-process schedule. In the closed loop it runs the
// workers whose number is Index modulo Of, and its part of MaxOps. The zero value
// (or Of 1) is the whole run.
type Share struct {
	Index int `json:"index"`
	Of    int `json:"of"`
}

func (s Share) whole() bool { return s.Of <= 1 }

// stride is Of, at least 1.
func (s Share) stride() int64 { return int64(max(s.Of, 1)) }

// has says whether closed-loop worker number id (0-based) is the share's.
func (s Share) has(id int) bool { return s.whole() || id%s.Of == s.Index }

// ops yields the intended times of the share's operations of the schedule, in
// order: operations Index, Index+Of, ... of the whole schedule, below maxOps
// (0: no bound), which counts the whole schedule's operations.
func (s Share) ops(sched *Schedule, maxOps int64) iter.Seq[time.Time] {
	return func(yield func(time.Time) bool) {
		for n := int64(s.Index); maxOps == 0 || n < maxOps; n += s.stride() {
			t, _, ok := sched.At(n)
			if !ok || !yield(t) {
				return
			}
		}
	}
}

// maxOps is the share's part of a workload's MaxOps (0: no bound): the
// operations numbered Index, Index+Of, ... below max.
func (s Share) maxOps(total int64) int64 {
	if total == 0 || s.whole() {
		return total
	}
	n := total / int64(s.Of)
	if int64(s.Index) < total%int64(s.Of) {
		n++
	}
	return n
}

// Progress is the state of a run after one interval.
type Progress struct {
	Elapsed, Total time.Duration
	Interval       results.Interval
	Phase          string
	// ScheduleLag is the open-loop dispatcher's worst lag behind the schedule in
	// the interval: how late it handed an operation to the workers. Only the
	// client causes it (a slow database makes late operations, not a late
	// dispatcher), so a large one says the client is saturated.
	ScheduleLag time.Duration
}

// Result is what a run measured.
type Result struct {
	Summary *results.Summary
	Ledger  *results.Ledger
	Acked   int64
	Unknown int64
}

// Validate checks the configuration and reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Workloads) == 0 {
		errs = append(errs, usageErr("--workload", "no workload"))
	}
	if len(c.Targets) == 0 && slices.ContainsFunc(c.Workloads, func(s Spec) bool { return s.Workload != nil && !s.Workload.NoDB }) {
		errs = append(errs, usageErr("--target", "no target"))
	}
	for _, s := range c.Workloads {
		if s.Workload == nil {
			errs = append(errs, usageErr("--workload", "nil workload"))
			continue
		}
		if _, err := NewMix(s.Workload, s.Mix); err != nil {
			errs = append(errs, err)
		}
		if len(s.Phases) == 0 {
			errs = append(errs, usageErr("--duration", "%s: no phase", s.Workload.Name))
		}
		for _, p := range s.Phases {
			if p.Duration <= 0 {
				errs = append(errs, usageErr("--duration", "%s: %v is not a positive duration", s.Workload.Name, p.Duration))
			}
			if !s.Closed && (!(p.Rate >= 0) || math.IsInf(p.Rate, 0)) {
				errs = append(errs, usageErr("--rate", "%s: %g: the rate must be positive", s.Workload.Name, p.Rate))
			}
			if s.Closed && p.Concurrency < 0 {
				errs = append(errs, usageErr("--concurrency", "%s: %d: must be positive", s.Workload.Name, p.Concurrency))
			}
			if s.Closed && p.Concurrency > MaxConcurrency {
				errs = append(errs, usageErr("--concurrency", "%s: %d: at most %d closed-loop workers per process", s.Workload.Name, p.Concurrency, MaxConcurrency))
			}
		}
		for _, n := range s.Route.Nodes {
			if !s.Workload.NoDB && (n < 1 || n > len(c.Targets)) {
				errs = append(errs, usageErr("--route", "node %d: out of range 1-%d", n, len(c.Targets)))
			}
		}
		if s.Workers < 0 || s.MaxInFlight < 0 || s.OpTimeout < 0 || s.Retry.Retries < 0 || s.MaxOps < 0 || s.Retry.Backoff < 0 {
			errs = append(errs, usageErr("--workers", "%s: workers, in-flight bound, timeouts, retries, backoff and op counts must not be negative", s.Workload.Name))
		}
		if s.Workers > MaxWorkers {
			errs = append(errs, usageErr("--workers", "%s: %d: at most %d connections per node", s.Workload.Name, s.Workers, MaxWorkers))
		}
		if s.MaxInFlight > MaxInFlight {
			errs = append(errs, usageErr("--max-in-flight", "%s: %d: at most %d per node", s.Workload.Name, s.MaxInFlight, MaxInFlight))
		}
		if s.Retry.Retries > MaxRetries {
			errs = append(errs, usageErr("--retries", "%s: %d: at most %d", s.Workload.Name, s.Retry.Retries, MaxRetries))
		}
	}
	if c.Share.Of < 0 || c.Share.Index < 0 || (c.Share.Of > 0 && c.Share.Index >= c.Share.Of) || (c.Share.Of == 0 && c.Share.Index != 0) {
		errs = append(errs, usageErr("--agents", "share %d of %d: want 0 <= index < count", c.Share.Index, c.Share.Of))
	}
	if c.WorkerBase < 0 || c.WorkerBase > 0xffff {
		errs = append(errs, usageErr("--agents", "worker base %d: want 0-65535", c.WorkerBase))
	}
	if c.GapThreshold < 0 || c.LateThreshold < 0 {
		errs = append(errs, usageErr("--gap-threshold", "the gap and late thresholds must not be negative"))
	}
	if c.Params.BatchRows < 0 || c.Params.BatchRows > MaxBatchRows {
		errs = append(errs, usageErr("--batch-rows", "%d: want 1-%d rows per statement", c.Params.BatchRows, MaxBatchRows))
	}
	return errors.Join(errs...)
}

// Limits of one process's load: beyond them a value is a typo, not a plan.
const (
	MaxWorkers     = 4096      // connections per node (open loop)
	MaxConcurrency = 4096      // closed-loop workers
	MaxInFlight    = 1_000_000 // operations started or waiting per node
	MaxRetries     = 100
	MaxBatchRows   = 100_000
)

// Run drives the workloads against the targets until their phases end, MaxOps is
// reached or ctx is cancelled, recording every operation. It returns what was
// measured even when interrupted.
//
// A panic in one of its goroutines (a worker, an op, a tick of the recorder)
// stops the run as a cancel does, and Run returns what was measured with the
// panic as its error (a *safego.PanicError); so does a cancel of ctx whose cause
// is a panic elsewhere. A panicking op does not become an error of that op: it is
// a bug of htapchaos, not something the database did.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	needDB := slices.ContainsFunc(cfg.Workloads, func(s Spec) bool { return !s.Workload.NoDB })
	runTag := cfg.RunTag
	if runTag == 0 {
		runTag = 1
		if needDB && slices.ContainsFunc(cfg.Workloads, ledgered) {
			db, err := sql.Open("mysql", cfg.Targets[0].DSN)
			if err != nil {
				return nil, err
			}
			var tables []AuditTable
			for _, s := range cfg.Workloads {
				if ledgered(s) && !slices.Contains(tables, s.Workload.AuditTarget()) {
					tables = append(tables, s.Workload.AuditTarget())
				}
			}
			runTag, err = PickRunTagIn(ctx, db, rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1)), tables)
			db.Close()
			if err != nil {
				return nil, err
			}
		}
	}
	start := time.Now()
	rec, err := results.NewRecorder(results.Options{Dir: cfg.Out, Start: start, Interval: cfg.Interval, GapThreshold: cfg.GapThreshold, LateThreshold: cfg.LateThreshold, Observer: cfg.Observer, Export: cfg.Export})
	if err != nil {
		return nil, err
	}
	ledger := cfg.Ledger
	if ledger == nil {
		ledger = results.NewLedger()
	}
	r := &run{cfg: cfg, rec: rec, ledger: ledger, ids: NewIDs(runTag), start: start, tracker: newConnTracker(), cancel: cancel}
	stopTracker := context.AfterFunc(ctx, r.tracker.closeAll)
	defer stopTracker()
	defer func() {
		for _, w := range r.workloads {
			for _, db := range w.pools {
				db.Close()
			}
			for _, db := range w.memPools {
				db.Close()
			}
		}
	}()
	// Prepare every workload before starting any, so a failure leaves nothing running.
	var total time.Duration
	for _, s := range cfg.Workloads {
		w, err := r.prepare(s)
		if err != nil {
			_, _ = rec.Close(time.Now())
			return nil, err
		}
		total = max(total, w.sched.End().Sub(start))
	}
	if cfg.StartAt != nil {
		t0, err := cfg.StartAt(ctx)
		if err == nil && ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		if err != nil {
			_, _ = rec.Close(time.Now())
			return nil, err
		}
		start, r.start, total = t0, t0, 0
		rec.SetStart(t0)
		for _, w := range r.workloads {
			w.sched = NewSchedule(t0, w.spec.Phases)
			total = max(total, w.sched.End().Sub(start))
		}
		sl := newSleeper()
		ok := sleepUntil(ctx, sl, t0)
		sl.close()
		if !ok {
			sum, err := rec.Close(time.Now())
			res := &Result{Summary: sum, Ledger: ledger}
			return res, errors.Join(r.panicked(ctx), err)
		}
	}
	var wg sync.WaitGroup
	for _, w := range r.workloads {
		safego.Go(&wg, "load "+w.spec.streamName(), r.fail, func() { w.run(ctx) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	var tickErr error
loop:
	for {
		select {
		case <-done:
			break loop
		case now := <-tick.C:
			func() {
				defer safego.Recover("load recorder", r.fail)
				iv, err := rec.Tick(now)
				if err != nil && tickErr == nil {
					tickErr = err
				}
				if cfg.Out != "" {
					if err := ledger.WriteFile(cfg.Out + "/ledger.json"); err != nil && tickErr == nil {
						tickErr = err
					}
				}
				lag := time.Duration(r.lag.Swap(0))
				if cfg.Progress != nil {
					cfg.Progress(Progress{Elapsed: now.Sub(start), Total: total, Interval: iv, Phase: r.phaseName(now), ScheduleLag: lag})
				}
			}()
		}
	}
	sum, err := rec.Close(time.Now())
	res := &Result{Summary: sum, Ledger: ledger}
	res.Acked, res.Unknown = ledger.Count()
	if cfg.Out != "" {
		err = errors.Join(err, ledger.WriteFile(cfg.Out+"/ledger.json"))
	}
	return res, errors.Join(r.panicked(ctx), tickErr, err)
}

// fail stops the run after a panic in one of its goroutines (see Run).
func (r *run) fail(err error) {
	r.pmu.Lock()
	if r.panicErr == nil {
		r.panicErr = err
	}
	r.pmu.Unlock()
	r.cancel(err)
}

// panicked is the first panic of the run's own goroutines, else the cause of
// ctx's cancel when that is a panic elsewhere; nil when none.
func (r *run) panicked(ctx context.Context) error {
	r.pmu.Lock()
	defer r.pmu.Unlock()
	var pe *safego.PanicError
	if r.panicErr == nil && errors.As(context.Cause(ctx), &pe) {
		return pe
	}
	return r.panicErr
}

// ledgered says whether a workload spec runs an op that fills the ledger (and so
// needs ids of a run tag of its own).
func ledgered(s Spec) bool {
	mix, err := NewMix(s.Workload, s.Mix)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(mix.Ops(), func(o *Op) bool { return o.Ledgered })
}

type run struct {
	cfg        Config
	rec        *results.Recorder
	ledger     *results.Ledger
	ids        *IDs
	start      time.Time
	nextWorker atomic.Int64
	lag        atomic.Int64 // the dispatchers' worst lag behind the schedule this interval, ns
	workloads  []*workloadRun
	tracker    *connTracker
	cancel     context.CancelCauseFunc
	pmu        sync.Mutex
	panicErr   error // the first panic of the run's goroutines
}

// noteLag keeps the worst dispatcher lag of the interval (Progress.ScheduleLag).
func (r *run) noteLag(d time.Duration) {
	for {
		cur := r.lag.Load()
		if int64(d) <= cur || r.lag.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

func (r *run) phaseName(now time.Time) string {
	for _, w := range r.workloads {
		if p := w.sched.PhaseAt(now); p >= 0 {
			return w.spec.Phases[p].Name
		}
	}
	return "draining"
}

// workloadRun is one workload in flight.
type workloadRun struct {
	r       *run
	spec    Spec
	mix     *Mix
	router  *router
	sched   *Schedule // open loop: the plan; closed loop: phase boundaries only
	handles map[int][]*results.Handle
	pools   map[int]*sql.DB
	// memPools are the nodes' pools for measured queries (Op.Memory): no idle
	// connections, so each connection is new and closed once used; mem is the
	// per-node switch that stops measuring where the server cannot. Both nil
	// unless the spec measures memory (Spec.MeasureMemory) and the mix has such
	// an op.
	memPools map[int]*sql.DB
	mem      map[int]*memoryState
	issued   atomic.Int64
}

func (r *run) prepare(s Spec) (*workloadRun, error) {
	if s.Workers == 0 {
		s.Workers = 32
	}
	if s.OpTimeout == 0 {
		s.OpTimeout = 10 * time.Second
	}
	if s.Retry.Backoff == 0 {
		s.Retry.Backoff = 100 * time.Millisecond
	}
	if len(s.Route.Nodes) == 0 {
		if s.Workload.NoDB {
			s.Route.Nodes = []int{0}
		} else {
			s.Route, _ = ParseRoute("all", len(r.cfg.Targets))
		}
	}
	peak := 0.0
	conc := 0
	for _, p := range s.Phases {
		peak = max(peak, p.Rate)
		conc = max(conc, p.Concurrency)
	}
	if s.MaxInFlight == 0 {
		// 10 s of the peak rate this process issues (its share of it).
		s.MaxInFlight = max(s.Workers, min(int(peak/float64(r.cfg.Share.stride())*10), 1_000_000))
	}
	s.MaxInFlight = max(s.MaxInFlight, s.Workers)
	mix, err := NewMix(s.Workload, s.Mix)
	if err != nil {
		return nil, err
	}
	w := &workloadRun{r: r, spec: s, mix: mix, router: &router{nodes: s.Route.Nodes},
		sched: NewSchedule(r.start, s.Phases), handles: map[int][]*results.Handle{}, pools: map[int]*sql.DB{}}
	measured := s.MeasureMemory && !s.Workload.NoDB && slices.ContainsFunc(mix.Ops(), func(o *Op) bool { return o.Memory })
	if measured {
		w.memPools, w.mem = map[int]*sql.DB{}, map[int]*memoryState{}
	}
	r.workloads = append(r.workloads, w) // now, so its pools are closed whatever happens
	for _, n := range s.Route.Nodes {
		for _, op := range mix.Ops() {
			w.handles[n] = append(w.handles[n], r.rec.Handle(results.Key{Workload: s.streamName(), Op: op.Name, Node: n, Access: op.Access()}))
		}
		if s.Workload.NoDB {
			continue
		}
		conns := s.Workers
		if s.Closed {
			conns = max(conc, 1)
		}
		db, err := openPool(r.cfg.Targets[n-1].DSN, s.OpTimeout, r.tracker, conns)
		if err != nil {
			return nil, err
		}
		w.pools[n] = db
		if measured {
			mdb, err := openPool(r.cfg.Targets[n-1].DSN, s.OpTimeout, r.tracker, conns)
			if err != nil {
				return nil, err
			}
			mdb.SetMaxIdleConns(0) // a connection given back is closed: the next is new
			// No cap: a worker holds at most one connection of the pool (pre-opened
			// for its own node, or in use), but other nodes' workers retrying here
			// hold one too, and a capped pool would make this node's own workers
			// wait for them in pool.Conn.
			mdb.SetMaxOpenConns(0)
			w.memPools[n], w.mem[n] = mdb, &memoryState{}
		}
	}
	return w, nil
}

// newWorker makes a worker that serves node home (0: every node, the closed loop).
func (w *workloadRun) newWorker(home int) *Worker {
	id := w.r.cfg.WorkerBase + int(w.r.nextWorker.Add(1))
	return &Worker{ID: id, Rand: rand.New(rand.NewPCG(w.spec.Seed, uint64(id))), Params: &w.r.cfg.Params, ids: w.r.ids, ledger: w.r.ledger, conns: conns{}, fresh: conns{}, home: home}
}

func (w *workloadRun) run(ctx context.Context) {
	if w.spec.Closed {
		w.runClosed(ctx)
	} else {
		w.runOpen(ctx)
	}
}

type job struct {
	intended time.Time
	op       int
}

// runOpen dispatches operations on the schedule to per-node queues, each served by
// its own workers: a stuck node only holds up its own operations, which wait in its
// queue and start late (their latency counts from the intended start), and past the
// in-flight bound are dropped and counted.
func (w *workloadRun) runOpen(ctx context.Context) {
	queues := map[int]chan job{}
	var wg sync.WaitGroup
	// Deferred: after a panic here too, the workers end.
	defer func() {
		for _, q := range queues {
			close(q)
		}
		wg.Wait()
	}()
	for _, n := range w.spec.Route.Nodes {
		q := make(chan job, w.spec.MaxInFlight-w.spec.Workers)
		queues[n] = q
		for range w.spec.Workers {
			wk := w.newWorker(n)
			safego.Go(&wg, w.workerName(wk), w.r.fail, func() {
				defer wk.closeAll()
				for j := range q {
					if ctx.Err() != nil {
						continue // shutting down: queued operations never start
					}
					started := time.Now()
					w.record(w.handles[n][j.op], j.intended, started, w.exec(ctx, n, j.op, wk))
				}
			})
		}
	}
	rng := rand.New(rand.NewPCG(w.spec.Seed, 0))
	sl := newSleeper()
	defer sl.close()
	for t := range w.r.cfg.Share.ops(w.sched, w.spec.MaxOps) {
		if !sleepUntil(ctx, sl, t) {
			break
		}
		if lag := time.Since(t); lag > 0 {
			w.r.noteLag(lag)
		}
		op := w.mix.pickIndex(rng)
		node := w.router.pick()
		select {
		case queues[node] <- job{intended: t, op: op}:
		default:
			w.handles[node][op].Dropped(t)
		}
	}
}

func (w *workloadRun) workerName(wk *Worker) string {
	return fmt.Sprintf("load %s worker %d", w.spec.streamName(), wk.ID)
}

// sleepUntil waits for t unless ctx ends first (false), with a sleeper that wakes on
// time (see sleeper).
func sleepUntil(ctx context.Context, sl *sleeper, t time.Time) bool {
	for {
		if ctx.Err() != nil {
			return false
		}
		d := time.Until(t)
		if d <= 0 {
			return true
		}
		// In slices, so that a cancel is seen within 10 ms.
		sl.sleep(min(d, 10*time.Millisecond))
	}
}

// runClosed runs fixed workers, each starting an operation when its last one ends;
// a phase's concurrency says how many of them work.
func (w *workloadRun) runClosed(ctx context.Context) {
	conc := 0
	for _, p := range w.spec.Phases {
		conc = max(conc, p.Concurrency)
	}
	end := w.sched.End()
	share := w.r.cfg.Share
	maxOps := share.maxOps(w.spec.MaxOps)
	var wg sync.WaitGroup
	for id := range conc {
		if !share.has(id) {
			continue // another process's worker (see Share)
		}
		wk := w.newWorker(0)
		safego.Go(&wg, w.workerName(wk), w.r.fail, func() {
			defer wk.closeAll()
			sl := newSleeper()
			defer sl.close()
			for ctx.Err() == nil {
				now := time.Now()
				p := w.sched.PhaseAt(now)
				if p < 0 {
					return
				}
				if id >= w.spec.Phases[p].Concurrency {
					// Idle in this phase: wait for the next one.
					next := w.r.start.Add(w.sched.begins[p+1])
					if next.After(end) {
						next = end
					}
					if !sleepUntil(ctx, sl, next) {
						return
					}
					continue
				}
				if maxOps > 0 && w.issued.Add(1) > maxOps {
					return
				}
				op := w.mix.pickIndex(wk.Rand)
				node := w.router.pick()
				w.record(w.handles[node][op], now, now, w.exec(ctx, node, op, wk))
			}
		})
	}
	wg.Wait()
}

// opResult is how a user-visible operation ended.
type opResult struct {
	err   error
	ended time.Time // when its last attempt ended (before any memory reading)
	mem   int64     // the peak memory of a successful measured query, in bytes; 0: none
	// returned is the bytes the last attempt's result sent to the client, when
	// counted (see runCounted).
	returned int64
	counted  bool
}

// record records an operation's outcome on h.
func (w *workloadRun) record(h *results.Handle, intended, started time.Time, res opResult) {
	h.Record(intended, started, res.ended, res.err)
	if res.err == nil && res.mem > 0 {
		h.RecordMemory(res.mem)
	}
	if res.err == nil && res.counted {
		h.RecordReturned(res.returned)
	}
}

// exec runs one user-visible operation: one attempt, or several under a retry policy.
func (w *workloadRun) exec(ctx context.Context, node, op int, wk *Worker) opResult {
	res := w.attempt(ctx, node, op, wk)
	backoff := w.spec.Retry.Backoff
	for i := 0; i < w.spec.Retry.Retries && res.err != nil && retryable(res.err) && ctx.Err() == nil; i++ {
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return opResult{err: context.Canceled, ended: time.Now()}
		case <-t.C:
		}
		backoff *= 2
		node = w.router.after(node)
		res = w.attempt(ctx, node, op, wk)
	}
	return res
}

func retryable(err error) bool {
	switch results.Classify(err).Class {
	case results.ClassOther, results.ClassCanceled:
		return false
	}
	return true
}

// attempt makes exactly one attempt on the worker's own connection to the node.
//
// The query itself runs without a cancellable context: with one, the driver hands
// every query to a watcher goroutine and back, which cost a fifth of the client's CPU
// per point read. The operation timeout is the connection's read and write timeout
// instead (openPool), and a cancelled run closes the connections (connTracker).
//
// An op that measures its memory (Op.Memory) runs on a connection of its own
// instead (memoryAttempt).
//
// Either way the bytes its result sent to the client are counted on the
// connection it ran on (runCounted).
func (w *workloadRun) attempt(ctx context.Context, node, opIdx int, wk *Worker) opResult {
	op := w.mix.ops[opIdx]
	start := time.Now()
	if w.spec.Workload.NoDB {
		actx, cancel := context.WithTimeout(ctx, w.spec.OpTimeout)
		defer cancel()
		err := op.Run(actx, nil, wk)
		return opResult{ended: time.Now(), err: w.outcome(ctx, start, err)}
	}
	w.releaseFresh(wk)
	if w.measureMemory(op, node) {
		// Counted inside memoryAttempt, around the query only: its memory
		// reading runs on the same connection afterwards.
		res := opResult{}
		counted := *op
		counted.Run = func(ctx context.Context, q Querier, wk *Worker) (err error) {
			c, ok := q.(*workerConn)
			if !ok {
				return op.Run(ctx, q, wk)
			}
			res.returned, res.counted, err = runCounted(ctx, op, c, wk)
			return err
		}
		res.ended, res.mem, res.err = w.memoryAttempt(ctx, node, &counted, wk)
		return res
	}
	res := opResult{}
	c, err := wk.conns.get(ctx, node, w.pools[node])
	if err == nil {
		res.returned, res.counted, err = runCounted(context.WithoutCancel(ctx), op, c, wk)
	}
	res.ended = time.Now()
	res.err = w.outcome(ctx, start, err)
	wk.conns.drop(node, res.err)
	return res
}

// outcome names why an attempt ended: our shutdown (canceled), its own timeout, or
// what the database said. The driver reports its read and write timeouts as a lost
// connection: one that failed after the whole operation timeout timed out.
func (w *workloadRun) outcome(ctx context.Context, start time.Time, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("%w: %v", context.Canceled, err)
	case errors.Is(err, context.DeadlineExceeded),
		results.Classify(err).Class == results.ClassConnection && time.Since(start) >= w.spec.OpTimeout:
		return fmt.Errorf("operation timeout %v: %w (%v)", w.spec.OpTimeout, context.DeadlineExceeded, err)
	}
	return err
}
