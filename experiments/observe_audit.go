package experiments

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/results"
)

// auditFirst is how many ids of each kind an audit lists.
const auditFirst = 10

// DefaultAuditSettle bounds the audit's wait for every serving node to have applied
// everything before it reads back (Options.AuditSettle, the spec's audit.settle).
const DefaultAuditSettle = 60 * time.Second

// AuditSource is one writer of the run whose inserts the audit reads back: the
// run's load, or a fault that writes rows of its own (a batch spike). Lo..Hi is the
// id range its run tag gives it (loadgen.IDs.Range): every row there that it did
// not acknowledge is unexpected. Lo > Hi: no range, only its acknowledged ids are
// read.
//
// Table and Column are where its inserts land (a workload's
// loadgen.Workload.AuditTarget); empty: orders.order_id, the builtin
// workloads'. Sources of different tables are read back from all of them.
type AuditSource struct {
	Name          string
	Ledger        *results.Ledger
	Lo, Hi        int64
	Table, Column string
}

// table is where the source's inserts land.
func (s AuditSource) table() loadgen.AuditTable {
	if s.Table == "" {
		return loadgen.DefaultAudit
	}
	return loadgen.AuditTable{Table: s.Table, Column: cmp.Or(s.Column, "id")}
}

// readBackQuery is the query that reads one window of ids (BETWEEN ? AND ?,
// in order) back from tables: with more than one, their union.
func readBackQuery(tables []loadgen.AuditTable) (query string, args int) {
	if len(tables) == 0 {
		tables = []loadgen.AuditTable{loadgen.DefaultAudit}
	}
	var parts []string
	for _, t := range tables {
		c := quoteIdent(t.Column)
		parts = append(parts, fmt.Sprintf("SELECT %s AS id FROM %s WHERE %s BETWEEN ? AND ?", c, quoteIdent(t.Table), c))
	}
	if len(parts) == 1 {
		t := tables[0]
		c := quoteIdent(t.Column)
		return fmt.Sprintf("SELECT %s FROM %s WHERE %s BETWEEN ? AND ? ORDER BY %s", c, quoteIdent(t.Table), c, c), 1
	}
	return "SELECT id FROM (" + strings.Join(parts, " UNION ") + ") AS audited ORDER BY id", len(parts)
}

