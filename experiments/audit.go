package experiments

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/htapchaos/htapchaos/results"
)

// auditFirst is how many ids of each kind an audit lists.
const auditFirst = 10

// AuditLedger is the durability audit: it reads back every order id the ledger
// says the database acknowledged and counts the lost ones (acknowledged, missing),
// and the unexpected ones: present in the run's id range [lo, hi] but never
// acknowledged (the writes whose outcome was unknown that did land, or rows no
// writer of the run reported). Acknowledged ids outside [lo, hi] are checked too.
// lo > hi: no run range, only the acknowledged ids are checked.
//
// It streams the ids in order through the primary key, one query per window
// ([lo, hi], and each acknowledged range outside it), and merges them against the
// ranges in constant memory: a million acknowledged rows take about a second. The
// caller sets Audit.Node. On a failed read it returns what it counted so far, with
// Error set, and the error.
func AuditLedger(ctx context.Context, db *sql.DB, ledger *results.Ledger, lo, hi int64) (*Audit, error) {
	ranges := ledger.Acked()
	_, unknown := ledger.Count()
	a := &Audit{Unknown: unknown}
	for _, r := range ranges {
		a.Acked += r.Hi - r.Lo + 1
	}
	w := auditWalk{ranges: ranges}
	if len(ranges) > 0 {
		w.next = ranges[0].Lo
	}
	for _, win := range auditWindows(ranges, lo, hi) {
		if err := w.scan(ctx, db, win); err != nil {
			w.fill(a)
			a.Error = fmt.Sprintf("read back orders %d-%d: %v", win.Lo, win.Hi, err)
			return a, fmt.Errorf("durability audit: read back orders %d-%d: %w", win.Lo, win.Hi, err)
		}
	}
	w.finish()
	w.fill(a)
	return a, nil
}

// auditWindows are the id spans to read, in order: the parts of acknowledged
// ranges below lo, [lo, hi], the parts above hi.
func auditWindows(ranges []results.Range, lo, hi int64) []results.Range {
	if lo > hi {
		return ranges
	}
	var below, above []results.Range
	for _, r := range ranges {
		if r.Lo < lo {
			below = append(below, results.Range{Lo: r.Lo, Hi: min(r.Hi, lo-1)})
		}
		if r.Hi > hi {
			above = append(above, results.Range{Lo: max(r.Lo, hi+1), Hi: r.Hi})
		}
	}
	out := append(below, results.Range{Lo: lo, Hi: hi})
	return append(out, above...)
}

// auditWalk merges ascending present ids against sorted acknowledged ranges.
type auditWalk struct {
	ranges     []results.Range
	i          int   // current range
	next       int64 // first id of ranges[i] not yet seen or declared lost
	lost       int64
	unexpected int64
	firstLost  []int64
	firstExtra []int64
}

func (w *auditWalk) scan(ctx context.Context, db *sql.DB, win results.Range) error {
	rows, err := db.QueryContext(ctx, "SELECT order_id FROM orders WHERE order_id BETWEEN ? AND ? ORDER BY order_id", win.Lo, win.Hi)
	if err != nil {
		return err
	}
	defer rows.Close()
	var id int64
	for rows.Next() {
		if err := rows.Scan(&id); err != nil {
			return err
		}
		w.present(id)
	}
	return rows.Err()
}

// present takes the next id found, in ascending order.
func (w *auditWalk) present(id int64) {
	for w.i < len(w.ranges) && id > w.ranges[w.i].Hi {
		w.lose(w.next, w.ranges[w.i].Hi)
		w.advance()
	}
	if w.i < len(w.ranges) && id >= w.ranges[w.i].Lo {
		if id >= w.next {
			w.lose(w.next, id-1)
			w.next = id + 1
		}
		return
	}
	w.unexpected++
	if len(w.firstExtra) < auditFirst {
		w.firstExtra = append(w.firstExtra, id)
	}
}

func (w *auditWalk) advance() {
	w.i++
	if w.i < len(w.ranges) {
		w.next = w.ranges[w.i].Lo
	}
}

// lose declares ids [a, b] missing (none when a > b).
func (w *auditWalk) lose(a, b int64) {
	if a > b {
		return
	}
	w.lost += b - a + 1
	for id := a; id <= b && len(w.firstLost) < auditFirst; id++ {
		w.firstLost = append(w.firstLost, id)
	}
}

// finish declares the rest of the ranges missing.
func (w *auditWalk) finish() {
	for w.i < len(w.ranges) {
		w.lose(w.next, w.ranges[w.i].Hi)
		w.advance()
	}
}

func (w *auditWalk) fill(a *Audit) {
	a.Lost, a.Unexpected = w.lost, w.unexpected
	a.FirstLost, a.FirstExtra = w.firstLost, w.firstExtra
}
