package loadgen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/htapchaos/htapchaos/internal/safego"
)

// Dialect selects the DDL and SQL a target speaks.
type Dialect string

const (
	// MariaDB covers MariaDB and MySQL (InnoDB).
	MariaDB Dialect = "mariadb"
	// MySQL is MariaDB's DDL; named apart for clarity in flags.
	MySQL Dialect = "mysql"
	// SingleStore shards users and orders by user_id, keeps users in a rowstore and
	// orders in a columnstore sorted by created_at.
	SingleStore Dialect = "singlestore"
)

// Dialects lists the known dialects.
var Dialects = []Dialect{MariaDB, MySQL, SingleStore}

// ParseDialect checks a dialect name.
func ParseDialect(s string) (Dialect, error) {
	for _, d := range Dialects {
		if string(d) == s {
			return d, nil
		}
	}
	return "", &UsageError{Field: "--dialect", Msg: fmt.Sprintf("unknown dialect %q (known: mariadb, mysql, singlestore)", s)}
}

// The columns are the same in every dialect; keys differ.
const (
	usersColumns = `  user_id BIGINT NOT NULL,
  email VARCHAR(255) NOT NULL,
  status VARCHAR(16) NOT NULL,
  created_at DATETIME(6) NOT NULL,
`
	ordersColumns = `  order_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  status VARCHAR(16) NOT NULL,
  created_at DATETIME(6) NOT NULL,
`
)

// DDL returns the statements that create the article's schema, if missing:
// users (user_id, email, status, created_at) and orders (order_id, user_id, amount,
// status, created_at; indexed on created_at and user_id).
func DDL(d Dialect) []string {
	switch d {
	case SingleStore:
		return []string{
			`CREATE ROWSTORE TABLE IF NOT EXISTS users (
` + usersColumns + `  PRIMARY KEY (user_id),
  SHARD KEY (user_id)
) COMMENT='` + TableMark + `'`,
			`CREATE TABLE IF NOT EXISTS orders (
` + ordersColumns + `  SORT KEY (created_at),
  SHARD KEY (user_id),
  KEY (order_id) USING HASH,
  KEY (user_id) USING HASH
) COMMENT='` + TableMark + `'`,
		}
	default:
		return []string{
			`CREATE TABLE IF NOT EXISTS users (
` + usersColumns + `  PRIMARY KEY (user_id),
  KEY idx_users_status (status)
) ENGINE=InnoDB COMMENT='` + TableMark + `'`,
			`CREATE TABLE IF NOT EXISTS orders (
` + ordersColumns + `  PRIMARY KEY (order_id),
  KEY idx_orders_created_at (created_at),
  KEY idx_orders_user_id (user_id)
) ENGINE=InnoDB COMMENT='` + TableMark + `'`,
		}
	}
}

// TableMark is the comment of every table htapchaos creates for its workloads:
// they seed, update and drop only tables that carry it.
const TableMark = "htapchaos"

// ErrNotOurTable is a table of the workloads' names that htapchaos did not create.
var ErrNotOurTable = errors.New("a table htapchaos did not create")

// CheckOwnTables refuses when one of the tables exists in the connection's
// database without htapchaos's mark: the builtin workloads never seed, update or
// drop a table someone else made (a game day's DSN may name a real database).
func CheckOwnTables(ctx context.Context, db *sql.DB, tables ...string) error {
	var errs []error
	for _, t := range tables {
		var comment string
		err := db.QueryRowContext(ctx, "SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", t).Scan(&comment)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			errs = append(errs, fmt.Errorf("check table %s: %w", t, err))
		case !strings.Contains(comment, TableMark):
			errs = append(errs, fmt.Errorf("%w: %s exists in the database the DSN names, without the comment '%s' htapchaos puts on its own tables: it will not seed, update or drop it (use another database, or mark it with ALTER TABLE %s COMMENT='%s' if it is yours to hurt)",
				ErrNotOurTable, t, TableMark, t, TableMark))
		}
	}
	return errors.Join(errs...)
}