// quoteIdent quotes a table or column name with backticks.
func quoteIdent(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

// AuditNode is a node the audit settles and reads back on.
type AuditNode struct {
	Index int
	Label string
	DSN   string
}

// AuditCluster is the durability audit of a replicated (or single) cluster:
//
//  1. Settle: it waits, at most settle, until every node that answers has applied
//     everything the cluster had committed when the audit began. Galera: the
//     highest wsrep_last_committed of the Primary nodes is the target, and each
//     node must be Primary, ready, Synced and at or past it (Galera commits in
//     seqno order, so that node has every earlier write; a heartbeat or other
//     writes still running do not move the target). An asynchronous replica must
//     reach its primary's GTID position (MASTER_GTID_WAIT). A node that does not
//     settle in time is not read, and the audit says the settle timed out: the
//     verdict is inconclusive, never "lost" on a node that was merely slow.
//  2. Read back on every settled node at once, streaming the ids in order through
//     the primary key, one query per window and node, merged against the
//     acknowledged ranges of every source in constant memory: per node the
//     acknowledged rows it lacks, and across nodes the rows some have and others
//     lack (divergence); rows nobody acknowledged are split into those from
//     writes of unknown outcome (legal) and those no writer sent (an anomaly).
//
// A node that did not answer when the audit began is marked Down and not read; a
// node that answered and was not read all the same (its status or its read failed,
// it did not settle) leaves loss and divergence unjudged (see scoreDurability).
//
// It always returns an Audit; Error says when nothing could be read.
func AuditCluster(ctx context.Context, nodes []AuditNode, sources []AuditSource, settle time.Duration) *Audit {
	if settle <= 0 {
		settle = DefaultAuditSettle
	}
	return auditCluster(ctx, nodes, sources, settle)
}

// noSettle, as auditCluster's settle, reads at once without waiting for any node:
// what a read-back without the settle would report (tests only).
const noSettle time.Duration = -1

// interruptedSettle bounds the settle of the audit of a run that was interrupted
// (Ctrl-C): the user is waiting to get out, and a node still behind after it only
// makes the verdicts inconclusive.
const interruptedSettle = 5 * time.Second

func auditCluster(ctx context.Context, nodes []AuditNode, sources []AuditSource, settle time.Duration) *Audit {
	plan := newAuditPlan(sources)
	a := plan.audit()
	st := settleNodes(ctx, nodes, settle)
	defer st.close()
	a.Settle = st.report
	var read []*settleNode
	for _, n := range st.nodes {
		if n.skip == "" {
			read = append(read, n)
		}
	}
	// A node whose read fails is dropped and the rest read again: the others'
	// figures stay whole.
	for len(read) > 0 {
		dbs := make([]*sql.DB, len(read))
		an := make([]AuditNode, len(read))
		for i, n := range read {
			dbs[i], an[i] = n.db, n.AuditNode
		}
		w := plan.walk(len(read))
		bad, err := w.read(ctx, dbs, plan.windows)
		if err == nil {
			w.fill(a, an)
			break
		}
		if bad < 0 || ctx.Err() != nil {
			w.fill(a, an)
			a.Error = err.Error()
			break
		}
		read[bad].skip = fmt.Sprintf("read back failed: %v", err)
		read = slices.Delete(read, bad, bad+1)
	}
	// Every node in the record, read or not, in the cluster's order.
	var out []NodeAudit
	for _, n := range st.nodes {
		na := NodeAudit{Node: n.Index, Label: n.Label, Skipped: n.skip, Down: n.down, Applied: n.applied, Behind: n.behind}
		if i := slices.IndexFunc(a.Nodes, func(x NodeAudit) bool { return x.Node == n.Index }); i >= 0 && n.skip == "" {
			na = a.Nodes[i]
			na.Applied, na.Behind = n.applied, n.behind
		}
		out = append(out, na)
	}
	a.Nodes = out
	if len(read) == 0 && a.Error == "" {
		var why []string
		for _, n := range st.nodes {
			why = append(why, fmt.Sprintf("%s: %s", n.Label, n.skip))
		}
		a.Error = "no node could be read back: " + strings.Join(why, "; ")
	}
	if len(read) == 1 {
		a.Node = read[0].Index
	}
	return a
}

// auditLine sums an audit up on one line, for the run's log.
func auditLine(a *Audit) string {
	settle := fmt.Sprintf("every node settled in %.1fs", a.Settle.Seconds)
	if a.Settle.TimedOut {
		settle = fmt.Sprintf("settle timed out after %.1fs (%s)", a.Settle.Seconds, a.Settle.Behind)
	}
	if a.Settle.Capped != "" {
		settle += " (" + a.Settle.Capped + ")"
	}
	s := fmt.Sprintf("durability audit: %s; %d acknowledged, %d lost on every node, %d rows divergent, %d unexpected (%d of unknown outcome, %d unsent)",
		settle, a.Acked, a.Lost, a.Divergent, a.Unexpected, a.FromUnknown, a.Unsent)
	if a.Error != "" {
		s += "; " + a.Error
	}
	return s
}

// auditPlan is what every read of one audit shares: the acknowledged ranges and
// unknown ids of all sources, and the windows to read.
type auditPlan struct {
	sources []AuditSource
	query   string // reads one window back (readBackQuery)
	qargs   int    // times the window's bounds are bound
	acked   []results.Range
	unknown []int64 // sorted, once each
	windows []results.Range
}

func newAuditPlan(sources []AuditSource) *auditPlan {
	p := &auditPlan{}
	var spans []results.Range
	var tables []loadgen.AuditTable
	for _, s := range sources {
		if s.Ledger == nil {
			continue
		}
		if !slices.Contains(tables, s.table()) {
			tables = append(tables, s.table())
		}
		p.sources = append(p.sources, s)
		p.acked = append(p.acked, s.Ledger.Acked()...)
		p.unknown = append(p.unknown, s.Ledger.Unknowns()...)
		if s.Lo <= s.Hi {
			spans = append(spans, results.Range{Lo: s.Lo, Hi: s.Hi})
		}
	}
	p.acked = results.MergeRanges(p.acked)
	slices.Sort(p.unknown)
	p.unknown = slices.Compact(p.unknown)
	p.windows = auditWindows(p.acked, results.MergeRanges(spans))
	p.query, p.qargs = readBackQuery(tables)
	return p
}

// audit is an Audit with the sources' counts filled in.
func (p *auditPlan) audit() *Audit {
	a := &Audit{}
	for _, r := range p.acked {
		a.Acked += r.Hi - r.Lo + 1
	}
	for _, s := range p.sources {
		acked, unknown := s.Ledger.Count()
		a.Unknown += unknown
		a.Sources = append(a.Sources, AuditSourceCount{Name: s.Name, Acked: acked, Unknown: unknown})
	}
	return a
}

func (p *auditPlan) walk(nodes int) *auditWalk {
	w := &auditWalk{query: p.query, qargs: p.qargs, ranges: p.acked, unknown: p.unknown, nodes: make([]nodeTally, nodes), has: make([]bool, nodes)}
	if len(p.acked) > 0 {
		w.next = p.acked[0].Lo
	}
	return w
}

// auditWindows are the id spans to read, in order: the sources' id ranges (spans,
// sorted and disjoint) and the parts of acknowledged ranges outside them.
func auditWindows(ranges, spans []results.Range) []results.Range {
	if len(spans) == 0 {
		return ranges
	}
	var out []results.Range
	for _, r := range ranges {
		// The parts of r that no span covers.
		lo := r.Lo
		for _, s := range spans {
			if s.Hi < lo || s.Lo > r.Hi {
				continue
			}
			if s.Lo > lo {
				out = append(out, results.Range{Lo: lo, Hi: s.Lo - 1})
			}
			if s.Hi >= r.Hi {
				lo = r.Hi + 1
				break
			}
			lo = s.Hi + 1
		}
		if lo <= r.Hi {
			out = append(out, results.Range{Lo: lo, Hi: r.Hi})
		}
	}
	out = append(out, spans...)
	slices.SortFunc(out, func(a, b results.Range) int { return cmp.Compare(a.Lo, b.Lo) })
	return out
}

// auditWalk merges the ids present on the nodes, in ascending order, against the
// sorted acknowledged ranges and the sorted unknown ids.
type auditWalk struct {
	query   string
	qargs   int
	ranges  []results.Range
	unknown []int64
	i       int   // current range
	next    int64 // first id of ranges[i] not yet seen or declared lost
	u       int   // first unknown id not below the last id seen

	lost, divergent, divergentAcked     int64
	unexpected, fromUnknown, unsent     int64
	firstLost, firstDivergent           []int64
	firstExtra, firstUnsent, firstUnkno []int64

	nodes []nodeTally
	has   []bool // scratch: which nodes have the id at hand
}

// nodeTally is one node's share of a walk.
type nodeTally struct {
	rows, lost, lacks, lacksAcked, lacksAlone, unexpected int64
	firstLost, firstLacks                                 []int64
}

func first(xs *[]int64, id int64) {
	if len(*xs) < auditFirst {
		*xs = append(*xs, id)
	}
}

// read streams the windows from every node at once and merges them. On an error
// it returns the index of the node whose read failed (-1: not one node's).
func (w *auditWalk) read(ctx context.Context, dbs []*sql.DB, windows []results.Range) (int, error) {
	for _, win := range windows {
		if bad, err := w.scan(ctx, dbs, win); err != nil {
			return bad, fmt.Errorf("read back ids %d-%d: %w", win.Lo, win.Hi, err)
		}
	}
	w.finish()
	return -1, nil
}

// cursor is one node's ids of one window.
type cursor struct {
	rows *sql.Rows
	id   int64
	ok   bool
}

func (c *cursor) advance() error {
	if c.ok = c.rows.Next(); !c.ok {
		return c.rows.Err()
	}
	return c.rows.Scan(&c.id)
}

func (w *auditWalk) scan(ctx context.Context, dbs []*sql.DB, win results.Range) (int, error) {
	cs := make([]cursor, len(dbs))
	defer func() {
		for _, c := range cs {
			if c.rows != nil {
				c.rows.Close()
			}
		}
	}()
	for k, db := range dbs {
		var args []any
		for range w.qargs {
			args = append(args, win.Lo, win.Hi)
		}
		rows, err := db.QueryContext(ctx, w.query, args...)
		if err != nil {
			return k, err
		}
		cs[k].rows = rows
		if err := cs[k].advance(); err != nil {
			return k, err
		}
	}
	for {
		m, any := int64(0), false
		for k := range cs {
			if cs[k].ok && (!any || cs[k].id < m) {
				m, any = cs[k].id, true
			}
		}
		if !any {
			return -1, nil
		}
		for k := range cs {
			w.has[k] = cs[k].ok && cs[k].id == m
		}
		w.present(m, w.has)
		for k := range cs {
			if w.has[k] {
				if err := cs[k].advance(); err != nil {
					return k, err
				}
			}
		}
	}
}

// present takes the next id found, in ascending order, on the nodes marked in has.
func (w *auditWalk) present(id int64, has []bool) {
	for w.i < len(w.ranges) && id > w.ranges[w.i].Hi {
		w.lose(w.next, w.ranges[w.i].Hi)
		w.advance()
	}
	on := 0
	for k, h := range has {
		if h {
			on++
			w.nodes[k].rows++
		}
	}
	acked := w.i < len(w.ranges) && id >= w.ranges[w.i].Lo
	if acked {
		if id >= w.next {
			w.lose(w.next, id-1)
			w.next = id + 1
		}
	} else {
		w.unexpected++
		first(&w.firstExtra, id)
		for w.u < len(w.unknown) && w.unknown[w.u] < id {
			w.u++
		}
		if w.u < len(w.unknown) && w.unknown[w.u] == id {
			w.fromUnknown++
			first(&w.firstUnkno, id)
		} else {
			w.unsent++
			first(&w.firstUnsent, id)
		}
		for k, h := range has {
			if h {
				w.nodes[k].unexpected++
			}
		}
	}
	if on == len(has) {
		return
	}
	// Some nodes have it, others do not: divergence.
	w.divergent++
	first(&w.firstDivergent, id)
	if acked {
		w.divergentAcked++
	}
	for k, h := range has {
		if h {
			continue
		}
		t := &w.nodes[k]
		t.lacks++
		first(&t.firstLacks, id)
		if on == len(has)-1 {
			t.lacksAlone++
		}
		if acked {
			t.lacksAcked++
			t.lost++
			first(&t.firstLost, id)
		}
	}
}

func (w *auditWalk) advance() {
	w.i++
	if w.i < len(w.ranges) {
		w.next = w.ranges[w.i].Lo
	}
}

// lose declares acknowledged ids [a, b] missing on every node (none when a > b).
func (w *auditWalk) lose(a, b int64) {
	if a > b {
		return
	}
	n := b - a + 1
	w.lost += n
	for id := a; id <= b && len(w.firstLost) < auditFirst; id++ {
		w.firstLost = append(w.firstLost, id)
	}
	for k := range w.nodes {
		t := &w.nodes[k]
		t.lost += n
		for id := a; id <= b && len(t.firstLost) < auditFirst; id++ {
			t.firstLost = append(t.firstLost, id)
		}
	}
}

// finish declares the rest of the ranges missing.
func (w *auditWalk) finish() {
	for w.i < len(w.ranges) {
		w.lose(w.next, w.ranges[w.i].Hi)
		w.advance()
	}
}

// fill copies the walk's figures into a, with nodes naming the walk's nodes.
func (w *auditWalk) fill(a *Audit, nodes []AuditNode) {
	a.Lost, a.FirstLost = w.lost, w.firstLost
	a.Divergent, a.DivergentAcked, a.FirstDivergent = w.divergent, w.divergentAcked, w.firstDivergent
	a.Unexpected, a.FirstExtra = w.unexpected, w.firstExtra
	a.FromUnknown, a.FirstFromUnknown = w.fromUnknown, w.firstUnkno
	a.Unsent, a.FirstUnsent = w.unsent, w.firstUnsent
	a.Nodes = a.Nodes[:0]
	for k, t := range w.nodes {
		a.Nodes = append(a.Nodes, NodeAudit{Node: nodes[k].Index, Label: nodes[k].Label, Read: true, Rows: t.rows,
			Lost: t.lost, FirstLost: t.firstLost, Lacks: t.lacks, LacksAcked: t.lacksAcked, LacksAlone: t.lacksAlone,
			FirstLacks: t.firstLacks, Unexpected: t.unexpected})
	}
}

// Settling.

// settleNode is a node as the settle step sees it.
type settleNode struct {
	AuditNode
	db      *sql.DB
	kind    string // galera, replica, source (a primary or a single server)
	skip    string // why it is not read back
	down    bool   // it did not answer when the audit began
	done    bool
	applied string // where it was when it settled (or when the wait ended)
	behind  int64  // Galera: seqnos behind the target when the wait began
	seqno   int64
	state   string
}

type settled struct {
	nodes  []*settleNode
	report AuditSettle
}

func (s *settled) close() {
	for _, n := range s.nodes {
		if n.db != nil {
			n.db.Close()
		}
	}
}

// settleNodes connects to every node, classifies it and waits until each that
// answers has applied everything (see AuditCluster), at most timeout (noSettle:
// not at all).
func settleNodes(ctx context.Context, nodes []AuditNode, timeout time.Duration) *settled {
	start := time.Now()
	s := &settled{report: AuditSettle{Timeout: timeout.Seconds()}}
	for _, n := range nodes {
		sn := &settleNode{AuditNode: n}
		if sn.Label == "" {
			sn.Label = "n" + strconv.Itoa(n.Index)
		}
		s.nodes = append(s.nodes, sn)
		db, err := sql.Open("mysql", n.DSN)
		if err != nil {
			sn.skip = fmt.Sprintf("bad DSN: %v", err)
			continue
		}
		sn.db = db
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		sn.kind, err = nodeKind(pctx, db)
		cancel()
		if err != nil {
			sn.skip = fmt.Sprintf("did not answer: %v", err)
			sn.down = true
		}
	}
	if timeout == noSettle {
		s.report.Timeout, s.report.Seconds = 0, time.Since(start).Seconds()
		return s
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var targets []string
	// Galera: the target is the highest seqno any Primary node has committed.
	var seqTarget int64 = -1
	for _, n := range s.nodes {
		if n.skip != "" || n.kind != "galera" {
			continue
		}
		if err := n.galera(dctx); err != nil {
			n.skip = fmt.Sprintf("wsrep status: %v", err)
			continue
		}
		if n.state == "Primary" {
			seqTarget = max(seqTarget, n.seqno)
		}
	}
	for _, n := range s.nodes {
		if n.skip == "" && n.kind == "galera" && seqTarget >= 0 {
			n.behind = max(seqTarget-n.seqno, 0)
		}
	}
	if seqTarget >= 0 {
		targets = append(targets, fmt.Sprintf("Galera seqno %d", seqTarget))
	}
	// Replicas: the first source's GTID position.
	var gtid string
	for _, n := range s.nodes {
		if n.skip == "" && n.kind == "source" && slices.ContainsFunc(s.nodes, func(x *settleNode) bool { return x.skip == "" && x.kind == "replica" }) {
			if err := n.db.QueryRowContext(dctx, "SELECT @@global.gtid_binlog_pos").Scan(&gtid); err != nil {
				n.skip = fmt.Sprintf("GTID position: %v", err)
				continue
			}
			n.applied = "GTID " + gtid
			targets = append(targets, fmt.Sprintf("GTID %s (from %s)", gtid, n.Label))
			break
		}
	}
	s.report.Target = strings.Join(targets, "; ")

	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		pending := 0
		for _, n := range s.nodes {
			if n.skip != "" || n.done {
				continue
			}
			done, err := n.settledYet(dctx, seqTarget, gtid)
			if err != nil && dctx.Err() == nil {
				n.skip = fmt.Sprintf("while waiting for it to apply: %v", err)
				continue
			}
			n.done = done
			if !done {
				pending++
			}
		}
		if pending == 0 {
			break
		}
		select {
		case <-dctx.Done():
		case <-tick.C:
			continue
		}
		// The wait is over: who is still behind is not read.
		s.report.TimedOut = ctx.Err() == nil
		var behind []string
		for _, n := range s.nodes {
			if n.skip != "" || n.done {
				continue
			}
			why := n.progress(seqTarget, gtid)
			n.skip = fmt.Sprintf("not settled after %v: %s", timeout, why)
			behind = append(behind, n.Label+" "+why)
		}
		s.report.Behind = strings.Join(behind, "; ")
		break
	}
	s.report.Seconds = time.Since(start).Seconds()
	return s
}

// nodeKind says whether the node is a Galera member, an asynchronous replica, or a
// source (a primary or a single server: nothing to wait for).
func nodeKind(ctx context.Context, db *sql.DB) (string, error) {
	if err := db.PingContext(ctx); err != nil {
		return "", err
	}
	var on sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT @@global.wsrep_on").Scan(&on); err == nil && on.Int64 == 1 {
		return "galera", nil
	}
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return "source", nil // no privilege, or no replication: nothing to wait for
	}
	defer rows.Close()
	if rows.Next() {
		return "replica", nil
	}
	return "source", rows.Err()
}

