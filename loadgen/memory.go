package loadgen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/htapchaos/htapchaos/results"
)

// Per-query memory (Op.Memory), from the server's own accounting.
//
// MariaDB keeps, per connection, the memory the connection's thread allocated now
// (information_schema.PROCESSLIST MEMORY_USED) and the most it ever allocated
// (MAX_MEMORY_USED): a high-water mark that never goes down. The load generator
// keeps its connections, so on a kept connection the mark after a query is the
// largest query it ever ran, not this one. Each measured query therefore runs on
// a connection of its own: opened before the query (after the previous measured
// query of the worker succeeded, so the dial is not in the query's time, as a kept
// connection's is not), used for that query, then asked for its own row, and
// closed. What is recorded is that connection's MAX_MEMORY_USED: the query's peak,
// plus what a fresh connection holds (its buffers, and the reading query's own
// allocations as far as they came before the row was filled in). Reading one's own
// connection's row needs no privilege: without PROCESS a user sees its own
// threads, and this is one of them. FLUSH STATUS is never run: it would reset
// counters the indicator sampler reads.

// memoryQuery reads the connection's own high-water mark, in bytes.
const memoryQuery = "SELECT MAX_MEMORY_USED FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()"

// errNoAccounting: the server keeps no per-connection memory accounting (not
// MariaDB), or does not show this connection's.
var errNoAccounting = errors.New("the server does not report per-query memory (no MAX_MEMORY_USED in information_schema.PROCESSLIST: not MariaDB?)")

// readPeakMemory reads the connection's MAX_MEMORY_USED. An error wrapping
// errNoAccounting means the server cannot give it at all.
func readPeakMemory(ctx context.Context, c *workerConn) (int64, error) {
	var v sql.NullInt64
	err := c.conn.QueryRowContext(ctx, memoryQuery).Scan(&v)
	var me *mysql.MySQLError
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("%w: no PROCESSLIST row for the connection", errNoAccounting)
	case errors.As(err, &me) && (me.Number == 1054 || me.Number == 1109 || me.Number == 1146):
		// 1054 unknown column, 1109 unknown table, 1146 no such table.
		return 0, fmt.Errorf("%w: %v", errNoAccounting, err)
	case err != nil:
		return 0, err
	case !v.Valid:
		return 0, fmt.Errorf("%w: MAX_MEMORY_USED is NULL", errNoAccounting)
	}
	return v.Int64, nil
}

// memoryState is a workload's per-node switch: measurement stops on a node
// whose server cannot report per-query memory (the op then runs on the worker's
// kept connection, as unmeasured ops do).
type memoryState struct {
	off atomic.Bool
}

// measureMemory says whether an attempt of op on node measures its memory.
func (w *workloadRun) measureMemory(op *Op, node int) bool {
	if !op.Memory || w.spec.Workload.NoDB {
		return false
	}
	st := w.mem[node]
	return st != nil && !st.off.Load()
}

// releaseFresh closes the worker's pre-opened connections to nodes where
// measuring has stopped (memoryState.off): no measured query will use them.
// Checked on every attempt, whatever its node and op, so a worker does not hold
// one until it exits.
func (w *workloadRun) releaseFresh(wk *Worker) {
	for n, c := range wk.fresh {
		if st := w.mem[n]; st == nil || st.off.Load() {
			c.close()
			delete(wk.fresh, n)
		}
	}
}

// memoryAttempt runs one measured attempt of op on node: on the worker's fresh
// connection to the node (opened now if it has none), then the memory read,
// after the attempt's end time, and the connection closed. After a success on
// the worker's own node (Worker.home; every node in the closed loop) the next
// fresh connection is opened at once (outside any attempt's time); after a
// failure, or on another node (a retry), the next attempt dials in its own
// time, as one on a kept connection does after a failure: a worker holds no
// connection to a node it does not serve. mem is 0 when nothing was measured.
func (w *workloadRun) memoryAttempt(ctx context.Context, node int, op *Op, wk *Worker) (ended time.Time, mem int64, err error) {
	start := time.Now()
	c, err := wk.fresh.get(ctx, node, w.memPools[node])
	if err == nil {
		err = op.Run(context.WithoutCancel(ctx), c, wk)
	}
	ended = time.Now()
	err = w.outcome(ctx, start, err)
	if c == nil {
		return ended, 0, err
	}
	delete(wk.fresh, node)
	if err == nil {
		mem = w.readMemory(ctx, node, c) // the query succeeded, whatever the reading does
	}
	c.close() // before the next is opened: a worker holds one at most
	if err == nil && ctx.Err() == nil && !w.mem[node].off.Load() && (wk.home == 0 || wk.home == node) {
		// The next measured query's connection, opened now. A failure here is
		// not the next query's: it dials again in its own time.
		_, _ = wk.fresh.get(ctx, node, w.memPools[node])
	}
	return ended, mem, err
}

// readMemory reads the peak memory of the query just run on c, a connection of
// its own. It returns 0 where the figure cannot be had, and says why once for the
// run (results.Recorder.MemoryUnavailable); a server without the accounting is
// not asked again.
func (w *workloadRun) readMemory(ctx context.Context, node int, c *workerConn) int64 {
	mem, err := readPeakMemory(context.WithoutCancel(ctx), c)
	switch {
	case err == nil:
		return mem
	case errors.Is(err, errNoAccounting):
		w.mem[node].off.Store(true)
		w.r.rec.MemoryUnavailable(fmt.Sprintf("n%d: %v", node, err))
	case ctx.Err() != nil:
		// Our own shutdown closed the connection: not the server's doing.
	case results.Classify(err).Class == results.ClassConnection, results.Classify(err).Class == results.ClassTimeout:
		// The node went away between the query and the reading (a node kill, an
		// OOM kill): that query's figure is lost, the accounting is not missing.
	default:
		w.r.rec.MemoryUnavailable(fmt.Sprintf("n%d: reading a query's memory failed (that query's figure is missing): %v", node, err))
	}
	return 0
}
