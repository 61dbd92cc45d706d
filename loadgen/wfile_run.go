package loadgen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// workload turns the parsed file into a Workload whose Setup creates, seeds and
// samples, and whose ops draw their arguments from the generators.
func (wf *wfile) workload() *Workload {
	wl := &Workload{
		Name:        wf.name,
		Description: wf.description,
		Class:       wf.class,
		Heavy:       wf.class != "oltp",
		Audit:       wf.audit,
		Setup:       wf.setup,
	}
	if wl.Description == "" {
		wl.Description = "workload file"
	}
	for _, o := range wf.ops {
		wl.Ops = append(wl.Ops, Op{
			Name:        o.name,
			Weight:      o.weight,
			ChangesData: o.writes,
			Ledgered:    o.ledger != nil,
			// An analytics file's reads are the queries a node is sized for.
			Memory: wf.class == "analytics" && !o.writes,
			Run:    o.run,
		})
	}
	return wl
}

// errRowCount: a read returned another number of rows than the op declares, or a
// write changed another number.
var errRowCount = errors.New("row count other than the op declares")

// run makes one attempt of a workload file's op.
func (o *wop) run(ctx context.Context, q Querier, w *Worker) error {
	args := make([]any, len(o.args))
	var key int64
	now := time.Now()
	for i, g := range o.args {
		switch {
		case g.kind == genNextID:
			key = w.NextID()
			args[i] = key
		case g.kind == genFrom && g.from.values() == nil:
			// The run skipped Setup: sample now, on this connection.
			if err := g.from.load(ctx, q, false); err != nil {
				return err
			}
			args[i] = g.value(w.Rand, -1, now)
		default:
			args[i] = g.value(w.Rand, -1, now)
		}
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	if o.writes {
		res, err := q.ExecContext(ctx, o.sql, args...)
		err = o.timedOut(err)
		if o.ledger != nil {
			return recordWrite(w, res, err, key)
		}
		if err == nil && o.rows >= 0 {
			if n, rerr := res.RowsAffected(); rerr == nil && n != o.rows {
				return fmt.Errorf("%w: %s changed %d rows, the file says rows: %d", errRowCount, o.name, n, o.rows)
			}
		}
		return err
	}
	n, err := drain(ctx, q, o.sql, args...)
	if err != nil {
		return o.timedOut(err)
	}
	if o.rows >= 0 && int64(n) != o.rows {
		return fmt.Errorf("%w: %s returned %d rows, the file says rows: %d", errRowCount, o.name, n, o.rows)
	}
	return nil
}

// timedOut names the op's own timeout in the error of an attempt it cut short.
func (o *wop) timedOut(err error) error {
	if err != nil && o.timeout > 0 && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: over its timeout %v: %w", o.name, o.timeout, err)
	}
	return err
}

// DetectDialect asks the server which SQL it speaks: SingleStore answers
// @@memsql_version; otherwise MariaDB or MySQL by its version string.
func DetectDialect(ctx context.Context, db *sql.DB) (Dialect, error) {
	var v string
	if err := db.QueryRowContext(ctx, "SELECT @@memsql_version").Scan(&v); err == nil {
		return SingleStore, nil
	}
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v); err != nil {
		return "", fmt.Errorf("server version: %w", err)
	}
	if strings.Contains(strings.ToLower(v), "mariadb") {
		return MariaDB, nil
	}
	return MySQL, nil
}

// schemaFor is the dialect's statements: its own, else the file's common ones.
func (wf *wfile) schemaFor(d Dialect) []sqlStmt {
	if s, ok := wf.schema[d]; ok {
		return s
	}
	if d == MySQL {
		if s, ok := wf.schema[MariaDB]; ok && wf.schema[""] == nil {
			return s
		}
	}
	return wf.schema[""]
}

