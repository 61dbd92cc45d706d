package faults

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/htapchaos/htapchaos/internal/safego"
	"github.com/htapchaos/htapchaos/loadgen"
)

// A schema change on a sharded cluster (Spider aggregators over leaves). Spider
// passes no ALTER from an aggregator to the leaves, and an aggregator's definition
// that names a column its leaves lack breaks every read of it (error 1054). So the
// change runs as the operator's runbook has it: every partition table on every
// leaf first, one after the other, then every aggregator's Spider table (a
// definition only: no rows move). The write stall measured is that of the whole,
// from the first ALTER's start to the last one's end. On recover, what was added
// is dropped the other way round: aggregators first, then leaves.

// schemaPart is one ALTER of a sharded schema change: a table on one node.
type schemaPart struct {
	f   *schemaChange
	env *Env
}

// setupSharded plans the ALTERs when the target is an aggregator: the leaves'
// tables of the table (t and t_pN), then the aggregators' t, each checked as a
// single schema change is.
func (f *schemaChange) setupSharded(ctx context.Context, env *Env) error {
	if env.Cluster == nil {
		return fmt.Errorf("%s: the cluster's other nodes are not known", f.node.Label())
	}
	var leaves, aggs []Node
	for _, n := range env.Cluster.Nodes() {
		switch n.Role() {
		case "leaf":
			leaves = append(leaves, n)
		case "aggregator":
			aggs = append(aggs, n)
		}
	}
	if len(leaves) == 0 {
		return usageErr("--node", "%s is an aggregator of a cluster with no leaf", f.node.Label())
	}
	part := func(n Node, table string, spider bool) error {
		p := &schemaChange{variant: f.variant, table: table, method: f.method, part: true, spider: spider}
		pe := &Env{Targets: []Node{n}, Cluster: env.Cluster, Events: env.Events, Params: env.Params}
		f.parts = append(f.parts, schemaPart{f: p, env: pe})
		return p.Setup(ctx, pe)
	}
	var errs []error
	for _, n := range leaves {
		tables, err := leafTables(ctx, n, f.table)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(tables) == 0 {
			errs = append(errs, usageErr("--param", "table=%s: %s holds no %s or %s_pN table", f.table, n.Label(), f.table, f.table))
		}
		for _, t := range tables {
			errs = append(errs, part(n, t, false))
		}
	}
	for _, n := range aggs {
		gate, err := isVtgate(ctx, n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if gate {
			// A vtgate holds no definition: it learns the shards' schema from
			// them (schema tracking), so the shards' ALTERs are the change.
			continue
		}
		errs = append(errs, part(n, f.table, true))
	}
	if err := errors.Join(errs...); err != nil {
		for _, p := range f.parts {
			_ = p.f.Cleanup(ctx, p.env)
		}
		f.parts = nil
		return err
	}
	// The table's size: the leaves' tables summed (an aggregator holds no rows).
	var rows, size float64
	for _, p := range f.parts {
		if p.f.spider {
			continue
		}
		for _, m := range p.f.Measurements() {
			switch m.Name {
			case MeasureTableRows:
				rows += m.Value
			case MeasureTableSize:
				size += m.Value
			}
		}
	}
	leafParts, spiderParts := 0, 0
	for _, p := range f.parts {
		if p.f.spider {
			spiderParts++
		} else {
			leafParts++
		}
	}
	note := fmt.Sprintf("%s over %d tables on %d leaves", f.table, leafParts, len(leaves))
	f.mu.Lock()
	f.ms = append(f.ms,
		Measurement{Name: MeasureTableRows, Node: f.node.Label(), Value: rows, Unit: "rows", Note: note + ", the servers' estimates"},
		Measurement{Name: MeasureTableSize, Node: f.node.Label(), Value: size, Unit: "bytes", Note: note + ", data and indexes"})
	f.mu.Unlock()
	f.algorithm = f.parts[0].f.algorithm + " on the leaves"
	if spiderParts > 0 {
		f.algorithm += ", a definition only on the aggregators"
	}
	return nil
}

// isVtgate says whether an aggregator is a Vitess vtgate.
func isVtgate(ctx context.Context, n Node) (bool, error) {
	sn, ok := n.(SQLNode)
	if !ok {
		return false, fmt.Errorf("%s gives no SQL connection", n.Label())
	}
	db, err := sql.Open("mysql", sn.DSN())
	if err != nil {
		return false, err
	}
	defer db.Close()
	gate, err := loadgen.IsVtgate(ctx, db)
	if err != nil {
		return false, fmt.Errorf("%s: version: %w", n.Label(), err)
	}
	return gate, nil
}

// leafTables lists a leaf's tables of table: itself and its partitions (t_pN).
func leafTables(ctx context.Context, n Node, table string) ([]string, error) {
	sn, ok := n.(SQLNode)
	if !ok {
		return nil, fmt.Errorf("%s gives no SQL connection", n.Label())
	}
	db, err := sql.Open("mysql", sn.DSN())
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT TABLE_NAME FROM information_schema.TABLES
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' AND (TABLE_NAME = ? OR TABLE_NAME REGEXP ?) ORDER BY TABLE_NAME`,
		table, "^"+regexpQuote(table)+"_p[0-9]+$")
	if err != nil {
		return nil, fmt.Errorf("%s: tables of %s: %w", n.Label(), table, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// regexpQuote escapes a table name (letters, digits, _ and $: schemaTableRE) for
// a MariaDB regular expression.
func regexpQuote(s string) string { return strings.ReplaceAll(s, "$", `\$`) }

// injectSharded runs the parts one after the other in the background; f.done is
// closed when the last returned or one failed.
func (f *schemaChange) injectSharded(ctx context.Context) error {
	f.runDone = ctx.Done()
	f.done = make(chan struct{})
	started := make(chan error, 1)
	f.mu.Lock()
	f.start = time.Now()
	f.mu.Unlock()
	go func() {
		defer close(f.done)
		defer safego.Recover("schema-change parts", func(err error) {
			f.mu.Lock()
			f.end, f.alterErr = time.Now(), err
			f.mu.Unlock()
			select { // a panic before the first part started: the caller waits on it
			case started <- err:
			default:
			}
		})
		for i, p := range f.parts {
			err := p.f.Inject(ctx, p.env)
			if i == 0 {
				started <- err
			}
			if err == nil {
				<-p.f.done
				_, err = p.f.finished()
			}
			f.mu.Lock()
			f.current = i
			if err != nil {
				f.end, f.alterErr = time.Now(), fmt.Errorf("%s: %s: %w", p.f.node.Label(), p.f.table, err)
				f.mu.Unlock()
				return
			}
			f.mu.Unlock()
			if ctx.Err() != nil {
				f.mu.Lock()
				f.end, f.alterErr = time.Now(), context.Cause(ctx)
				f.mu.Unlock()
				return
			}
		}
		f.mu.Lock()
		f.end = time.Now()
		f.mu.Unlock()
	}()
	return <-started
}

// killSharded ends the part that runs (KILL QUERY); the parts after it never start.
func (f *schemaChange) killSharded(why string) error {
	if done, _ := f.finished(); done {
		return nil
	}
	f.mu.Lock()
	f.killed = why
	cur := f.current
	f.mu.Unlock()
	var errs []error
	for _, p := range f.parts[cur:] {
		if p.f.done != nil {
			errs = append(errs, p.f.kill(why))
		}
	}
	select {
	case <-f.done:
	case <-time.After(30 * time.Second):
		errs = append(errs, errors.New("the sharded schema change still runs 30 s after KILL QUERY"))
	}
	return errors.Join(errs...)
}

// dropSharded removes what the parts added: the aggregators' first (their
// definition must not name a column the leaves no longer have), then the leaves'.
func (f *schemaChange) dropSharded(ctx context.Context) error {
	var errs []error
	for i := len(f.parts) - 1; i >= 0; i-- {
		errs = append(errs, f.parts[i].f.drop(ctx))
	}
	return errors.Join(errs...)
}

// presentSharded says whether any part's addition is still there.
func (f *schemaChange) presentSharded(ctx context.Context) (bool, error) {
	for _, p := range f.parts {
		if ok, err := p.f.present(ctx); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// partsNote lists each part's node, table and duration, for the duration's note.
func (f *schemaChange) partsNote() string {
	var parts []string
	for _, p := range f.parts {
		p.f.mu.Lock()
		d := "not run"
		if !p.f.start.IsZero() && !p.f.end.IsZero() {
			d = fmt.Sprintf("%.2fs", p.f.end.Sub(p.f.start).Seconds())
		} else if !p.f.start.IsZero() {
			d = "running"
		}
		p.f.mu.Unlock()
		parts = append(parts, fmt.Sprintf("%s %s %s", p.f.node.Label(), p.f.table, d))
	}
	return strings.Join(parts, "; ")
}
