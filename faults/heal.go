package faults

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Heal: undo, from a journal entry alone, what a fault whose process died left on
// its nodes. Every healer is idempotent: unpausing a running node, reconnecting a
// connected one, removing an absent filter or killing no process succeeds, so a
// heal can run twice, or after the fault's own recovery half ran.

// healer undoes a fault of one kind on one node.
type healer func(ctx context.Context, n Node, e JournalEntry) error

// healers by kind. A kind absent here leaves nothing behind when its process
// dies: network-latency's proxy lives in the process; a batch spike's rows are
// data the run wrote, not a fault's state.
var healers = map[string]healer{
	"node-kill":         healStart,
	"node-stop":         healStart,
	"node-restart":      healStart,
	"pause":             healUnpause,
	"partition":         healReconnect,
	"cpu-hog":           healCPUHog,
	"network-bandwidth": healBandwidth,
	"slow-node":         healSlowNode,
	"memory-fill":       healMemoryFill,
	"schema-change":     healSchemaChange,
}

// LeavesNothing says whether a fault kind leaves nothing behind when its process
// dies.
func LeavesNothing(kind string) bool { return healers[kind] == nil }

// HealResult is what heal did about one journal entry.
type HealResult struct {
	Entry JournalEntry
	Err   error
}

// Heal undoes the entries on the cluster's nodes, then waits until each serves
// again. Transient errors are retried with backoff.
func Heal(ctx context.Context, c Cluster, entries []JournalEntry) []HealResult {
	var out []HealResult
	for _, e := range entries {
		out = append(out, HealResult{Entry: e, Err: healEntry(ctx, c, e)})
	}
	return out
}

