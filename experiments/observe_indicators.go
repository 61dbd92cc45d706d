package experiments

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/internal/safego"
	"github.com/htapchaos/htapchaos/loadgen"
	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// IndicatorNode is one node the sampler watches.
type IndicatorNode struct {
	Index int    // 1-based, Sample.Node
	Label string // for people (container or host name)
	// DSN reaches the node when Container is nil. A container node's DSN is re-read
	// from the container on every tick (its published port may change on restart).
	// It holds a password: it is never printed.
	DSN string
	// Role is galera, primary, replica or single; "" takes the container's role, or
	// finds out (a node answering SHOW REPLICA STATUS with a row is a replica).
	Role string
	// Container is the node's container; nil for a target htapchaos did not create
	// (memory, state and network counters are then missing).
	Container *htc.Node
}

// SamplerOption tunes a Sampler.
type SamplerOption func(*Sampler)

// WithHeartbeat makes the sampler read the freshness heartbeat on every node but
// the heartbeat's writer (on the writer too when it is the only node) into
// Sample.StalenessMs. The heartbeat's writer loop is run by the caller.
func WithHeartbeat(h *Heartbeat) SamplerOption { return func(s *Sampler) { s.hb = h } }

// WithSampleHook makes the sampler call f with each tick's samples, one per node,
// as they are taken (a live metrics endpoint). f must be quick and must not keep
// the slice.
func WithSampleHook(f func([]Sample)) SamplerOption { return func(s *Sampler) { s.onSample = f } }

// WithMemoryHolders makes the sampler ask, every tick, the faults that hold
// memory on the nodes (memory-fill) what they hold on each node, into
// Sample.HogBytes and Sample.HogInServer (summed over the holders). holders is
// called once per tick from the sampler's goroutine; it may return faults
// that hold nothing yet (they answer not ok).
func WithMemoryHolders(holders func() []faults.MemoryHolder) SamplerOption {
	return func(s *Sampler) { s.holders = holders }
}

// WithSampleTimeout bounds one node's sampling in a tick (default: 800ms, at most
// 80% of the interval). A node that does not answer within it is sampled as down.
func WithSampleTimeout(d time.Duration) SamplerOption {
	return func(s *Sampler) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// Sampler takes one Sample per node every interval: the leading indicators of the
// failure-mode catalog. Nodes are sampled in parallel, each bounded by a short
// timeout, so a frozen node shows as down without delaying the others' samples.
//
// Counters (flow control, network bytes) are deltas since the node's previous
// sample that read them: after a node did not answer for a few ticks, the first
// sample again holds what accumulated meanwhile. A counter lower than before was
// reset (the server or container restarted, an interface was re-created): the
// delta is then the new value, the count since the reset. The first reading of a
// node only sets the baseline (delta 0).
//
// Memory is read by a goroutine per container node (one engine stats call takes
// about a second) and each sample carries the newest reading no older than 5 s.
type Sampler struct {
	nodes    []*indNode
	interval time.Duration
	timeout  time.Duration
	hb       *Heartbeat
	hbAll    bool // read the heartbeat on its writer too (the only node)
	onSample func([]Sample)
	holders  func() []faults.MemoryHolder

	mu      sync.Mutex
	samples []Sample
	werr    error
	enc     *json.Encoder
	// stop ends Run; panicked is the first panic of its goroutines (under mu).
	stop     context.CancelCauseFunc
	panicked error
}

// DefaultSampleInterval is the sampler's default tick.
const DefaultSampleInterval = time.Second

// NewSampler returns a sampler of nodes writing JSON lines to w (nil: memory
// only), every interval (0: DefaultSampleInterval).
func NewSampler(nodes []IndicatorNode, w io.Writer, interval time.Duration, opts ...SamplerOption) *Sampler {
	if interval <= 0 {
		interval = DefaultSampleInterval
	}
	s := &Sampler{interval: interval, timeout: min(800*time.Millisecond, interval*8/10)}
	if w != nil {
		s.enc = json.NewEncoder(w)
	}
	for _, o := range opts {
		o(s)
	}
	s.hbAll = len(nodes) == 1
	for _, n := range nodes {
		in := &indNode{n: n, role: n.Role, missing: map[string]string{}, errs: map[string]string{}, ok: map[string]bool{}}
		if in.role == "" && n.Container != nil {
			in.role = string(n.Container.Role)
		}
		switch in.role {
		case "", string(htc.RoleReplica):
		default:
			in.notReplica = true
			in.missing["replica lag"] = "not a replica"
		}
		if n.Container == nil {
			for _, f := range []string{"memory", "container state", "network bytes"} {
				in.missing[f] = "not a container"
			}
		}
		s.nodes = append(s.nodes, in)
	}
	return s
}

// Run samples until ctx ends (call it once) and returns the first error writing the JSON lines
// (sampling goes on in memory after one). A tick cut short by ctx's end is
// dropped: its nodes did not fail, we stopped asking.
//
// A panic in one of its goroutines stops sampling, and Run raises it again (the
// *safego.PanicError) on the caller's goroutine, for the caller's own
// safego.Recover to hand on.
func (s *Sampler) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	s.stop = cancel
	var bg sync.WaitGroup
	defer func() {
		cancel(nil)
		bg.Wait()
		for _, n := range s.nodes {
			n.close()
		}
		s.mu.Lock()
		perr := s.panicked
		s.mu.Unlock()
		if perr != nil {
			panic(perr)
		}
	}()
	for _, n := range s.nodes {
		if n.n.Container != nil {
			safego.Go(&bg, fmt.Sprintf("sampler: n%d memory", n.n.Index), s.fail, func() { n.memoryLoop(ctx, s.interval) })
		}
	}
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		s.tick(ctx, &bg)
		select {
		case <-ctx.Done():
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.werr
		case <-t.C:
		}
	}
}

