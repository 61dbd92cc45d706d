package faults

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/htapchaos/htapchaos/internal/safego"
	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/results"
)

// spikeBackstop bounds a spike whose Recover never comes (the schedule's length).
const spikeBackstop = time.Hour

// spikeMaxRows bounds rows per batch statement (a statement must fit the server's
// max_allowed_packet).
const spikeMaxRows = 100_000

// Measurements of analytics-spike and batch-spike.
const (
	MeasureOrdersRows    = "orders rows"    // before the spike, the server's estimate
	MeasureSpikeDuration = "spike duration" // s, from its start to recover
	MeasureSpikeOps      = "spike ops"      // operations that succeeded
	MeasureSpikeRate     = "spike rate"     // ops/s achieved; the note has the target
	// MeasureSpikeP99 is per operation: the name is followed by a space and the
	// operation's name ("spike p99 fraud-scan"); ms from the intended start.
	MeasureSpikeP99     = "spike p99"
	MeasureSpikeErrors  = "spike errors"  // failed operations; the note has them by class
	MeasureSpikeDropped = "spike dropped" // operations dropped: the servers fell behind the schedule
	MeasureSpikeRows    = "spike rows"    // batch-spike: rows acknowledged
)

// spikeMeasures are what every spike measures.
var spikeMeasures = []string{MeasureOrdersRows, MeasureSpikeDuration, MeasureSpikeOps, MeasureSpikeRate,
	MeasureSpikeP99, MeasureSpikeErrors, MeasureSpikeDropped}

// spikeRateHelp is the rate parameter's help.
const spikeRateHelp = "base rate, operations per second over all the chosen nodes (round-robin)"

// spike runs a loadgen workload, open loop at rate x times, from Inject until Recover.
//
// It needs the load schema (users and orders, as loadgen.Setup makes them) and does
// not make it: Setup refuses a node without it. A fault that quietly created and
// seeded tables would change the database under test, and a spike on a freshly
// seeded toy table measures nothing; the load run the spike disturbs sets the schema
// up. The rows a batch spike inserts stay, as a real batch load's do.
//
// Every statement of the spike starts with a comment naming it, so that the
// statements its closed connections left running on the server can be found in the
// process list and killed: Recover ends the spike on the server too, not only in the
// client.
type spike struct {
	kind        string
	wl          *loadgen.Workload
	rate, times int
	rows        int
	mix         map[string]int
	err         error // bad parameters: Validate (at Parse) and Setup return it

	// Set by Setup.
	targets []loadgen.Target
	labels  []string
	ctl     []*sql.DB
	data    loadgen.Data
	tag     string

	// Set by Inject.
	runTag int64 // the ids of the rows a ledgered spike inserts (loadgen.IDs); 0: none
	cancel context.CancelCauseFunc
	done   chan struct{}
	ops    atomic.Int64 // successes so far (progress ticks)
	failed atomic.Int64

	mu      sync.Mutex
	ms      []Measurement // from Setup
	started time.Time
	stopped time.Time
	res     *loadgen.Result
	runErr  error
}

var errSpikeOver = errors.New("spike recovered")

func newSpike(kind string, wl *loadgen.Workload, p Params) *spike {
	f := &spike{kind: kind, wl: wl, rate: p.Int("rate"), times: p.Int("times"), rows: p.Int("rows")}
	var errs []error
	if f.rate < 1 {
		errs = append(errs, usageErr("--param", "rate=%s: want at least 1 operation per second", p["rate"]))
	}
	if f.times < 1 {
		errs = append(errs, usageErr("--param", "times=%s: want a factor of at least 1", p["times"]))
	}
	if _, ok := p["rows"]; ok && (f.rows < 1 || f.rows > spikeMaxRows) {
		errs = append(errs, usageErr("--param", "rows=%s: want 1 to %d rows per statement", p["rows"], spikeMaxRows))
	}
	if m := strings.TrimSpace(p["mix"]); m != "" {
		mix, err := spikeMix(wl, m)
		if err != nil {
			errs = append(errs, err)
		}
		f.mix = mix
	}
	f.err = errors.Join(errs...)
	return f
}

