package loadgen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/htapchaos/htapchaos/internal/safego"
)

// ErrUnreachable means a target did not answer. The CLI maps it to exit code 3.
var ErrUnreachable = errors.New("target unreachable")

// Target is one database node load goes to.
type Target struct {
	Node int    // 1-based
	Name string // for people
	DSN  string // go-sql-driver/mysql DSN, with timeouts
	// OwnDatabase: the DSN named no database, and the target works in
	// htapchaos's own (OwnDatabase; EnsureOwnDatabase creates it).
	OwnDatabase bool
}

// Timeouts bound every connection: a frozen node must not hang a client.
type Timeouts struct {
	Dial, Read, Write time.Duration
}

// DefaultTimeouts are used where a DSN sets none. Read and write timeouts are a
// backstop above the per-operation timeout (Spec.OpTimeout, 10s by default): the
// driver reports its own timeouts as a lost connection, so the operation's context
// deadline must fire first for a slow answer to count as a timeout.
var DefaultTimeouts = Timeouts{Dial: 3 * time.Second, Read: 30 * time.Second, Write: 30 * time.Second}

// NewTarget checks a DSN and fills in what load generation needs: dial, read and write
// timeouts where the DSN has none, and client-side parameter interpolation (one round
// trip per statement, as sysbench's prepared statements).
func NewTarget(node int, dsn string, t Timeouts) (Target, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return Target{}, usageErr("--target", "DSN %d (%s): %v", node, Redact(dsn), err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = t.Dial
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = t.Read
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = t.Write
	}
	cfg.InterpolateParams = true
	cfg.AllowAllFiles = false
	own := cfg.DBName == ""
	if own {
		// A DSN that names no database: htapchaos works in one of its own.
		cfg.DBName = OwnDatabase
	}
	return Target{Node: node, Name: "n" + strconv.Itoa(node) + " " + cfg.Addr, DSN: cfg.FormatDSN(), OwnDatabase: own}, nil
}

// OwnDatabase is the database htapchaos works in when a DSN names none.
const OwnDatabase = "htapchaos"

// EnsureOwnDatabase creates OwnDatabase on the targets whose DSN named no
// database (Target.OwnDatabase), if missing.
func EnsureOwnDatabase(ctx context.Context, targets []Target) error {
	for _, t := range targets {
		if !t.OwnDatabase {
			continue
		}
		cfg, err := mysql.ParseDSN(t.DSN)
		if err != nil {
			return err
		}
		cfg.DBName = ""
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			return err
		}
		_, err = db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+OwnDatabase)
		db.Close()
		if err != nil {
			return fmt.Errorf("%w: node %d: create database %s: %v", ErrUnreachable, t.Node, OwnDatabase, err)
		}
	}
	return nil
}

// ParseTargets turns --target values (comma-separated DSNs) into numbered targets.
func ParseTargets(values []string, t Timeouts) ([]Target, error) {
	var out []Target
	var errs []error
	for _, v := range values {
		for _, dsn := range splitDSNs(v) {
			tg, err := NewTarget(len(out)+1, dsn, t)
			errs = append(errs, err)
			out = append(out, tg)
		}
	}
	if len(out) == 0 {
		return nil, usageErr("--target", "no DSN given")
	}
	return out, errors.Join(errs...)
}

// splitDSNs splits on commas that start a new DSN ("user:pass@" or "user@" follows),
// so commas inside a DSN's parameters (e.g. sql_mode) survive.
func splitDSNs(s string) []string {
	parts := strings.Split(s, ",")
	var out []string
	for _, p := range parts {
		if len(out) > 0 && !strings.Contains(p, "@") {
			out[len(out)-1] += "," + p
			continue
		}
		if strings.TrimSpace(p) != "" {
			out = append(out, strings.TrimSpace(p))
		}
	}
	return out
}

