package faults

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/go-sql-driver/mysql" // the sql method's client

	"github.com/htapchaos/htapchaos/internal/safego"
)

// memory-fill raises a node's memory use to a percentage of its limit, counted the
// way `docker stats` counts it (usage minus inactive file cache), and holds it there
// until recover, so that the database works under memory pressure. Two methods:
//
//   - exec: a small perl hog inside the node, in its cgroup, grows in steps while it
//     watches the cgroup's use, and holds the target: it frees chunks when the
//     database grows and grows again when use drops. One big allocation would
//     overshoot, and the OOM killer would take the hog or the database.
//   - sql: MEMORY tables filled through SQL in steps, for nodes where nothing can run
//     inside; dropped on recover. Each table is one block the server maps on its own
//     (see memfillHeap), so a DROP gives the memory back to the kernel at once.
const (
	memfillProc     = "htapchaos-memfill" // the hog's process name ($0)
	memfillScript   = "/tmp/htapchaos-memfill.pl"
	memfillState    = "/tmp/htapchaos-memfill.state"
	memfillLog      = "/tmp/htapchaos-memfill.log"
	memfillTable    = "htapchaos_memfill_" // sql: htapchaos_memfill_1, _2, ...
	memfillBackstop = time.Hour            // the hog stops by itself after this
	// memfillBand is how close to the target, in points of the limit, the engine's
	// figure must come for the fault to count as effective.
	memfillBand = 3.0
	// memfillMargin is the room, in points, that Setup wants below the target, and
	// that recovery must give back.
	memfillMargin = 5.0
	// memfillRow is the width of a MEMORY table row (fixed length in that engine).
	memfillRow = 60000
	// memfillHeap is the session's max_heap_table_size for the tables. MariaDB sizes a
	// MEMORY table's blocks from it (1 GiB: 64 MiB blocks, of which a table touches
	// only its rows); glibc maps a block that large on its own and unmaps it on DROP.
	// Smaller blocks come from malloc's heap: with an 8 MiB limit, mariadbd kept
	// nearly all of 200 MiB of dropped tables (docker stats barely moved).
	memfillHeap = 1 << 30
)

// Measurements of memory-fill, per node; percentages are of the node's limit, as
// the engine reports them.
const (
	MeasureMemoryBefore    = "memory before"              // %, before the fill
	MeasureMemoryReached   = "memory reached"             // %, at effect
	MeasureMemoryHoldMax   = "memory max during hold"     // %, engine samples while held
	MeasureMemoryHoldMin   = "memory min during hold"     // %
	MeasureMemoryTableSize = "memory-table size"          // method=sql: bytes of row data at effect
	MeasureHogSize         = "hog size"                   // method=exec: bytes the hog held at effect
	MeasureHogMax          = "memory max seen by the hog" // method=exec: %, the cgroup every 100 ms
	MeasureFillLost        = "fill lost"                  // 1 when the hog or the filler stopped before recover; the note says why
	MeasureMemoryAfter     = "memory after"               // %, after recovery
)

// MemoryHolder is a fault that holds memory on its nodes (memory-fill). The
// indicator sampler asks it every second, so that what the hog holds is charted
// and scored apart from the server's own memory and the container's total.
type MemoryHolder interface {
	// HeldBytes is what the fault holds on the node of that index (1-based) now,
	// in bytes: the exec hog's resident memory, or (method=sql) its MEMORY
	// tables' size as the server accounts for it (data and index length: whole
	// blocks, of which only the rows are resident). inServer: the bytes live
	// inside the database server and count in its own account (MariaDB's
	// Memory_used), so that Memory_used less them is the server's own. ok is false when the
	// fault knows nothing held there: not one of its nodes, or not filling yet.
	// After recovery it holds 0. Safe for concurrent use; it does not block on
	// the node (the figure is the fault's newest reading: method=sql reads it
	// right after every table it creates, fills or drops, and about every
	// second besides; the exec hog's state, about every second).
	HeldBytes(node int) (bytes int64, inServer bool, ok bool)
}

var _ MemoryHolder = (*memFill)(nil)