// spikeMix parses "fraud-scan" or "dashboard=50,fraud-scan=50" against the workload.
func spikeMix(wl *loadgen.Workload, s string) (map[string]int, error) {
	var parts []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part != "" && !strings.Contains(part, "=") {
			part += "=1"
		}
		parts = append(parts, part)
	}
	mix, err := loadgen.ParseMix([]string{strings.Join(parts, ",")})
	if err == nil {
		_, err = loadgen.NewMix(wl, mix)
	}
	if err == nil && mix["sql"] > 0 {
		err = errors.New("operation sql runs a query of your own, which this fault does not take")
	}
	if err != nil {
		var ue *UsageError
		if errors.As(err, &ue) {
			err = errors.New(ue.Msg)
		}
		return nil, usageErr("--param", "mix=%s: %v", s, err)
	}
	return mix, nil
}

// Setup checks the parameters and that every node has the load schema; the seeded
// user ids become the batch rows' users.
func (f *spike) Setup(ctx context.Context, env *Env) error {
	if f.err != nil {
		return f.err
	}
	if len(env.Targets) == 0 {
		return usageErr("--node", "%s: no node chosen", f.kind)
	}
	var errs []error
	for i, n := range env.Targets {
		sn, ok := n.(SQLNode)
		if !ok {
			errs = append(errs, fmt.Errorf("%s gives no SQL connection", n.Label()))
			continue
		}
		t, err := loadgen.NewTarget(i+1, sn.DSN(), loadgen.DefaultTimeouts)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Label(), err))
			continue
		}
		db, err := sql.Open("mysql", t.DSN)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Label(), err))
			continue
		}
		db.SetMaxOpenConns(2)
		f.ctl = append(f.ctl, db)
		f.targets = append(f.targets, t)
		f.labels = append(f.labels, n.Label())
		if err := f.checkSchema(ctx, db, n.Label()); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var users, orders int64
	err := f.ctl[0].QueryRowContext(ctx, "SELECT (SELECT COALESCE(MAX(user_id), 0) FROM users), (SELECT COALESCE(MAX(order_id), 0) FROM orders WHERE order_id < 1 << 40)").Scan(&users, &orders)
	if err != nil {
		return fmt.Errorf("%s: seeded ids: %w", f.labels[0], err)
	}
	f.data = loadgen.Data{Users: users, Orders: orders}
	f.tag = fmt.Sprintf("/* htapchaos %s %016x */ ", f.kind, rand.Uint64())
	return nil
}

// checkSchema refuses a node without users and orders, and measures their size.
func (f *spike) checkSchema(ctx context.Context, db *sql.DB, label string) error {
	rows, err := db.QueryContext(ctx, `SELECT TABLE_NAME, COALESCE(TABLE_ROWS, 0) FROM information_schema.TABLES
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('users', 'orders')`)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	defer rows.Close()
	found := map[string]int64{}
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		found[strings.ToLower(name)] = n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	for _, t := range []string{"users", "orders"} {
		if _, ok := found[t]; !ok {
			return usageErr("--node", "%s: no table %s in the DSN's database: %s needs the load schema (htapchaos load --setup makes and seeds it; from Go, loadgen.Setup)", label, t, f.kind)
		}
	}
	f.mu.Lock()
	f.ms = append(f.ms, Measurement{Name: MeasureOrdersRows, Node: label, Value: float64(found["orders"]), Unit: "rows", Note: "before the spike, the server's estimate"})
	f.mu.Unlock()
	return nil
}

// spikeQuerier puts the spike's tag before every statement.
type spikeQuerier struct {
	q   loadgen.Querier
	tag string
}

func (s spikeQuerier) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.q.ExecContext(ctx, s.tag+query, args...)
}

func (s spikeQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.q.QueryContext(ctx, s.tag+query, args...)
}

// tagged is the workload with every statement tagged.
func (f *spike) tagged() *loadgen.Workload {
	wl := *f.wl
	wl.Ops = slices.Clone(f.wl.Ops)
	for i := range wl.Ops {
		run := wl.Ops[i].Run
		wl.Ops[i].Run = func(ctx context.Context, q loadgen.Querier, w *loadgen.Worker) error {
			return run(ctx, spikeQuerier{q: q, tag: f.tag}, w)
		}
	}
	return &wl
}

