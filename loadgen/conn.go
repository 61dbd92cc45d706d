package loadgen

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/htapchaos/htapchaos/results"
)

// workerConn is a worker's own connection to one node, kept across operations, with
// its statements prepared on the server once. A pool checkout per operation cost a
// liveness-check syscall and pool bookkeeping each time, and text statements a parse
// on the server: together a third of the client's CPU per point read.
//
// It also counts the bytes the results of its operations sent (runCounted): io is
// the connection's byte counts (nil: not known, see countsOf), prepRead the bytes
// it read while preparing statements, which are no operation's result.
type workerConn struct {
	conn     *sql.Conn
	stmts    map[string]*sql.Stmt
	io       *trackedConn
	prepRead int64
}

// Queries with arguments run as prepared statements (the statement text is a
// constant of the op); queries without (bulk inserts with inline values, analytics)
// run as they are.
func (c *workerConn) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := c.stmts[query]; ok {
		return st, nil
	}
	before := c.resultBytes()
	st, err := c.conn.PrepareContext(ctx, query)
	if before >= 0 {
		c.prepRead += c.resultBytes() - before
	}
	if err != nil {
		return nil, err
	}
	c.stmts[query] = st
	return st, nil
}

// resultBytes is what the connection has read so far, less what preparing
// statements read; -1 when its counts are not known.
func (c *workerConn) resultBytes() int64 {
	if c.io == nil {
		return -1
	}
	return c.io.read.Load() - c.prepRead
}

// runCounted runs one attempt of op on c and returns, with its error, the bytes
// its result sent to the client: what c read between the op's start and its end,
// statement preparations left out. A worker's connection serves one operation at
// a time and the server sends nothing unasked, so every such byte is this op's
// (protocol framing, column definitions and the OK or EOF packet included).
// counted is false when c's counts are not known: nothing is better than a figure
// from another connection.
func runCounted(ctx context.Context, op *Op, c *workerConn, wk *Worker) (returned int64, counted bool, err error) {
	before := c.resultBytes()
	err = op.Run(ctx, c, wk)
	if before < 0 {
		return 0, false, err
	}
	return c.resultBytes() - before, true, err
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
	c := &workerConn{conn: conn, stmts: map[string]*sql.Stmt{}, io: countsOf(pool, conn)}
	cs[node] = c
	return c, nil
}

// countsOf returns the byte counts of the connection conn holds, or nil when its
// pool was not opened by openPool (a test's fake driver) or conn is closed.
// database/sql does not show a connection's socket: the pool's driver
// (countingDriver) leads to the tracker, which knows the socket each driver
// connection dialled (countingConnector). Once per connection, not per op.
func countsOf(pool *sql.DB, conn *sql.Conn) *trackedConn {
	d, ok := pool.Driver().(countingDriver)
	if !ok {
		return nil
	}
	var tc *trackedConn
	_ = conn.Raw(func(dc any) error {
		tc = d.t.counts(dc)
		return nil
	})
	return tc
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
//
// It also knows which driver connection dialled each of its connections (owners),
// so that a worker finds its connection's byte counts (countsOf).
type connTracker struct {
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	owners map[driver.Conn]*trackedConn
	closed bool
}

func newConnTracker() *connTracker {
	return &connTracker{conns: map[*trackedConn]struct{}{}, owners: map[driver.Conn]*trackedConn{}}
}

// dialedKey is the context key under which countingConnector.Connect asks dial
// for the connection it makes (a **trackedConn to fill in).
type dialedKey struct{}

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
	if slot, ok := ctx.Value(dialedKey{}).(**trackedConn); ok {
		*slot = tc
	}
	return tc, nil
}

// own records that the driver connection dc dialled tc, unless tc is closed
// already.
func (t *connTracker) own(dc driver.Conn, tc *trackedConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, open := t.conns[tc]; open {
		tc.owner = dc
		t.owners[dc] = tc
	}
}

// counts returns the connection the driver connection dc dialled (nil: none
// known).
func (t *connTracker) counts(dc any) *trackedConn {
	c, ok := dc.(driver.Conn)
	if !ok {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.owners[c]
}

// closeAll closes every connection and refuses new ones.
func (t *connTracker) closeAll() {
	t.mu.Lock()
	t.closed = true
	conns := t.conns
	t.conns = map[*trackedConn]struct{}{}
	clear(t.owners)
	t.mu.Unlock()
	for c := range conns {
		c.Conn.Close()
	}
}

// trackedConn is a connection the tracker dialled. It counts the bytes read and
// written through it: one atomic add per Read or Write, which the worker holding
// the connection reads before and after each op (runCounted).
type trackedConn struct {
	net.Conn
	t             *connTracker
	raw           *rawIO      // nil: the connection's own Read and Write
	owner         driver.Conn // the driver connection that dialled it; nil: not known
	read, written atomic.Int64
}

func (c *trackedConn) Read(p []byte) (n int, err error) {
	if c.raw == nil {
		n, err = c.Conn.Read(p)
	} else {
		n, err = c.raw.read(p)
		err = opError("read", c.Conn, err)
	}
	c.read.Add(int64(n))
	return n, err
}

func (c *trackedConn) Write(p []byte) (n int, err error) {
	if c.raw == nil {
		n, err = c.Conn.Write(p)
	} else {
		n, err = c.raw.write(p)
		err = opError("write", c.Conn, err)
	}
	c.written.Add(int64(n))
	return n, err
}

func (c *trackedConn) Close() error {
	c.t.mu.Lock()
	delete(c.t.conns, c)
	if c.owner != nil && c.t.owners[c.owner] == c {
		delete(c.t.owners, c.owner)
	}
	c.t.mu.Unlock()
	return c.Conn.Close()
}

// countingConnector is the driver's connector with every connection it makes
// known to the tracker by the socket it dialled (connTracker.own), so that a
// worker can find the byte counts of the connection it holds (countsOf).
type countingConnector struct {
	driver.Connector
	t *connTracker
}

func (c countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	var dialed *trackedConn
	dc, err := c.Connector.Connect(context.WithValue(ctx, dialedKey{}, &dialed))
	if err == nil && dialed != nil {
		c.t.own(dc, dialed)
	}
	return dc, err
}

// Driver is what sql.DB.Driver returns: the driver, with the tracker that
// counts the pool's connections.
func (c countingConnector) Driver() driver.Driver {
	return countingDriver{Driver: c.Connector.Driver(), t: c.t}
}

// countingDriver is the driver of a pool opened by openPool (see countsOf).
type countingDriver struct {
	driver.Driver
	t *connTracker
}

// openPool opens a node's pool for one workload: the target's DSN with every read and
// write bounded by the operation timeout, dialled through the run's tracker, which
// counts every connection's bytes.
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
	db := sql.OpenDB(countingConnector{Connector: connector, t: tracker})
	// No cap on open connections: a worker keeps at most one per node, so the
	// workers bound them, but a node's pool serves other nodes' workers too
	// when they retry here, and a pool capped at this node's workers made
	// those retries wait, for good, for a connection this node's own workers
	// keep.
	db.SetMaxOpenConns(0)
	db.SetMaxIdleConns(conns)
	return db, nil
}
