package loadgen

import (
	"context"
	"database/sql"
	"net"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/htapchaos/htapchaos/results"
)

// workerConn is a worker's own connection to one node, kept across operations, with
// its statements prepared on the server once. A pool checkout per operation cost a
// liveness-check syscall and pool bookkeeping each time, and text statements a parse
// on the server: together a third of the client's CPU per point read.
type workerConn struct {
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
}

// Queries with arguments run as prepared statements (the statement text is a
// constant of the op); queries without (bulk inserts with inline values, analytics)
// run as they are.
func (c *workerConn) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := c.stmts[query]; ok {
		return st, nil
	}
	st, err := c.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = st
	return st, nil
}

func (c *workerConn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if len(args) == 0 {
		return c.conn.ExecContext(ctx, query)
	}
	st, err := c.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (c *workerConn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if len(args) == 0 {
		return c.conn.QueryContext(ctx, query)
	}
	st, err := c.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (c *workerConn) close() {
	for _, st := range c.stmts {
		st.Close()
	}
	c.conn.Close()
}

// conns are a worker's connections, one per node.
type conns map[int]*workerConn

// get returns the worker's connection to node, opening one from the pool if needed.
func (cs conns) get(ctx context.Context, node int, pool *sql.DB) (*workerConn, error) {
	if c, ok := cs[node]; ok {
		return c, nil
	}
	conn, err := pool.Conn(ctx)
	if err != nil {
		return nil, err
	}
	c := &workerConn{conn: conn, stmts: map[string]*sql.Stmt{}}
	cs[node] = c
	return c, nil
}

// drop closes the connection to node after a failure that may have broken it
// (connection lost, timeout, our own cancel): the next operation reconnects.
func (cs conns) drop(node int, err error) {
	c, ok := cs[node]
	if !ok || err == nil {
		return
	}
	switch results.Classify(err).Class {
	case results.ClassConnection, results.ClassTimeout, results.ClassCanceled:
		c.close()
		delete(cs, node)
	}
}

func (cs conns) closeAll() {
	for n, c := range cs {
		c.close()
		delete(cs, n)
	}
}

// connTracker dials a run's connections and closes them all when the run is
// cancelled. Operations run their queries without a cancellable context (see
// attempt), so this is how a Ctrl-C reaches a query waiting on a frozen node.
type connTracker struct {
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

func newConnTracker() *connTracker { return &connTracker{conns: map[*trackedConn]struct{}{}} }

func (t *connTracker) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if tcp, ok := c.(*net.TCPConn); ok {
		_ = tcp.SetKeepAlive(true)
	}
	tc := &trackedConn{Conn: c, t: t, raw: newRawIO(c)}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	t.conns[tc] = struct{}{}
	return tc, nil
}

// closeAll closes every connection and refuses new ones.
func (t *connTracker) closeAll() {
	t.mu.Lock()
	t.closed = true
	conns := t.conns
	t.conns = map[*trackedConn]struct{}{}
	t.mu.Unlock()
	for c := range conns {
		c.Conn.Close()
	}
}

type trackedConn struct {
	net.Conn
	t   *connTracker
	raw *rawIO // nil: the connection's own Read and Write
}

func (c *trackedConn) Read(p []byte) (int, error) {
	if c.raw == nil {
		return c.Conn.Read(p)
	}
	n, err := c.raw.read(p)
	return n, opError("read", c.Conn, err)
}

func (c *trackedConn) Write(p []byte) (int, error) {
	if c.raw == nil {
		return c.Conn.Write(p)
	}
	n, err := c.raw.write(p)
	return n, opError("write", c.Conn, err)
}

func (c *trackedConn) Close() error {
	c.t.mu.Lock()
	delete(c.t.conns, c)
	c.t.mu.Unlock()
	return c.Conn.Close()
}

// openPool opens a node's pool for one workload: the target's DSN with every read and
// write bounded by the operation timeout, dialled through the run's tracker.
func openPool(dsn string, opTimeout time.Duration, tracker *connTracker, conns int) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	cfg.ReadTimeout, cfg.WriteTimeout = opTimeout, opTimeout
	cfg.DialFunc = tracker.dial
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	return db, nil
}