// Redact hides the password of a DSN, for messages and files.
func Redact(dsn string) string {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		if at := strings.LastIndex(dsn, "@"); at > 0 {
			if colon := strings.Index(dsn[:at], ":"); colon >= 0 {
				return dsn[:colon+1] + "***" + dsn[at:]
			}
		}
		return dsn
	}
	if cfg.Passwd != "" {
		cfg.Passwd = "***"
	}
	return cfg.FormatDSN()
}

// CheckReachable pings every target once, concurrently, and names each one that does
// not answer.
func CheckReachable(ctx context.Context, targets []Target) error {
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		safego.Go(&wg, fmt.Sprintf("ping node %d", t.Node), func(err error) { errs[i] = err }, func() {
			db, err := sql.Open("mysql", t.DSN)
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := db.PingContext(pctx); err != nil {
				errs[i] = fmt.Errorf("%w: node %d (%s): %v", ErrUnreachable, t.Node, Redact(t.DSN), err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Route says which nodes a workload's operations go to, round-robin.
type Route struct {
	Nodes []int // 1-based
}

// ParseRoute parses "all", "node=2" or "nodes=1,3" for a cluster of n nodes.
func ParseRoute(s string, n int) (Route, error) {
	switch {
	case s == "" || s == "all":
		r := Route{}
		for i := 1; i <= n; i++ {
			r.Nodes = append(r.Nodes, i)
		}
		return r, nil
	case strings.HasPrefix(s, "node=") || strings.HasPrefix(s, "nodes="):
		_, list, _ := strings.Cut(s, "=")
		var r Route
		seen := map[int]bool{}
		for _, f := range strings.Split(list, ",") {
			i, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || i < 1 || i > n {
				return Route{}, usageErr("--route", "%q: node %q is not in 1-%d", s, f, n)
			}
			if !seen[i] {
				seen[i] = true
				r.Nodes = append(r.Nodes, i)
			}
		}
		return r, nil
	default:
		return Route{}, usageErr("--route", "%q: want all, node=N or nodes=N,M", s)
	}
}

// router picks nodes round-robin; safe for concurrent use.
type router struct {
	nodes []int
	next  atomic.Uint64
}

// after returns the node that follows node in the route: where a retry goes. It does
// not move the round-robin, so retries do not skew where new requests go.
func (r *router) after(node int) int {
	for i, n := range r.nodes {
		if n == node {
			return r.nodes[(i+1)%len(r.nodes)]
		}
	}
	return r.nodes[0]
}

func (r *router) pick() int {
	if len(r.nodes) == 1 {
		return r.nodes[0]
	}
	return r.nodes[(r.next.Add(1)-1)%uint64(len(r.nodes))]
}

// WaitSettled waits until no target still applies replicated work: Galera nodes with
// an empty receive queue, replicas with no lag. A baseline measured while the cluster
// still digests the seed data would be wrong. Targets that replicate nothing pass at
// once.
func WaitSettled(ctx context.Context, targets []Target, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, t := range targets {
		db, err := sql.Open("mysql", t.DSN)
		if err != nil {
			return err
		}
		err = waitSettled(ctx, db)
		db.Close()
		if err != nil {
			return fmt.Errorf("node %d still applies replicated work: %w", t.Node, err)
		}
	}
	return nil
}

func waitSettled(ctx context.Context, db *sql.DB) error {
	calm := 0
	for calm < 2 {
		busy, err := replicationBacklog(ctx, db)
		if err != nil {
			return err
		}
		if busy {
			calm = 0
		} else {
			calm++
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

func replicationBacklog(ctx context.Context, db *sql.DB) (bool, error) {
	var name, v string
	err := db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'wsrep_local_recv_queue'").Scan(&name, &v)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, err
	}
	if err == nil && v != "0" {
		return true, nil
	}
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return false, nil // no privilege or not a replica: nothing to wait for
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return false, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return false, err
	}
	for i, c := range cols {
		if c == "Seconds_Behind_Master" && vals[i].Valid && vals[i].String != "0" {
			return true, nil
		}
	}
	return false, nil
}