// Data sizes the seeded tables. Seeded ids are 1..Users and 1..Orders; orders' created_at
// spread over the last Spread (default 24h), so "the last hour" holds about 1/24 of them.
type Data struct {
	Users  int64
	Orders int64
	// Merchants is the merchants of the sharded schema (default DefaultMerchants
	// there; unused elsewhere).
	Merchants int64
	Spread    time.Duration
	// Parallel seeding connections (default 4) and rows per INSERT (default 1000).
	Workers   int
	BatchRows int
	// Logf receives progress lines of a seed that takes more than a few seconds
	// (rows done, rows/s, ETA); nil: none.
	Logf func(format string, args ...any) `json:"-"`
}

func (d Data) withDefaults() Data {
	if d.Spread == 0 {
		d.Spread = 24 * time.Hour
	}
	if d.Workers == 0 {
		d.Workers = 4
	}
	if d.BatchRows == 0 {
		d.BatchRows = 1000
	}
	return d
}

// SeedReport says what Setup did.
type SeedReport struct {
	UsersAdded, OrdersAdded int64
	// Rows are the rows added by table, of a workload's own tables (a workload
	// file's Setup); the builtin schema's are UsersAdded and OrdersAdded.
	Rows    map[string]int64
	Elapsed time.Duration
}

// Added is every row added.
func (r SeedReport) Added() int64 {
	n := r.UsersAdded + r.OrdersAdded
	for _, v := range r.Rows {
		n += v
	}
	return n
}

// RowsPerSecond is the seeding throughput.
func (r SeedReport) RowsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Added()) / r.Elapsed.Seconds()
}

// Setup creates the schema if missing and seeds it up to the requested sizes. It can
// be re-run: rows already present are kept, and only the missing seeded ids are added.
func Setup(ctx context.Context, db *sql.DB, dialect Dialect, data Data) (SeedReport, error) {
	data = data.withDefaults()
	if err := CheckOwnTables(ctx, db, "users", "orders"); err != nil {
		return SeedReport{}, err
	}
	for _, stmt := range DDL(dialect) {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return SeedReport{}, fmt.Errorf("create schema: %w", err)
		}
	}
	start := time.Now()
	var rep SeedReport
	var err error
	rep.UsersAdded, err = seed(ctx, db, data, "users", data.Users, userRows)
	if err != nil {
		return rep, err
	}
	rep.OrdersAdded, err = seed(ctx, db, data, "orders", data.Orders, orderRows(data))
	if err == nil && rep.UsersAdded+rep.OrdersAdded > 0 {
		// The tables were created empty: until the statistics catch up, the optimizer
		// plans for empty tables (a user's recent orders by a full scan of the
		// created_at index), and the first minute of load measures that instead.
		if _, err = db.ExecContext(ctx, "ANALYZE TABLE users, orders"); err != nil {
			err = fmt.Errorf("analyze seeded tables: %w", err)
		}
	}
	rep.Elapsed = time.Since(start)
	return rep, err
}

type rowsFunc func(b *strings.Builder, args *[]any, lo, hi int64)

func userRows(b *strings.Builder, args *[]any, lo, hi int64) {
	b.WriteString("INSERT IGNORE INTO users (user_id, email, status, created_at) VALUES ")
	now := time.Now().UTC()
	for id := lo; id <= hi; id++ {
		if id > lo {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?)")
		status := "active"
		if id%5 == 0 {
			status = "inactive"
		}
		*args = append(*args, id, fmt.Sprintf("user%d@example.com", id), status, now.Add(-time.Duration(id%1000)*time.Hour))
	}
}

func orderRows(d Data) rowsFunc {
	return func(b *strings.Builder, args *[]any, lo, hi int64) {
		b.WriteString("INSERT IGNORE INTO orders (order_id, user_id, amount, status, created_at) VALUES ")
		now := time.Now().UTC()
		r := rand.New(rand.NewPCG(uint64(lo), 7))
		for id := lo; id <= hi; id++ {
			if id > lo {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?,?,?)")
			user := 1 + r.Int64N(max(d.Users, 1))
			age := time.Duration(r.Int64N(int64(d.Spread)))
			*args = append(*args, id, user, float64(r.IntN(100000))/100, orderStatuses[r.IntN(len(orderStatuses))], now.Add(-age))
		}
	}
}