// fail stops Run after a panic in one of its goroutines.
func (s *Sampler) fail(err error) {
	s.mu.Lock()
	if s.panicked == nil {
		s.panicked = err
	}
	s.mu.Unlock()
	s.stop(err)
}

// Samples returns a copy of the samples taken so far, in time order.
func (s *Sampler) Samples() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.samples)
}

// Missing names what could not be sampled, once per node and field, e.g.
// "n3: replica lag: not a replica". A field that failed but was read at least
// once is not missing (its failures show as down samples).
func (s *Sampler) Missing() []string {
	var out []string
	for _, n := range s.nodes {
		n.mu.Lock()
		for f, why := range n.missing {
			out = append(out, fmt.Sprintf("n%d: %s: %s", n.n.Index, f, why))
		}
		for f, why := range n.errs {
			if _, ok := n.missing[f]; !ok && !n.ok[f] {
				out = append(out, fmt.Sprintf("n%d: %s: %s", n.n.Index, f, why))
			}
		}
		n.mu.Unlock()
	}
	slices.Sort(out)
	return out
}

// tick samples every node once and records the samples.
func (s *Sampler) tick(ctx context.Context, bg *sync.WaitGroup) {
	now := time.Now()
	tctx, cancel := context.WithDeadline(ctx, now.Add(s.timeout))
	defer cancel()
	type result struct {
		i int
		r indReading
	}
	ch := make(chan result, len(s.nodes))
	pending := 0
	readings := make([]*indReading, len(s.nodes))
	for i, n := range s.nodes {
		if !n.busy.TryLock() {
			// The previous tick's read of this node has not returned yet.
			readings[i] = &indReading{sqlErr: errors.New("previous sample still running")}
			continue
		}
		hb := s.hb
		if hb != nil && n.n.Index == hb.Node() && !s.hbAll {
			hb = nil
		}
		pending++
		safego.Go(bg, fmt.Sprintf("sampler: n%d", n.n.Index), s.fail, func() {
			defer n.busy.Unlock()
			ch <- result{i, n.read(tctx, hb)}
		})
	}
	// Every read is bounded by tctx; the grace covers a call that is slow to notice.
	grace := time.NewTimer(s.timeout + 150*time.Millisecond)
	defer grace.Stop()
collect:
	for pending > 0 {
		select {
		case r := <-ch:
			readings[r.i] = &r.r
			pending--
		case <-grace.C:
			break collect
		}
	}
	if ctx.Err() != nil {
		return
	}
	var holders []faults.MemoryHolder
	if s.holders != nil {
		holders = s.holders()
	}
	out := make([]Sample, len(s.nodes))
	for i, n := range s.nodes {
		r := readings[i]
		if r == nil {
			r = &indReading{sqlErr: errors.New("no answer within the sample timeout")}
		}
		out[i] = n.commit(now, r)
		for _, h := range holders {
			if b, inServer, ok := h.HeldBytes(n.n.Index); ok {
				out[i].HogBytes += b
				out[i].HogInServer = out[i].HogInServer || inServer
			}
		}
	}
	if s.onSample != nil {
		s.onSample(out)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples = append(s.samples, out...)
	if s.enc != nil && s.werr == nil {
		for _, smp := range out {
			if err := s.enc.Encode(smp); err != nil {
				s.werr = fmt.Errorf("write indicators: %w", err)
				break
			}
		}
	}
}

// galeraStatusQuery reads every status the sampler needs in one statement.
const galeraStatusQuery = `SHOW GLOBAL STATUS WHERE Variable_name IN (
'wsrep_provider_name', 'wsrep_cluster_size', 'wsrep_cluster_status', 'wsrep_ready',
'wsrep_local_state_comment', 'wsrep_flow_control_paused_ns', 'wsrep_flow_control_sent',
'wsrep_local_recv_queue', 'wsrep_local_send_queue', 'wsrep_last_committed',
'Threads_running', 'Threads_connected', 'Memory_used', 'Bytes_sent', 'Com_select',
'Spider_direct_aggregate')`

// indNode is the sampler's state for one node.
type indNode struct {
	n    IndicatorNode
	busy sync.Mutex // held while a read of the node runs

	// Touched by reads only (one at a time, under busy).
	dsn         string
	dirty       bool // db's connections allow dirty reads
	db          *sql.DB
	replicaSQL  string // the statement that worked: SHOW REPLICA STATUS or SHOW SLAVE STATUS
	checkedGate bool   // whether the node was asked if it is a vtgate
	vtgate      bool   // a Vitess vtgate: it passes SHOW STATUS to a shard, so none is its own

	mu         sync.Mutex // the fields below
	role       string
	notReplica bool
	galera     bool
	missing    map[string]string // field -> why it cannot be given
	errs       map[string]string // field -> last error
	ok         map[string]bool   // field -> read at least once
	// Baselines of the counters.
	fcPaused, fcSent  int64
	haveFC            bool
	bytesSent, comSel int64
	haveSrv           bool
	spiderAgg         int64
	haveSpider        bool
	clusterNet        htc.NetCounters
	haveClusterNet    bool
	net               map[string][2]int64
	haveNet           bool
	// Newest reading of the engine's statistics.
	mem          htc.MemoryStats
	lastStats    htc.ResourceStats // the previous reading, for CPU between readings
	cpuPct       float64
	memAt        time.Time
	netRx, netTx int64
	haveStats    bool
}

// indReading is what one read of a node saw, before deltas.
type indReading struct {
	sqlErr     error
	status     map[string]string
	replicaRun bool // a replica status was asked
	replicaRow bool // ... and a row came back
	lag        *float64
	replicaErr error
	stale      *float64
	staleErr   error
	hbAsked    bool

	state    *htc.State
	stateErr error
	net      map[string][2]int64

	clusterNet    *htc.NetCounters // sharded nodes only
	clusterNetErr error
}

func (n *indNode) close() {
	if n.db != nil {
		n.db.Close()
		n.db = nil
	}
}

// conn returns the node's pool, reopened when its DSN changed. On a Galera node
// its connections allow dirty reads (wsrep_dirty_reads): a node outside the primary
// component refuses reads otherwise, and the heartbeat read must show what it holds.
func (n *indNode) conn() (*sql.DB, error) {
	dsn := n.n.DSN
	if n.n.Container != nil {
		dsn = n.n.Container.DSN()
	}
	n.mu.Lock()
	dirty := n.galera
	n.mu.Unlock()
	if n.db != nil && dsn == n.dsn && dirty == n.dirty {
		return n.db, nil
	}
	n.close()
	sdsn, err := shortTimeoutDSN(dsn, time.Second, 2*time.Second)
	if err != nil {
		return nil, err
	}
	if dirty {
		cfg, _ := mysql.ParseDSN(sdsn)
		if cfg.Params == nil {
			cfg.Params = map[string]string{}
		}
		cfg.Params["wsrep_dirty_reads"] = "ON"
		sdsn = cfg.FormatDSN()
	}
	db, err := sql.Open("mysql", sdsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(2)
	db.SetConnMaxIdleTime(time.Minute)
	n.db, n.dsn, n.dirty = db, dsn, dirty
	return db, nil
}

// shortTimeoutDSN sets dial and read/write timeouts on a DSN. Errors never quote
// the DSN (it holds a password).
func shortTimeoutDSN(dsn string, dial, rw time.Duration) (string, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", errors.New("the node's DSN does not parse")
	}
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = dial, rw, rw
	return cfg.FormatDSN(), nil
}

// read takes one reading of the node: SQL and the container side in parallel,
// both bounded by ctx; hb non-nil: the heartbeat's staleness too.
func (n *indNode) read(ctx context.Context, hb *Heartbeat) indReading {
	var r indReading
	var wg sync.WaitGroup
	var perr error
	if c := n.n.Container; c != nil {
		safego.Go(&wg, fmt.Sprintf("sampler: n%d container", n.n.Index), func(err error) { perr = err }, func() { n.readContainer(ctx, c, &r) })
	}
	n.readSQL(ctx, hb, &r)
	wg.Wait()
	if perr != nil {
		panic(perr) // raised again here, where the sampler recovers it
	}
	return r
}

func (n *indNode) readSQL(ctx context.Context, hb *Heartbeat, r *indReading) {
	db, err := n.conn()
	if err != nil {
		r.sqlErr = err
		return
	}
	if !n.checkedGate {
		gate, err := loadgen.IsVtgate(ctx, db)
		if err != nil {
			r.sqlErr = err
			return
		}
		n.checkedGate, n.vtgate = true, gate
		if n.vtgate {
			n.mu.Lock()
			n.notReplica = true
			for _, f := range []string{"threads", "server memory", "galera"} {
				n.missing[f] = "a vtgate has no server status of its own (it passes SHOW STATUS to a shard)"
			}
			n.mu.Unlock()
		}
	}
	if n.vtgate {
		// Up is that it answers; its status would be a shard's.
		r.sqlErr = db.QueryRowContext(ctx, "SELECT 1").Scan(new(int))
		r.status = map[string]string{}
		return
	}
	r.status, r.sqlErr = indStatus(ctx, db)
	if r.sqlErr != nil {
		return
	}
	n.mu.Lock()
	askReplica := !n.notReplica
	n.mu.Unlock()
	if askReplica {
		r.replicaRun = true
		r.replicaRow, r.lag, r.replicaErr = n.replicaLag(ctx, db)
	}
	if hb != nil {
		r.hbAsked = true
		r.stale, r.staleErr = hb.staleness(ctx, db)
	}
}

func indStatus(ctx context.Context, db *sql.DB) (map[string]string, error) {
	return showMap(ctx, db, galeraStatusQuery)
}

// showMap reads a SHOW STATUS or SHOW VARIABLES statement's (name, value) rows,
// the names lower-cased.
func showMap(ctx context.Context, db *sql.DB, query string) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		m[strings.ToLower(k)] = v
	}
	return m, rows.Err()
}

