package loadgen

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/results"
)

// fakeServer is a database/sql connector whose connections answer every query
// with one row of one column, fakePeak: what the runner reads as a measured
// query's MAX_MEMORY_USED. It counts the connections open.
type fakeServer struct{ open atomic.Int64 }

const fakePeak = 3 << 20

func (s *fakeServer) Connect(context.Context) (driver.Conn, error) {
	s.open.Add(1)
	return &fakeConn{s: s}, nil
}
func (s *fakeServer) Driver() driver.Driver { return nil }

type fakeConn struct{ s *fakeServer }

func (c *fakeConn) Prepare(string) (driver.Stmt, error) { return nil, driver.ErrSkip }
func (c *fakeConn) Close() error                        { c.s.open.Add(-1); return nil }
func (c *fakeConn) Begin() (driver.Tx, error)           { return nil, driver.ErrSkip }
func (c *fakeConn) QueryContext(context.Context, string, []driver.NamedValue) (driver.Rows, error) {
	return &fakeRows{}, nil
}

type fakeRows struct{ done bool }

func (r *fakeRows) Columns() []string { return []string{"v"} }
func (r *fakeRows) Close() error      { return nil }
func (r *fakeRows) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	dest[0] = int64(fakePeak)
	return nil
}

// memoryRunOn prepares a two-node workload whose op "q" measures its memory and
// "p" does not, with its nodes' pools on fake servers.
func memoryRunOn(t *testing.T, measure bool) (*workloadRun, map[int]*fakeServer) {
	t.Helper()
	rec, err := results.NewRecorder(results.Options{Start: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = rec.Close(time.Now()) })
	query := func(ctx context.Context, q Querier, _ *Worker) error { _, err := drain(ctx, q, "SELECT 1"); return err }
	wl := &Workload{Name: "fake", Ops: []Op{{Name: "q", Memory: true, Weight: 1, Run: query}, {Name: "p", Weight: 1, Run: query}}}
	dsn := "u:p@tcp(127.0.0.1:1)/db" // never dialled: the pools are replaced
	r := &run{cfg: Config{Targets: []Target{{DSN: dsn}, {DSN: dsn}}}, rec: rec, ids: NewIDs(1), ledger: results.NewLedger(), start: time.Now(), tracker: newConnTracker()}
	w, err := r.prepare(Spec{Workload: wl, Workers: 1, MeasureMemory: measure, Phases: []Phase{{Duration: time.Second, Rate: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	servers := map[int]*fakeServer{}
	for n, db := range w.pools {
		db.Close()
		s := &fakeServer{}
		servers[n] = s
		w.pools[n] = sql.OpenDB(s)
		if mdb := w.memPools[n]; mdb != nil {
			if got := mdb.Stats().MaxOpenConnections; got != 0 {
				t.Errorf("n%d: measured queries' pool capped at %d connections, want no cap", n, got)
			}
			mdb.Close()
			w.memPools[n] = sql.OpenDB(s)
			w.memPools[n].SetMaxIdleConns(0)
		}
	}
	t.Cleanup(func() {
		for _, db := range w.pools {
			db.Close()
		}
		for _, db := range w.memPools {
			db.Close()
		}
	})
	return w, servers
}

func opIndex(t *testing.T, w *workloadRun, name string) int {
	t.Helper()
	for i, op := range w.mix.ops {
		if op.Name == name {
			return i
		}
	}
	t.Fatalf("no op %s", name)
	return -1
}

// Per-query memory is measured only where the run asks (Spec.MeasureMemory),
// and a worker holds a fresh connection only to the node it serves, and only
// while that node can measure.
func TestMeasureMemoryConnections(t *testing.T) {
	ctx := context.Background()

	t.Run("off-by-default", func(t *testing.T) {
		w, servers := memoryRunOn(t, false)
		if w.memPools != nil || w.mem != nil {
			t.Fatalf("no MeasureMemory: memory pools %v, want none", w.memPools)
		}
		wk := w.newWorker(1)
		defer wk.closeAll()
		res := w.exec(ctx, 1, opIndex(t, w, "q"), wk)
		if res.err != nil || res.mem != 0 {
			t.Fatalf("q without MeasureMemory: err %v, memory %d; want a plain query, no memory", res.err, res.mem)
		}
		if len(wk.fresh) != 0 || wk.conns[1] == nil || servers[1].open.Load() != 1 {
			t.Errorf("q without MeasureMemory: %d fresh connections, kept %v, %d open; want it on the kept connection", len(wk.fresh), wk.conns[1] != nil, servers[1].open.Load())
		}
	})

	t.Run("measured-and-pre-opened-for-its-own-node", func(t *testing.T) {
		w, servers := memoryRunOn(t, true)
		wk := w.newWorker(1)
		defer wk.closeAll()
		q := opIndex(t, w, "q")
		if res := w.attempt(ctx, 1, q, wk); res.err != nil || res.mem != fakePeak {
			t.Fatalf("q on n1: err %v, memory %d; want %d", res.err, res.mem, fakePeak)
		}
		if wk.fresh[1] == nil || servers[1].open.Load() != 1 {
			t.Errorf("after q on its own node: fresh %v, n1 open %d; want the next one pre-opened", wk.fresh[1] != nil, servers[1].open.Load())
		}
		// A retry lands on n2, a node the worker does not serve: measured, and
		// nothing left open there (before: a pre-opened connection held until the
		// worker exited, one of n2's capped pool).
		if res := w.attempt(ctx, 2, q, wk); res.err != nil || res.mem != fakePeak {
			t.Fatalf("q on n2: err %v, memory %d; want %d", res.err, res.mem, fakePeak)
		}
		if wk.fresh[2] != nil || servers[2].open.Load() != 0 {
			t.Errorf("after q on another node: fresh %v, n2 open %d; want none held", wk.fresh[2] != nil, servers[2].open.Load())
		}
	})

	t.Run("released-when-measuring-stops", func(t *testing.T) {
		w, servers := memoryRunOn(t, true)
		wk := w.newWorker(1)
		defer wk.closeAll()
		if res := w.attempt(ctx, 1, opIndex(t, w, "q"), wk); res.err != nil || wk.fresh[1] == nil {
			t.Fatalf("q on n1: err %v, fresh %v", res.err, wk.fresh[1] != nil)
		}
		// Another worker found that n1 cannot report memory. This worker's next
		// attempt, of any op, gives back its pre-opened connection (before: held
		// until the worker exited).
		w.mem[1].off.Store(true)
		res := w.attempt(ctx, 1, opIndex(t, w, "p"), wk)
		if res.err != nil || wk.fresh[1] != nil || servers[1].open.Load() != 1 {
			t.Errorf("after measuring stopped on n1: err %v, fresh %v, n1 open %d; want only the kept connection", res.err, wk.fresh[1] != nil, servers[1].open.Load())
		}
		if res := w.attempt(ctx, 1, opIndex(t, w, "q"), wk); res.err != nil || res.mem != 0 || servers[1].open.Load() != 1 {
			t.Errorf("q after measuring stopped: err %v, memory %d, n1 open %d; want unmeasured on the kept connection", res.err, res.mem, servers[1].open.Load())
		}
	})
}