// HeldBytes: see MemoryHolder.
func (f *memFill) HeldBytes(node int) (int64, bool, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.nodes {
		if m.n.Index() == node && m.heldKnown {
			return m.held, f.method == "sql", true
		}
	}
	return 0, false, false
}

// setHeld records what the fault holds on m now (under f.mu).
func (m *memNode) setHeld(b int64) { m.held, m.heldKnown = b, true }

// heldOf is what an exec hog's state says it holds: its resident memory (the
// buffer and perl itself), or the buffer alone from a hog that does not report
// it.
func heldOf(st map[string]string) (int64, bool) {
	for _, k := range []string{"rss_bytes", "hog_bytes"} {
		if v, err := strconv.ParseInt(st[k], 10, 64); err == nil {
			return v, true
		}
	}
	return 0, false
}

// memoryFillKind declares memory-fill.
func memoryFillKind() *Kind {
	return &Kind{
		Name: "memory-fill",
		Description: "raise the node's memory use (as docker stats counts it) to a percentage of its limit and hold it: " +
			"a hog inside the node that grows in steps (method=exec) or MEMORY tables filled through SQL (method=sql); release on recover",
		Class: ClassMemory,
		Measures: []string{MeasureMemoryBefore, MeasureMemoryReached, MeasureMemoryHoldMax, MeasureMemoryHoldMin,
			MeasureMemoryTableSize, MeasureHogSize, MeasureHogMax, MeasureFillLost, MeasureMemoryAfter},
		Params: []ParamSpec{
			{Name: "percent", Type: Percent, Default: "90", Help: "memory use to reach and hold, in percent of the node's limit"},
			{Name: "method", Type: String, Default: "exec", Help: "exec: a hog process inside the node; sql: MEMORY tables, where nothing can run inside the node"},
		},
		Needs: func(n Node) error {
			execErr := memfillNeeds("exec")(n)
			sqlErr := memfillNeeds("sql")(n)
			if execErr == nil || sqlErr == nil {
				return nil
			}
			return fmt.Errorf("method=exec: %v; method=sql: %v", execErr, sqlErr)
		},
		New: func(p Params) Fault { return &memFill{percent: p.Int("percent"), method: p["method"]} },
	}
}

// memfillNeeds says what a node must be able to do for a method.
func memfillNeeds(method string) func(Node) error {
	if method == "sql" {
		return needsAll(capability[SQLNode](), capability[MemoryReader]())
	}
	return needsAll(capability[Execer](), capability[MemoryReader](), capability[Readier]())
}

type memFill struct {
	percent int
	method  string

	mu    sync.Mutex // guards the figures of each memNode, which Measurements reads
	nodes []*memNode
}

// memNode is the fault on one target.
type memNode struct {
	panicked error // the background filler panicked (set before done closes)
	n        Node
	limit    uint64

	// Figures, under memFill.mu; percentages of the limit, as the engine reports.
	before, reached, after             float64
	haveBefore, haveReached, haveAfter bool
	holdMin, holdMax                   float64
	samples                            int     // engine samples during the hold
	hogBytes                           uint64  // what the hog or the tables held at effect time
	hogMax                             float64 // exec: the highest use the hog saw (cgroup, every 100 ms)
	holding                            bool    // took effect: samples count for the hold
	lost                               string  // why the hog or the filler stopped before recover
	fillPct                            float64 // sql: the filler's last engine reading
	fillReached                        bool    // sql: the filler stopped growing
	fillErr                            error   // sql: why the filler stopped
	kept                               bool    // sql: the server did not give the memory back
	tableBytes                         uint64  // sql: row data in the tables
	held                               int64   // what the hog or the tables hold now, newest reading (MemoryHolder)
	heldKnown                          bool    // held was read since the fill started

	wrote    bool // exec: Setup wrote the script, Cleanup removes the files
	db       *sql.DB
	injected bool // sql: tables may exist, Cleanup drops them

	stop context.CancelFunc // the sampler (exec) or the filler (sql)
	done chan struct{}
}