// replicaLag reads Seconds_Behind_Master (Seconds_Behind_Source): the largest of
// its channels; nil when replication is stopped or broken (NULL).
func (n *indNode) replicaLag(ctx context.Context, db *sql.DB) (row bool, lag *float64, err error) {
	stmts := []string{"SHOW REPLICA STATUS", "SHOW SLAVE STATUS"}
	if n.replicaSQL != "" {
		stmts = []string{n.replicaSQL}
	}
	var rows *sql.Rows
	for _, q := range stmts {
		rows, err = db.QueryContext(ctx, q)
		if err == nil {
			n.replicaSQL = q
			break
		}
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1064 { // 1064: syntax (no REPLICA keyword)
			return false, nil, err
		}
	}
	if err != nil {
		return false, nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return false, nil, err
	}
	idx := slices.IndexFunc(cols, func(c string) bool {
		return strings.EqualFold(c, "Seconds_Behind_Master") || strings.EqualFold(c, "Seconds_Behind_Source")
	})
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		row = true
		if err := rows.Scan(ptrs...); err != nil {
			return row, nil, err
		}
		if idx < 0 || !vals[idx].Valid {
			continue
		}
		if v, err := strconv.ParseFloat(vals[idx].String, 64); err == nil && (lag == nil || v > *lag) {
			lag = &v
		}
	}
	return row, lag, rows.Err()
}