func healEntry(ctx context.Context, c Cluster, e JournalEntry) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	h := healers[e.Kind]
	labels := map[int]string{}
	for i, idx := range e.Nodes {
		if i < len(e.Labels) {
			labels[idx] = e.Labels[i]
		}
	}
	nodes := slices.Clone(e.Nodes)
	if e.Kind == "schema-change" {
		// An aggregator's schema change altered every leaf and aggregator: the
		// parts say which.
		if u, err := undoOf[schemaUndo](e); err == nil {
			for _, p := range u.Parts {
				if !slices.Contains(nodes, p.Node) {
					nodes = append(nodes, p.Node)
				}
			}
		}
	}
	var errs []error
	for _, idx := range nodes {
		var n Node
		for _, cand := range c.Nodes() {
			if cand.Index() == idx {
				n = cand
			}
		}
		if n == nil {
			errs = append(errs, fmt.Errorf("node %d of %s: not in the cluster", idx, e.Kind))
			continue
		}
		if want := labels[idx]; want != "" && want != n.Label() {
			// The target file changed since: never heal the wrong host.
			errs = append(errs, fmt.Errorf("node %d is %s now, the journal says %s: heal it by hand", idx, n.Label(), want))
			continue
		}
		if h != nil {
			if err := retry(ctx, func() error { return h(ctx, n, e) }); err != nil {
				errs = append(errs, fmt.Errorf("%s on %s: %w", e.Kind, n.Label(), err))
				continue
			}
		}
		if r, ok := n.(Readier); ok {
			wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			err := r.WaitReady(wctx)
			cancel()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: does not serve after the heal: %w", n.Label(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// retry runs f up to 4 times, 0.5, 1 and 2 s apart: the engine may be busy.
func retry(ctx context.Context, f func() error) error {
	var err error
	for i, wait := 0, 500*time.Millisecond; i < 4; i, wait = i+1, wait*2 {
		if err = f(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
	}
	return err
}

// undoOf decodes an entry's undo state.
func undoOf[T any](e JournalEntry) (T, error) {
	var v T
	if len(e.Undo) == 0 || string(e.Undo) == "null" {
		return v, fmt.Errorf("the journal entry holds no undo state for %s", e.Kind)
	}
	err := json.Unmarshal(e.Undo, &v)
	return v, err
}

func nodeState(ctx context.Context, n Node) (running, paused bool, err error) {
	s, ok := n.(Stater)
	if !ok {
		return false, false, fmt.Errorf("its controller cannot tell its state")
	}
	return s.Running(ctx)
}

func healStart(ctx context.Context, n Node, _ JournalEntry) error {
	if _, ok := n.(Stater); !ok {
		return n.(Starter).Start(ctx) // an exec target's start command: idempotent by contract
	}
	running, paused, err := nodeState(ctx, n)
	if err != nil {
		return err
	}
	if paused {
		if err := n.(Pauser).Unpause(ctx); err != nil {
			return err
		}
	}
	if running {
		return nil
	}
	return n.(Starter).Start(ctx)
}

func healUnpause(ctx context.Context, n Node, _ JournalEntry) error {
	if _, ok := n.(Stater); !ok {
		return n.(Pauser).Unpause(ctx) // an exec target's resume command
	}
	_, paused, err := nodeState(ctx, n)
	if err != nil || !paused {
		return err
	}
	return n.(Pauser).Unpause(ctx)
}

func healReconnect(ctx context.Context, n Node, _ JournalEntry) error {
	p, ok := n.(Partitioner)
	if !ok {
		return fmt.Errorf("its controller cannot reconnect it")
	}
	return p.Reconnect(ctx) // idempotent: a connected node is left alone
}

func healCPUHog(ctx context.Context, n Node, _ JournalEntry) error {
	env := &Env{Targets: []Node{n}}
	if err := (&cpuHog{}).Recover(ctx, env); err != nil {
		return err
	}
	return (&cpuHog{}).WaitForRecovery(ctx, env) // until no live stress-ng is left
}

// bandwidthUndo is network-bandwidth's undo state: the interface of each node
// the filter sits on.
type bandwidthUndo struct {
	Ifaces map[int]string `json:"ifaces"`
}

func (f *netBandwidth) UndoState(context.Context, *Env) (any, error) {
	return bandwidthUndo{Ifaces: f.ifaces}, nil
}

func healBandwidth(ctx context.Context, n Node, e JournalEntry) error {
	u, err := undoOf[bandwidthUndo](e)
	if err != nil {
		return err
	}
	f := &netBandwidth{ifaces: u.Ifaces}
	return f.Recover(ctx, &Env{Targets: []Node{n}}) // an absent filter is no error
}

// slowNodeUndo is slow-node's undo state: each node's CPU limits before it.
type slowNodeUndo struct {
	Limits map[int]json.RawMessage `json:"limits"`
}

// UndoState reads the targets' CPU limits before the cap (Inject runs next).
func (f *slowNode) UndoState(ctx context.Context, env *Env) (any, error) {
	u := slowNodeUndo{Limits: map[int]json.RawMessage{}}
	for _, n := range env.Targets {
		r, ok := n.(CPURestorer)
		if !ok {
			return nil, fmt.Errorf("%s: its controller cannot read CPU limits", n.Label())
		}
		l, err := r.CPULimits(ctx)
		if err != nil {
			return nil, err
		}
		u.Limits[n.Index()] = l
	}
	return u, nil
}

func healSlowNode(ctx context.Context, n Node, e JournalEntry) error {
	u, err := undoOf[slowNodeUndo](e)
	if err != nil {
		return err
	}
	l, ok := u.Limits[n.Index()]
	if !ok {
		return fmt.Errorf("the journal holds no CPU limits of node %d", n.Index())
	}
	r, ok := n.(CPURestorer)
	if !ok {
		return fmt.Errorf("its controller cannot restore CPU limits")
	}
	return r.RestoreCPU(ctx, l)
}

// memoryFillUndo is memory-fill's undo state: its method.
type memoryFillUndo struct {
	Method string `json:"method"`
}

func (f *memFill) UndoState(context.Context, *Env) (any, error) {
	return memoryFillUndo{Method: f.method}, nil
}

func healMemoryFill(ctx context.Context, n Node, e JournalEntry) error {
	u, err := undoOf[memoryFillUndo](e)
	if err != nil {
		return err
	}
	if u.Method == "exec" {
		if err := memfillKill(ctx, n); err != nil {
			return err
		}
		return poll(ctx, "memory-fill's hog still runs", func() (bool, error) {
			st, err := memfillStatus(ctx, n)
			return err == nil && st["live"] == "0", err
		})
	}
	db, err := healDB(n)
	if err != nil {
		return err
	}
	defer db.Close()
	return memfillDrop(ctx, db)
}

// schemaUndo is schema-change's undo state: per node, the tables it alters and
// the statement that drops what it adds, with the session's schema-change method.
type schemaUndo struct {
	Parts []schemaUndoPart `json:"parts"`
}

type schemaUndoPart struct {
	Node   int    `json:"node"`
	Table  string `json:"table"`
	Drop   string `json:"drop"`
	Galera bool   `json:"galera,omitempty"`
	Method string `json:"method,omitempty"` // wsrep_OSU_method
}

func (f *schemaChange) UndoState(context.Context, *Env) (any, error) {
	var u schemaUndo
	add := func(p *schemaChange) {
		u.Parts = append(u.Parts, schemaUndoPart{Node: p.node.Index(), Table: p.table, Drop: p.dropSQL, Galera: p.galera, Method: p.method})
	}
	if len(f.parts) == 0 {
		add(f)
	}
	for _, p := range f.parts {
		add(p.f)
	}
	return u, nil
}

// healSchemaChange ends an ALTER of htapchaos's still running on the node (the
// server goes on with it after its client died) and drops what it added.
func healSchemaChange(ctx context.Context, n Node, e JournalEntry) error {
	u, err := undoOf[schemaUndo](e)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(u.Parts, func(p schemaUndoPart) bool { return p.Node == n.Index() }) {
		return nil // an aggregator that holds no definition (a vtgate): nothing ran there
	}
	db, err := healDB(n)
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND COMMAND = 'Query' AND INFO LIKE ?", "%"+schemaColumn+"%")
	if err != nil {
		return err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		if _, err := db.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", id)); err != nil && !strings.Contains(err.Error(), "1094") {
			return err
		}
	}
	for _, p := range u.Parts {
		if p.Node != n.Index() {
			continue
		}
		present, err := schemaAdditionPresent(ctx, db, p.Table)
		if err != nil {
			return err
		}
		if !present {
			continue
		}
		c, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		if p.Galera && p.Method != "" {
			if _, err := c.ExecContext(ctx, "SET SESSION wsrep_OSU_method = '"+p.Method+"'"); err != nil {
				c.Close()
				return err
			}
		}
		_, err = c.ExecContext(ctx, p.Drop)
		c.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", p.Drop, err)
		}
	}
	return nil
}

// schemaAdditionPresent says whether a table still has schema-change's column or
// index.
func schemaAdditionPresent(ctx context.Context, db *sql.DB, table string) (bool, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT
  (SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?) +
  (SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME = ?)`,
		table, schemaColumn, table, schemaIndex).Scan(&n)
	return n > 0, err
}

// healDB opens a connection to a node for a heal.
func healDB(n Node) (*sql.DB, error) {
	sn, ok := n.(SQLNode)
	if !ok || sn.DSN() == "" {
		return nil, fmt.Errorf("it gives no SQL connection")
	}
	db, err := sql.Open("mysql", sn.DSN())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(2)
	return db, nil
}