// galera reads the node's Galera state and last committed seqno.
func (n *settleNode) galera(ctx context.Context) error {
	rows, err := n.db.QueryContext(ctx, "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_last_committed', 'wsrep_cluster_status', 'wsrep_ready', 'wsrep_local_state_comment')")
	if err != nil {
		return err
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		m[strings.ToLower(k)] = v
	}
	if err := rows.Err(); err != nil {
		return err
	}
	n.seqno, _ = strconv.ParseInt(m["wsrep_last_committed"], 10, 64)
	n.state = m["wsrep_cluster_status"]
	if m["wsrep_ready"] != "ON" || m["wsrep_local_state_comment"] != "Synced" {
		n.state += "/" + m["wsrep_local_state_comment"]
		if m["wsrep_ready"] != "ON" {
			n.state += "/not ready"
		}
	}
	n.applied = "seqno " + strconv.FormatInt(n.seqno, 10)
	return nil
}

// settledYet checks once whether the node has applied up to the targets.
func (n *settleNode) settledYet(ctx context.Context, seqTarget int64, gtid string) (bool, error) {
	switch n.kind {
	case "galera":
		if err := n.galera(ctx); err != nil {
			return false, err
		}
		return n.state == "Primary" && n.seqno >= seqTarget, nil
	case "replica":
		if gtid == "" {
			return false, errors.New("no source answered to give a GTID position to wait for")
		}
		var r sql.NullInt64
		if err := n.db.QueryRowContext(ctx, "SELECT MASTER_GTID_WAIT(?, 0.2)", gtid).Scan(&r); err != nil {
			return false, err
		}
		var pos string
		if err := n.db.QueryRowContext(ctx, "SELECT @@global.gtid_slave_pos").Scan(&pos); err == nil {
			n.applied = "GTID " + pos
		}
		return r.Valid && r.Int64 == 0, nil
	}
	return true, nil
}

// progress says where a node that did not settle stood.
func (n *settleNode) progress(seqTarget int64, gtid string) string {
	switch n.kind {
	case "galera":
		return fmt.Sprintf("at seqno %d of %d, %s", n.seqno, seqTarget, n.state)
	case "replica":
		return fmt.Sprintf("at %s, source at GTID %s", n.applied, gtid)
	}
	return "waiting"
}