// Inject starts the spike in the background: open loop at rate x times, until
// Recover cancels it (or the backstop of an hour).
func (f *spike) Inject(ctx context.Context, env *Env) error {
	// The rows of a spike that writes (its workload has a ledgered op) get a run
	// tag of their own, chosen now among the ranges that hold no row and are not the
	// run's own writers' (env.RunTags): the two cannot share ids, and a durability
	// audit tells them apart. A spike that only reads needs none.
	if f.wl.Ledgered() {
		runTag, err := loadgen.PickRunTag(ctx, f.ctl[0], rand.New(rand.NewPCG(rand.Uint64(), 1)), env.RunTags...)
		if err != nil {
			return fmt.Errorf("%s: %w", f.labels[0], err)
		}
		f.runTag = runTag
	}
	rctx, cancel := context.WithCancelCause(ctx)
	f.cancel = cancel
	f.done = make(chan struct{})
	cfg := loadgen.Config{
		Targets: f.targets,
		Workloads: []loadgen.Spec{{
			Workload: f.tagged(),
			Mix:      f.mix,
			Phases:   []loadgen.Phase{{Name: "spike", Duration: spikeBackstop, Rate: float64(f.rate * f.times)}},
			Seed:     rand.Uint64(),
		}},
		Params:   loadgen.Params{Dialect: loadgen.MariaDB, Data: f.data, BatchRows: f.rows},
		RunTag:   f.runTag,
		Interval: 200 * time.Millisecond,
		Progress: func(p loadgen.Progress) {
			f.ops.Add(p.Interval.Ops)
			f.failed.Add(p.Interval.Errors)
		},
	}
	f.mu.Lock()
	f.started = time.Now()
	f.mu.Unlock()
	go func() {
		defer close(f.done)
		defer safego.Recover("batch spike", func(err error) {
			f.mu.Lock()
			f.runErr = err
			f.mu.Unlock()
		})
		res, err := loadgen.Run(rctx, cfg)
		f.mu.Lock()
		f.res, f.runErr = res, err
		f.mu.Unlock()
	}()
	return nil
}

// LedgerWriter is a fault that inserts rows of its own into the load's tables (a
// batch spike): a durability audit reads them back too.
type LedgerWriter interface {
	// Ledger returns the fault's acknowledged and unknown inserts and the id range
	// they come from (every row there is the fault's); nil when it writes no
	// ledgered rows (an analytics spike) or never ran. Call it after the fault
	// ended.
	Ledger() (ledger *results.Ledger, lo, hi int64)
}

// Ledger: the inserts of a spike whose workload has a ledgered op, once it ran;
// nil for a spike that only reads (loadgen.Run returns an empty ledger for it).
func (f *spike) Ledger() (*results.Ledger, int64, int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.wl.Ledgered() || f.res == nil || f.res.Ledger == nil {
		return nil, 0, 0
	}
	lo, hi := loadgen.NewIDs(f.runTag).Range()
	return f.res.Ledger, lo, hi
}

// WaitForEffect returns once the spike's first operations succeeded.
func (f *spike) WaitForEffect(ctx context.Context, env *Env) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for f.ops.Load() == 0 {
		select {
		case <-f.done:
			f.mu.Lock()
			err := f.runErr
			f.mu.Unlock()
			if err == nil {
				err = errors.New("it ended")
			}
			return fmt.Errorf("the spike stopped before any operation succeeded: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("no spike operation succeeded (%d failed): %w", f.failed.Load(), context.Cause(ctx))
		case <-tick.C:
		}
	}
	return nil
}

// Recover stops the spike: the client first, then what its closed connections left
// running on the servers.
func (f *spike) Recover(ctx context.Context, env *Env) error {
	if f.done == nil {
		return nil
	}
	f.mu.Lock()
	f.stopped = time.Now()
	f.mu.Unlock()
	f.cancel(errSpikeOver)
	select {
	case <-f.done:
	case <-ctx.Done():
		return fmt.Errorf("the spike's client did not stop: %w", context.Cause(ctx))
	}
	_, err := f.leftovers(ctx, true)
	return err
}

// leftovers counts the spike's statements still running on the nodes, and kills
// them when asked.
func (f *spike) leftovers(ctx context.Context, kill bool) (int, error) {
	var errs []error
	total := 0
	for i, db := range f.ctl {
		ids, err := f.running(ctx, db)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.labels[i], err))
			continue
		}
		total += len(ids)
		if !kill {
			continue
		}
		for _, id := range ids {
			_, err := db.ExecContext(ctx, "KILL QUERY "+strconv.FormatInt(id, 10))
			var me *mysql.MySQLError
			if err != nil && !(errors.As(err, &me) && me.Number == 1094) { // 1094: it just ended
				errs = append(errs, fmt.Errorf("%s: %w", f.labels[i], err))
			}
		}
	}
	return total, errors.Join(errs...)
}