var orderStatuses = []string{"pending", "paid", "shipped", "delivered", "cancelled"}

// seed inserts ids (present, want] of a table with parallel multi-row INSERTs.
func seed(ctx context.Context, db *sql.DB, d Data, table string, want int64, rows rowsFunc) (int64, error) {
	idCol := map[string]string{"users": "user_id", "orders": "order_id", "merchants": "merchant_id", "merchants_ref": "merchant_id"}[table]
	return seedRange(ctx, db, d, table, idCol, 1, want, rows)
}

// progressAfter is how long a seed runs before it reports its progress (then
// every progressEvery). Variables for the tests.
var (
	progressAfter = 3 * time.Second
	progressEvery = 5 * time.Second
)

// seedRange inserts the missing rows of keys first..last of a table (key column
// idCol) with parallel multi-row INSERTs, and reports its progress through d.Logf.
func seedRange(ctx context.Context, db *sql.DB, d Data, table, idCol string, first, last int64, rows rowsFunc) (int64, error) {
	d = d.withDefaults()
	want := last - first + 1
	var count int64
	var top sql.NullInt64
	q := fmt.Sprintf("SELECT COUNT(*), MAX(%s) FROM %s WHERE %s BETWEEN ? AND ?", quoteIdent(idCol), quoteIdent(table), quoteIdent(idCol))
	if err := db.QueryRowContext(ctx, q, first, last).Scan(&count, &top); err != nil {
		return 0, fmt.Errorf("seed %s: %w", table, err)
	}
	if count == want {
		return 0, nil
	}
	// Dense keys first..top: go on after top. Holes (an interrupted parallel seed):
	// send everything again; INSERT IGNORE keeps what is there.
	from := first
	if top.Valid && count == top.Int64-first+1 {
		from = top.Int64 + 1
	}
	var next atomic.Int64
	next.Store(from)
	var added, sent atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, d.Workers)
	stop := make(chan struct{})
	var progress sync.WaitGroup
	// The progress goroutine ends before seedRange returns: a logf called after
	// (a test's t.Logf after its test) would panic.
	defer progress.Wait()
	defer close(stop)
	if d.Logf != nil {
		progress.Go(func() { seedProgress(ctx, stop, d.Logf, table, last-from+1, &sent, progressAfter, progressEvery) })
	}
	for w := range d.Workers {
		safego.Go(&wg, fmt.Sprintf("seed %s worker %d", table, w), func(err error) { errs[w] = err }, func() {
			var b strings.Builder
			args := make([]any, 0, d.BatchRows*5)
			for ctx.Err() == nil {
				lo := next.Add(int64(d.BatchRows)) - int64(d.BatchRows)
				if lo > last {
					return
				}
				hi := min(lo+int64(d.BatchRows)-1, last)
				b.Reset()
				args = args[:0]
				rows(&b, &args, lo, hi)
				res, err := db.ExecContext(ctx, b.String(), args...)
				if err != nil {
					errs[w] = fmt.Errorf("seed %s ids %d-%d: %w", table, lo, hi, err)
					return
				}
				n, _ := res.RowsAffected()
				added.Add(n)
				sent.Add(hi - lo + 1)
			}
			errs[w] = ctx.Err()
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return added.Load(), err
		}
	}
	return added.Load(), nil
}

// seedProgress prints a seed's progress (rows sent of total, rows/s, ETA) once it
// has run after, then every every, until stop closes.
func seedProgress(ctx context.Context, stop <-chan struct{}, logf func(string, ...any), table string, total int64, sent *atomic.Int64, after, every time.Duration) {
	start := time.Now()
	t := time.NewTimer(after)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-t.C:
		}
		done := sent.Load()
		el := time.Since(start)
		rate := float64(done) / el.Seconds()
		eta := "unknown"
		if rate > 0 {
			eta = (time.Duration(float64(total-done) / rate * float64(time.Second))).Round(time.Second).String()
		}
		logf("seed %s: %d/%d rows (%.0f%%), %.0f rows/s, ETA %s", table, done, total, 100*float64(done)/float64(max(total, 1)), rate, eta)
		t.Reset(every)
	}
}