func (f *memFill) forEach(fn func(m *memNode) error) error {
	var errs []error
	for _, m := range f.nodes {
		if err := fn(m); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.n.Label(), err))
		}
	}
	return errors.Join(errs...)
}

func memPct(used, limit uint64) float64 {
	if limit == 0 {
		return 0
	}
	return float64(used) / float64(limit) * 100
}

// Setup checks the parameters and that every target can take the method, has a
// memory limit and room below the target; exec writes the hog's script.
func (f *memFill) Setup(ctx context.Context, env *Env) error {
	if f.percent < 1 || f.percent > 99 {
		return usageErr("--param", "percent=%d: want a percentage from 1 to 99", f.percent)
	}
	if f.method != "exec" && f.method != "sql" {
		return usageErr("--param", "method=%s: want exec or sql", f.method)
	}
	var errs []error
	for _, n := range env.Targets {
		if err := memfillNeeds(f.method)(n); err != nil {
			errs = append(errs, usageErr("--node", "%s cannot take memory-fill with method=%s: %v", n.Label(), f.method, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	nodes := make([]*memNode, len(env.Targets))
	for i, n := range env.Targets {
		nodes[i] = &memNode{n: n}
	}
	f.mu.Lock()
	f.nodes = nodes
	f.mu.Unlock()
	return f.forEach(func(m *memNode) error { return f.setup(ctx, m) })
}

func (f *memFill) setup(ctx context.Context, m *memNode) error {
	label := m.n.Label()
	used, limit, err := m.n.(MemoryReader).Memory(ctx)
	if err != nil {
		return fmt.Errorf("read memory use: %w", err)
	}
	if limit == 0 || limit >= 1<<60 {
		return usageErr("--node", "%s has no memory limit: filling it would fill the machine (give the node a limit, e.g. --memory)", label)
	}
	m.limit = limit
	if f.method == "exec" {
		st, err := memfillStatus(ctx, m.n)
		if err != nil {
			return err
		}
		if st["live"] != "0" {
			return usageErr("--node", "%s: a memory-fill hog already runs there (another run, or one left behind: pkill -f %s inside the node)", label, memfillProc)
		}
		if err := execOK(ctx, m.n, "sh", "-c", `printf '%s' "$1" > `+memfillScript, "sh", memfillPerl); err != nil {
			return fmt.Errorf("write the hog's script: %w", err)
		}
		m.wrote = true
		out, err := memfillExec(ctx, m.n, "perl", memfillScript, "probe")
		if err != nil {
			return fmt.Errorf("probe the node's cgroup: %w", err)
		}
		probe := memfillKV(out)
		cg, _ := strconv.ParseUint(probe["limit"], 10, 64)
		if cg == 0 {
			return usageErr("--node", "%s: its %s cgroup has no memory limit: the hog would fill the machine (give the node a limit, e.g. --memory)", label, probe["cgroup"])
		}
		// The hog aims at its cgroup's figure, the verdict reads the engine's: they must agree.
		if d := math.Abs(float64(cg) - float64(limit)); d > float64(limit)/50 {
			return fmt.Errorf("the node's cgroup limit (%d bytes) is not the engine's (%d bytes): the hog would aim at another figure", cg, limit)
		}
	} else {
		db, err := sql.Open("mysql", m.n.(SQLNode).DSN())
		if err != nil {
			return fmt.Errorf("open a client: %w", err)
		}
		db.SetMaxOpenConns(3)
		m.db = db
		var schema sql.NullString
		if err := db.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&schema); err != nil {
			return fmt.Errorf("query the node: %w", err)
		}
		if !schema.Valid {
			return usageErr("--node", "%s: its client settings name no database to make the MEMORY tables in", label)
		}
		left, err := memfillTables(ctx, db)
		if err != nil {
			return err
		}
		if len(left) > 0 {
			return usageErr("--node", "%s: %d table(s) %s* already exist in %s (another run, or left behind: drop them)", label, len(left), memfillTable, schema.String)
		}
	}
	before := memPct(used, limit)
	f.mu.Lock()
	m.before, m.haveBefore = before, true
	f.mu.Unlock()
	if room := float64(f.percent) - before; room < memfillMargin {
		return usageErr("--param", "percent=%d: %s already uses %.1f%% of its memory limit; the fill needs at least %.0f points of room below the target",
			f.percent, label, before, memfillMargin)
	}
	return nil
}

// Inject starts the hog (exec) or the filler (sql); neither waits for the target.
func (f *memFill) Inject(ctx context.Context, _ *Env) error {
	return f.forEach(func(m *memNode) error {
		if f.method == "sql" {
			return f.startFiller(ctx, m)
		}
		cmd := fmt.Sprintf("rm -f %[2]s; nohup perl %[1]s hold %[3]d %[4]d %[2]s >%[5]s 2>&1 </dev/null &",
			memfillScript, memfillState, f.percent, int(memfillBackstop/time.Second), memfillLog)
		return execOK(ctx, m.n, "sh", "-c", cmd)
	})
}

// WaitForEffect waits until the engine reports the node's use within memfillBand of
// the target, once the hog (or filler) says it got there, and records the figures.
func (f *memFill) WaitForEffect(ctx context.Context, _ *Env) error {
	return f.forEach(func(m *memNode) error {
		if f.method == "sql" {
			return f.waitFiller(ctx, m)
		}
		mr := m.n.(MemoryReader)
		var fatal error
		var st map[string]string
		dead := 0
		err := poll(ctx, fmt.Sprintf("memory use not at %d%%", f.percent), func() (bool, error) {
			var err error
			if st, err = memfillStatus(ctx, m.n); err != nil {
				return false, err
			}
			if b, ok := heldOf(st); ok && st["live"] != "0" {
				f.mu.Lock()
				m.setHeld(b)
				f.mu.Unlock()
			}
			if st["live"] == "0" {
				// Twice in a row: right after the start the hog may not be perl yet.
				if dead++; dead >= 2 {
					fatal = fmt.Errorf("the hog stopped (%s)", memfillLogTail(ctx, m.n))
					return true, nil
				}
				return false, errors.New("no live hog")
			}
			dead = 0
			if st["reached"] != "1" {
				return false, fmt.Errorf("the hog is growing: %s%% by its count", st["percent"])
			}
			used, limit, err := mr.Memory(ctx)
			if err != nil {
				return false, err
			}
			p := memPct(used, limit)
			if math.Abs(p-float64(f.percent)) > memfillBand {
				return false, fmt.Errorf("the engine reports %.1f%% (the hog %s%%)", p, st["percent"])
			}
			hog, _ := strconv.ParseUint(st["hog_bytes"], 10, 64)
			f.mu.Lock()
			m.reached, m.haveReached, m.hogBytes, m.holding = p, true, hog, true
			f.mu.Unlock()
			return true, nil
		})
		if err == nil {
			err = fatal
		}
		if err != nil {
			return err
		}
		f.sample(ctx, m)
		return nil
	})
}

// sample reads the engine's figure through the hold until recover, and every
// second what the hog holds (its state file, for HeldBytes).
func (f *memFill) sample(ctx context.Context, m *memNode) {
	mr := m.n.(MemoryReader)
	m.background(ctx, func(ctx context.Context) {
		for i := 0; ; i++ {
			if used, limit, err := mr.Memory(ctx); err == nil {
				f.observe(m, memPct(used, limit))
			}
			if i%2 == 1 {
				sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				st, err := memfillStatus(sctx, m.n)
				cancel()
				if b, ok := heldOf(st); err == nil && ok && st["live"] != "0" {
					f.mu.Lock()
					m.setHeld(b)
					f.mu.Unlock()
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	})
}

// observe records one engine reading.
func (f *memFill) observe(m *memNode, p float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m.fillPct = p
	if !m.holding {
		return
	}
	if m.samples == 0 || p < m.holdMin {
		m.holdMin = p
	}
	if m.samples == 0 || p > m.holdMax {
		m.holdMax = p
	}
	m.samples++
}

// background runs fn until halt; it outlives the step's context, not the run.
func (m *memNode) background(ctx context.Context, fn func(context.Context)) {
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.stop, m.done = cancel, make(chan struct{})
	go func() {
		defer close(m.done)
		// A panic in the filler ends it, as an error: read after done closes.
		defer safego.Recover("memory-fill on "+m.n.Label(), func(err error) { m.panicked = err })
		fn(bctx)
	}()
}

func (m *memNode) halt() {
	if m.stop != nil {
		m.stop()
		<-m.done
		m.stop = nil
	}
}

// Recover stops the hog (exec) or the filler and drops the tables (sql).
func (f *memFill) Recover(ctx context.Context, _ *Env) error {
	return f.forEach(func(m *memNode) error {
		m.halt()
		if m.panicked != nil {
			f.mu.Lock()
			if m.lost == "" {
				m.lost = "the filler panicked: " + strings.SplitN(m.panicked.Error(), "\n", 2)[0]
			}
			f.mu.Unlock()
		}
		if f.method == "sql" {
			f.mu.Lock()
			if m.holding && m.fillErr != nil && m.lost == "" {
				m.lost = "the filler stopped during the hold: " + m.fillErr.Error()
			}
			f.mu.Unlock()
			err := memfillDrop(ctx, m.db)
			if err == nil {
				f.mu.Lock()
				m.setHeld(0)
				f.mu.Unlock()
			}
			return err
		}
		st, err := memfillStatus(ctx, m.n)
		if err != nil {
			return err
		}
		hogMax, _ := strconv.ParseFloat(st["max_percent"], 64)
		f.mu.Lock()
		m.hogMax = hogMax
		if m.holding && st["live"] == "0" && m.lost == "" {
			m.lost = "the hog was gone before recover (" + memfillLogTail(ctx, m.n) + ")"
		}
		f.mu.Unlock()
		err = memfillKill(ctx, m.n)
		if err == nil {
			f.mu.Lock()
			m.setHeld(0)
			f.mu.Unlock()
		}
		return err
	})
}

// WaitForRecovery waits until no hog lives (exec) or the tables are gone (sql), and
// the engine reports use at least memfillMargin points under the target, and the
// node serves. A server that keeps the dropped tables' memory in its allocator (sql)
// is no failure to recover: after a while "memory after" records what it kept.
func (f *memFill) WaitForRecovery(ctx context.Context, _ *Env) error {
	return f.forEach(func(m *memNode) error {
		mr := m.n.(MemoryReader)
		var p float64
		var err error
		if f.method == "sql" {
			err = poll(ctx, "memory-fill tables still there", func() (bool, error) {
				left, err := memfillTables(ctx, m.db)
				return err == nil && len(left) == 0, err
			})
			if err == nil {
				kept := false
				wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err = poll(wctx, "memory not released", func() (bool, error) {
					used, limit, err := mr.Memory(ctx)
					p = memPct(used, limit)
					return err == nil && p <= float64(f.percent)-memfillMargin, err
				})
				cancel()
				if err != nil && ctx.Err() == nil && p > 0 {
					err, kept = nil, true
				}
				f.mu.Lock()
				m.kept = kept
				f.mu.Unlock()
			}
		} else {
			err = poll(ctx, "memory not released", func() (bool, error) {
				st, err := memfillStatus(ctx, m.n)
				if err != nil {
					return false, err
				}
				if st["live"] != "0" {
					return false, errors.Join(fmt.Errorf("%s hog process(es) still live", st["live"]), memfillKill(ctx, m.n))
				}
				used, limit, err := mr.Memory(ctx)
				if err != nil {
					return false, err
				}
				if p = memPct(used, limit); p > float64(f.percent)-memfillMargin {
					return false, fmt.Errorf("the engine still reports %.1f%%", p)
				}
				return true, nil
			})
		}
		if err != nil {
			return err
		}
		f.mu.Lock()
		m.after, m.haveAfter = p, true
		f.mu.Unlock()
		if r, ok := m.n.(Readier); ok {
			return r.WaitReady(ctx)
		}
		return m.db.PingContext(ctx)
	})
}

// Cleanup removes the hog's files (exec), or drops what tables remain and closes
// the client (sql). It leaves alone what another run made (Setup refused it).
func (f *memFill) Cleanup(ctx context.Context, _ *Env) error {
	return f.forEach(func(m *memNode) error {
		m.halt()
		var err error
		if m.wrote {
			err = execOK(ctx, m.n, "rm", "-f", memfillScript, memfillState, memfillState+".tmp", memfillLog)
		}
		if m.db != nil {
			if m.injected {
				err = memfillDrop(ctx, m.db)
			}
			m.db.Close()
		}
		return err
	})
}

// Measurements: per node, the use before, reached (engine, at effect), the range
// held, what the hog or the tables held, and the use after recovery.
func (f *memFill) Measurements() []Measurement {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Measurement
	method := "method=" + f.method
	for _, m := range f.nodes {
		add := func(ms Measurement) {
			ms.Node = m.n.Label()
			out = append(out, ms)
		}
		if !m.haveBefore {
			continue
		}
		add(Measurement{Name: MeasureMemoryBefore, Value: m.before, Unit: "%", Note: method})
		if !m.haveReached {
			continue
		}
		add(Measurement{Name: MeasureMemoryReached, Value: m.reached, Unit: "%", Note: fmt.Sprintf("%s, target %d%%", method, f.percent)})
		if m.samples > 0 {
			note := fmt.Sprintf("%d engine samples", m.samples)
			add(Measurement{Name: MeasureMemoryHoldMax, Value: m.holdMax, Unit: "%", Note: note})
			add(Measurement{Name: MeasureMemoryHoldMin, Value: m.holdMin, Unit: "%", Note: note})
		}
		if f.method == "sql" {
			add(Measurement{Name: MeasureMemoryTableSize, Value: float64(m.hogBytes), Unit: "bytes", Note: "row data at effect time"})
		} else {
			add(Measurement{Name: MeasureHogSize, Value: float64(m.hogBytes), Unit: "bytes", Note: "at effect time"})
			if m.hogMax > 0 {
				add(Measurement{Name: MeasureHogMax, Value: m.hogMax, Unit: "%", Note: "cgroup, every 100 ms"})
			}
		}
		if m.lost != "" {
			add(Measurement{Name: MeasureFillLost, Value: 1, Note: m.lost})
		}
		if m.haveAfter {
			note := "after recovery"
			if m.kept {
				note = "after recovery; the server kept the dropped tables' memory"
			}
			add(Measurement{Name: MeasureMemoryAfter, Value: m.after, Unit: "%", Note: note})
		}
	}
	return out
}

// memfillStatus reads the hog's state file and counts live hogs (key "live").
// Zombies do not count: the node's first process, the database, does not reap them.
func memfillStatus(ctx context.Context, n Node) (map[string]string, error) {
	const cmd = `cat ` + memfillState + ` 2>/dev/null; ps -eo stat=,args= | awk '$1 !~ /^Z/ && ($2 == "` + memfillProc +
		`" || ($2 ~ /(^|\/)perl$/ && $3 ~ /` + memfillProc + `[.]pl$/)) {n++} END {print "live=" n+0}'`
	out, err := memfillExec(ctx, n, "sh", "-c", cmd)
	if err != nil {
		return nil, fmt.Errorf("read the hog's state: %w", err)
	}
	st := memfillKV(out)
	if _, ok := st["live"]; !ok {
		return nil, fmt.Errorf("read the hog's state: no process count in %q", out)
	}
	return st, nil
}

// memfillKill stops every hog on the node (exit 1: none left).
func memfillKill(ctx context.Context, n Node) error {
	code, out, err := n.(Execer).Exec(ctx, "pkill", "-KILL", "-f", memfillProc)
	if err == nil && code > 1 {
		err = fmt.Errorf("pkill exited %d: %s", code, out)
	}
	return err
}

func memfillLogTail(ctx context.Context, n Node) string {
	out, err := memfillExec(ctx, n, "sh", "-c", "tail -c 300 "+memfillLog+" 2>/dev/null")
	if out = strings.TrimSpace(out); err != nil || out == "" {
		return "no output; OOM-killed?"
	}
	return out
}

func memfillExec(ctx context.Context, n Node, cmd ...string) (string, error) {
	code, out, err := n.(Execer).Exec(ctx, cmd...)
	if err == nil && code != 0 {
		err = fmt.Errorf("%s exited %d: %s", cmd[0], code, strings.TrimSpace(out))
	}
	return out, err
}

// memfillKV parses key=value words.
func memfillKV(s string) map[string]string {
	m := map[string]string{}
	for _, w := range strings.Fields(s) {
		if k, v, ok := strings.Cut(w, "="); ok {
			m[k] = v
		}
	}
	return m
}

// The sql method.

// memfillSession is a connection whose tables stay on this node: no Galera
// replication of the DDL, no binary log for replicas (best effort: a server without
// Galera has no wsrep_on, a user without the privilege keeps the binary log).
func memfillSession(ctx context.Context, db *sql.DB, heapSize uint64) (*sql.Conn, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	_, _ = conn.ExecContext(ctx, "SET SESSION wsrep_on = OFF")
	_, _ = conn.ExecContext(ctx, "SET SESSION sql_log_bin = 0")
	if heapSize > 0 {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("SET SESSION max_heap_table_size = %d", heapSize)); err != nil {
			conn.Close()
			return nil, fmt.Errorf("raise max_heap_table_size: %w", err)
		}
	}
	return conn, nil
}

// memfillChunk is the row data of one table: the step by which the filler shrinks.
func memfillChunk(limit uint64) uint64 {
	return min(max(limit/128, 4<<20), 32<<20)
}

func (f *memFill) startFiller(ctx context.Context, m *memNode) error {
	chunk := memfillChunk(m.limit)
	conn, err := memfillSession(ctx, m.db, max(memfillHeap, 2*chunk))
	if err != nil {
		return err
	}
	m.injected = true
	m.background(ctx, func(ctx context.Context) {
		defer conn.Close()
		err := f.fill(ctx, m, conn, chunk)
		f.mu.Lock()
		m.fillErr = err
		f.mu.Unlock()
	})
	return nil
}

// fill adds tables of chunk bytes, by steps of two thirds of the gap to the target,
// reading the engine's figure after each step, then holds: it drops tables when the
// use rises above the target and adds tables when it falls. Should a drop not lower
// the figure (a server that keeps freed memory), it drops no more until use rises
// further: dropping everything would change nothing.
func (f *memFill) fill(ctx context.Context, m *memNode, conn *sql.Conn, chunk uint64) error {
	mr := m.n.(MemoryReader)
	rows := max(chunk/memfillRow, 1) // at most 559: under MariaDB's max_recursive_iterations (1000)
	maxStep := max(64<<20, m.limit/16)
	tol := max(m.limit/200, chunk)
	var tables []string
	var dropAt, dropped uint64
	seq := 0
	// Statements run on a context of their own: a stop lets the current one finish.
	stmt := func(q string) error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_, err := conn.ExecContext(sctx, q)
		return err
	}
	// What the tables hold in the server's account, for HeldBytes: read again
	// right after every statement that adds, fills or drops a table, so the
	// figure the sampler takes never lags a change by more than one read (read
	// once a second instead, it lagged the server's Memory_used by up to a
	// second while the filler dropped and re-added tables), and about every
	// second while holding.
	var heldAt time.Time
	held := func() {
		f.readHeld(ctx, m, conn)
		heldAt = time.Now()
	}
	change := func(q string) error {
		err := stmt(q)
		held()
		return err
	}
	failed := 0
	for {
		if time.Since(heldAt) >= time.Second {
			held()
		}
		used, limit, err := mr.Memory(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if failed++; failed >= 5 {
				return fmt.Errorf("read memory use: %w", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		failed = 0
		f.observe(m, memPct(used, limit))
		if dropAt > 0 && used+dropped/2 <= dropAt {
			dropAt = 0 // the last drop gave memory back
		}
		target := uint64(float64(limit) * float64(f.percent) / 100)
		reached := false
		switch {
		case used+tol < target:
			dropAt = 0
			n := max(min((target-used)*2/3, maxStep)/chunk, 1)
			for range n {
				if ctx.Err() != nil {
					return nil
				}
				seq++
				name := fmt.Sprintf("%s%d", memfillTable, seq)
				if err := change("CREATE TABLE " + name + " (pad VARBINARY(" + strconv.Itoa(memfillRow) + ") NOT NULL) ENGINE=MEMORY"); err != nil {
					return fmt.Errorf("create a MEMORY table: %w", err)
				}
				tables = append(tables, name)
				if err := change(fmt.Sprintf("INSERT INTO %s (pad) WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM s WHERE n < %d) SELECT REPEAT('x', %d) FROM s",
					name, rows, memfillRow)); err != nil {
					return fmt.Errorf("fill a MEMORY table: %w", err)
				}
			}
		case used > target+tol && len(tables) > 0 && used > dropAt+tol:
			n := min(int((used-target+chunk-1)/chunk), len(tables))
			if err := change("DROP TABLE IF EXISTS " + strings.Join(tables[len(tables)-n:], ", ")); err != nil {
				return fmt.Errorf("drop MEMORY tables: %w", err)
			}
			tables, dropAt, dropped = tables[:len(tables)-n], used, uint64(n)*chunk
		default:
			reached = true
		}
		f.mu.Lock()
		m.fillReached = reached || m.fillReached
		m.tableBytes = uint64(len(tables)) * rows * memfillRow
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// readHeld reads what the server accounts for the fill's tables (for
// HeldBytes): their data and index length. A MEMORY table allocates whole blocks
// (64 MiB with the filler's max_heap_table_size) and MariaDB's Memory_used counts
// them whole, while only the rows written are resident: 2 tables of 4 MiB of rows
// raised Memory_used by 135 MB, their data_length was 2 x 64 MiB. What the server
// holds for the fault in its own account is this figure, not the row data. A
// failed read keeps the previous figure.
func (f *memFill) readHeld(ctx context.Context, m *memNode, conn *sql.Conn) {
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	var b int64
	err := conn.QueryRowContext(qctx, `SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables
WHERE table_schema = DATABASE() AND table_name LIKE 'htapchaos\_memfill\_%'`).Scan(&b)
	if err != nil {
		return
	}
	f.mu.Lock()
	m.setHeld(b)
	f.mu.Unlock()
}

func (f *memFill) waitFiller(ctx context.Context, m *memNode) error {
	return poll(ctx, fmt.Sprintf("memory use not at %d%%", f.percent), func() (bool, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if m.fillErr != nil {
			return false, m.fillErr
		}
		if !m.fillReached {
			return false, fmt.Errorf("filling: the engine reports %.1f%%", m.fillPct)
		}
		if math.Abs(m.fillPct-float64(f.percent)) > memfillBand {
			return false, fmt.Errorf("the engine reports %.1f%%", m.fillPct)
		}
		m.reached, m.haveReached, m.hogBytes, m.holding = m.fillPct, true, m.tableBytes, true
		return true, nil
	})
}

// memfillTables lists the fill's tables in the client's database.
func memfillTables(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'htapchaos\_memfill\_%'`)
	if err != nil {
		return nil, fmt.Errorf("list the MEMORY tables: %w", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		names = append(names, s)
	}
	return names, rows.Err()
}

// memfillDrop drops every fill table in the client's database.
func memfillDrop(ctx context.Context, db *sql.DB) error {
	names, err := memfillTables(ctx, db)
	if err != nil || len(names) == 0 {
		return err
	}
	conn, err := memfillSession(ctx, db, 0)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "DROP TABLE IF EXISTS "+strings.Join(names, ", ")); err != nil {
		return fmt.Errorf("drop the MEMORY tables: %w", err)
	}
	return nil
}

// memfillPerl is the hog (perl core only: the node image has perl). Setup writes
// it into the node and runs it there: see memhog.pl.
//
//go:embed memhog.pl
var memfillPerl string