// readContainer reads the container's state from the engine, and takes the newest
// network counters of the statistics loop. Nothing runs inside the container: an
// exec racing a pause wedges the engine's hold on the container (seen here: the
// exec's process froze half-started, and pause, inspect and unpause waited on it).
func (n *indNode) readContainer(ctx context.Context, c *htc.Node, r *indReading) {
	st, err := c.State(ctx)
	if err != nil {
		r.stateErr = err
		return
	}
	r.state = &st
	if (c.Role == htc.RoleAggregator || c.Role == htc.RoleLeaf) && st.Running && !st.Paused {
		nc, err := c.ClusterNetCounters(ctx, false)
		r.clusterNet, r.clusterNetErr = &nc, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.haveStats && time.Since(n.memAt) < 5*time.Second {
		r.net = map[string][2]int64{"all": {n.netRx, n.netTx}}
	}
}

// memoryLoop keeps the node's newest memory reading until ctx ends.
func (n *indNode) memoryLoop(ctx context.Context, interval time.Duration) {
	for ctx.Err() == nil {
		start := time.Now()
		mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		rs, err := n.n.Container.ResourceStats(mctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		n.mu.Lock()
		if err != nil {
			n.errs["memory"] = err.Error()
		} else {
			n.mem, n.memAt = rs.Memory, time.Now()
			n.cpuPct, n.lastStats = rs.CPUPercentSince(n.lastStats), rs
			n.netRx, n.netTx, n.haveStats = rs.NetRx, rs.NetTx, true
			n.ok["memory"] = true
		}
		n.mu.Unlock()
		if wait := interval - time.Since(start); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}
}

// commit turns a reading into a sample: deltas against the node's baselines, and
// what cannot be given into missing.
func (n *indNode) commit(t time.Time, r *indReading) Sample {
	n.mu.Lock()
	defer n.mu.Unlock()
	smp := Sample{T: t, Node: n.n.Index, Up: r.sqlErr == nil}
	if r.sqlErr != nil {
		n.errs["status"] = r.sqlErr.Error()
	} else {
		n.ok["status"] = true
		n.commitStatus(&smp, r.status)
		n.commitReplica(&smp, r)
		if r.hbAsked {
			if r.staleErr != nil {
				n.errs["staleness"] = r.staleErr.Error()
			} else if r.stale != nil {
				n.ok["staleness"] = true
				smp.StalenessMs = r.stale
			}
		}
	}
	if n.n.Container != nil {
		n.commitContainer(&smp, t, r)
	}
	return smp
}

func (n *indNode) commitStatus(smp *Sample, st map[string]string) {
	num := func(k string) int64 { v, _ := strconv.ParseInt(st[k], 10, 64); return v }
	if _, ok := st["threads_running"]; ok {
		smp.ThreadsRunning, smp.ThreadsConnected = num("threads_running"), num("threads_connected")
		n.ok["threads"] = true
	} else if _, known := n.missing["threads"]; !known {
		n.errs["threads"] = "no Threads_running status"
	}
	// Memory_used: MariaDB's own account of what the server allocated (no other
	// server reports it).
	if v, err := strconv.ParseInt(st["memory_used"], 10, 64); err == nil {
		smp.ServerMemoryBytes = v
		n.ok["server memory"] = true
		delete(n.missing, "server memory")
	} else if _, known := n.missing["server memory"]; !known && !n.ok["server memory"] {
		n.missing["server memory"] = "no Memory_used status (not MariaDB)"
	}
	if _, ok := st["bytes_sent"]; ok {
		sent, sel := num("bytes_sent"), num("com_select")
		if n.haveSrv {
			smp.BytesSent, smp.ComSelect = counterDelta(n.bytesSent, sent), counterDelta(n.comSel, sel)
		}
		n.bytesSent, n.comSel, n.haveSrv = sent, sel, true
	}
	if _, ok := st["spider_direct_aggregate"]; ok {
		// An aggregator's Spider: aggregates it had the leaves compute.
		v := num("spider_direct_aggregate")
		if n.haveSpider {
			smp.SpiderDirectAggregate = counterDelta(n.spiderAgg, v)
		}
		n.spiderAgg, n.haveSpider = v, true
	}
	if st["wsrep_provider_name"] == "" {
		if _, known := n.missing["galera"]; !known && !n.galera {
			n.missing["galera"] = "not a Galera node (no wsrep provider)"
		}
		return
	}
	n.galera = true
	delete(n.missing, "galera")
	smp.ClusterSize = int(num("wsrep_cluster_size"))
	smp.Primary = st["wsrep_cluster_status"] == "Primary"
	smp.Ready = st["wsrep_ready"] == "ON"
	smp.State = st["wsrep_local_state_comment"]
	smp.RecvQueue, smp.SendQueue = num("wsrep_local_recv_queue"), num("wsrep_local_send_queue")
	smp.LastCommitted = num("wsrep_last_committed")
	paused, sent := num("wsrep_flow_control_paused_ns"), num("wsrep_flow_control_sent")
	if n.haveFC {
		smp.FCPausedMs = float64(counterDelta(n.fcPaused, paused)) / 1e6
		smp.FCSent = counterDelta(n.fcSent, sent)
	}
	n.fcPaused, n.fcSent, n.haveFC = paused, sent, true
}

func (n *indNode) commitReplica(smp *Sample, r *indReading) {
	if !r.replicaRun {
		return
	}
	switch {
	case r.replicaErr != nil:
		n.errs["replica lag"] = r.replicaErr.Error()
	case r.replicaRow:
		n.ok["replica lag"] = true
		n.role = string(htc.RoleReplica)
		smp.ReplicaLagS = r.lag
	case n.role == "":
		// No row on a node of unknown role: not a replica; stop asking.
		n.notReplica = true
		n.missing["replica lag"] = "not a replica"
	default:
		n.errs["replica lag"] = "replica has no replication configured"
	}
}

func (n *indNode) commitContainer(smp *Sample, t time.Time, r *indReading) {
	if !n.memAt.IsZero() && t.Sub(n.memAt) < 5*time.Second {
		smp.MemoryPct, smp.CPUPct = n.mem.Percent, n.cpuPct
		smp.MemoryLimitBytes = int64(min(n.mem.Limit, math.MaxInt64))
	}
	if r.stateErr != nil {
		n.errs["container state"] = r.stateErr.Error()
	} else if r.state != nil {
		n.ok["container state"] = true
		smp.OOMKilled, smp.Restarts = r.state.OOMKilled, r.state.Restarts
		smp.Running, smp.Paused = r.state.Running, r.state.Paused
	}
	switch {
	case r.clusterNetErr != nil:
		n.errs["cluster network bytes"] = r.clusterNetErr.Error()
	case r.clusterNet != nil:
		n.ok["cluster network bytes"] = true
		c := *r.clusterNet
		if n.haveClusterNet && c.Interface == n.clusterNet.Interface {
			smp.ClusterNetRxBytes = counterDelta(n.clusterNet.RxBytes, c.RxBytes)
			smp.ClusterNetTxBytes = counterDelta(n.clusterNet.TxBytes, c.TxBytes)
		}
		n.clusterNet, n.haveClusterNet = c, true
	}
	if r.net == nil {
		return
	}
	n.ok["network bytes"] = true
	n.missing["network bytes"] = "every interface counted, clients' traffic included (the engine's statistics)"
	if n.haveNet {
		smp.NetRxBytes, smp.NetTxBytes = netDelta(n.net, r.net, nil)
	}
	n.net, n.haveNet = r.net, true
}

// counterDelta is cur-prev, or cur when the counter went down (it was reset).
func counterDelta(prev, cur int64) int64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// netDelta sums the per-interface byte deltas of the interfaces in only (nil:
// all). An interface new since prev counts from zero (it was created since).
func netDelta(prev, cur map[string][2]int64, only []string) (rx, tx int64) {
	for name, c := range cur {
		if only != nil && !slices.Contains(only, name) {
			continue
		}
		p := prev[name] // zero when new
		rx += counterDelta(p[0], c[0])
		tx += counterDelta(p[1], c[1])
	}
	return rx, tx
}

// ContainerIndicatorNodes describes a cluster's database nodes for the sampler.
func ContainerIndicatorNodes(c *htc.Cluster) []IndicatorNode {
	out := make([]IndicatorNode, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = IndicatorNode{Index: n.Index, Label: n.Name, Role: string(n.Role), Container: n}
	}
	return out
}
