package loadgen

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"
)

// drain reads every row of a query (the client pays for the result set, as an
// application would) and returns the row count.
func drain(ctx context.Context, q Querier, query string, args ...any) (int, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}

// queryRow scans the first row, if any, into dest and reads the rest.
func queryRow(ctx context.Context, q Querier, dest []any, query string, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
	}
	return rows.Close()
}

// OLTP is the transactional workload: point reads, inserts, status updates and a
// user's recent orders.
func OLTP() *Workload {
	return &Workload{
		Name:        "oltp",
		Description: "point reads, inserts, status updates and recent-order lookups on orders",
		Ops: []Op{
			{Name: "point-read", Weight: 50, Run: func(ctx context.Context, q Querier, w *Worker) error {
				var (
					id, user      int64
					amount        float64
					status, ctime string
				)
				// An empty answer is an answer too.
				return queryRow(ctx, q, []any{&id, &user, &amount, &status, &ctime},
					"SELECT order_id, user_id, amount, status, created_at FROM orders WHERE order_id = ?", w.RandomOrder())
			}},
			{Name: "insert", Weight: 20, ChangesData: true, Ledgered: true, Run: func(ctx context.Context, q Querier, w *Worker) error {
				id := w.NextID()
				res, err := q.ExecContext(ctx, "INSERT INTO orders (order_id, user_id, amount, status, created_at) VALUES (?, ?, ?, 'pending', NOW(6))",
					id, w.RandomUser(), float64(w.Rand.IntN(100000))/100)
				return recordWrite(w, res, err, id)
			}},
			{Name: "update-status", Weight: 15, ChangesData: true, Run: func(ctx context.Context, q Querier, w *Worker) error {
				// The new status always differs from the old: an UPDATE that changes
				// nothing commits without a write set, so on Galera it succeeds at once
				// while the cluster holds every real commit, and would hide the very
				// write outage the write gaps measure.
				i := w.Rand.IntN(len(orderStatuses))
				a, b := orderStatuses[i], orderStatuses[(i+1+w.Rand.IntN(len(orderStatuses)-1))%len(orderStatuses)]
				_, err := q.ExecContext(ctx, "UPDATE orders SET status = IF(status = ?, ?, ?) WHERE order_id = ?", a, b, a, w.RandomOrder())
				return err
			}},
			{Name: "recent-orders", Weight: 15, Run: func(ctx context.Context, q Querier, w *Worker) error {
				_, err := drain(ctx, q, "SELECT order_id, amount, status, created_at FROM orders WHERE user_id = ? ORDER BY created_at DESC LIMIT 10", w.RandomUser())
				return err
			}},
			// Only when asked for: it needs the sharded schema's seeding.
			{Name: "shard-point-read", Run: shardPointRead},
		},
	}
}

// errRowsAffected: the server acknowledged an insert but reported another number of
// rows than were sent.
var errRowsAffected = errors.New("insert acknowledged with a row count other than the rows sent")

// recordWrite puts an insert of ids in the ledger and returns the operation's error.
// The ids are acknowledged only when the statement succeeded and the server reports
// exactly len(ids) rows affected; otherwise they go to unknown (the statement may or
// may not have committed, or committed some of its rows), and a count mismatch is
// an error of the operation.
func recordWrite(w *Worker, res sql.Result, err error, ids ...int64) error {
	if err == nil {
		err = checkRowsAffected(res, len(ids))
	}
	for _, id := range ids {
		if err == nil {
			w.Ack(id)
		} else {
			w.Unknown(id)
		}
	}
	return err
}

func checkRowsAffected(res sql.Result, sent int) error {
	if res == nil {
		return fmt.Errorf("%w: no result", errRowsAffected)
	}
	n, err := res.RowsAffected()
	switch {
	case err != nil:
		return fmt.Errorf("%w: rows affected: %w", errRowsAffected, err)
	case n != int64(sent):
		return fmt.Errorf("%w: %d rows sent, %d affected", errRowsAffected, sent, n)
	}
	return nil
}

