package loadgen

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"testing"

	"github.com/htapchaos/htapchaos/results"
)

// execOnly answers every Exec with a fixed result and error (pure logic: what the
// inserts make of what the server says).
type execOnly struct {
	res sql.Result
	err error
}

func (e execOnly) ExecContext(context.Context, string, ...any) (sql.Result, error) {
	return e.res, e.err
}
func (e execOnly) QueryContext(context.Context, string, ...any) (*sql.Rows, error) {
	return nil, errors.New("no queries here")
}

// An insert is acknowledged only when the server reports as many rows as were
// sent; any other count, or an error, puts its ids in unknown.
func TestRecordWriteRowsAffected(t *testing.T) {
	insert := OLTP().Ops[1]
	if insert.Name != "insert" {
		t.Fatalf("op 1 of oltp is %s, want insert", insert.Name)
	}
	for _, tc := range []struct {
		name         string
		run          func(context.Context, Querier, *Worker) error
		rows         int // rows the op sends
		q            execOnly
		acked, unkn  int64
		wantErr      bool
		rowsAffected bool // the error is errRowsAffected
	}{
		{name: "bulk insert, all rows", run: bulkInsert, rows: 4, q: execOnly{res: driver.RowsAffected(4)}, acked: 4},
		{name: "bulk insert, one row short", run: bulkInsert, rows: 4, q: execOnly{res: driver.RowsAffected(3)}, unkn: 4, wantErr: true, rowsAffected: true},
		{name: "bulk insert, none", run: bulkInsert, rows: 4, q: execOnly{res: driver.RowsAffected(0)}, unkn: 4, wantErr: true, rowsAffected: true},
		{name: "bulk insert, error", run: bulkInsert, rows: 4, q: execOnly{err: errors.New("conn lost")}, unkn: 4, wantErr: true},
		{name: "load data, too many", run: loadData, rows: 3, q: execOnly{res: driver.RowsAffected(5)}, unkn: 3, wantErr: true, rowsAffected: true},
		{name: "load data, all rows", run: loadData, rows: 3, q: execOnly{res: driver.RowsAffected(3)}, acked: 3},
		{name: "insert, one row", run: insert.Run, rows: 1, q: execOnly{res: driver.RowsAffected(1)}, acked: 1},
		{name: "insert, no row", run: insert.Run, rows: 1, q: execOnly{res: driver.RowsAffected(0)}, unkn: 1, wantErr: true, rowsAffected: true},
		{name: "insert, no result", run: insert.Run, rows: 1, q: execOnly{}, unkn: 1, wantErr: true, rowsAffected: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ledger := results.NewLedger()
			w := &Worker{ID: 1, Rand: newRand(1), Params: &Params{BatchRows: tc.rows, Data: Data{Users: 10, Orders: 10}}, ids: NewIDs(3), ledger: ledger}
			err := tc.run(context.Background(), tc.q, w)
			if (err != nil) != tc.wantErr || errors.Is(err, errRowsAffected) != tc.rowsAffected {
				t.Errorf("error %v; want error %v, rows-affected error %v", err, tc.wantErr, tc.rowsAffected)
			}
			acked, unknown := ledger.Count()
			if acked != tc.acked || unknown != tc.unkn {
				t.Errorf("ledger: %d acknowledged, %d unknown; want %d, %d", acked, unknown, tc.acked, tc.unkn)
			}
		})
	}
}