// running lists the connections that run a statement of this spike.
func (f *spike) running(ctx context.Context, db *sql.DB) ([]int64, error) {
	rows, err := db.QueryContext(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND LEFT(INFO, ?) = ?", len(f.tag), f.tag)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// WaitForRecovery waits until no statement of the spike runs on any node, killing
// stragglers, and the nodes serve.
func (f *spike) WaitForRecovery(ctx context.Context, env *Env) error {
	if f.done != nil {
		if err := poll(ctx, "spike statements still running", func() (bool, error) {
			n, err := f.leftovers(ctx, true)
			return err == nil && n == 0, err
		}); err != nil {
			return err
		}
	}
	return each(env, func(n Node) error {
		if r, ok := n.(Readier); ok {
			return r.WaitReady(ctx)
		}
		return nil
	})
}

// Cleanup stops a spike that Recover did not (it never ran), and closes connections.
func (f *spike) Cleanup(ctx context.Context, env *Env) error {
	if f.done != nil {
		f.cancel(errSpikeOver)
		select {
		case <-f.done:
		case <-ctx.Done():
		}
	}
	for _, db := range f.ctl {
		db.Close()
	}
	return nil
}

// Measurements: the operations done and the rate achieved, each operation's p99
// (from its intended start: late starts count), errors by class, and operations
// dropped because the servers fell behind; for a spike that writes (its workload
// has a ledgered op: a batch spike), the rows inserted.
func (f *spike) Measurements() []Measurement {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := append([]Measurement(nil), f.ms...)
	if f.started.IsZero() {
		return out
	}
	node := ""
	if len(f.labels) == 1 {
		node = f.labels[0]
	}
	target := float64(f.rate * f.times)
	if f.res == nil || f.res.Summary == nil {
		secs := time.Since(f.started).Seconds()
		return append(out,
			Measurement{Name: MeasureSpikeOps, Node: node, Value: float64(f.ops.Load()), Unit: "ops", Note: "still running"},
			Measurement{Name: MeasureSpikeRate, Node: node, Value: float64(f.ops.Load()) / secs, Unit: "ops/s", Note: fmt.Sprintf("target %g ops/s, still running", target)})
	}
	sum := f.res.Summary
	stopped := f.stopped
	if stopped.IsZero() {
		stopped = sum.End
	}
	secs := stopped.Sub(sum.Start).Seconds()
	var count, dropped, late, failed int64
	classes := map[results.Class]int64{}
	var perOp []Measurement
	for _, s := range sum.Workloads {
		if s.Workload != f.wl.Name {
			continue
		}
		count += s.Count
		dropped += s.Dropped
		late += s.Late
		failed += s.ErrorsTotal
		for c, n := range s.Errors {
			if c != results.ClassCanceled {
				classes[c] += n
			}
		}
		if s.Count > 0 {
			perOp = append(perOp, Measurement{Name: MeasureSpikeP99 + " " + s.Op, Node: node, Value: s.Latency.P99, Unit: "ms",
				Note: fmt.Sprintf("%d ops, p50 %.1f ms, max %.1f ms, from the intended start", s.Count, s.Latency.P50, s.Latency.Max)})
		}
	}
	var classNote []string
	for _, c := range slices.Sorted(maps.Keys(classes)) {
		if classes[c] > 0 {
			classNote = append(classNote, fmt.Sprintf("%s=%d", c, classes[c]))
		}
	}
	rate := 0.0
	if secs > 0 {
		rate = float64(count) / secs
	}
	opsNote := f.wl.Name + " operations that succeeded"
	if f.runErr != nil {
		opsNote += "; the run ended with: " + f.runErr.Error()
	}
	out = append(out,
		Measurement{Name: MeasureSpikeDuration, Node: node, Value: secs, Unit: "s", Note: "from its start to recover"},
		Measurement{Name: MeasureSpikeOps, Node: node, Value: float64(count), Unit: "ops", Note: opsNote},
		Measurement{Name: MeasureSpikeRate, Node: node, Value: rate, Unit: "ops/s", Note: fmt.Sprintf("target %g ops/s (%d x %d)", target, f.rate, f.times)})
	out = append(out, perOp...)
	out = append(out,
		Measurement{Name: MeasureSpikeErrors, Node: node, Value: float64(failed), Unit: "ops", Note: strings.Join(classNote, " ")},
		Measurement{Name: MeasureSpikeDropped, Node: node, Value: float64(dropped), Unit: "ops", Note: fmt.Sprintf("the servers fell behind the schedule; %d started late", late)})
	if f.wl.Ledgered() {
		out = append(out, Measurement{Name: MeasureSpikeRows, Node: node, Value: float64(f.res.Acked), Unit: "rows",
			Note: fmt.Sprintf("acknowledged inserts; %d with an unknown outcome", f.res.Unknown)})
	}
	return out
}