// Analytics is the analytical workload: the article's dashboard and join, a wide
// fraud scan, and a query of the user's own.
func Analytics() *Workload {
	return &Workload{
		Name:        "analytics",
		Heavy:       true,
		Description: "the SingleStore production article's per-user dashboard, active-user revenue join, a wide fraud scan, and your own query",
		Ops: []Op{
			{Name: "dashboard", Memory: true, Weight: 50, Run: func(ctx context.Context, q Querier, _ *Worker) error {
				_, err := drain(ctx, q, "SELECT user_id, COUNT(*), SUM(amount) FROM orders WHERE created_at > NOW() - INTERVAL 1 HOUR GROUP BY user_id")
				return err
			}},
			{Name: "revenue-join", Memory: true, Weight: 25, Run: func(ctx context.Context, q Querier, _ *Worker) error {
				_, err := drain(ctx, q, `SELECT u.email, o.order_count, o.total_revenue
FROM users u
JOIN (SELECT user_id, COUNT(*) AS order_count, SUM(amount) AS total_revenue
      FROM orders WHERE created_at > NOW() - INTERVAL 7 DAY GROUP BY user_id) o ON u.user_id = o.user_id
WHERE u.status = 'active'`)
				return err
			}},
			{Name: "fraud-scan", Memory: true, Weight: 25, Run: func(ctx context.Context, q Querier, _ *Worker) error {
				_, err := drain(ctx, q, `SELECT status, COUNT(*), SUM(amount), AVG(amount), MAX(amount), MIN(amount), COUNT(DISTINCT user_id)
FROM orders WHERE amount > 0 GROUP BY status`)
				return err
			}},
			{Name: "sql", Memory: true, Run: func(ctx context.Context, q Querier, w *Worker) error {
				if w.Params.Query == "" {
					return errors.New("analytics sql: no query given (--query)")
				}
				// Each ? is bound to a random order id (1..orders): a point query of the
				// user's own, run as a prepared statement.
				_, err := drain(ctx, q, w.Params.Query, w.QueryArgs()...)
				return err
			}},
		},
	}
}

// Batch is the bulk-load workload: multi-row INSERTs of BatchRows rows, and LOAD DATA
// LOCAL INFILE where the server allows it.
func Batch() *Workload {
	return &Workload{
		Name:        "batch",
		Heavy:       true,
		Description: "bulk inserts of K rows per statement (--batch-rows), and LOAD DATA LOCAL INFILE",
		Ops: []Op{
			{Name: "bulk-insert", Weight: 100, ChangesData: true, Ledgered: true, Run: bulkInsert},
			{Name: "load-data", ChangesData: true, Ledgered: true, Run: loadData},
		},
	}
}

func batchRows(w *Worker) int {
	if w.Params.BatchRows > 0 {
		return w.Params.BatchRows
	}
	return 500
}

func bulkInsert(ctx context.Context, q Querier, w *Worker) error {
	n := batchRows(w)
	var b strings.Builder
	b.Grow(90 + n*30)
	b.WriteString("INSERT INTO orders (order_id, user_id, amount, status, created_at) VALUES ")
	ids := make([]int64, n)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		ids[i] = w.NextID()
		// Values are numbers the tool made: formatted inline, one statement, no
		// placeholder limit.
		fmt.Fprintf(&b, "(%d,%d,%d.%02d,'batch',NOW(6))", ids[i], w.RandomUser(), w.Rand.IntN(1000), w.Rand.IntN(100))
	}
	res, err := q.ExecContext(ctx, b.String())
	return recordWrite(w, res, err, ids...)
}

var loadDataSeq atomic.Int64

func loadData(ctx context.Context, q Querier, w *Worker) error {
	n := batchRows(w)
	ids := make([]int64, n)
	var buf bytes.Buffer
	for i := range n {
		ids[i] = w.NextID()
		buf.WriteString(strconv.FormatInt(ids[i], 10))
		fmt.Fprintf(&buf, "\t%d\t%d.%02d\tbatch\n", w.RandomUser(), w.Rand.IntN(1000), w.Rand.IntN(100))
	}
	name := "htapchaos-" + strconv.FormatInt(loadDataSeq.Add(1), 10)
	data := buf.Bytes()
	mysql.RegisterReaderHandler(name, func() io.Reader { return bytes.NewReader(data) })
	defer mysql.DeregisterReaderHandler(name)
	res, err := q.ExecContext(ctx, "LOAD DATA LOCAL INFILE 'Reader::"+name+"' INTO TABLE orders (order_id, user_id, amount, status) SET created_at = NOW(6)")
	return recordWrite(w, res, err, ids...)
}

// Noop does nothing: it measures the tool itself (pacer, recording) without a database.
func Noop() *Workload {
	return &Workload{
		Name:        "noop",
		Description: "does nothing, needs no database: measures htapchaos's own overhead",
		NoDB:        true,
		Ops:         []Op{{Name: "noop", Weight: 1, Run: func(context.Context, Querier, *Worker) error { return nil }}},
	}
}