// setup is the file's Workload.Setup: the schema (in the server's dialect), the
// mark on the tables it seeds, the samples of from generators, then the seeding.
func (wf *wfile) setup(ctx context.Context, db *sql.DB, logf func(format string, args ...any)) (SeedReport, error) {
	start := time.Now()
	rep := SeedReport{Rows: map[string]int64{}}
	var seeded []string
	for _, t := range wf.tables {
		seeded = append(seeded, t.name)
	}
	existed := map[string]bool{}
	for _, t := range seeded {
		var one int
		err := db.QueryRowContext(ctx, "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", t).Scan(&one)
		switch {
		case err == nil:
			existed[t] = true
		case !errors.Is(err, sql.ErrNoRows):
			return rep, fmt.Errorf("%s: check table %s: %w", wf.name, t, err)
		}
	}
	// A table that was there before, without htapchaos's mark, is not seeded:
	// the DSN may name a real database.
	if err := CheckOwnTables(ctx, db, seeded...); err != nil {
		return rep, fmt.Errorf("%s: %w", wf.name, err)
	}
	if len(wf.schema) > 0 {
		d, err := DetectDialect(ctx, db)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", wf.name, err)
		}
		for _, st := range wf.schemaFor(d) {
			if _, err := db.ExecContext(ctx, st.sql); err != nil {
				return rep, fmt.Errorf("%s: schema statement at %s: %w", wf.name, st.at, err)
			}
		}
	}
	for _, t := range seeded {
		if existed[t] {
			continue
		}
		var comment string
		if err := db.QueryRowContext(ctx, "SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", t).Scan(&comment); err != nil {
			return rep, fmt.Errorf("%s: table %s after the schema ran: %w (does the schema create it?)", wf.name, t, err)
		}
		if !strings.Contains(comment, TableMark) {
			// Marked as htapchaos's own, so a second run seeds it again.
			if _, err := db.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s COMMENT = '%s'", quoteIdent(t), TableMark)); err != nil {
				return rep, fmt.Errorf("%s: mark table %s: %w", wf.name, t, err)
			}
		}
	}
	for _, s := range wf.samples {
		if err := s.load(ctx, db, true); err != nil {
			return rep, fmt.Errorf("%s: %w", wf.name, err)
		}
		if logf != nil {
			logf("setup: %s: sampled %d values of %s.%s", wf.name, len(s.values()), s.table, s.column)
		}
	}
	var total int64
	for _, t := range wf.tables {
		d := Data{Workers: 4, BatchRows: min(1000, 60_000/len(t.cols)), Logf: logf}
		n, err := seedRange(ctx, db, d, t.name, t.cols[t.key].name, t.startID, t.startID+t.rows-1, t.rowsFunc(start))
		rep.Rows[t.name] = n
		total += n
		if err != nil {
			rep.Elapsed = time.Since(start)
			return rep, fmt.Errorf("%s: %w", wf.name, err)
		}
	}
	if total > 0 {
		// Fresh statistics, or the optimizer plans for empty tables (see Setup).
		if _, err := db.ExecContext(ctx, "ANALYZE TABLE "+strings.Join(quoteAll(seeded), ", ")); err != nil {
			return rep, fmt.Errorf("%s: analyze seeded tables: %w", wf.name, err)
		}
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = quoteIdent(n)
	}
	return out
}

// rowsFunc builds a multi-row INSERT IGNORE of the table's rows with keys lo..hi.
// Each batch draws from a source seeded by its first key, so a second run sends
// the same rows.
func (t *wtable) rowsFunc(now time.Time) rowsFunc {
	var head strings.Builder
	head.WriteString("INSERT IGNORE INTO " + quoteIdent(t.name) + " (")
	for i, c := range t.cols {
		if i > 0 {
			head.WriteString(", ")
		}
		head.WriteString(quoteIdent(c.name))
	}
	head.WriteString(") VALUES ")
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?,", len(t.cols)), ",") + ")"
	return func(b *strings.Builder, args *[]any, lo, hi int64) {
		b.WriteString(head.String())
		r := rand.New(rand.NewPCG(uint64(lo), 11))
		for id := lo; id <= hi; id++ {
			if id > lo {
				b.WriteByte(',')
			}
			b.WriteString(tuple)
			for _, c := range t.cols {
				*args = append(*args, c.g.value(r, id-t.startID, now))
			}
		}
	}
}
